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
    # with a "callback" disposition: when (aware, or naive meaning the contact's
    # local time) and whether only this agent should take it
    callback_at: datetime | None = None
    callback_personal: bool = False


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
    callback_agent: str | None = None  # a personal callback: only this agent, until grace

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


@dataclass(frozen=True, slots=True)
class OptOut:
    """A person asked not to be called again: where it lands and who/when/how."""

    number: str
    list_name: str
    campaign: str
    source: str  # agent | ivr | api | sms
    at: datetime
    by: str = ""
    contact_id: int | None = None
    call_id: str | None = None
    list_campaigns: tuple[str, ...] = ()  # a list made for this: these campaigns only


@dataclass(frozen=True, slots=True)
class DispositionRecord:
    """The wrap-up code of one attempt, with its flags as configured then."""

    call_id: str
    contact_id: int
    name: str
    agent: str
    at: float  # monotonic
    success: bool
    contact: bool
    final: bool
    dnc: bool
    callback: bool
    known: bool = True  # False: the code is not configured for the campaign


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

    def disposition(self, record: DispositionRecord) -> None: ...

    def opted_out(self, record: OptOut) -> None: ...

    def lead_moved(self, lead: Lead, to_campaign: str, at: float) -> None: ...

    def callback_booked(self, lead: Lead, source: str) -> None:
        """A callback booked inside the engine (an agent's disposition): the
        lead's ``callback_at``/``callback_agent``; it replaces any earlier one."""
        ...

    def callback_dialled(self, lead: Lead, call_id: str) -> None:
        """The lead's scheduled callback was served by this dial."""
        ...


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

    def disposition(self, record: DispositionRecord) -> None:
        pass

    def opted_out(self, record: OptOut) -> None:
        pass

    def lead_moved(self, lead: Lead, to_campaign: str, at: float) -> None:
        pass

    def callback_booked(self, lead: Lead, source: str) -> None:
        pass

    def callback_dialled(self, lead: Lead, call_id: str) -> None:
        pass


__all__ = [
    "AgentEvent",
    "AgentListener",
    "AgentPort",
    "CallResult",
    "DispositionRecord",
    "Gate",
    "GateVerdict",
    "Lead",
    "NullRecorder",
    "OptOut",
    "Recorder",
]
