"""The settings of one T-Maze run (Fig. 13): :class:`TMazeConfig`, one dataclass for the runner
(:func:`experiments.tmaze.run_tmaze_experiment`), the command line ``mm-train-tmaze`` (whose flags are its
fields), the grids of :mod:`experiments.presets` and the benchmarks, with the checks of its values.

Its defaults are those chosen by the ablation of ``docs/drqn-parity.md``: the authors' input (the previous
reward) and initialisation, their warmup batch of 32 and horizon 3L − 1, 20 gradient steps per episode, a
target update every 2 episodes, a check every 5 episodes, and the paper's γ = 0.98 up to L = 137 only
(:func:`experiments.evaluation.default_gamma`), and the loss on every step of the sampled episodes up to
L = 200 only (:func:`default_train_mode`). The ``DRQN`` class itself keeps the paper's values.
:class:`TMazeConfig`, ``TMAZE_VERSIONS`` and ``with_settings`` are also importable from
:mod:`experiments.tmaze`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from recurrent_q.cells import CellInit, CellName
from recurrent_q.checks import check_choice, check_integer, check_number
from recurrent_q.multistability import VERSIONS, HeldInput, Version, WarmupObjective

TMAZE_VERSIONS = VERSIONS
EnvId = Literal["TMaze-v0", "XORTMaze-v0"]
"""The mazes of the runner: the paper's T-Maze and the XOR T-Maze (``tmaze_gym``)."""
ENV_IDS: tuple[EnvId, ...] = get_args(EnvId)
ADDED_FIELDS: dict[str, Any] = {
    "gradient_steps_after_optimal": None,
    "hold_coef_after_optimal": None,
    "history_window": None,
    "burn_in": 0,
    "n_envs": 1,
    "dueling": False,
}
"""Fields added to :class:`TMazeConfig` since grid runs record their ``settings.json``, each with the value
that reproduces what a run made before it existed did. A relaunch reads a field absent from an older
``settings.json`` as this value (``experiments.run_dirs``): a new option whose default keeps the old
behaviour does not make every finished run a changed one. A field added with a default that changes
behaviour is left out, and stays a changed default."""


SEQUENCES_MAX_LENGTH = 200
"""The longest corridor on which the runner trains every step of the sampled episodes by default
(:func:`default_train_mode`)."""


def default_train_mode(length: int) -> Literal["histories", "sequences"]:
    """The T-Maze runner's ``train_mode`` for a corridor of ``length`` (``TMazeConfig.train_mode``'s default).

    ``"sequences"`` (the loss on every live step of the episodes that hold the sampled transitions; round 21
    of docs/drqn-parity.md, chosen at L = 20 to 200 on the tuning seeds) up to :data:`SEQUENCES_MAX_LENGTH`;
    beyond, ``"histories"`` (Algorithm 4's loss on the sampled steps): at L = 500 and 1 000 the whole-episode
    loss needed more episodes on tuning seed 0, at about the same cost per episode (round 24).
    ``experiments.tmaze.resolved_config`` keeps ``"sequences"`` at any length for truncated histories with a
    burn-in.
    """
    check_integer("length", length, 1)
    return "sequences" if length <= SEQUENCES_MAX_LENGTH else "histories"


