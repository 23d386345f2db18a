"""What the engine needs from the outside world besides a carrier: agents, a
recorder for everything that must be stored, and the dial gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from dialer.agentstate import AgentState
from dialer.callstate import CallResult, CallState


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """An agent's own action: login (READY), pause, ready again after wrap-up
    (with the disposition picked), logout.  The engine itself moves agents to
    RESERVED / ON_CALL / WRAP_UP."""

    agent_id: str
    state: AgentState
    at: float
    disposition: str = ""
    detail: str = ""


class AgentListener(Protocol):
    def on_agent_event(self, event: AgentEvent) -> None: ...


class AgentPort(Protocol):
    def set_listener(self, listener: AgentListener) -> None: ...

    def connect(self, agent_id: str, call_id: str, lead: Lead) -> None:
        """The customer is now bridged to the agent (screen pop)."""
        ...

    def call_ended(self, agent_id: str, call_id: str) -> None:
        """The customer leg ended; the agent is in wrap-up."""
        ...

    def preview(self, agent_id: str, call_id: str, lead: Lead) -> None:
        """Preview mode: the agent is reserved for this contact before it is dialled."""
        ...


@dataclass(slots=True)
class Lead:
    """A contact as the engine dials it."""

    contact_id: int
    numbers: list[str]
    number_index: int = 0
    attempts: int = 0
    priority: int = 0
    timezone: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    not_before: float = 0.0  # monotonic
    # what the gate needs to enforce limits and cool-downs (UTC times)
    attempt_log: list[tuple[datetime, str]] = field(default_factory=list)  # (when, number)
    last_abandon_at: datetime | None = None
    callback_at: datetime | None = None

    @property
    def number(self) -> str:
        return self.numbers[self.number_index]


@dataclass(frozen=True, slots=True)
class GateVerdict:
    allowed: bool
    reason: str = ""
    not_before: datetime | None = None  # None with allowed=False: never
    detail: str = ""


Gate = Callable[[Lead, datetime], GateVerdict]


class Recorder(Protocol):
    """Everything the engine stores.  Calls are buffered; ``when_durable`` runs
    its callback once what was recorded so far is committed.  Times are the
    clock's monotonic seconds: a recorder that stores them converts them to wall
    time, and one that does not pays nothing."""

    def attempt_started(
        self, call_id: str, lead: Lead, number: str, at: float, state: CallState
    ) -> None: ...

    def transition(
        self, call_id: str, at: float, src: CallState, dst: CallState, detail: str
    ) -> None: ...

    def attempt_updated(self, call_id: str, values: dict[str, object]) -> None: ...

    def lead_updated(
        self, lead: Lead, status: str, next_at: float | None, last_result: str | None
    ) -> None: ...

    def gate_refused(self, lead: Lead, at: float, verdict: GateVerdict) -> None: ...

    def agent_event(self, agent_id: str, at: float, state: AgentState, detail: str) -> None: ...

    def when_durable(self, callback: Callable[[], None]) -> None: ...


class NullRecorder:
    """For research runs that need figures only: stores nothing."""

    def attempt_started(
        self, call_id: str, lead: Lead, number: str, at: float, state: CallState
    ) -> None:
        pass

    def transition(
        self, call_id: str, at: float, src: CallState, dst: CallState, detail: str
    ) -> None:
        pass

    def attempt_updated(self, call_id: str, values: dict[str, object]) -> None:
        pass

    def lead_updated(
        self, lead: Lead, status: str, next_at: float | None, last_result: str | None
    ) -> None:
        pass

    def gate_refused(self, lead: Lead, at: float, verdict: GateVerdict) -> None:
        pass

    def agent_event(self, agent_id: str, at: float, state: AgentState, detail: str) -> None:
        pass

    def when_durable(self, callback: Callable[[], None]) -> None:
        callback()


__all__ = [
    "AgentEvent",
    "AgentListener",
    "AgentPort",
    "CallResult",
    "Gate",
    "GateVerdict",
    "Lead",
    "NullRecorder",
    "Recorder",
]
