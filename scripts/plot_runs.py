"""``mm-plot-runs`` from a checkout; the command is ``experiments/cli/plot_runs.py``."""

import sys

from experiments.cli.plot_runs import main

if __name__ == "__main__":
    sys.exit(main())
