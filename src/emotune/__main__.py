"""``python -m emotune``: the same command line as ``emotune`` (where the script is not on PATH)."""

import sys

from emotune.cli import main

sys.exit(main())
