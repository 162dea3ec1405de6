"""``mm-evaluate-supervised`` from a checkout; the command is ``experiments/cli/evaluate_supervised.py``."""

import sys

from experiments.cli.evaluate_supervised import main

if __name__ == "__main__":
    sys.exit(main())
