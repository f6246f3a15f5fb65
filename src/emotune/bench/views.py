"""What a matrix asks ``emotune bench`` to write beside its report (``views:`` in its YAML): a
learning curve over budgets, the paper's targets, a dev-only search table. Each is rewritten from
all the cells in the results folder whenever the matrix runs, so it never lags behind them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emotune.bench import curve, search, targets
from emotune.errors import EmotuneError

#: Each view: ``write(out, source, **options)``.
VIEWS: dict[str, Callable[..., None]] = {"curve": curve.write, "targets": targets.write, "search": search.write}


def check_views(file: Path, views: Any) -> dict[str, dict[str, Any]]:
    """The matrix's ``views`` mapping, its names and options checked before any cell runs.

    Raises:
        EmotuneError: One line for an unknown view or option.
    """
    if views is None:
        return {}
    if not isinstance(views, dict):
        raise EmotuneError(f"{file}: 'views' must map view names to their options")
    checked = {}
    for name, options in views.items():
        if name not in VIEWS:
            raise EmotuneError(f"{file}: unknown view '{name}' (known: {', '.join(VIEWS)})")
        try:
            inspect.signature(VIEWS[name]).bind(file, str(file), **(options or {}))
        except TypeError as err:
            raise EmotuneError(f"{file}: view '{name}': {err}") from None
        checked[name] = dict(options or {})
    return checked


def write_views(views: dict[str, dict[str, Any]], out: Path, source: str) -> None:
    """Writes every view of a matrix from the cells under ``out``."""
    for name, options in views.items():
        VIEWS[name](out, source, **options)
