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

    >>> schedule = HeldLinearSchedule(1e-3, 1e-4, 0.5)
    >>> schedule(1.0), schedule(0.5), round(schedule(0.25), 6), round(schedule(0.0), 6)
    (0.001, 0.001, 0.00055, 0.0001)
    """

    def __init__(self, start: float, end: float, hold_fraction: float) -> None:
        check_number("start", start, 0)
        check_number("end", end, 0)
        check_number("hold_fraction", hold_fraction, 0, 1)
        if hold_fraction == 1:
            raise ValueError("hold_fraction must be a number in [0, 1); got 1 (no decay left)")
        self.start, self.end, self.hold_fraction = float(start), float(end), float(hold_fraction)

    def __call__(self, progress_remaining: float) -> float:
        elapsed = 1.0 - progress_remaining
        if elapsed <= self.hold_fraction:
            return self.start
        decayed = min(1.0, (elapsed - self.hold_fraction) / (1.0 - self.hold_fraction))
        return self.start + decayed * (self.end - self.start)

    def __repr__(self) -> str:
        return f"HeldLinearSchedule(start={self.start}, end={self.end}, hold_fraction={self.hold_fraction})"


__all__ = ["HeldLinearSchedule"]
