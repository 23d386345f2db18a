"""Agent performance from the agent state events: time in each state, calls
handled and the dispositions chosen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.agentstate import AgentState
from dialer.clock import system_wall_clock
from dialer.reports.common import A, Period, epoch_float, find_campaign, maybe_utc
from dialer.store.models import AgentEvent, AgentSession, table_of

AE = table_of(AgentEvent)
AS = table_of(AgentSession)

# the state -> report column; logged-out time is not the agent's time
STATE_COLUMNS: dict[str, str] = {
    AgentState.ON_CALL.value: "talk_s",
    AgentState.WRAP_UP.value: "wrap_s",
    AgentState.READY.value: "idle_s",
    AgentState.PAUSED.value: "paused_s",
    AgentState.RESERVED.value: "reserved_s",
}


@dataclass(slots=True)
class AgentRow:
    agent: str
    talk_s: float = 0.0
    wrap_s: float = 0.0
    idle_s: float = 0.0
    paused_s: float = 0.0
    reserved_s: float = 0.0
    calls: int = 0
    dispositions: dict[str, int] = field(default_factory=dict)

    @property
    def logged_in_s(self) -> float:
        return self.talk_s + self.wrap_s + self.idle_s + self.paused_s + self.reserved_s

    @property
    def occupancy(self) -> float:
        """Share of logged-in time spent on calls and their wrap-up."""
        t = self.logged_in_s
        return (self.talk_s + self.wrap_s) / t if t else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "talk_s": self.talk_s,
            "wrap_s": self.wrap_s,
            "idle_s": self.idle_s,
            "paused_s": self.paused_s,
            "reserved_s": self.reserved_s,
            "logged_in_s": self.logged_in_s,
            "occupancy": self.occupancy,
            "calls": self.calls,
            "dispositions": dict(self.dispositions),
        }


def _greatest(dialect: str, a: Any, b: Any) -> Any:
    return func.max(a, b) if dialect == "sqlite" else func.greatest(a, b)


def _least(dialect: str, a: Any, b: Any) -> Any:
    return func.min(a, b) if dialect == "sqlite" else func.least(a, b)


async def agent_performance(
    conn: AsyncConnection,
    campaign: str,
    since: datetime | None = None,
    until: datetime | None = None,
    as_of: datetime | None = None,
) -> list[AgentRow]:
    """Each state lasts until the agent's next event in the session (or the
    logout; a session still open runs to ``as_of``, default now).  Time is
    clipped to [since, until); calls and dispositions count attempts dialled in it."""
    camp = await find_campaign(conn, campaign)
    period = Period.of(since, until)
    dialect = conn.dialect.name
    open_end = maybe_utc(as_of) or period.until or system_wall_clock()
    nxt = func.lead(AE.c.at).over(partition_by=AE.c.session_id, order_by=(AE.c.at, AE.c.id))
    spans = (
        select(
            AS.c.agent_name.label("agent"),
            AE.c.state.label("state"),
            AE.c.at.label("start"),
            func.coalesce(nxt, AS.c.logout_at, literal(open_end, AE.c.at.type)).label("end"),
        )
        .select_from(AE.join(AS, AE.c.session_id == AS.c.id))
        .where(AS.c.campaign_id == camp.id)
        .subquery()
    )
    start = epoch_float(spans.c.start, dialect)
    end = epoch_float(spans.c.end, dialect)
    if period.since is not None:
        start = _greatest(dialect, start, epoch_float(literal(period.since, AE.c.at.type), dialect))
    if period.until is not None:
        end = _least(dialect, end, epoch_float(literal(period.until, AE.c.at.type), dialect))
    q = (
        select(
            spans.c.agent,
            spans.c.state,
            # a span can end before it starts only when as_of is earlier than the event
            func.sum(_greatest(dialect, end - start, literal(0.0))).label("secs"),
        )
        .where(spans.c.state.in_(list(STATE_COLUMNS)))
        .group_by(spans.c.agent, spans.c.state)
    )
    if period.since is not None:
        q = q.where(spans.c.end > period.since)
    if period.until is not None:
        q = q.where(spans.c.start < period.until)
    rows: dict[str, AgentRow] = {}
    for agent, state, secs in await conn.execute(q):
        row = rows.setdefault(str(agent), AgentRow(str(agent)))
        setattr(row, STATE_COLUMNS[str(state)], max(0.0, float(secs or 0.0)))
    where = [A.c.campaign_id == camp.id, A.c.agent.is_not(None), *period.where(A.c.started_at)]
    q2 = select(A.c.agent, A.c.disposition, func.count()).where(*where)
    for agent, disposition, n in await conn.execute(q2.group_by(A.c.agent, A.c.disposition)):
        row = rows.setdefault(str(agent), AgentRow(str(agent)))
        row.calls += int(n)
        key = str(disposition) if disposition else "(none)"
        row.dispositions[key] = row.dispositions.get(key, 0) + int(n)
    return [rows[k] for k in sorted(rows)]
