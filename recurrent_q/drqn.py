"""Deep recurrent Q-learning (DRQN) with optional warmup: Algorithm 4 (Appendix C) as an SB3 algorithm."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv
from tqdm.auto import tqdm

# LOSSES, N_STEP_CORRECTIONS: the allowed values of DRQN's ``loss`` and ``n_step_correction``
from recurrent_q.arguments import LOSSES as LOSSES
from recurrent_q.arguments import N_STEP_CORRECTIONS as N_STEP_CORRECTIONS
from recurrent_q.arguments import check_arguments, check_learn_arguments, complete_policy_kwargs
from recurrent_q.buffers import EpisodeBatch, EpisodeReplayBuffer
from recurrent_q.collection import EpisodesInProgress, start_episodes
from recurrent_q.learning import (
    dump_logs,
    episode_progress_remaining,
    open_bar,
    run_stages,
    warm_up,
    with_vaa_monitor,
)
from recurrent_q.multistability import WarmupConfig
from recurrent_q.policies import DRQNPolicy, check_spaces
from recurrent_q.saving import DRQNSaving, SelfDRQN
from recurrent_q.updates import fixed_point_term as fixed_point_term
from recurrent_q.updates import n_step_returns, refresh_target_values, train_steps, update_target


class DRQN(DRQNSaving, BaseAlgorithm):
    """Deep Recurrent Q-Network (Hausknecht & Stone, 2015) as in Lambrechts et al. (2023), Algorithm 4.

    Paper: Lambrechts, De Geeter, Vecoven, Ernst, Drion, *Warming up recurrent neural networks to maximise
    reachable multistability greatly improves learning*, Neural Networks 166 (2023), 645-669, Appendix C.

    The replay buffer is first filled with ``buffer_size`` transitions of the exploration policy ℰ
    (``env.unwrapped.exploration_probs`` if the env has it, else uniform), and at least
    ``learning_starts`` env steps are taken with ℰ; the Q-network may then be warmed up on the
    histories in the buffer (§6.1); then each training episode ``e`` is an ε-greedy rollout followed by
    ``gradient_steps`` steps on batches of ``batch_size`` transitions, and the target network is copied
    when ``e % target_update_interval == 0``. ``learn`` counts env steps (fill included), as SB3 does;
    ``max_episodes`` also bounds the number of training episodes.

    With ``n_envs > 1`` envs, every env plays its own episodes at once; each episode that ends is
    stored in the buffer and counts as one training episode, followed by its ``gradient_steps``.

    Continuing a run (a second ``learn``, or after ``load``): the buffer is filled with ℰ only while it
    holds fewer than ``buffer_size`` transitions (so after ``load`` without ``load_replay_buffer`` it
    is filled again, which changes no weight); the warmup runs once per model, before its first
    training episode, never again on trained weights (``warmup_timestep`` is saved with the model).
    ``save`` and ``load`` are SB3's; ``load``'s errors, ``save_replay_buffer`` and ``load_replay_buffer``
    are those of :class:`recurrent_q.saving.DRQNSaving`.

    Logged: ``rollout/ep_rew_mean``, ``rollout/success_rate`` (``info["is_success"]``),
    ``rollout/exploration_rate``, ``train/loss``, ``train/learning_rate``, ``train/vaa`` and
    ``train/vaa_measure`` (from the :class:`recurrent_q.callbacks.VAAMonitorCallback` that ``learn`` adds
    when ``vaa_interval`` or ``vaa_measure_interval`` is not 0), ``warmup/*`` (on the TensorBoard step
    axis of the run: warmup step ``s`` at ``warmup_timestep + s``); the T-Maze's ``eval/optimal`` and
    ``eval/first_optimal_episode`` come from ``experiments.tmaze.TMazeOptimalCallback``.

    :param policy: the policy class or alias (``"RecurrentQPolicy"``, a :class:`DRQNPolicy`).
    :param env: the environment (discrete actions; ``Discrete``, ``MultiDiscrete``, ``MultiBinary``, ``Box``
        or image observations, or a ``Dict`` or ``Tuple`` of these: see ``recurrent_q.observations``), or
        its id; a VecEnv of several envs is stepped at once.
    :param learning_rate: Adam learning rate α, or a schedule of the remaining progress (SB3's
        ``progress_remaining``, 1 at the start of ``learn`` and 0 at ``total_timesteps``; with
        ``learn(max_episodes=E)``, 0 after ``E`` training episodes if that comes first).
    :param buffer_size: replay capacity ``N`` in transitions (FIFO).
    :param learning_starts: env steps taken with ℰ, without training, before the first training
        episode (SB3's ``learning_starts``, counted on ``num_timesteps``); the buffer fill already takes
        ``buffer_size`` such steps, so it only matters when larger. Not the warmup.
    :param batch_size: ``B`` transitions per gradient step.
    :param gamma: discount factor γ.
    :param gradient_steps: ``I`` gradient steps after each episode.
    :param target_update_interval: ``C``: the target network is updated every ``C`` episodes.
    :param tau: the update: 1 copies θ into θ' (Algorithm 4); below 1, θ' ← τ θ + (1 − τ) θ' (a soft,
        Polyak update, as SB3's DQN ``tau``).
    :param average_tau: None: the online network θ chooses every action. A number in (0, 1]: the policy
        also keeps θ̄ (``policy.q_net_average``), a Polyak average of θ updated after every gradient step,
        θ̄ ← average_tau θ + (1 − average_tau) θ̄ (an exponential moving average over about
        ``1 / average_tau`` steps), and θ̄ chooses the actions of ``predict`` and greedy evaluation, and
        of ε-greedy collection unless ``average_collects`` is False. θ alone is trained and copied into
        the target θ'. Averaging removes the step-to-step noise of the Q-values that flips a greedy
        policy whose action margins are small.
    :param average_collects: with ``average_tau``: True, θ̄ also chooses the ε-greedy actions of collection;
        False, θ collects (so the actions the n-step returns' Watkins cut judges come from the network
        that the target θ' copies) and θ̄ gives ``predict`` and greedy evaluation only.
    :param fixed_point_coef: λ ≥ 0 of a fixed-point term added to the TD loss (an extension; the paper's
        §7 leaves multistability during training to future work): ``λ · mean ‖o_t − o_{t−1}‖²`` over the steps
        of the sampled episodes whose input repeats the previous one (``x_t = x_{t−1}``), ``o`` the top
        layer's outputs. Under a repeated input ``o_t − o_{t−1}`` is how far the state is from a fixed point
        of that input: the term draws the memory towards fixed points of the inputs the task holds (for
        the T-Maze, the corridor's). On the T-Maze at L = 20 (λ = 0.1 to 10) it lowered the step-to-step
        change but did not make the policy optimal at longer corridors (``results/README.md``). 0: off.
    :param hold_coef: λ_h ≥ 0 of a hold term added to the TD loss (an extension, for horizon
        generalisation): where a sampled episode holds an input and then changes it (``hold_ends``; the
        T-Maze's corridor, then its junction), the same history with the input held up to ``hold_steps``
        steps longer should give the same Q-values at the next input (``recurrent_q.updates.hold_term``;
        squared difference to the history's own Q-values, held fixed). A state that has reached an
        attractor of the held input satisfies it for every hold. 0: off.
    :param hold_steps: the longest extra hold of the hold term (drawn log-uniformly up to it).
    :param hold_advantages: the hold term also keeps the held input's advantages ``Q − max_a Q`` at the
        hold's end (the order of the actions along the corridor, not its values, which fall with the
        distance to the junction).
    :param hold_ends: where a hold ends: ``"input"``, wherever the input changes (its observation,
        previous action or previous reward); ``"observation"``, only where the observation changes. On the
        T-Maze the first also ends holds at the corridor's exploratory actions, after which the Q-values
        depend on the position, so that the term there asks for what the TD loss does not; the second ends
        them at the junction only.
    :param hold_drift_coef: λ_d ≥ 0: the hold term also asks the held state to stop, λ_d times the
        distance its top layer's output moves over the hold's last back-propagated steps (0: off).
    :param exploration_fraction: fraction of ``total_timesteps`` (or of ``max_episodes``, whichever
        bound is nearer) over which ε goes linearly from ``exploration_initial_eps`` to
        ``exploration_final_eps`` (SB3's DQN schedule).
    :param exploration_initial_eps: ε of the ε-greedy policy at the start (exploration actions are
        drawn from ℰ); 0.2, as ``exploration_final_eps``: the paper's constant ε.
    :param exploration_final_eps: ε at the end of the schedule.
    :param train_mode: ``"histories"`` (default, Algorithm 4): each sampled transition is trained on
        its whole history, the loss on its last step only; ``"sequences"`` (R2D2 / Memory-RL style):
        the loss covers every step of the episodes that hold the sampled transitions (more targets
        per gradient step for the same sequence passes). Both run each sampled episode once.
    :param history_window: truncated histories (an option for long episodes; not the paper's): each
        sampled transition ``t`` is trained on the last ``history_window`` steps of its history only, run
        from the online network's state before them as stored in the buffer (R2D2's stored state,
        Kapturowski et al., 2019), one row per sampled transition. The stored states are recomputed for
        the whole buffer at every copy of the target network and for each new episode, so they lag the
        online network by up to ``target_update_interval`` episodes. No gradient reaches the steps before
        the window: a window shorter than the task's memory span cuts the path from a decision back to
        the cue (on the T-Maze, W = 40 at L = 100 learns far less often: ``docs/drqn-parity.md``, round 22).
        None (default): the whole history, Algorithm 4's.
    :param burn_in: with ``history_window`` and ``train_mode="sequences"``, the first ``burn_in`` steps of a
        window that starts inside its episode carry no loss (R2D2's burn-in: they refresh the stale stored
        state); 0: every step of the window is trained.
    :param loss: ``"squared"`` (Algorithm 4) or ``"huber"`` (smooth L1, SB3's DQN).
    :param double_q: bootstrap with ``Q_θ'(η', argmax_a Q_θ(η', a))`` (double Q-learning) instead of
        ``max_a Q_θ'(η', a)``; it runs the target network at every gradient step.
    :param advantage_learning: α ∈ [0, 1) of advantage learning (Bellemare et al., 2016, "Increasing the
        action gap"): the target of ``(η_{0:t}, a_t)`` loses ``α (max_a Q_θ'(η_{0:t}, a) −
        Q_θ'(η_{0:t}, a_t))``, nothing for a greedy action. The greedy policy and its values are those of
        Q-learning, and every action gap grows by ``1 / (1 − α)``, so that errors of the Q-values smaller
        than the widened gaps no longer flip the greedy action. 0: off (Q-learning).
    :param max_grad_norm: clip the gradient norm of each step to this value (None: no clipping).
    :param n_steps: ``n`` of n-step returns (1: Algorithm 4's one-step target).
    :param n_step_correction: how n-step returns treat the actions of the ε-greedy behaviour.
        ``"none"``: uncorrected (R2D2's): every one of the ``n`` rewards is summed, so an exploratory
        action inside the window enters the target of the greedy policy. ``"watkins"``: Watkins's cut
        (Watkins's Q(λ) with λ = 1, truncated at ``n``; Sutton & Barto, 2018, §12.10): the return of step
        ``t`` stops at the first later action ``a_{t+i}`` that is not greedy for the target network,
        ``a_{t+i} ∉ argmax_a Q_θ'(η_{0:t+i}, a)``, and bootstraps there, so that every target is a return of
        the greedy policy (off-policy correct) while greedy stretches carry the reward back ``n`` steps
        per target update.
    :param use_warmup: run the warmup (Algorithm 3, :func:`recurrent_q.multistability.warmup`) on the
        Q-network's cell stack, on the buffer's histories, before training (lines 3-5 of Algorithm 4).
    :param warmup_config: the warmup's settings (None: the default :class:`WarmupConfig`); only with
        ``use_warmup=True``.
    :param vaa_interval: log ``train/vaa`` (``vaa_steps`` iterations) every this many episodes (0: never).
    :param vaa_steps: ``M`` of the cheap VAA estimate.
    :param vaa_measure_interval: log ``train/vaa_measure`` (``vaa_measure_steps``) every this many episodes.
    :param vaa_measure_steps: ``M`` of the full VAA measure (the paper's 10 000).
    :param vaa_batch_size: histories per VAA batch ``|X|`` (its floor is ``1 / vaa_batch_size``). The five
        ``vaa_*`` settings are those of the :class:`recurrent_q.callbacks.VAAMonitorCallback` that ``learn``
        adds to its callbacks (none when both intervals are 0).
    :param stats_window_size: episodes averaged in ``rollout/*``.
    :param tensorboard_log: TensorBoard log directory (None: no logging).
    :param policy_kwargs: arguments of :class:`DRQNPolicy` (``cell``, ``hidden_size``, ``num_layers``,
        ``double``, ``t_max``, ``use_previous_reward``, ``init``, ``net_arch``, ``activation_fn``,
        ``exploration_probs``, ``optimizer_class``, ``optimizer_kwargs``).
    :param verbose: 0 silent, 1 info.
    :param seed: seed of python, numpy, torch, the env and the exploration draws.
    :param device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    :param _init_setup_model: build the networks now (False when loading).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"RecurrentQPolicy": DRQNPolicy}
    policy: DRQNPolicy
    replay_buffer: EpisodeReplayBuffer
    exploration_schedule: Schedule

    def __init__(
        self,
        policy: str | type[DRQNPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 8192,
        learning_starts: int = 0,
        batch_size: int = 32,
        gamma: float = 0.98,
        gradient_steps: int = 10,
        target_update_interval: int = 20,
        tau: float = 1.0,
        average_tau: float | None = None,
        average_collects: bool = True,
        fixed_point_coef: float = 0.0,
        hold_coef: float = 0.0,
        hold_steps: int = 1000,
        hold_advantages: bool = False,
        hold_ends: str = "input",
        hold_drift_coef: float = 0.0,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 0.2,
        exploration_final_eps: float = 0.2,
        train_mode: str = "histories",
        history_window: int | None = None,
        burn_in: int = 0,
        loss: str = "squared",
        double_q: bool = False,
        advantage_learning: float = 0.0,
        max_grad_norm: float | None = None,
        n_steps: int = 1,
        n_step_correction: str = "none",
        use_warmup: bool = False,
        warmup_config: WarmupConfig | None = None,
        vaa_interval: int = 20,
        vaa_steps: int = 200,
        vaa_measure_interval: int = 200,
        vaa_measure_steps: int = 10_000,
        vaa_batch_size: int = 200,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
        )
        self.buffer_size = buffer_size
        self.learning_starts = learning_starts
        self.batch_size = batch_size
        self.gamma = gamma
        self.gradient_steps = gradient_steps
        self.target_update_interval = target_update_interval
        self.tau = tau
        self.average_tau = average_tau
        self.average_collects = average_collects
        self.fixed_point_coef = fixed_point_coef
        self.hold_coef = hold_coef
        self.hold_steps = hold_steps
        self.hold_advantages = hold_advantages
        self.hold_ends = hold_ends
        self.hold_drift_coef = hold_drift_coef
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.exploration_rate = exploration_initial_eps  # ε now (SB3's DQN attribute), from the schedule
        self.train_mode = train_mode
        self.history_window = history_window
        self.burn_in = burn_in
        self.loss = loss
        self.double_q = double_q
        self.advantage_learning = advantage_learning
        self.max_grad_norm = max_grad_norm
        self.n_steps = n_steps
        self.n_step_correction = n_step_correction
        self.use_warmup = use_warmup
        self.warmup_config = warmup_config
        self.vaa_interval = vaa_interval
        self.vaa_steps = vaa_steps
        self.vaa_measure_interval = vaa_measure_interval
        self.vaa_measure_steps = vaa_measure_steps
        self.vaa_batch_size = vaa_batch_size
        self.num_train_episodes = 0  # e of Algorithm 4: training episodes so far (the fill excluded)
        self.num_fill_episodes = 0
        self.warmup_result = None
        self.warmup_timestep: int | None = None  # num_timesteps when the warmup ran (None: not yet)
        self._episodes_in_progress: EpisodesInProgress | None = None
        self._episode_budget: tuple[int, int] | None = None  # (first episode, max_episodes) of this learn
        self._progress_bar = False
        self._bar: tqdm | None = None
        check_arguments(self)
        if self.env is not None:
            check_spaces(self.observation_space, self.action_space)
            complete_policy_kwargs(self)
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """SB3's wrapping, once the spaces are checked (SB3's VecEnv fails obscurely on a Text space)."""
        check_spaces(env.observation_space, env.action_space)
        return BaseAlgorithm._wrap_env(env, verbose, monitor_wrapper)

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.replay_buffer = EpisodeReplayBuffer(self.buffer_size, self.observation_space, self.device)
        self.policy = self.policy_class(
            self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs
        ).to(self.device)
        self.policy.rng = np.random.default_rng(self.seed)
        self.q_net = self.policy.q_net
        self.q_net_target = self.policy.q_net_target
        self._vaa_generator = th.Generator().manual_seed(self._seed_or_zero())
        self.exploration_schedule = LinearSchedule(
            self.exploration_initial_eps, self.exploration_final_eps, self.exploration_fraction
        )
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)
        self.policy.exploration_rate = self.exploration_rate

    def _seed_or_zero(self) -> int:
        return 0 if self.seed is None else int(self.seed)

    def train(self, gradient_steps: int, batch_size: int) -> None:
        """``gradient_steps`` steps of Algorithm 4 (lines 22-27) on batches of ``batch_size`` transitions."""
        train_steps(self, gradient_steps, batch_size)

    def _returns(self, batch: EpisodeBatch, next_q: th.Tensor) -> th.Tensor:
        """TD targets ``[U, T]``: one-step or ``n``-step returns (``recurrent_q.updates.n_step_returns``)."""
        return n_step_returns(batch, next_q, self.gamma, self.n_steps, self.n_step_correction)

    def learn(
        self: SelfDRQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 20,
        tb_log_name: str = "DRQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        max_episodes: int | None = None,
    ) -> SelfDRQN:
        """Fill the buffer (if not full), warm up (once, if asked), then train until ``total_timesteps``.

        :param total_timesteps: env steps to run, the buffer fill included (a lower bound: the last
            episode is completed).
        :param callback: SB3 callback(s), called at every env step (``on_step``) and around every
            training episode (``on_rollout_start`` / ``on_rollout_end``); those with an
            ``on_episode_trained()`` method (:class:`recurrent_q.callbacks.VAAMonitorCallback`) also after
            the gradient steps of each training episode, and once before the first, after the buffer fill
            and the warmup. The VAA monitoring of the ``vaa_*`` settings is added after them.
        :param log_interval: dump the logs every this many training episodes.
        :param tb_log_name: name of the TensorBoard run.
        :param reset_num_timesteps: reset the step counter (SB3 semantics). Either way, envs in the
            middle of an episode (a previous ``learn`` stopped) are reset first.
        :param progress_bar: tqdm bars (``rich`` is not needed) for each stage: ``buffer fill`` (env
            steps), ``warmup`` (its gradient steps) and ``training`` (training episodes if
            ``max_episodes`` is given, else env steps).
        :param max_episodes: stop after this many training episodes in this call (None: no bound). The
            schedules (learning rate, ε) then reach their end after ``max_episodes`` episodes, or at
            ``total_timesteps`` if that comes first.
        """
        check_learn_arguments(total_timesteps, max_episodes)
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        self._progress_bar = progress_bar
        self._episode_budget = None if max_episodes is None else (self.num_train_episodes, max_episodes)
        self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
        self._update_exploration_rate()
        self._episodes_in_progress = start_episodes(self)
        callback.on_training_start(locals(), globals())
        try:
            run_stages(self, callback, total_timesteps, log_interval, max_episodes)  # fill, warmup, training
        finally:
            self._open_bar(None)
        callback.on_training_end()
        return self

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        """SB3's progress over env steps, or over the training episodes of ``learn(max_episodes=...)`` if
        that is further along (the fill does not count: the schedules start with training)."""
        super()._update_current_progress_remaining(num_timesteps, total_timesteps)
        self._current_progress_remaining = episode_progress_remaining(self)

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        """SB3's callback setup, with the VAA monitoring of the ``vaa_*`` settings after the given callbacks,
        and without SB3's progress bar (which needs ``rich``): ``learn`` shows its own."""
        return super()._init_callback(with_vaa_monitor(self, callback), progress_bar=False)

    def _open_bar(self, desc: str | None, total: int = 0, unit: str = "step") -> None:
        """Close the progress bar of the previous stage and, with ``progress_bar``, open one for ``desc``."""
        open_bar(self, desc, total, unit)

    def _update_exploration_rate(self) -> None:
        """ε from the schedule at the current progress (as SB3's DQN), for acting and ``predict``."""
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)
        self.policy.exploration_rate = self.exploration_rate
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def _update_target(self) -> None:
        """θ' ← θ (lines 7-8 of Algorithm 4), or θ' ← τ θ + (1 − τ) θ' with ``tau < 1`` (SB3's Polyak)."""
        update_target(self)

    def refresh_target_values(self, slots: list[int] | None = None, chunk: int = 256) -> None:
        """Store ``max_a Q_θ'(η_{0:k+1}, a)`` of every transition of the buffer (or of episodes ``slots``),
        whether its action is greedy for θ' (``EpisodeBatch.greedy``) and its action gap
        (``EpisodeBatch.gaps``).

        The target network θ' only changes when it is copied, so these bootstrap values are computed
        once per copy for the whole buffer, and once for each new episode, rather than at every gradient
        step (``learn`` refreshes them at every copy, ``train`` those of new episodes). Call it after
        changing ``q_net_target`` by hand.
        """
        refresh_target_values(self, slots, chunk)

    def replay_histories(self) -> tuple[th.Tensor, th.Tensor]:
        """Inputs ``[N, T + 1, F]`` of every episode in the buffer, and their lengths (in inputs)."""
        episodes: EpisodeBatch = self.replay_buffer.all_episodes()
        x = self.q_net.episode_features(episodes.observations, episodes.actions, episodes.rewards)
        return x, episodes.lengths + 1

    def _warm_up(self) -> None:
        """Lines 3-5: warm up the cell stack on the buffer's histories (``recurrent_q.learning.warm_up``)."""
        warm_up(self)

    def dump_logs(self) -> None:
        """Write the ``rollout/``, ``time/`` and pending ``train/`` and ``eval/`` records."""
        dump_logs(self)
