"""``python -m dashapp``: the command line."""

import sys

from dashapp.cli import main

sys.exit(main())
