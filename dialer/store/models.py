"""The schema.  Changes go through Alembic (dialer/migrations); these classes are
the single description both the migrations and the code use."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class ContactList(Base):
    __tablename__ = "lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    default_region: Mapped[str] = mapped_column(String(2), default="US")
    created_at: Mapped[datetime]


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("list_id", "dedupe_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"), index=True)
    # what makes a row "the same contact" on re-import: the external id column if the
    # file has one, else the normalised numbers
    dedupe_key: Mapped[str] = mapped_column(String(300))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"
    __table_args__ = (UniqueConstraint("contact_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    number: Mapped[str] = mapped_column(String(20), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(30), default="")


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"))
    mode: Mapped[str] = mapped_column(String(20))
    policy: Mapped[str] = mapped_column(String(40))
    abandon_target: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="created")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]


class CampaignContact(Base):
    """A contact's progress in one campaign: what makes a restart resume exactly."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id"),
        Index("ix_cc_campaign_status", "campaign_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending/dialing/done
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    number_index: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_result: Mapped[str | None] = mapped_column(String(30), nullable=True)


class Attempt(Base):
    """One row per dial: written before the dial is placed, completed when it ends."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_campaign_started", "campaign_id", "started_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    number: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(String(30), nullable=True)
    live: Mapped[bool] = mapped_column(Boolean, default=False)
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    sip_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amd_label: Mapped[str | None] = mapped_column(String(10), nullable=True)
    amd_cause: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amd_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    agent: Mapped[str | None] = mapped_column(String(100), nullable=True)
    disposition: Mapped[str | None] = mapped_column(String(50), nullable=True)
    ring_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    talk_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    connect_delay_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class CallEvent(Base):
    """Every call-state transition, in order (the trace reports are built from)."""

    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("attempts.call_id"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    sip_uri: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime]


class AgentSession(Base):
    """One login to a campaign.  The key is made by the engine (campaign, run,
    agent, n) so a session can be written without a round trip for its id."""

    __tablename__ = "agent_sessions"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    agent_name: Mapped[str] = mapped_column(String(100), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    login_at: Mapped[datetime]
    logout_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AgentEvent(Base):
    __tablename__ = "agent_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("agent_sessions.id"), index=True)
    at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")


class GateRefusal(Base):
    """Every time the dial gate said no, with why and until when."""

    __tablename__ = "gate_refusals"
    __table_args__ = (Index("ix_refusals_campaign_at", "campaign_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    number: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(40))
    not_before: Mapped[datetime | None] = mapped_column(nullable=True)


class ApiToken(Base):
    """API tokens: only a SHA-256 of each is kept.  Tokens are 256-bit random
    strings, so a fast hash is enough (no password stretching needed)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # admin | supervisor | agent
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class DncListRow(Base):
    """A DNC or suppression list: account-wide (no campaigns) or for named ones."""

    __tablename__ = "dnc_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    campaigns: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"names": [...]}
    mandatory: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class DncEntry(Base):
    """One entry: an E.164 number, a prefix ('+1212*') or an e-mail address, with who
    added it, when and how (agent, IVR 'press 9', import, SMS STOP)."""

    __tablename__ = "dnc_entries"
    __table_args__ = (UniqueConstraint("list_id", "value"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("dnc_lists.id"), index=True)
    value: Mapped[str] = mapped_column(String(320))
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(50), default="cli")
    added_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]


class Callback(Base):
    """A callback booked for a contact in a campaign: at ``due_at`` (UTC; booked as
    ``local_time`` in ``timezone``, the contact's zone), for one agent (personal)
    or anyone.  At most one is ``scheduled`` per contact and campaign; the dial
    that serves it marks it ``dialled`` with its call id, so a restart never
    dials it twice."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_campaign_status", "campaign_id", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    due_at: Mapped[datetime]
    local_time: Mapped[str] = mapped_column(String(40), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="")
    agent: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    source: Mapped[str] = mapped_column(String(50), default="api")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AttemptDisposition(Base):
    """A wrap-up code given to an attempt (by the agent at wrap-up, or later
    through the API), with the campaign's flags for it at that time."""

    __tablename__ = "attempt_dispositions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("attempts.call_id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    name: Mapped[str] = mapped_column(String(50))
    agent: Mapped[str] = mapped_column(String(100), default="")
    source: Mapped[str] = mapped_column(String(20), default="agent")
    at: Mapped[datetime]
    known: Mapped[bool] = mapped_column(Boolean, default=True)
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    contact: Mapped[bool] = mapped_column(Boolean, default=False)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    dnc: Mapped[bool] = mapped_column(Boolean, default=False)
    callback: Mapped[bool] = mapped_column(Boolean, default=False)


def table_of(model: type[Base]) -> Table:
    """The Core table behind a model, typed as a Table (bulk statements use it)."""
    return cast(Table, model.__table__)
