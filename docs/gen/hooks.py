"""mkdocs hooks: the reference pages are generated from the code at build time (``mkdocs build``),
never copied by hand. (The benchmark page is generated from the result files by
``python docs/gen/results.py --write`` and committed, so it also reads on GitHub.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import reference


def on_files(files: Any, config: Any) -> Any:
    """Adds every generated page to the site's files."""
    from mkdocs.structure.files import File

    for path, build in reference.PAGES.items():
        files.append(File.generated(config, path, content=build()))
    return files
