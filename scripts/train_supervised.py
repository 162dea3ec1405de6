"""``mm-train-supervised`` from a checkout; the command is ``experiments/cli/train_supervised.py``."""

import sys

from experiments.cli.train_supervised import main

if __name__ == "__main__":
    sys.exit(main())
