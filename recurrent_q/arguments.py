"""DRQN's arguments: the checks of its settings (``DRQN.__init__``) and of ``learn``'s bounds, and the policy
settings it completes from the env.

``recurrent_q.drqn.DRQN`` calls these functions with itself; they read its attributes, which hold its
constructor's arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recurrent_q.buffers import TRAIN_MODES
from recurrent_q.checks import SettingError, check_choice, check_flag, check_integer, check_number
from recurrent_q.multistability import WarmupConfig
from recurrent_q.policies import exploration_probs

if TYPE_CHECKING:
    from recurrent_q.drqn import DRQN

LOSSES = ("squared", "huber")
N_STEP_CORRECTIONS = ("none", "watkins")
HOLD_ENDS = ("input", "observation")
"""Where the hold term's holds end (``DRQN(hold_ends=...)``, ``recurrent_q.updates.hold_term``)."""


def check_arguments(model: DRQN) -> None:
    """A :class:`~recurrent_q.checks.SettingError` naming the first setting of ``model`` out of its range."""
    for name in ("buffer_size", "batch_size", "target_update_interval", "n_steps"):
        check_integer(name, getattr(model, name))
    for name in ("learning_starts", "gradient_steps", "vaa_interval", "vaa_measure_interval"):
        check_integer(name, getattr(model, name), 0)
    if model.batch_size > model.buffer_size:
        raise SettingError(
            f"batch_size ({model.batch_size}) must not exceed buffer_size ({model.buffer_size}) transitions"
        )
    check_choice("train_mode", model.train_mode, TRAIN_MODES)
    check_integer("history_window", model.history_window, optional=True)
    check_integer("burn_in", model.burn_in, 0)
    if model.history_window is None:
        if model.burn_in:
            raise SettingError(f"burn_in ({model.burn_in}) needs truncated histories: pass history_window")
    else:
        if model.burn_in and model.train_mode != "sequences":
            raise SettingError(
                "burn_in needs train_mode='sequences' (with 'histories' only the window's last step is "
                f"trained); got train_mode={model.train_mode!r}"
            )
        if model.burn_in >= model.history_window:
            raise SettingError(
                f"burn_in ({model.burn_in}) must be smaller than history_window ({model.history_window})"
            )
        for name in ("double_q", "hold_coef"):
            if getattr(model, name):
                raise SettingError(
                    f"{name} is not available with truncated histories (history_window="
                    f"{model.history_window}): it runs the whole histories"
                )
    for name in ("exploration_initial_eps", "exploration_final_eps"):
        check_number(name, getattr(model, name), 0, 1)
    check_number("exploration_fraction", model.exploration_fraction, 0, 1, open_low=True)
    check_number("tau", model.tau, 0, 1, open_low=True)
    check_number("average_tau", model.average_tau, 0, 1, open_low=True, optional=True)
    for name in ("fixed_point_coef", "hold_coef", "hold_drift_coef"):
        coef = getattr(model, name)
        if (
            isinstance(coef, bool)
            or not isinstance(coef, (int, float))
            or not coef >= 0.0
            or coef == float("inf")
        ):
            raise SettingError(f"{name} must be a finite number >= 0; got {coef!r}")
    check_integer("hold_steps", model.hold_steps)
    check_choice("hold_ends", model.hold_ends, HOLD_ENDS)
    check_number("gamma", model.gamma, 0, 1)
    check_choice("loss", model.loss, LOSSES)
    check_choice("n_step_correction", model.n_step_correction, N_STEP_CORRECTIONS)
    check_number("advantage_learning", model.advantage_learning, 0, 1, open_high=True)
    check_number("max_grad_norm", model.max_grad_norm, 0, open_low=True, optional=True)
    for name in ("average_collects", "use_warmup", "hold_advantages"):
        check_flag(name, getattr(model, name))
    if model.warmup_config is not None:
        if not isinstance(model.warmup_config, WarmupConfig):
            raise SettingError(f"warmup_config must be None or a WarmupConfig; got {model.warmup_config!r}")
        if not model.use_warmup:
            raise SettingError("warmup_config is given but use_warmup is False (pass use_warmup=True)")


def check_learn_arguments(total_timesteps: Any, max_episodes: Any) -> None:
    """A :class:`~recurrent_q.checks.SettingError` naming ``learn``'s ``max_episodes`` or ``total_timesteps``
    when out of range."""
    check_integer("max_episodes", max_episodes, 0, optional=True)
    if (
        isinstance(total_timesteps, bool)
        or not isinstance(total_timesteps, int | float)
        or not total_timesteps >= 0
    ):
        raise SettingError(f"total_timesteps must be a non-negative number; got {total_timesteps!r}")


def complete_policy_kwargs(model: DRQN) -> None:
    """Take ℰ from the env (``exploration_probs``), chrono's ``t_max`` from its horizon, and whether
    the policy keeps an averaged network (``averaged``) from ``average_tau``."""
    kwargs = model.policy_kwargs = dict(model.policy_kwargs)  # the caller's dict is left unchanged
    if "averaged" in kwargs:
        raise SettingError("policy_kwargs must not hold 'averaged': DRQN sets it from average_tau")
    kwargs["averaged"] = model.average_tau is not None
    if "exploration_probs" not in kwargs:
        kwargs["exploration_probs"] = exploration_probs(model.env)
    if kwargs.get("cell") == "chrono" and kwargs.get("t_max") is None:
        spec = model.env.get_attr("spec")[0]
        if spec is not None and spec.max_episode_steps is not None:
            kwargs["t_max"] = spec.max_episode_steps  # T_max = the horizon (docs/specification.md §3)
