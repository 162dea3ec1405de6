"""``mm-stats`` from a checkout; the command is ``experiments/cli/stats.py``."""

import sys

from experiments.cli.stats import main

if __name__ == "__main__":
    sys.exit(main())
