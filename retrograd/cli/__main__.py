"""``python -m retrograd.cli``: the ``retrograd`` command."""

import sys

from retrograd.cli import main

sys.exit(main())
