"""``python -m emotune.cli``: the ``emotune`` command (for ``accelerate launch -m`` and ``torchrun -m``)."""

import sys

from emotune.cli import main

sys.exit(main())
