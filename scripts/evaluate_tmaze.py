"""``mm-evaluate-tmaze`` from a checkout; the command is ``experiments/cli/evaluate_tmaze.py``."""

import sys

from experiments.cli.evaluate_tmaze import main

if __name__ == "__main__":
    sys.exit(main())
