"""The one policy interface: a frozen snapshot in, a number of calls out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MIN_LINES_PER_AGENT = 1.0
MAX_LINES_PER_AGENT = 15.0


def _empty() -> FloatArray:
    return np.zeros(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class AgentView:
    """Agents by state; arrays hold each agent's seconds in its current state."""

    ready: FloatArray = field(default_factory=_empty)
    on_call: FloatArray = field(default_factory=_empty)
    wrap_up: FloatArray = field(default_factory=_empty)
    reserved: int = 0  # held for a personal callback or a preview: not for pacing
    paused: int = 0

    @property
    def logged_in(self) -> int:
        return len(self.ready) + len(self.on_call) + len(self.wrap_up) + self.reserved + self.paused

    @property
    def working(self) -> int:
        """Agents who take paced calls now or after their current one."""
        return len(self.ready) + len(self.on_call) + len(self.wrap_up)


@dataclass(frozen=True, slots=True)
class CallView:
    """Calls in progress; arrays hold each call's seconds in its current state."""

    dialing: FloatArray = field(default_factory=_empty)  # not yet answered (incl. ringing)
    classifying: FloatArray = field(default_factory=_empty)  # answered, AMD running
    waiting: FloatArray = field(default_factory=_empty)  # live, waiting for an agent

    @property
    def in_progress(self) -> int:
        return len(self.dialing) + len(self.classifying) + len(self.waiting)


@dataclass(frozen=True, slots=True)
class OutcomeStats:
    """What the campaign has observed so far (the engine keeps these up to date).

    Samples are recent completed durations in seconds, newest last, so policies
    can fit distributions; counts may be exponentially discounted (floats).
    """

    dials: float = 0.0
    live_answers: float = 0.0
    machine_answers: float = 0.0
    other_outcomes: float = 0.0  # busy, no answer, bad number, failures
    abandoned: float = 0.0  # live answers not connected in time (a subset of live_answers)
    ring_times_live: FloatArray = field(default_factory=_empty)  # dial -> live verdict
    # dial -> answer, of the calls that then reached a person: how long a call that
    # will be live can still be ringing
    answer_times_live: FloatArray = field(default_factory=_empty)
    ring_times_all: FloatArray = field(default_factory=_empty)  # dial -> any end of dialing
    talk_times: FloatArray = field(default_factory=_empty)
    wrap_times: FloatArray = field(default_factory=_empty)
    # agent's state time when it ended, for survival estimates of in-progress ones
    handle_times: FloatArray = field(default_factory=_empty)  # talk + wrap


@dataclass(frozen=True, slots=True)
class AbandonBudget:
    """Abandonment over the regulatory window, counted from stored events."""

    target: float  # fraction, e.g. 0.03
    abandoned: float  # live answers not connected within 2 s (+ AMD false-positive estimate)
    live_answers: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.target <= 1.0:
            raise ValueError(
                f"AbandonBudget.target must be a fraction in [0, 1], got {self.target}"
            )
        if self.abandoned < 0 or self.live_answers < 0:
            raise ValueError(
                "AbandonBudget.abandoned and .live_answers must be >= 0, got "
                f"{self.abandoned} and {self.live_answers}"
            )

    @property
    def rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers > 0 else 0.0

    def headroom(self, extra_live: float = 0.0) -> float:
        """Abandons still allowed if ``extra_live`` more live answers arrive."""
        return self.target * (self.live_answers + extra_live) - self.abandoned


@dataclass(frozen=True, slots=True)
class Limits:
    max_lines_per_agent: float = 3.0
    max_lines: int = 10_000  # campaign line limit
    carrier_free: int = 10_000  # channels the carriers can start now
    power_ratio: float = 2.0  # lines per free agent for the power policy
    # calls the trunks accept per second; the engine's token bucket is the precise
    # limit, this only stops a policy asking for more than a tick can start
    cps: float = float("inf")

    def __post_init__(self) -> None:
        if not MIN_LINES_PER_AGENT <= self.max_lines_per_agent <= MAX_LINES_PER_AGENT:
            raise ValueError(
                f"Limits.max_lines_per_agent must be in [{MIN_LINES_PER_AGENT}, "
                f"{MAX_LINES_PER_AGENT}], got {self.max_lines_per_agent}"
            )
        if self.max_lines < 0:
            raise ValueError(f"Limits.max_lines must be >= 0, got {self.max_lines}")
        if self.carrier_free < 0:
            raise ValueError(f"Limits.carrier_free must be >= 0, got {self.carrier_free}")
        if not 1.0 <= self.power_ratio <= MAX_LINES_PER_AGENT:
            raise ValueError(
                f"Limits.power_ratio must be in [1, {MAX_LINES_PER_AGENT}], got {self.power_ratio}"
            )
        if not self.cps > 0:
            raise ValueError(f"Limits.cps must be > 0, got {self.cps}")


@dataclass(frozen=True, slots=True)
class Oracle:
    """What a simulator knows about the future (never filled by the live engine).

    ``agent_free_in`` holds, for every working agent not ready, the seconds until
    it becomes ready again (remaining talk + wrap-up).  ``next_live`` and
    ``next_ring`` describe the next candidate dials in the order they would be
    placed: whether each would be answered by a live person (after AMD) and the
    seconds from dial until that caller starts waiting for an agent (the start of
    the connect window; the simulator's version is in ``sim.oracle``).
    """

    agent_free_in: FloatArray = field(default_factory=_empty)
    next_live: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    next_ring: FloatArray = field(default_factory=_empty)
    # seconds until each call now dialing/classifying turns live (inf: never)
    pending_live_in: FloatArray = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    now: float
    agents: AgentView
    calls: CallView
    stats: OutcomeStats
    budget: AbandonBudget
    limits: Limits = field(default_factory=Limits)
    tick_s: float = 1.0
    oracle: Oracle | None = None  # simulator only: the clairvoyant bound reads it


@dataclass(frozen=True, slots=True)
class Decision:
    """How many calls to start now, and the figures that led there (shown to
    supervisors as the pacing forecast)."""

    calls: int
    dial_level: float = 0.0  # lines in progress per working agent after this decision
    expected_free_agents: float = 0.0
    expected_live: float = 0.0
    expected_abandon_prob: float = 0.0
    reason: str = ""


class Policy(Protocol):
    name: str

    def decide(self, snapshot: PacingSnapshot, rng: np.random.Generator) -> Decision: ...


def cap(snapshot: PacingSnapshot, wanted: int) -> int:
    """Apply the limits every campaign has; no policy may exceed them."""
    lim = snapshot.limits
    lines_allowed = int(np.floor(lim.max_lines_per_agent * snapshot.agents.working + 1e-9))
    in_progress = snapshot.calls.in_progress
    room = min(lines_allowed, lim.max_lines) - in_progress
    per_tick = lim.carrier_free
    if np.isfinite(lim.cps):
        per_tick = min(per_tick, int(np.floor(lim.cps * snapshot.tick_s + 1e-9)))
    return int(max(0, min(wanted, room, per_tick)))


def progressive_need(snapshot: PacingSnapshot) -> int:
    """Calls that one-call-per-free-agent would start now (never abandons)."""
    return max(0, len(snapshot.agents.ready) - snapshot.calls.in_progress)


def dial_level(snapshot: PacingSnapshot, calls: int) -> float:
    """Lines in use (dialing, classifying, waiting, talking) per working agent after
    starting ``calls`` more: the figure VICIdial calls the dial level."""
    working = snapshot.agents.working
    if working == 0:
        return 0.0
    return (snapshot.calls.in_progress + calls + len(snapshot.agents.on_call)) / working
