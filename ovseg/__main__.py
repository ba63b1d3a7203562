"""``python -m ovseg``: the same as the ``ovseg`` command."""

import sys

from .cli import main

sys.exit(main())
