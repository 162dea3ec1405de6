"""What is specific to an experiment, on top of the library (``recurrent_q``), the environment
(``tmaze_gym``) and the supervised benchmarks (``supervised``): the paper's grids at three scales
(:mod:`experiments.presets`) and the resumable grid runner (:mod:`experiments.grid`) behind
``scripts/reproduce.py``, and the evaluation of trained networks at longer horizons than they were
trained on (:mod:`experiments.horizon`, temporal horizon generalisation).
"""