@dataclass
class TMazeConfig:
    """The settings of one T-Maze run (every field is a flag of ``scripts/train_tmaze.py``)."""

    length: int = 20
    """Corridor length L."""
    env_id: EnvId = "TMaze-v0"
    """The maze: the paper's T-Maze, or the XOR T-Maze (a second cue in the corridor; the rewarded arm is
    the XOR of the two cues)."""
    cue_position: int | None = None
    """XORTMaze-v0 only: the corridor cell of the second cue (None: the middle, L // 2)."""
    cell: CellName = "gru"
    """Recurrent cell of the Q-network (a name of ``recurrent_q.cells.CELL_NAMES``)."""
    version: Version = "warmup"
    """classic (no warmup), warmup (§6.1), double (double layers, first halves warmed up, §6.3) or
    double-classic (double layers, no warmup, Appendix G)."""
    seed: int = 0
    """Seed of python, numpy, torch, the env and the exploration draws."""
    episodes: int = 1000
    """Training episodes at most (after the buffer is filled by the exploration policy)."""
    hidden_size: int = 64
    """Width of each recurrent layer (the paper's §5.3: 256; 32 before round 5 of docs/drqn-parity.md)."""
    num_layers: int = 2
    """Number of recurrent layers."""
    warmup_steps: int | None = None
    """Warmup gradient steps S (None: WarmupConfig's 100)."""
    warmup_batch_size: int | None = 32
    """Warmup batch n (the authors' 32; None: WarmupConfig's 200, the paper's; docs/drqn-parity.md)."""
    warmup_held_input: HeldInput = "gaussian"
    """Input held in the warmup's stabilisation: gaussian (u ~ N(0, 1), the paper's) or data (inputs of the
    buffer's histories, mostly the corridor's observation: the attractors the task's memory uses)."""
    warmup_objective: WarmupObjective = "vaa_star"
    """What the warmup's loss asks of the final states: vaa_star (eq. (9), the paper's) or variance (their
    spread as large as it can be: states held apart on saturated attractors; ``WarmupConfig.objective``)."""
    warmup_max_stabilisation: int | None = None
    """M*, the warmup's largest stabilisation period (None: WarmupConfig's 200)."""
    warmup_c: int | None = None
    """c, the warmup's increment of M per step: M ~ U{1..min(M*, 1 + c s)} (None: WarmupConfig's 10)."""
    warmup_bptt_steps: int | None = None
    """Back-propagate the warmup through the last steps of the stabilisation only (None: all of them)."""
    use_previous_reward: bool = True
    """Feed the previous reward r_{t-1} to the Q-network (the authors' input; docs/drqn-parity.md)."""
    init: CellInit = "xavier"
    """Cell initialisation: xavier (the authors': Xavier input, orthogonal recurrent weights, zero biases)
    or uniform (PyTorch's)."""
    dueling: bool = False
    """A dueling Q head, Q = V + A − mean A (``recurrent_q.q_network.DuelingHead``; off: the paper's linear
    head)."""
    max_episode_steps: int | None = None
    """Horizon H in actions (None: 3L − 1, the authors'; the env's own is the paper's 3L, eq. (D.9))."""
    train_mode: Literal["histories", "sequences"] | None = None
    """sequences (round 21 of docs/drqn-parity.md): the loss on every live step of the episodes that hold the
    sampled transitions; histories: Algorithm 4's, on the sampled steps only (the paper's); None:
    :func:`default_train_mode` of the length (sequences up to L = 200, histories beyond; round 24)."""
    history_window: int | None = None
    """Truncated histories: each sampled transition trained on the last this many steps of its history, from
    the state stored in the buffer (``DRQN(history_window=...)``, R2D2's stored state; an option for long
    corridors, not the paper's). None: whole histories."""
    burn_in: int = 0
    """With history_window and train_mode sequences: the first steps of a window that starts inside its
    episode carry no loss (R2D2's burn-in)."""
    n_envs: int = 1
    """Mazes played at once, acted on by one batched forward of the Q-network (SB3's ``n_envs``; a
    ``DummyVecEnv``); each episode that ends is followed by its gradient steps, as with one maze."""
    loss: Literal["squared", "huber"] = "squared"
    """TD loss: squared (Algorithm 4) or huber."""
    double_q: bool = False
    """Double Q-learning targets (off the paper; docs/drqn-parity.md)."""
    advantage_learning: float = 0.5
    """α ∈ [0, 1) of advantage learning (``DRQN(advantage_learning=...)``: the action gaps grow by
    1 / (1 − α), the greedy policy is Q-learning's; docs/drqn-parity.md, round 15; 0: off, Q-learning)."""
    max_grad_norm: float | None = None
    """Gradient clipping (None: none, as the paper)."""
    n_steps: int = 10
    """n-step TD targets (the paper's Algorithm 4: 1; docs/drqn-parity.md, round 8)."""
    n_step_correction: Literal["none", "watkins"] = "watkins"
    """n-step returns cut at the first action not greedy for the target network (watkins, round 8) or
    uncorrected (none; DRQN's docs)."""
    gamma: float | None = None
    """Discount factor γ (None: :func:`experiments.evaluation.default_gamma` of the length: the paper's 0.98
    up to L = 137, then √((L − 1) / (L + 1)), 0.995 at L = 200). The optimal policy is the same for every
    γ < 1, but the optimal Q-function's smallest corridor margin, 4 γ^(L−1) (1 − γ²) one step into the
    corridor, falls below 0.01 at 0.98 past L = 137 (docs/drqn-parity.md, round 17)."""
    exploration_rate: float = 0.2
    """ε of the ε-greedy policy at the start (the paper's 0.2)."""
    exploration_final_rate: float | None = None
    """ε at the end of its schedule: it goes linearly from exploration_rate to this value over
    exploration_fraction of the episode budget (None: constant exploration_rate, the paper's)."""
    exploration_fraction: float = 0.5
    """Fraction of the training episodes (--episodes) over which ε decays."""
    learning_rate: float = 1e-3
    """Adam learning rate α at the start."""
    learning_rate_final: float | None = 1e-4
    """Adam rate after the last training episode: α is held at learning_rate for the first
    learning_rate_hold_fraction of the episode budget (--episodes), then decays linearly to this value
    (rounds 8 and 9 of docs/drqn-parity.md); None: constant learning_rate, the paper's."""
    learning_rate_hold_fraction: float = 0.5
    """Fraction of the episode budget trained at learning_rate before α starts its linear decay to
    learning_rate_final (round 9; 0: the decay runs over the whole budget, round 8's)."""
    learning_rate_decay_on_optimal: bool = False
    """End the hold at the first check where the greedy policy is optimal, if that comes before
    learning_rate_hold_fraction: the decay starts there and keeps its length. Runs are the same up to
    their first optimal check; after it, the checks (--check-freq) change training. Off by default:
    within the noise of the tuning seeds (docs/drqn-parity.md, round 12)."""
    gradient_steps: int = 20
    """Gradient steps I after each episode (the paper's Algorithm 4: 10; docs/drqn-parity.md)."""
    gradient_steps_after_optimal: int | None = None
    """Gradient steps after each episode from the first optimal check on (a higher replay ratio once the
    task is learned, to make the corridor's values precise without slowing the way to the first optimal
    policy; docs/drqn-parity.md, round 19). Runs are the same up to their first optimal check; None:
    gradient_steps throughout."""
    batch_size: int = 32
    """Transitions B per gradient step."""
    buffer_size: int = 8192
    """Replay capacity N in transitions."""
    target_update_interval: int = 2
    """Episodes C between updates of the target network (the paper's Algorithm 4: 20; docs/drqn-parity.md,
    round 4)."""
    tau: float = 1.0
    """Target update: 1 copies θ into θ' (Algorithm 4); below 1, θ' ← τ θ + (1 − τ) θ' (Polyak, SB3's tau)."""
    average_tau: float | None = 0.02
    """Polyak rate of the averaged network θ̄ whose greedy policy is checked, predicted and saved
    (``DRQN(average_tau=...)``, over about 1 / average_tau gradient steps; docs/drqn-parity.md, round 11;
    None: θ's, the paper's)."""
    average_collects: bool = False
    """With average_tau: the averaged network also chooses the ε-greedy actions of collection (round 6);
    False: θ collects, θ̄ gives the checks and the saved model's greedy policy only (round 11)."""
    fixed_point_coef: float = 0.0
    """λ of the fixed-point term of the loss (``DRQN(fixed_point_coef=...)``: the states under a repeated
    input, such as the corridor's, drawn onto fixed points of it; 0: off)."""
    hold_coef: float = 0.0
    """λ_h of the hold term of the loss (``DRQN(hold_coef=...)``: the Q-values at the junction kept when the
    corridor input is held up to hold_steps steps longer; 0: off)."""
    hold_steps: int = 1000
    """The hold term's longest extra hold (``DRQN(hold_steps=...)``)."""
    hold_advantages: bool = False
    """The hold term also keeps the corridor's advantages Q − max Q at the hold's end
    (``DRQN(hold_advantages=...)``)."""
    hold_ends: str = "input"
    """Where the hold term's holds end: "input" (any change of the input) or "observation" (a change of
    the observation only: the junction, not the corridor's exploratory actions; ``DRQN(hold_ends=...)``)."""
    hold_drift_coef: float = 0.0
    """λ_d: the hold term also asks the held state to stop (``DRQN(hold_drift_coef=...)``; 0: off)."""
    hold_coef_after_optimal: float | None = None
    """λ_h from the first optimal check on (0: the hold term ends there, the Q-learning alone keeps the policy
    the term helped to find); None: hold_coef throughout."""
    check_freq: int = 5
    """Episodes between optimality checks (the authors: 20); the checks do not change training (unless
    learning_rate_decay_on_optimal or a ``*_after_optimal`` setting)."""
    stop_when_optimal: bool = False
    """Stop at the first check where the greedy policy is optimal."""
    give_up_after: int | None = None
    """Stop a run whose greedy policy was optimal at no check up to this training episode (a grid's
    "optimal within N episodes" window: the schedules still run over --episodes; None: never give up)."""
    max_seconds: float | None = None
    """Time budget of training (None: none), on ``clock``."""
    clock: Literal["wall", "process"] = "wall"
    """wall, or process (the CPU time of this process, for loaded machines)."""
    vaa_interval: int = 20
    """Episodes between train/vaa estimates (M = 200; 0: never)."""
    vaa_measure_interval: int = 200
    """Episodes between train/vaa_measure estimates (M = 10 000; 0: never)."""
    logdir: str | None = None
    """TensorBoard run directory, with the settings as a text table (None: no logging)."""
    save_path: str | None = None
    """Model zip to write at the end (None: not saved)."""
    best_model_save_path: str | None = None
    """Folder where the model of the first optimal check is saved as best_model.zip (SB3's EvalCallback
    convention; None: not saved)."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, ..."""
    progress_bar: bool = False
    """A tqdm bar per stage: buffer fill, warmup, training episodes."""

    def __post_init__(self) -> None:
        minimum = {
            "length": 1,
            "episodes": 0,
            "hidden_size": 1,
            "num_layers": 1,
            "check_freq": 1,
            "seed": 0,
            "n_envs": 1,
        }
        for name, low in minimum.items():
            check_integer(name, getattr(self, name), low)
        check_integer("give_up_after", self.give_up_after, 1, optional=True)
        check_integer("gradient_steps_after_optimal", self.gradient_steps_after_optimal, 1, optional=True)
        check_number(
            "hold_coef_after_optimal",
            self.hold_coef_after_optimal,
            0,
            math.inf,
            optional=True,
            open_high=True,
        )
        check_number("gamma", self.gamma, 0, 1, open_low=True, optional=True)
        check_number("advantage_learning", self.advantage_learning, 0, 1, open_high=True)
        check_number("exploration_rate", self.exploration_rate, 0, 1)
        check_number("exploration_final_rate", self.exploration_final_rate, 0, 1, optional=True)
        check_number("exploration_fraction", self.exploration_fraction, 0, 1, open_low=True)
        check_number("learning_rate", self.learning_rate, 0, open_low=True)
        check_number("learning_rate_final", self.learning_rate_final, 0, open_low=True, optional=True)
        check_number("learning_rate_hold_fraction", self.learning_rate_hold_fraction, 0, 1)
        if self.learning_rate_hold_fraction == 1:
            raise ValueError("learning_rate_hold_fraction must be a number in [0, 1); got 1 (no decay left)")
        if self.cue_position is not None and self.env_id != "XORTMaze-v0":
            raise ValueError(f"cue_position is for env_id 'XORTMaze-v0' only; got env_id {self.env_id!r}")
        check_choice("env_id", self.env_id, ENV_IDS)
        check_choice("version", self.version, TMAZE_VERSIONS)


def with_settings(config: TMazeConfig | None, settings: dict[str, Any]) -> TMazeConfig:
    """``config`` with the keyword ``settings`` set (a new :class:`TMazeConfig` if ``config`` is None)."""
    return dataclasses.replace(config, **settings) if config is not None else TMazeConfig(**settings)
