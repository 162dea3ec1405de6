"""The command line: one module per console command of ``pyproject.toml`` (``[project.scripts]``), each with
``main(argv=None) -> int`` (the exit status) and runnable as ``python -m experiments.cli.<module>``.

=========================  ===========================================  ======================================
command                    module                                       job
=========================  ===========================================  ======================================
``mm-train-tmaze``         :mod:`experiments.cli.train_tmaze`           train DRQN on the T-Maze
``mm-evaluate-tmaze``      :mod:`experiments.cli.evaluate_tmaze`        evaluate saved models on any length
``mm-train-supervised``    :mod:`experiments.cli.train_supervised`      train on a supervised benchmark
``mm-evaluate-supervised`` :mod:`experiments.cli.evaluate_supervised`   copy first input at longer horizons
``mm-reproduce``           :mod:`experiments.cli.reproduce`             a paper figure's grid of runs
``mm-plot-runs``           :mod:`experiments.cli.plot_runs`             curves of runs, mean ± std over seeds
``mm-stats``               :mod:`experiments.cli.stats`                 statistics of the committed results
=========================  ===========================================  ======================================

The training and evaluation modules also have ``run(argv=None)``, which returns the result (what the tests
read). Nothing in ``experiments`` outside this package imports it; ``scripts/`` holds one shim per command
for a checkout.
"""
