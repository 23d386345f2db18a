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
:class:`RiskLoop` scales that by what the policy's past decisions actually cost,
so a model that over- or under-estimates abandonment still lands near the aim.
Pure: time is always passed in.
"""

from __future__ import annotations

import math
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
class LoopParams:
    """The outer loop of :class:`RiskLoop` (see there).

    ``aim``: the share of the target the realised rate is steered to; ``step``: the
    log change of the risk multiplier per abandon at the start; it shrinks as
    1/sqrt(1 + E/``settle``) with E the abandons expected so far, so a small team
    (a few abandons a day) keeps reacting while a large floor (hundreds) settles;
    ``z``: how many standard deviations of the window's abandon count (Poisson) the
    aim keeps below ``aim``, a margin that shrinks as live answers accumulate;
    ``min_mult``/``max_mult``: the multiplier's range (anti-windup).
    """

    aim: float = 0.85
    step: float = 0.2
    settle: float = 10.0
    # two standard deviations: with 1, a 20-agent team on a 2-hour shift ended at
    # 2.9 % (its abandons come a few per ten minutes, and the last ones cannot be
    # diluted); with 2 its worst of four seeds was 2.7 %, for ~1 % less occupancy
    z: float = 2.0
    min_mult: float = 0.25
    max_mult: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 < self.aim <= 1.0:
            raise ValueError(f"LoopParams.aim must be in (0, 1], got {self.aim}")
        if self.step < 0 or self.settle <= 0 or self.z < 0:
            raise ValueError(f"LoopParams.step and .z must be >= 0, .settle > 0: {self}")
        if not 0.0 < self.min_mult <= 1.0 <= self.max_mult:
            raise ValueError(f"LoopParams needs 0 < min_mult <= 1 <= max_mult: {self}")


class RiskLoop:
    """Closes the loop between the risk a policy plans and the abandons it causes.

    A pacing model's abandon estimate is never exact (the connect rate drifts, the
    single-horizon approximation, supply and demand taken as independent), so the
    planned risk is scaled by a multiplier m = exp(theta) that a stochastic-
    approximation update moves after every outcome: up by step * aim' * T per live
    answer, down by step per abandon.  It settles where abandons are aim' * T of
    live answers (aim' = aim / (1 + z / sqrt(aim * T * window live answers))),
    whatever the model's bias, reacts within a few abandons to a burst (a connect
    rate that doubles after lunch), and is itself bounded by :func:`allowed_risk`'s
    brake on the window rate, so the hard constraint does not depend on it.

    Fed cumulative counts (OutcomeStats.live_answers and .abandoned); counts that go
    backwards restart the tracking.  Pure: no clock.
    """

    def __init__(self, params: LoopParams | None = None) -> None:
        self.params = params or LoopParams()
        self.theta = 0.0
        self._seen = 0.0  # live answers observed since the loop started
        self._last: tuple[float, float] | None = None

    @property
    def multiplier(self) -> float:
        return float(math.exp(self.theta))

    def aim(self, budget: AbandonBudget) -> float:
        """The share of the target aimed at now (below ``aim`` while evidence is thin)."""
        p = self.params
        expected = p.aim * budget.target * budget.live_answers
        if expected <= 0.0:
            return 0.0
        return p.aim / (1.0 + p.z / math.sqrt(expected))

    def update(self, live_total: float, abandoned_total: float, budget: AbandonBudget) -> float:
        """Take the outcomes since the last call; returns the multiplier."""
        p = self.params
        last, self._last = self._last, (live_total, abandoned_total)
        if last is None:
            return self.multiplier
        d_live, d_ab = live_total - last[0], abandoned_total - last[1]
        if d_live < 0 or d_ab < 0 or budget.target <= 0.0 or (d_live == 0 and d_ab == 0):
            return self.multiplier
        expected = p.aim * budget.target * self._seen
        step = p.step / math.sqrt(1.0 + expected / p.settle)
        self.theta += step * (self.aim(budget) * budget.target * d_live - d_ab)
        self.theta = min(max(self.theta, math.log(p.min_mult)), math.log(p.max_mult))
        self._seen += d_live
        return self.multiplier


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
