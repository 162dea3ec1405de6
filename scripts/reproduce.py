"""``mm-reproduce`` from a checkout; the command is ``experiments/cli/reproduce.py``."""

import sys

from experiments.cli.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
