"""DRQN's updates of its networks (Algorithm 4): the gradient steps on the TD loss (lines 22-27), with their
n-step returns, fixed-point and hold terms, the target network's update (lines 7-8), and the bootstrap values
``max_a Q_θ'`` that the replay buffer stores.

``train_steps``, ``update_target`` and ``refresh_target_values`` take the ``recurrent_q.drqn.DRQN`` whose
``train``, ``_update_target`` and ``refresh_target_values`` call them, and read its networks, buffer and
settings; ``fixed_point_term``, ``hold_term`` and ``n_step_returns`` (``DRQN._returns``) take tensors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch as th
from stable_baselines3.common.utils import polyak_update

from recurrent_q.buffers import EpisodeBatch

if TYPE_CHECKING:
    from recurrent_q.drqn import DRQN


def fixed_point_term(x: th.Tensor, outputs: th.Tensor, lengths: th.Tensor) -> th.Tensor:
    """``mean ‖o_t − o_{t−1}‖²`` over the steps ``1 ≤ t < lengths[b]`` whose input repeats the previous one
    (``x[b, t] = x[b, t − 1]``), 0 when there is none: how far the states are from fixed points of the
    inputs held (``DRQN(fixed_point_coef=...)``).

    :param x: inputs ``[B, T, F]``; :param outputs: the top layer's outputs ``[B, T, H]`` on them;
    :param lengths: ``[B]``, the steps of each row that count.
    """
    t = th.arange(1, x.shape[1], device=x.device)
    held = (x[:, 1:] == x[:, :-1]).all(-1) & (
        t.unsqueeze(0) < lengths.to(x.device).unsqueeze(1)
    )  # [B, T - 1]
    if not held.any():
        return outputs.sum() * 0.0
    change = (outputs[:, 1:] - outputs[:, :-1]).pow(2).sum(-1)
    return change[held].mean()


def hold_term(
    q_net: th.nn.Module,
    x: th.Tensor,
    q_values: th.Tensor,
    lengths: th.Tensor,
    rng: np.random.Generator,
    max_steps: int,
    rows: int = 8,
    bptt_steps: int = 50,
    advantages: bool = False,
    drift_coef: float = 0.0,
    observations: th.Tensor | None = None,
) -> th.Tensor:
    """How much the Q-values after a held input change when it is held ``M`` steps longer: the horizon term
    of ``DRQN(hold_coef=...)``, 0 when no sampled episode holds an input.

    A hold ends at a step ``t`` whose input repeats the previous one and differs from the next
    (``x_{t−1} = x_t ≠ x_{t+1}``); with ``observations``, only where the observation itself changes
    (``o_{t+1} ≠ o_t``), not where the input changes through its previous action or reward alone: for the
    T-Maze, the corridor's last cell, then the junction, and not the corridor's exploratory actions, after
    which the Q-values depend on the position (``DRQN(hold_ends="observation")`` passes them). Up to
    ``rows`` of them are drawn from the batch; from each one's state after step ``t``, ``x_t`` is held ``M``
    more steps (``M`` drawn log-uniformly in ``1..max_steps``, gradients through the last ``bptt_steps``
    only), then ``x_{t+1}`` is read. The term is the mean over them of ``‖Q'_{t+1} − Q_{t+1}‖²``, ``Q'``
    after the longer hold and ``Q`` the batch's own Q-values (held fixed). Only the input after the hold is
    compared: the T-Maze's junction values do not depend on the corridor's length, while the corridor's
    own values do (they fall with the distance to the junction), so asking the held input's Q-values to
    stay put would fight the TD loss. With ``advantages``, the held input's advantages ``Q − max_a Q`` at
    the hold's end are compared too (``‖A'_t − A_t‖²`` added): they order the actions, and along the
    T-Maze's corridor they are small and change little with the distance. With ``drift_coef`` λ_d, the
    states' drift at the hold's end is added: λ_d ‖o_M − o_{M−K+1}‖, the top layer's output moved over the
    last ``K = min(M, bptt_steps)`` held steps (a norm, not its square, so that a slow drift still has a
    gradient), which asks the held state itself to stop, not only its readout. A state that has reached
    an attractor of the held input satisfies the term for every hold.

    :param x: inputs ``[B, T, F]``; :param q_values: their Q-values ``[B, T, |A|]``; :param lengths: ``[B]``,
        the steps of each row that count; :param rng: draws the holds and ``M``; :param observations: the
        observations ``[B, T, ...]`` of the inputs' steps (None: a change of the input ends a hold).
    """
    t = th.arange(1, x.shape[1] - 1, device=x.device)
    changed = x
    if observations is not None:
        if observations.shape[:2] != x.shape[:2]:
            raise ValueError(
                f"observations must have the steps of x {tuple(x.shape[:2])}; got {tuple(observations.shape)}"
            )
        changed = observations.reshape(x.shape[0], x.shape[1], -1).to(x.device)
    same = (x[:, 1:-1] == x[:, :-2]).all(-1) & (changed[:, 2:] != changed[:, 1:-1]).any(-1)
    ends = (same & (t + 1 < lengths.to(x.device).unsqueeze(1))).nonzero()  # (b, t - 1)
    if not len(ends):
        return q_values.sum() * 0.0
    picks = th.as_tensor(rng.choice(len(ends), size=min(rows, len(ends)), replace=False), device=x.device)
    b, t = ends[picks, 0], ends[picks, 1] + 1
    hold = int(np.exp(rng.uniform(0.0, np.log(max_steps + 1.0))))
    hold = min(max(hold, 1), max_steps)
    held = x[b, t].unsqueeze(1)  # [K, 1, F]
    with th.no_grad():
        state = q_net.rnn.states_at(x[b], t + 1)
        if hold > bptt_steps:
            _, state = q_net.rnn(held.expand(-1, hold - bptt_steps, -1), state)
    outputs, state = q_net.rnn(held.expand(-1, min(hold, bptt_steps), -1), state)
    q_held = q_net.head(outputs)
    q_next, _ = q_net.step(x[b, t + 1], state)
    term = (q_next - q_values[b, t + 1].detach()).pow(2).sum(-1)
    if advantages:
        q_end, q_t = q_held[:, -1], q_values[b, t].detach()
        a_end = q_end - q_end.max(-1, keepdim=True).values
        term = term + (a_end - (q_t - q_t.max(-1, keepdim=True).values)).pow(2).sum(-1)
    if drift_coef and outputs.shape[1] > 1:
        term = term + drift_coef * (outputs[:, -1] - outputs[:, 0]).norm(dim=-1)
    return term.mean()


def observation_steps(observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
    """``o_0 … o_{T−1}`` of a batch's raw observations ``[B, T + 1, ...]`` (a ``Dict`` space's keys side by
    side) as ``[B, T, D]``: what :func:`hold_term` compares to find where an observation changes."""
    parts = observations.values() if isinstance(observations, dict) else [observations]
    return th.cat([p[:, :-1].reshape(p.shape[0], p.shape[1] - 1, -1).double() for p in parts], -1)


def train_steps(model: DRQN, gradient_steps: int, batch_size: int) -> None:
    """``gradient_steps`` steps of Algorithm 4 (lines 22-27) on batches of ``batch_size`` transitions:
    ``DRQN.train``."""
    model.policy.set_training_mode(True)
    model._update_learning_rate(model.policy.optimizer)
    if model.replay_buffer.missing_next_values:  # episodes added since θ' was last copied
        model.refresh_target_values(sorted(model.replay_buffer.missing_next_values))
    losses = []
    for _ in range(gradient_steps):
        # Sample B transitions; each episode holding one is run once, `weights` mark the trained steps
        batch = model.replay_buffer.sample(
            batch_size,
            model.policy.rng,
            model.train_mode,
            model.n_steps,
            window=model.history_window,
            burn_in=model.burn_in,
        )
        x = model.q_net.episode_features(  # [U, T + 1, F]
            batch.observations, batch.actions, batch.rewards, batch.previous_actions, batch.previous_rewards
        )
        trained = batch.weights > 0
        # max_a Q_θ'(η_{0:t+1}, a), stored in the buffer since θ' was last copied (refresh_target_values)
        next_q = batch.next_values
        if model.double_q:  # Q_θ'(η', argmax_a Q_θ(η', a)) (van Hasselt et al., 2016)
            with th.no_grad():
                full = th.full_like(batch.lengths, x.shape[1])
                best = model.q_net.q_values(x, full)[:, 1:].argmax(-1, keepdim=True)
                next_q = model.q_net_target.q_values(x, full)[:, 1:].gather(-1, best).squeeze(-1)
        if th.isnan(next_q[trained]).any():
            raise RuntimeError("DRQN: a sampled transition has no target value; call refresh_target_values()")
        # y = r + γ max_a Q_θ'(η', a), without bootstrap when o_{t+1} is terminal (line 25)
        target = model._returns(batch, next_q)
        if model.advantage_learning:  # y − α (max_a Q_θ'(η, a) − Q_θ'(η, a_t)) (Bellemare et al., 2016)
            target = target - model.advantage_learning * batch.gaps
        # Q_θ(η_{0:t}, a_t) for every sampled t, in one pass of the online network over each episode
        # (over each window from its stored state, with truncated histories)
        outputs = model.q_net.rnn.outputs(x[:, :-1], batch.lengths, batch.initial_states)
        q_all = model.q_net.head(outputs)
        q = q_all.gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1).masked_fill(~trained, 0.0)
        # (y − Q_θ(η, a))² averaged over the sampled transitions (line 26)
        if model.loss == "squared":
            errors = (target - q) ** 2
        else:
            errors = th.nn.functional.smooth_l1_loss(q, target, reduction="none")
        loss = (batch.weights * errors).sum() / batch.weights.sum()
        if model.fixed_point_coef:
            loss = loss + model.fixed_point_coef * fixed_point_term(x[:, :-1], outputs, batch.lengths)
        if model.hold_coef:
            term = hold_term(
                model.q_net,
                x[:, :-1],
                q_all,
                batch.lengths,
                model.policy.rng,
                model.hold_steps,
                advantages=model.hold_advantages,
                drift_coef=model.hold_drift_coef,
                observations=observation_steps(batch.observations)
                if model.hold_ends == "observation"
                else None,
            )
            loss = loss + model.hold_coef * term
        # Adam step (line 27)
        model.policy.optimizer.zero_grad()
        loss.backward()
        if model.max_grad_norm is not None:
            th.nn.utils.clip_grad_norm_(model.q_net.parameters(), model.max_grad_norm)
        model.policy.optimizer.step()
        if model.average_tau is not None:  # θ̄ ← τ̄ θ + (1 − τ̄) θ̄
            average = model.policy.q_net_average.parameters()
            polyak_update(model.q_net.parameters(), average, model.average_tau)
        losses.append(loss.detach())
    model._n_updates += gradient_steps
    model.logger.record("train/n_updates", model._n_updates, exclude="tensorboard")
    if losses:
        model.logger.record("train/loss", th.stack(losses).mean().item())


def n_step_returns(
    batch: EpisodeBatch, next_q: th.Tensor, gamma: float, n_steps: int, n_step_correction: str
) -> th.Tensor:
    """TD targets ``[U, T]``: ``y_t = r_t + γ max_a Q_θ'(η_{0:t+1}, a)`` (Algorithm 4, line 25), or the
    ``n``-step ``Σ_{i<m} γ^i r_{t+i} + γ^m max_a Q_θ'(η_{0:t+m}, a)``, ``m = min(n, T_episode - t)``;
    with Watkins's cut (``n_step_correction="watkins"``), ``m`` also stops before the first ``a_{t+i}``
    (``0 < i < m``) that is not greedy.
    """
    bootstrap = (1.0 - batch.dones) * th.nan_to_num(next_q)
    if n_steps == 1:
        return batch.rewards + gamma * bootstrap
    horizon = batch.rewards.shape[1]
    t = th.arange(horizon, device=batch.rewards.device)
    remaining = (batch.episode_lengths.view(-1, 1) - t).clamp(min=1)  # transitions left from t
    m = remaining.clamp(max=n_steps)
    if n_step_correction == "watkins":
        if batch.greedy is None:
            raise ValueError("Watkins's n-step returns need the batch's greedy flags (EpisodeBatch.greedy)")
        # m = 1 + the number of greedy actions a_{t+1}, a_{t+2}, … in a row, within the n steps
        held = th.ones_like(batch.greedy)
        steps = th.ones_like(m)
        for i in range(1, min(n_steps, horizon)):
            held = held & th.nn.functional.pad(batch.greedy[:, i:], (0, i), value=False)
            steps = steps + held.long()
        m = th.minimum(m, steps)
    returns = th.zeros_like(batch.rewards)
    for i in range(min(n_steps, horizon)):  # (later rewards are past every sampled episode)
        shifted = th.nn.functional.pad(batch.rewards[:, i:], (0, i))
        returns = returns + (gamma**i) * shifted * (i < m)
    last = (t + m - 1).clamp(max=horizon - 1)
    return returns + gamma**m * bootstrap.gather(1, last)


def update_target(model: DRQN) -> None:
    """θ' ← θ (lines 7-8 of Algorithm 4), or θ' ← τ θ + (1 − τ) θ' with ``tau < 1`` (SB3's Polyak)."""
    if model.tau == 1.0:
        model.q_net_target.load_state_dict(model.q_net.state_dict())
    else:
        polyak_update(model.q_net.parameters(), model.q_net_target.parameters(), model.tau)


def refresh_target_values(model: DRQN, slots: list[int] | None = None, chunk: int = 256) -> None:
    """Store ``max_a Q_θ'(η_{0:k+1}, a)`` of every transition of ``model``'s buffer (or of episodes
    ``slots``), for Watkins's n-step returns whether its action is greedy for θ', and for advantage learning
    its action gap ``max_a Q_θ'(η_{0:k}, a) − Q_θ'(η_{0:k}, a_k)``: ``DRQN.refresh_target_values``. With
    truncated histories (``history_window``), also the online network's states before each input, where
    the windows start (``EpisodeReplayBuffer.set_states``)."""
    buffer = model.replay_buffer
    if len(buffer) == 0:
        return
    all_slots = np.fromiter(buffer.queue, dtype=np.int64) if slots is None else np.asarray(slots)
    with th.no_grad():
        for first in range(0, len(all_slots), chunk):
            part = all_slots[first : first + chunk]
            episodes = buffer.episodes(part)
            x = model.q_net.episode_features(episodes.observations, episodes.actions, episodes.rewards)
            q = model.q_net_target.q_values(x, episodes.lengths + 1)  # [U, T + 1, A]
            best = q.max(-1).values  # max_a Q_θ'(η_{0:k}, a), k = 0 … T
            greedy = gaps = None
            taken = q[:, :-1].gather(-1, episodes.actions.unsqueeze(-1)).squeeze(-1)  # Q_θ'(η_{0:k}, a_k)
            if model.n_step_correction == "watkins":  # a_k greedy for θ': where the cut falls
                greedy = (taken >= best[:, :-1]).cpu().numpy()
            if model.advantage_learning:  # the action gap that advantage learning takes off the target
                gaps = (best[:, :-1] - taken).cpu().numpy()
            buffer.set_next_values(part, best[:, 1:].cpu().numpy(), greedy, gaps)
            if model.history_window is not None:
                after = model.q_net.rnn.states(x[:, :-1]).permute(2, 0, 1, 3)  # [U, T, L, S] after x_0 … x_k
                before = th.cat([th.zeros_like(after[:, :1]), after[:, :-1]], 1)  # before x_k (x_0: zeros)
                buffer.set_states(part, before.cpu().numpy())
