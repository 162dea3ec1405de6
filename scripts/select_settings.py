"""``mm-select`` from a checkout; the command is ``experiments.cli.select_settings.py``."""

import sys

from experiments.cli.select_settings import main

if __name__ == "__main__":
    sys.exit(main())
