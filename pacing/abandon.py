"""Closed-loop abandonment control over a regulatory window.

:class:`AbandonController` counts live answers and abandons (live answers not
connected to an agent within the grace period, 2 s by default) over a rolling
window — 30 days for the US TSR/TCPA, 24 hours for Ofcom, or the whole campaign
with ``window_s=None`` — plus, optionally, Ofcom's AMD false-positive estimate
(the tested false-positive rate times the machine verdicts: people the detector
hung up on).  It hands the engine an :class:`AbandonBudget` each tick.

:func:`allowed_risk` turns a budget into the abandon fraction a predictive policy
may plan for in one decision: the full target with plenty of headroom, less as
the window's rate approaches the target, nothing once it is reached.
Pure: time is always passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from pacing.types import AbandonBudget

US_WINDOW_S = 30 * 86_400.0
UK_WINDOW_S = 86_400.0


@dataclass(frozen=True, slots=True)
class RiskParams:
    """How hard the loop pulls back as the window's rate nears the target.

    With slack = 1 - rate/target, the planned risk is target * min(max_mult,
    gain * slack): a policy whose forecasts are unbiased settles at a window rate
    of gain/(1+gain) of the target, leaving a margin for forecast error.
    """

    gain: float = 2.0
    max_mult: float = 1.0
    # dial ahead only while the window can absorb this many abandons; 1.0 stops a
    # single early abandon breaking a small target, but the on/off switching it
    # causes cost small teams occupancy and abandons in the simulator, so it is off
    min_headroom: float = 0.0

    def __post_init__(self) -> None:
        if self.gain <= 0 or self.max_mult <= 0 or self.min_headroom < 0:
            raise ValueError(f"RiskParams.gain and .max_mult must be > 0, got {self}")


def allowed_risk(budget: AbandonBudget, params: RiskParams | None = None) -> float:
    """Abandons per live answer a policy may plan for now (0 = dial progressively).

    With target T and window rate r, this is T * min(max_mult, gain * (1 - r/T)),
    and 0 once the window's headroom is below ``min_headroom`` abandons."""
    p = params or RiskParams()
    headroom = budget.headroom()
    if budget.target <= 0.0 or headroom <= 0.0 or headroom < p.min_headroom:
        return 0.0
    slack = 1.0 - budget.rate / budget.target
    return budget.target * min(p.max_mult, p.gain * slack)


@dataclass(frozen=True, slots=True)
class AbandonParams:
    target: float = 0.03  # fraction of live answers
    window_s: float | None = US_WINDOW_S  # None: the whole campaign
    grace_s: float = 2.0  # seconds from the end of the greeting to an agent
    amd_fp_rate: float = 0.0  # tested share of people the detector calls machines

    def __post_init__(self) -> None:
        if not 0.0 <= self.target <= 1.0:
            raise ValueError(f"AbandonParams.target must be in [0, 1], got {self.target}")
        if self.window_s is not None and not self.window_s > 0:
            raise ValueError(f"AbandonParams.window_s must be > 0 or None, got {self.window_s}")
        if not self.grace_s >= 0:
            raise ValueError(f"AbandonParams.grace_s must be >= 0, got {self.grace_s}")
        if not 0.0 <= self.amd_fp_rate < 1.0:
            raise ValueError(f"AbandonParams.amd_fp_rate must be in [0, 1), got {self.amd_fp_rate}")


class AbandonController:
    """Counts the window's answers and abandons; the engine reads ``budget(now)``."""

    def __init__(self, params: AbandonParams | None = None) -> None:
        self.params = params or AbandonParams()
        self._target = self.params.target
        self._pending_target: float | None = None
        # (time, live, abandoned, machine) per event, oldest first
        self._events: deque[tuple[float, int, int, int]] = deque()
        self._live = 0
        self._abandoned = 0
        self._machines = 0
        self._last_now = float("-inf")

    @property
    def target(self) -> float:
        return self._target

    def set_target(self, pct: float) -> None:
        """New target in percent of live answers (e.g. 3.0, 0.5, 0); applies at the
        next tick, so a decision already in flight keeps the target it started with."""
        if not 0.0 <= pct <= 100.0:
            raise ValueError(f"abandon target must be a percentage in [0, 100], got {pct}")
        self._pending_target = pct / 100.0

    def record_live(self, now: float, wait_s: float) -> bool:
        """A person answered and waited ``wait_s`` for an agent (inf: never got one).

        Returns whether it counts as abandoned."""
        abandoned = wait_s > self.params.grace_s
        self._push(now, 1, int(abandoned), 0)
        return abandoned

    def record_machine(self, now: float) -> None:
        """The detector said machine (or fax); some of these were people."""
        self._push(now, 0, 0, 1)

    def budget(self, now: float) -> AbandonBudget:
        """The window's figures at ``now``; one call per tick applies a new target."""
        if self._pending_target is not None:
            self._target, self._pending_target = self._pending_target, None
        self._prune(now)
        fp = self.params.amd_fp_rate * self._machines
        return AbandonBudget(
            target=self._target,
            abandoned=self._abandoned + fp,
            live_answers=self._live + fp,
        )

    def allowed_risk(self, now: float, params: RiskParams | None = None) -> float:
        return allowed_risk(self.budget(now), params)

    def _push(self, now: float, live: int, abandoned: int, machine: int) -> None:
        if now < self._last_now:
            raise ValueError(
                f"AbandonController events must come in time order: {now} < {self._last_now}"
            )
        self._last_now = now
        self._events.append((now, live, abandoned, machine))
        self._live += live
        self._abandoned += abandoned
        self._machines += machine

    def _prune(self, now: float) -> None:
        if self.params.window_s is None:
            return
        start = now - self.params.window_s
        ev = self._events
        while ev and ev[0][0] <= start:
            _, live, abandoned, machine = ev.popleft()
            self._live -= live
            self._abandoned -= abandoned
            self._machines -= machine
