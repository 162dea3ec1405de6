"""``mm-train-tmaze`` from a checkout; the command is ``experiments/cli/train_tmaze.py``."""

import sys

from experiments.cli.train_tmaze import main

if __name__ == "__main__":
    sys.exit(main())
