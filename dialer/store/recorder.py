"""The engine's recorder backed by the database.

The engine calls it synchronously; rows are buffered and written in one
transaction per flush, with the updates of one attempt merged into one row.
``when_durable`` callbacks (the dial itself) run only after the flush that
commits the attempt row, so a crash can never leave a dial without its record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, update

from dialer.agentstate import AgentState
from dialer.callstate import CallState
from dialer.clock import Clock
from dialer.ports import GateVerdict, Lead
from dialer.store.db import Database
from dialer.store.models import (
    AgentEvent,
    AgentSession,
    Attempt,
    CallEvent,
    CampaignContact,
    GateRefusal,
    table_of,
)

A = table_of(Attempt)
CE = table_of(CallEvent)
CC = table_of(CampaignContact)
AS = table_of(AgentSession)
AE = table_of(AgentEvent)
GR = table_of(GateRefusal)


class StoreRecorder:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        campaign_id: int,
        run_tag: str,
        *,
        durable_dials: bool = True,
    ) -> None:
        self.db = db
        self.clock = clock
        self.campaign_id = campaign_id
        self.run_tag = run_tag
        self.durable_dials = durable_dials
        self._new_attempts: list[dict[str, Any]] = []
        self._attempt_updates: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._leads: dict[int, dict[str, Any]] = {}
        self._refusals: list[dict[str, Any]] = []
        self._sessions_new: list[dict[str, Any]] = []
        self._sessions_end: dict[str, datetime] = {}
        self._agent_events: list[dict[str, Any]] = []
        self._agent_session: dict[str, str] = {}
        self._agent_logins: dict[str, int] = {}
        self._after_flush: list[Callable[[], None]] = []
        self._wake = asyncio.Event()
        self.flushes = 0
        self.rows_written = 0

    def _wall(self, mono: float) -> datetime:
        return self.clock.wall_at(mono)

    # -- Recorder protocol -----------------------------------------------------------
    def attempt_started(
        self, call_id: str, lead: Lead, number: str, at: float, state: CallState
    ) -> None:
        self._new_attempts.append(
            {
                "call_id": call_id,
                "campaign_id": self.campaign_id,
                "contact_id": lead.contact_id,
                "number": number,
                "started_at": self._wall(at),
                "state": state.value,
                "live": False,
                "abandoned": False,
            }
        )

    def transition(
        self, call_id: str, at: float, src: CallState, dst: CallState, detail: str
    ) -> None:
        self._events.append(
            {
                "call_id": call_id,
                "at": self._wall(at),
                "from_state": src.value,
                "to_state": dst.value,
                "detail": detail,
            }
        )
        self._attempt_updates.setdefault(call_id, {})["state"] = dst.value

    def attempt_updated(self, call_id: str, values: dict[str, object]) -> None:
        row = self._attempt_updates.setdefault(call_id, {})
        row.update(values)
        ended = row.pop("ended_mono", None)
        if isinstance(ended, float):
            row["ended_at"] = self._wall(ended)

    def lead_updated(
        self, lead: Lead, status: str, next_at: float | None, last_result: str | None
    ) -> None:
        row = self._leads.setdefault(lead.contact_id, {})
        row.update(
            status=status,
            attempts=lead.attempts,
            number_index=lead.number_index,
            next_at=None if next_at is None else self._wall(next_at),
        )
        if last_result is not None:
            row["last_result"] = str(last_result)

    def gate_refused(self, lead: Lead, at: float, verdict: GateVerdict) -> None:
        self._refusals.append(
            {
                "campaign_id": self.campaign_id,
                "contact_id": lead.contact_id,
                "number": lead.number,
                "at": self._wall(at),
                "reason": verdict.reason[:40],
                "not_before": verdict.not_before,
            }
        )

    def agent_event(self, agent_id: str, at_mono: float, state: AgentState, detail: str) -> None:
        at = self._wall(at_mono)
        session = self._agent_session.get(agent_id)
        if session is None:
            n = self._agent_logins.get(agent_id, 0) + 1
            self._agent_logins[agent_id] = n
            session = f"{self.campaign_id}:{self.run_tag}:{agent_id}:{n}"
            self._agent_session[agent_id] = session
            self._sessions_new.append(
                {
                    "id": session,
                    "agent_name": agent_id,
                    "campaign_id": self.campaign_id,
                    "login_at": at,
                    "logout_at": None,
                }
            )
        self._agent_events.append(
            {"session_id": session, "at": at, "state": state.value, "detail": detail}
        )
        if state is AgentState.LOGGED_OUT:
            self._sessions_end[session] = at
            del self._agent_session[agent_id]

    def when_durable(self, callback: Callable[[], None]) -> None:
        if not self.durable_dials:
            callback()
            return
        self._after_flush.append(callback)
        self._wake.set()

    # -- writing ---------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return (
            len(self._new_attempts)
            + len(self._attempt_updates)
            + len(self._events)
            + len(self._leads)
            + len(self._agent_events)
        )

    async def flush(self) -> None:
        if not self.pending and not self._refusals and not self._after_flush:
            return
        new_attempts, self._new_attempts = self._new_attempts, []
        updates, self._attempt_updates = self._attempt_updates, {}
        events, self._events = self._events, []
        leads, self._leads = self._leads, {}
        refusals, self._refusals = self._refusals, []
        sessions, self._sessions_new = self._sessions_new, []
        ends, self._sessions_end = self._sessions_end, {}
        agent_events, self._agent_events = self._agent_events, []
        callbacks, self._after_flush = self._after_flush, []
        async with self.db.engine.begin() as conn:
            if new_attempts:
                await conn.execute(insert(A), new_attempts)
            if sessions:
                await conn.execute(insert(AS), sessions)
            if events:
                await conn.execute(insert(CE), events)
            if agent_events:
                await conn.execute(insert(AE), agent_events)
            if refusals:
                await conn.execute(insert(GR), refusals)
            for keys, rows in _group(
                [{"b_call_id": cid, **vals} for cid, vals in updates.items()]
            ).items():
                stmt = (
                    update(A)
                    .where(A.c.call_id == bindparam("b_call_id"))
                    .values({k: bindparam(k) for k in keys if k != "b_call_id"})
                )
                await conn.execute(stmt, rows)
            for keys, rows in _group(
                [{"b_contact_id": cid, **vals} for cid, vals in leads.items()]
            ).items():
                stmt = (
                    update(CC)
                    .where(
                        and_(
                            CC.c.campaign_id == self.campaign_id,
                            CC.c.contact_id == bindparam("b_contact_id"),
                        )
                    )
                    .values({k: bindparam(k) for k in keys if k != "b_contact_id"})
                )
                await conn.execute(stmt, rows)
            for sid, at in ends.items():
                await conn.execute(update(AS).where(AS.c.id == sid).values(logout_at=at))
        self.flushes += 1
        self.rows_written += (
            len(new_attempts) + len(updates) + len(events) + len(leads) + len(agent_events)
        )
        for cb in callbacks:
            cb()

    async def run_flusher(self, max_delay: float) -> None:
        """Live mode: flush as soon as a dial waits for durability, else every
        ``max_delay`` seconds.  Runs until cancelled; flushes once more on the way out."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max_delay)
                self._wake.clear()
                await self.flush()
        finally:
            await asyncio.shield(self.flush())


def _group(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """executemany needs one set of keys per statement."""
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(tuple(sorted(r)), []).append(r)
    return out
