"""What is specific to an experiment, on top of the library (``recurrent_q``), the environment
(``tmaze_gym``) and the supervised benchmarks (``supervised``): the paper's grids at three scales
(:mod:`experiments.presets`), the registry of experiments (:mod:`experiments.registry`) and the resumable
grid engine (:mod:`experiments.grid`) behind ``mm-reproduce``, with its run folders
(:mod:`experiments.run_dirs`) and results (:mod:`experiments.results`); the T-Maze runner
(:mod:`experiments.tmaze`) and evaluation (:mod:`experiments.evaluation`); and the evaluation of trained
networks at longer horizons than they were trained on (:mod:`experiments.horizon`, temporal horizon
generalisation); the statistics of few-seed results, by rliable (:mod:`experiments.statistics`), and
those of the committed results (:mod:`experiments.statistics_report`). On top, the console commands
(:mod:`experiments.cli`).
"""
