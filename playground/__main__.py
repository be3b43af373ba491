"""``python -m playground``: the command line (playground/cli.py)."""

import sys

from .cli import main

sys.exit(main())
