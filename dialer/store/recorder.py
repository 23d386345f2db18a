"""The engine's recorder backed by the database.

The engine calls it synchronously; rows are buffered and written in one
transaction per flush, with the updates of one attempt merged into one row.
``when_durable`` callbacks (the dial itself) run only after the flush that
commits the attempt row, so a crash can never leave a dial without its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, update

from dialer.agentstate import AgentState
from dialer.callstate import CallState
from dialer.clock import Clock
from dialer.ports import DispositionRecord, GateVerdict, Lead, OptOut
from dialer.store import dnc_repo
from dialer.store.db import Database
from dialer.store.models import (
    AgentEvent,
    AgentSession,
    Attempt,
    AttemptDisposition,
    Callback,
    CallEvent,
    Campaign,
    CampaignContact,
    GateRefusal,
    table_of,
)

log = logging.getLogger(__name__)

A = table_of(Attempt)
CE = table_of(CallEvent)
CC = table_of(CampaignContact)
AS = table_of(AgentSession)
AE = table_of(AgentEvent)
GR = table_of(GateRefusal)
AD = table_of(AttemptDisposition)
CB = table_of(Callback)
CAMP = table_of(Campaign)


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
        self._dispositions: list[dict[str, Any]] = []
        self._optouts: list[OptOut] = []
        self._moves: list[tuple[int, str]] = []
        # callbacks booked and served, in order (a booking and its dial may fall
        # into one flush)
        self._callback_ops: list[tuple[str, dict[str, Any]]] = []
        self._wake = asyncio.Event()
        self.flushes = 0
        self.failed_flushes = 0  # retried: their rows were kept for the next flush
        self._stopping = False
        self.flushing = 0  # flushes in progress (a reader may wait for them)
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
                # the gate answers in the contact's zone; SQLite would keep the
                # local digits and drop the offset, so store UTC
                "not_before": None
                if verdict.not_before is None
                else verdict.not_before.astimezone(UTC),
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

    def disposition(self, record: DispositionRecord) -> None:
        self._dispositions.append(
            {
                "call_id": record.call_id,
                "campaign_id": self.campaign_id,
                "contact_id": record.contact_id,
                "name": record.name,
                "agent": record.agent[:100],
                "source": "agent",
                "at": self._wall(record.at),
                "known": record.known,
                "success": record.success,
                "contact": record.contact,
                "final": record.final,
                "dnc": record.dnc,
                "callback": record.callback,
            }
        )

    def opted_out(self, record: OptOut) -> None:
        self._optouts.append(record)
        self._wake.set()  # an opt-out is written at once, not with the next batch

    def lead_moved(self, lead: Lead, to_campaign: str, at: float) -> None:
        self._moves.append((lead.contact_id, to_campaign))

    def callback_booked(self, lead: Lead, source: str) -> None:
        assert lead.callback_at is not None
        self._callback_ops.append(
            (
                "booked",
                {
                    "contact_id": lead.contact_id,
                    "due_at": lead.callback_at.astimezone(UTC),
                    "local_time": lead.callback_at.replace(tzinfo=None).isoformat(
                        timespec="minutes"
                    ),
                    "timezone": str(lead.callback_at.tzinfo or ""),
                    "agent": lead.callback_agent,
                    "source": source[:50],
                    "created_at": self.clock.wall(),
                },
            )
        )

    def callback_dialled(self, lead: Lead, call_id: str) -> None:
        self._callback_ops.append(
            (
                "dialled",
                {"contact_id": lead.contact_id, "call_id": call_id, "at": self.clock.wall()},
            )
        )

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
            + len(self._dispositions)
            + len(self._optouts)
            + len(self._moves)
            + len(self._callback_ops)
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
        self.flushing += 1
        dispositions, self._dispositions = self._dispositions, []
        optouts, self._optouts = self._optouts, []
        moves, self._moves = self._moves, []
        cb_ops, self._callback_ops = self._callback_ops, []
        try:
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
                if dispositions:
                    await conn.execute(insert(AD), dispositions)
                for op, values in cb_ops:
                    await self._write_callback(conn, op, values)
                for o in optouts:
                    await write_optout(conn, o)
                for contact_id, target in moves:
                    await enroll_moved(conn, contact_id, target)
        except BaseException:
            # Nothing is lost: the batch goes back in front of what came since, and
            # the next flush writes both (a busy or restarting database is transient).
            self._new_attempts = new_attempts + self._new_attempts
            self._attempt_updates = _merge(updates, self._attempt_updates)
            self._events = events + self._events
            self._leads = _merge(leads, self._leads)
            self._refusals = refusals + self._refusals
            self._sessions_new = sessions + self._sessions_new
            self._sessions_end = {**ends, **self._sessions_end}
            self._agent_events = agent_events + self._agent_events
            self._after_flush = callbacks + self._after_flush
            self._dispositions = dispositions + self._dispositions
            self._optouts = optouts + self._optouts
            self._moves = moves + self._moves
            self._callback_ops = cb_ops + self._callback_ops
            self.failed_flushes += 1
            raise
        finally:
            self.flushing -= 1
        self.flushes += 1
        self.rows_written += (
            len(new_attempts)
            + len(updates)
            + len(events)
            + len(leads)
            + len(agent_events)
            + len(dispositions)
            + len(optouts)
            + len(moves)
            + len(cb_ops)
        )
        for cb in callbacks:
            cb()

    async def _write_callback(self, conn: Any, op: str, v: dict[str, Any]) -> None:
        scheduled = and_(
            CB.c.campaign_id == self.campaign_id,
            CB.c.contact_id == v["contact_id"],
            CB.c.status == "scheduled",
        )
        if op == "booked":
            now = v["created_at"]
            await conn.execute(update(CB).where(scheduled).values(status="replaced", closed_at=now))
            await conn.execute(
                insert(CB).values(
                    campaign_id=self.campaign_id,
                    status="scheduled",
                    created_by="",
                    note="",
                    **v,
                )
            )
        else:
            await conn.execute(
                update(CB)
                .where(scheduled)
                .values(status="dialled", call_id=v["call_id"], closed_at=v["at"])
            )

    def stop_flusher(self) -> None:
        """Ask :meth:`run_flusher` to finish after the flush under way: a flush
        cancelled halfway can leave its SQLite connection holding the write lock
        until it is collected, and the last flush then finds the database locked."""
        self._stopping = True
        self._wake.set()

    async def run_flusher(self, max_delay: float) -> None:
        """Live mode: flush as soon as a dial waits for durability, else every
        ``max_delay`` seconds.  Runs until cancelled; flushes once more on the way out.
        A flush that fails is logged and retried (its rows are kept), with a
        growing pause, so a database that is busy or restarting loses nothing."""
        backoff = 0.0
        try:
            while not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(max_delay, backoff))
                self._wake.clear()
                try:
                    await self.flush()
                    backoff = 0.0
                except Exception:
                    backoff = min(5.0, max(0.5, backoff * 2))
                    log.exception(
                        "store flush failed; keeping the rows, retrying in %.1f s", backoff
                    )
        finally:
            await asyncio.shield(self.flush())


def _merge(
    older: dict[Any, dict[str, Any]], newer: dict[Any, dict[str, Any]]
) -> dict[Any, dict[str, Any]]:
    """Column updates per row key: the newer value of a column wins."""
    out = {k: dict(v) for k, v in older.items()}
    for k, v in newer.items():
        out.setdefault(k, {}).update(v)
    return out


def _group(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """executemany needs one set of keys per statement."""
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(tuple(sorted(r)), []).append(r)
    return out


async def write_optout(conn: Any, o: OptOut) -> None:
    """The opt-out as a DNC entry on its list, with who/when/how."""
    lid = await dnc_repo.ensure_list(conn, o.list_name, o.at, list(o.list_campaigns))
    where = f"campaign {o.campaign}" + (f", call {o.call_id}" if o.call_id else "")
    await dnc_repo.add_entries(
        conn,
        lid,
        [dnc_repo.EntryIn(o.number, None, f"opt-out ({where})"[:200], o.source, o.by[:100])],
        o.at,
    )


async def enroll_moved(conn: Any, contact_id: int, target: str) -> bool:
    """Puts a contact into another campaign (pending, due now).  False if that
    campaign does not exist (configuration validates this; a campaign deleted
    since is reported by the caller's alert, not fatal)."""
    from sqlalchemy import select

    row = (await conn.execute(select(CAMP.c.id).where(CAMP.c.name == target))).first()
    if row is None:
        return False
    cid = int(row[0])
    existing = (
        await conn.execute(
            select(CC.c.id).where(and_(CC.c.campaign_id == cid, CC.c.contact_id == contact_id))
        )
    ).first()
    if existing is None:
        await conn.execute(
            insert(CC).values(campaign_id=cid, contact_id=contact_id, status="pending")
        )
    else:
        await conn.execute(
            update(CC).where(CC.c.id == existing[0]).values(status="pending", next_at=None)
        )
    return True
