"""Schedules of SB3's ``progress_remaining`` (1 at the start of ``learn``, 0 at its end) for DRQN's
``learning_rate`` (or any SB3 schedule) beyond SB3's own ``LinearSchedule``/``ConstantSchedule``.

DRQN's ``learn(..., max_episodes=N)`` runs the schedules over the N training episodes;
``learn(total_timesteps)`` alone runs them over the env steps (the buffer fill included), as SB3's
algorithms do."""

from __future__ import annotations

from recurrent_q.checks import check_number


class HeldLinearSchedule:
    """``start`` for the first ``hold_fraction`` of training, then linear to ``end`` at its end (SB3's
    ``LinearSchedule`` decays from the first step). The T-Maze runner's learning rate is
    ``HeldLinearSchedule(1e-3, 1e-4, 0.5)`` (``docs/drqn-parity.md``, rounds 9 and 10).

    ``end_hold(progress_remaining)`` ends the hold early: the decay starts there and keeps its length
    (``1 - hold_fraction`` of training), then ``end`` holds. The T-Maze runner calls it at the first
    check where the greedy policy is optimal (``TMazeConfig.learning_rate_decay_on_optimal``).

    >>> schedule = HeldLinearSchedule(1e-3, 1e-4, 0.5)
    >>> schedule(1.0), schedule(0.5), round(schedule(0.25), 6), round(schedule(0.0), 6)
    (0.001, 0.001, 0.00055, 0.0001)
    >>> schedule.end_hold(0.8)  # 20 % of training done: the decay runs from 20 % to 70 %
    >>> schedule(0.8), round(schedule(0.55), 6), round(schedule(0.3), 6), round(schedule(0.0), 6)
    (0.001, 0.00055, 0.0001, 0.0001)
    """

    def __init__(self, start: float, end: float, hold_fraction: float) -> None:
        check_number("start", start, 0)
        check_number("end", end, 0)
        check_number("hold_fraction", hold_fraction, 0, 1)
        if hold_fraction == 1:
            raise ValueError("hold_fraction must be a number in [0, 1); got 1 (no decay left)")
        self.start, self.end, self.hold_fraction = float(start), float(end), float(hold_fraction)
        self.decay_start = self.hold_fraction  # the fraction of training at which the decay starts

    def __setstate__(self, state: dict) -> None:  # schedules pickled (in saved models) before end_hold
        state.setdefault("decay_start", state["hold_fraction"])
        self.__dict__.update(state)

    def end_hold(self, progress_remaining: float) -> None:
        """Start the decay at ``progress_remaining`` (SB3's: 1 at the start, 0 at the end) if it has not
        started yet; it lasts ``1 - hold_fraction`` of training, as it would have after a full hold."""
        check_number("progress_remaining", progress_remaining, 0, 1)
        self.decay_start = min(self.decay_start, 1.0 - float(progress_remaining))

    def __call__(self, progress_remaining: float) -> float:
        elapsed = 1.0 - progress_remaining
        if elapsed <= self.decay_start:
            return self.start
        decayed = min(1.0, (elapsed - self.decay_start) / (1.0 - self.hold_fraction))
        return self.start + decayed * (self.end - self.start)

    def __repr__(self) -> str:
        ended = "" if self.decay_start == self.hold_fraction else f", decay_start={self.decay_start}"
        held = f"start={self.start}, end={self.end}, hold_fraction={self.hold_fraction}"
        return f"HeldLinearSchedule({held}{ended})"


__all__ = ["HeldLinearSchedule"]
