"""The MQTT messages as pydantic models: the executable form of the schema in
``dialer/mqtt_events.md``.

Outgoing event messages are an :class:`dialer.events.Event` flattened by
``Event.to_json()``: ``kind``, ``campaign``, ``at`` plus the kind's own fields.
The models accept extra fields (the engine may add figures later without breaking
subscribers) but every documented field is required and typed.

Incoming control requests are parsed with :data:`CONTROL_REQUEST`, a union
discriminated by ``action``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dialer.agentstate import AgentState
from dialer.callstate import CallState

# event kind -> last topic segment
TOPIC_SUFFIX: dict[str, str] = {
    "call": "calls",
    "agent": "agents",
    "stats": "stats",
    "alert": "alerts",
}
CONTROL_SUFFIX = "control"
RESULT_SUFFIX = "control/result"


def campaign_segment(campaign: str) -> str:
    """A campaign name as one topic level: ``/``, ``+``, ``#`` and other reserved
    characters are percent-encoded so a name can never span or wildcard levels."""
    return quote(campaign, safe="")


def campaign_from_segment(segment: str) -> str:
    return unquote(segment)


def event_topic(prefix: str, campaign: str, kind: str) -> str:
    suffix = TOPIC_SUFFIX.get(kind, kind)
    return f"{prefix}/{campaign_segment(campaign)}/{suffix}"


def control_topic(prefix: str, campaign: str) -> str:
    return f"{prefix}/{campaign_segment(campaign)}/{CONTROL_SUFFIX}"


def result_topic(prefix: str, campaign: str) -> str:
    return f"{prefix}/{campaign_segment(campaign)}/{RESULT_SUFFIX}"


# --- outgoing events ---------------------------------------------------------------


class _EventMessage(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    campaign: str
    at: datetime


class CallMessage(_EventMessage):
    """``{prefix}/{campaign}/calls``: one call-state transition."""

    kind: Literal["call"]
    call_id: str
    contact_id: int
    number: str
    from_: CallState = Field(alias="from")
    to: CallState
    detail: str
    agent: str | None


class AgentMessage(_EventMessage):
    """``{prefix}/{campaign}/agents``: one agent-state change."""

    kind: Literal["agent"]
    agent: str
    state: AgentState
    call_id: str | None


class Blocker(BaseModel):
    code: str
    message: str
    until: float | None


class StatsMessage(_EventMessage):
    """``{prefix}/{campaign}/stats``: the campaign's periodic figures."""

    kind: Literal["stats"]
    dials: int
    live_answers: int
    machine_answers: int
    connects: int
    abandoned: int
    gate_refusals: int
    abandon_rate_window: float
    abandon_window: str
    abandon_target: float
    agents: dict[str, int]
    calls: dict[str, int]
    calls_in_progress: int
    dial_level: float
    forecast_free_agents: float
    forecast_abandon_prob: float
    dialing: bool
    leads_remaining: int
    blockers: list[Blocker]


class AlertMessage(_EventMessage):
    """``{prefix}/{campaign}/alerts``: something a supervisor must look at."""

    kind: Literal["alert"]
    code: str
    message: str
    severity: Literal["info", "warning", "critical"] = "warning"


EVENT_MESSAGE: TypeAdapter[CallMessage | AgentMessage | StatsMessage | AlertMessage] = TypeAdapter(
    Annotated[
        CallMessage | AgentMessage | StatsMessage | AlertMessage,
        Field(discriminator="kind"),
    ]
)


# --- control -----------------------------------------------------------------------


class _ControlBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str | None = None
    request_id: str | None = Field(default=None, max_length=200)


class SetAbandonTarget(_ControlBase):
    action: Literal["set_abandon_target"]
    value_pct: float = Field(ge=0.0, le=100.0, allow_inf_nan=False)


class Pause(_ControlBase):
    action: Literal["pause"]


class Resume(_ControlBase):
    action: Literal["resume"]


ControlRequest = SetAbandonTarget | Pause | Resume
CONTROL_ACTIONS: tuple[str, ...] = ("pause", "resume", "set_abandon_target")

CONTROL_REQUEST: TypeAdapter[SetAbandonTarget | Pause | Resume] = TypeAdapter(
    Annotated[ControlRequest, Field(discriminator="action")]
)


class ControlResult(BaseModel):
    """``{prefix}/{campaign}/control/result``: the answer to one control request."""

    model_config = ConfigDict(extra="forbid")
    campaign: str
    at: datetime
    ok: bool
    action: str | None
    request_id: str | None
    reason: str


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every message, for tools and documentation."""
    return {
        "event": EVENT_MESSAGE.json_schema(by_alias=True),
        "control": CONTROL_REQUEST.json_schema(by_alias=True),
        "control_result": ControlResult.model_json_schema(),
    }
