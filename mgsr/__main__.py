"""``python -m mgsr ...`` runs the command line, like the ``mgsr`` script."""

import sys

from mgsr.cli import main

sys.exit(main())
