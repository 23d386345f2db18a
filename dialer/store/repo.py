"""Queries and commands on the store that the CLI, the simulator and the engine
runner share: lists and contact import, campaigns, leads, crash recovery."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.callstate import OPEN_STATES, CallResult, CallState
from dialer.campaign import CampaignSettings
from dialer.contacts import ParsedContact
from dialer.ports import Lead
from dialer.store.db import Database
from dialer.store.models import (
    AgentSession,
    Attempt,
    CallEvent,
    Campaign,
    CampaignContact,
    Contact,
    ContactList,
    PhoneNumber,
    table_of,
)

A = table_of(Attempt)
CE = table_of(CallEvent)
CC = table_of(CampaignContact)
C = table_of(Contact)
PN = table_of(PhoneNumber)


async def ensure_list(conn: AsyncConnection, name: str, region: str, now: datetime) -> int:
    row = (await conn.execute(select(ContactList.id).where(ContactList.name == name))).first()
    if row is not None:
        return int(row[0])
    res = await conn.execute(
        insert(ContactList).values(name=name, default_region=region.upper(), created_at=now)
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    numbers_added: int = 0


async def store_contacts(
    conn: AsyncConnection, list_id: int, batch: Iterable[ParsedContact], now: datetime
) -> ImportSummary:
    """Upsert one batch: a contact already in the list (same dedupe key) gets its
    new numbers and fields merged instead of a duplicate."""
    batch = list(batch)
    out = ImportSummary()
    if not batch:
        return out
    keys = [p.dedupe_key for p in batch]
    existing: dict[str, tuple[int, dict[str, Any]]] = {}
    for i in range(0, len(keys), 500):
        rows = await conn.execute(
            select(C.c.id, C.c.dedupe_key, C.c.fields).where(
                and_(C.c.list_id == list_id, C.c.dedupe_key.in_(keys[i : i + 500]))
            )
        )
        for cid, key, fields in rows:
            existing[key] = (int(cid), dict(fields or {}))
    new = [p for p in batch if p.dedupe_key not in existing]
    if new:
        await conn.execute(
            insert(C),
            [
                {
                    "list_id": list_id,
                    "dedupe_key": p.dedupe_key,
                    "fields": p.fields,
                    "timezone": p.timezone,
                    "priority": p.priority,
                    "created_at": now,
                }
                for p in new
            ],
        )
        out.added = len(new)
        added = await conn.execute(
            select(C.c.id, C.c.dedupe_key).where(
                and_(C.c.list_id == list_id, C.c.dedupe_key.in_([p.dedupe_key for p in new]))
            )
        )
        for cid, key in added:
            existing[key] = (int(cid), {})
    ids = [existing[p.dedupe_key][0] for p in batch]
    have: dict[int, set[str]] = {}
    known_numbers = await conn.execute(
        select(PN.c.contact_id, PN.c.number).where(PN.c.contact_id.in_(ids))
    )
    for cid, number in known_numbers:
        have.setdefault(int(cid), set()).add(number)
    numbers: list[dict[str, Any]] = []
    new_keys = {p.dedupe_key for p in new}
    for p, cid in zip(batch, ids, strict=True):
        known = have.get(cid, set())
        pos = len(known)
        added_here = 0
        for number, col in p.numbers:
            if number not in known:
                numbers.append({"contact_id": cid, "number": number, "position": pos, "kind": col})
                known.add(number)
                pos += 1
                added_here += 1
        if p.dedupe_key in new_keys:
            continue
        old_fields = existing[p.dedupe_key][1]
        if added_here or old_fields != p.fields:
            out.updated += 1
            if old_fields != p.fields:
                await conn.execute(update(C).where(C.c.id == cid).values(fields=p.fields))
        else:
            out.unchanged += 1
    if numbers:
        await conn.execute(insert(PN), numbers)
    out.numbers_added = len(numbers)
    return out


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    list_id: int
    mode: str
    policy: str
    abandon_target: float
    status: str
    settings: dict[str, Any]


async def get_campaign(conn: AsyncConnection, name: str) -> CampaignRow | None:
    t = table_of(Campaign)
    row = (
        await conn.execute(
            select(
                t.c.id,
                t.c.name,
                t.c.list_id,
                t.c.mode,
                t.c.policy,
                t.c.abandon_target,
                t.c.status,
                t.c.settings,
            ).where(t.c.name == name)
        )
    ).first()
    if row is None:
        return None
    return CampaignRow(*row)


async def create_campaign(
    conn: AsyncConnection, settings: CampaignSettings, list_id: int, now: datetime
) -> int:
    res = await conn.execute(
        insert(Campaign).values(
            name=settings.name,
            list_id=list_id,
            mode=settings.mode.value,
            policy=settings.policy,
            abandon_target=settings.abandon_target,
            status="created",
            settings=settings.model_dump(mode="json"),
            created_at=now,
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


async def enroll_contacts(conn: AsyncConnection, campaign_id: int, list_id: int) -> list[int]:
    """Put every contact of the list that is not yet in the campaign into it;
    returns their ids."""
    already = select(CC.c.contact_id).where(CC.c.campaign_id == campaign_id)
    rows = await conn.execute(
        select(C.c.id).where(and_(C.c.list_id == list_id, C.c.id.not_in(already)))
    )
    ids = [int(r[0]) for r in rows]
    if ids:
        await conn.execute(
            insert(CC),
            [{"campaign_id": campaign_id, "contact_id": i, "status": "pending"} for i in ids],
        )
    return ids


async def recover(conn: AsyncConnection, campaign_id: int, now: datetime) -> int:
    """After a crash: close every attempt left open as interrupted, and put the
    contacts that were being dialled back in the queue.  Returns how many."""
    open_states = [s.value for s in OPEN_STATES]
    rows = (
        await conn.execute(
            select(A.c.call_id, A.c.state).where(
                and_(A.c.campaign_id == campaign_id, A.c.state.in_(open_states))
            )
        )
    ).all()
    if rows:
        await conn.execute(
            insert(CE),
            [
                {
                    "call_id": cid,
                    "at": now,
                    "from_state": st,
                    "to_state": CallState.INTERRUPTED.value,
                    "detail": "recovered after restart",
                }
                for cid, st in rows
            ],
        )
        await conn.execute(
            update(A)
            .where(and_(A.c.campaign_id == campaign_id, A.c.state.in_(open_states)))
            .values(
                state=CallState.INTERRUPTED.value,
                result=CallResult.INTERRUPTED.value,
                ended_at=now,
            )
        )
    await conn.execute(
        update(CC)
        .where(and_(CC.c.campaign_id == campaign_id, CC.c.status == "dialing"))
        .values(status="pending", last_result=CallResult.INTERRUPTED.value)
    )
    return len(rows)


async def load_leads(
    conn: AsyncConnection,
    campaign_id: int,
    contact_ids: list[int] | None = None,
    any_status: bool = False,
) -> list[tuple[Lead, datetime | None]]:
    """Pending contacts (with ``any_status``, every enrolled one) with their numbers
    in order, and when each may next be tried."""
    cond = CC.c.campaign_id == campaign_id
    if not any_status:
        cond = and_(cond, CC.c.status == "pending")
    if contact_ids is not None:
        cond = and_(cond, CC.c.contact_id.in_(contact_ids))
    rows = await conn.execute(
        select(
            CC.c.contact_id,
            CC.c.attempts,
            CC.c.number_index,
            CC.c.next_at,
            C.c.priority,
            C.c.timezone,
            C.c.fields,
        )
        .join(C, C.c.id == CC.c.contact_id)
        .where(cond)
        .order_by(CC.c.id)
    )
    leads: dict[int, tuple[Lead, datetime | None]] = {}
    for cid, attempts, nidx, next_at, prio, tz, fields in rows:
        leads[int(cid)] = (
            Lead(int(cid), [], nidx or 0, attempts or 0, prio or 0, tz, dict(fields or {})),
            next_at,
        )
    ids = list(leads)
    for i in range(0, len(ids), 900):
        nums = await conn.execute(
            select(PN.c.contact_id, PN.c.number)
            .where(PN.c.contact_id.in_(ids[i : i + 900]))
            .order_by(PN.c.contact_id, PN.c.position)
        )
        for cid, number in nums:
            leads[int(cid)][0].numbers.append(number)
    for i in range(0, len(ids), 900):
        # what the gate counts (attempts per number, per day, per 24 h) and the
        # cool-down after an abandoned call must hold across a restart too
        # (limits count this campaign's attempts; the cool-down follows the person
        # across campaigns, e.g. one moved here from another)
        for cid, camp, started, ended, number, abandoned in await conn.execute(
            select(A.c.contact_id, A.c.campaign_id, A.c.started_at, A.c.ended_at, A.c.number)
            .add_columns(A.c.abandoned)
            .where(A.c.contact_id.in_(ids[i : i + 900]))
            .order_by(A.c.started_at)
        ):
            lead = leads[int(cid)][0]
            if camp == campaign_id:
                at = started if started.tzinfo else started.replace(tzinfo=UTC)
                lead.attempt_log.append((at, number))
            if abandoned:
                end = ended or started
                end = end if end.tzinfo else end.replace(tzinfo=UTC)
                if lead.last_abandon_at is None or end > lead.last_abandon_at:
                    lead.last_abandon_at = end
    from dialer.store.models import Callback

    cb = table_of(Callback)
    for i in range(0, len(ids), 900):
        # a scheduled callback survives a restart: the gate keeps it until due
        for cid, due, agent in await conn.execute(
            select(cb.c.contact_id, cb.c.due_at, cb.c.agent).where(
                and_(
                    cb.c.campaign_id == campaign_id,
                    cb.c.status == "scheduled",
                    cb.c.contact_id.in_(ids[i : i + 900]),
                )
            )
        ):
            lead = leads[int(cid)][0]
            lead.callback_at = due if due.tzinfo else due.replace(tzinfo=UTC)
            lead.callback_agent = agent
    out = []
    for lead, nxt in leads.values():
        if lead.numbers:
            lead.number_index = min(lead.number_index, len(lead.numbers) - 1)
            out.append((lead, nxt))
    return out


@dataclass
class CampaignCounts:
    attempts: int = 0
    open_attempts: int = 0
    live: int = 0
    abandoned: int = 0
    results: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)


async def campaign_counts(conn: AsyncConnection, campaign_id: int) -> CampaignCounts:
    out = CampaignCounts()
    open_states = [s.value for s in OPEN_STATES]
    q = select(
        func.count(),
        func.sum(A.c.live.cast(Integer)),
        func.sum(A.c.abandoned.cast(Integer)),
        func.sum(A.c.state.in_(open_states).cast(Integer)),
    ).where(A.c.campaign_id == campaign_id)
    n, live, ab, op = (await conn.execute(q)).one()
    out.attempts, out.live, out.abandoned, out.open_attempts = (
        int(n or 0),
        int(live or 0),
        int(ab or 0),
        int(op or 0),
    )
    for res, cnt in await conn.execute(
        select(A.c.result, func.count()).where(A.c.campaign_id == campaign_id).group_by(A.c.result)
    ):
        out.results[str(res)] = int(cnt)
    for st, cnt in await conn.execute(
        select(CC.c.status, func.count())
        .where(CC.c.campaign_id == campaign_id)
        .group_by(CC.c.status)
    ):
        out.contacts[str(st)] = int(cnt)
    return out


async def list_has_contacts(conn: AsyncConnection, list_id: int) -> bool:
    row = (await conn.execute(select(C.c.id).where(C.c.list_id == list_id).limit(1))).first()
    return row is not None


async def count_agent_sessions(conn: AsyncConnection, campaign_id: int) -> int:
    q = (
        select(func.count())
        .select_from(AgentSession)
        .where(AgentSession.campaign_id == campaign_id)
    )
    return int((await conn.execute(q)).scalar_one())


__all__ = [
    "CampaignCounts",
    "Database",
    "ImportSummary",
    "campaign_counts",
    "create_campaign",
    "enroll_contacts",
    "ensure_list",
    "get_campaign",
    "load_leads",
    "recover",
    "store_contacts",
]


@dataclass
class DialOutlook:
    """What the store says about why a campaign may not be dialling."""

    status: str
    pending_due: int
    pending_later: int
    next_due_at: datetime | None
    later_by_reason: dict[str, tuple[int, datetime | None]]  # last result -> (n, earliest)
    done_by_reason: dict[str, int]
    refusals: dict[str, tuple[int, datetime | None]]  # gate reason -> (n, latest not_before)


async def dial_outlook(conn: AsyncConnection, campaign_id: int, now: datetime) -> DialOutlook:
    from dialer.store.models import GateRefusal

    camp_t = table_of(Campaign)
    status = (
        await conn.execute(select(camp_t.c.status).where(camp_t.c.id == campaign_id))
    ).scalar_one()
    naive_now = now.replace(tzinfo=None)
    due = pending_later = 0
    later: dict[str, tuple[int, datetime | None]] = {}
    rows = await conn.execute(
        select(CC.c.last_result, CC.c.next_at, func.count())
        .where(and_(CC.c.campaign_id == campaign_id, CC.c.status == "pending"))
        .group_by(CC.c.last_result, CC.c.next_at)
    )
    for last, nxt, n in rows:
        nxt_cmp = nxt.replace(tzinfo=None) if nxt is not None else None
        if nxt_cmp is None or nxt_cmp <= naive_now:
            due += int(n)
            continue
        pending_later += int(n)
        key = str(last or "new")
        cnt, first = later.get(key, (0, None))
        later[key] = (
            cnt + int(n),
            nxt if first is None or nxt_cmp < first.replace(tzinfo=None) else first,
        )
    done: dict[str, int] = {}
    for last, n in await conn.execute(
        select(CC.c.last_result, func.count())
        .where(and_(CC.c.campaign_id == campaign_id, CC.c.status == "done"))
        .group_by(CC.c.last_result)
    ):
        done[str(last)] = int(n)
    gr = table_of(GateRefusal)
    refusals: dict[str, tuple[int, datetime | None]] = {}
    for reason, n, latest in await conn.execute(
        select(gr.c.reason, func.count(), func.max(gr.c.not_before))
        .where(gr.c.campaign_id == campaign_id)
        .group_by(gr.c.reason)
    ):
        refusals[str(reason)] = (int(n), latest)
    firsts = [f for _, f in later.values() if f is not None]
    return DialOutlook(
        status=str(status),
        pending_due=due,
        pending_later=pending_later,
        next_due_at=min(firsts, key=lambda d: d.replace(tzinfo=None)) if firsts else None,
        later_by_reason=later,
        done_by_reason=done,
        refusals=refusals,
    )


async def contact_history(conn: AsyncConnection, contact_id: int) -> dict[str, Any] | None:
    """Everything the store knows about one contact, in time order: its numbers and
    fields, every attempt with its call-state events, every gate refusal."""
    from dialer.store.models import GateRefusal

    row = (
        await conn.execute(select(C.c.id, C.c.fields, C.c.timezone).where(C.c.id == contact_id))
    ).first()
    if row is None:
        return None
    numbers = [
        n
        for (n,) in await conn.execute(
            select(PN.c.number).where(PN.c.contact_id == contact_id).order_by(PN.c.position)
        )
    ]
    camp_t = table_of(Campaign)
    timeline: list[dict[str, Any]] = []
    attempts = await conn.execute(
        select(
            A.c.call_id,
            camp_t.c.name,
            A.c.number,
            A.c.started_at,
            A.c.ended_at,
            A.c.result,
            A.c.amd_label,
            A.c.agent,
            A.c.disposition,
        )
        .join(camp_t, camp_t.c.id == A.c.campaign_id)
        .where(A.c.contact_id == contact_id)
        .order_by(A.c.started_at)
    )
    call_ids = []
    for cid, camp, number, started, ended, result, amd, agent, disp in attempts:
        call_ids.append(cid)
        timeline.append(
            {
                "at": started,
                "kind": "attempt",
                "campaign": camp,
                "call_id": cid,
                "number": number,
                "ended_at": ended,
                "result": result,
                "amd": amd,
                "agent": agent,
                "disposition": disp,
            }
        )
    if call_ids:
        for cid, at, src, dst, detail in await conn.execute(
            select(CE.c.call_id, CE.c.at, CE.c.from_state, CE.c.to_state, CE.c.detail)
            .where(CE.c.call_id.in_(call_ids))
            .order_by(CE.c.id)
        ):
            timeline.append(
                {
                    "at": at,
                    "kind": "event",
                    "call_id": cid,
                    "from": src,
                    "to": dst,
                    "detail": detail,
                }
            )
    gr = table_of(GateRefusal)
    for camp, number, at, reason, nb in await conn.execute(
        select(camp_t.c.name, gr.c.number, gr.c.at, gr.c.reason, gr.c.not_before)
        .join(camp_t, camp_t.c.id == gr.c.campaign_id)
        .where(gr.c.contact_id == contact_id)
    ):
        timeline.append(
            {
                "at": at,
                "kind": "refusal",
                "campaign": camp,
                "number": number,
                "reason": reason,
                "not_before": nb,
            }
        )
    await _compliance_history(conn, contact_id, numbers, timeline)
    timeline.sort(key=lambda e: (e["at"].replace(tzinfo=None), e["kind"] != "attempt"))
    return {
        "contact_id": contact_id,
        "numbers": numbers,
        "fields": dict(row[1] or {}),
        "timezone": row[2],
        "timeline": timeline,
    }


async def _compliance_history(
    conn: AsyncConnection, contact_id: int, numbers: list[str], timeline: list[dict[str, Any]]
) -> None:
    """Dispositions (with their flags), callbacks booked and what became of them,
    and opt-outs of the contact's numbers (who, when, how)."""
    from dialer.store.models import AttemptDisposition, Callback, DncEntry, DncListRow

    camp_t = table_of(Campaign)
    ad = table_of(AttemptDisposition)
    for camp, cid, name, agent, source, at, success, dnc, callback in await conn.execute(
        select(
            camp_t.c.name,
            ad.c.call_id,
            ad.c.name,
            ad.c.agent,
            ad.c.source,
            ad.c.at,
            ad.c.success,
            ad.c.dnc,
            ad.c.callback,
        )
        .join(camp_t, camp_t.c.id == ad.c.campaign_id)
        .where(ad.c.contact_id == contact_id)
    ):
        flags = [f for f, on in (("success", success), ("dnc", dnc), ("callback", callback)) if on]
        timeline.append(
            {
                "at": at,
                "kind": "disposition",
                "campaign": camp,
                "call_id": cid,
                "disposition": name,
                "agent": agent,
                "detail": f"by {source}" + (f"; {', '.join(flags)}" if flags else ""),
            }
        )
    cb = table_of(Callback)
    for camp, cid, due, local, tz, agent, st, source, created, closed in await conn.execute(
        select(
            camp_t.c.name,
            cb.c.call_id,
            cb.c.due_at,
            cb.c.local_time,
            cb.c.timezone,
            cb.c.agent,
            cb.c.status,
            cb.c.source,
            cb.c.created_at,
            cb.c.closed_at,
        )
        .join(camp_t, camp_t.c.id == cb.c.campaign_id)
        .where(cb.c.contact_id == contact_id)
    ):
        timeline.append(
            {
                "at": created,
                "kind": "callback",
                "campaign": camp,
                "call_id": cid,
                "agent": agent,
                "not_before": due,
                "detail": f"{st}: {local} {tz}"
                + (f" for {agent}" if agent else " (anyone)")
                + f", booked by {source}"
                + (f", closed {closed}" if closed else ""),
            }
        )
    if numbers:
        lt, et = table_of(DncListRow), table_of(DncEntry)
        for lst, value, source, by, at, reason in await conn.execute(
            select(lt.c.name, et.c.value, et.c.source, et.c.added_by, et.c.created_at, et.c.reason)
            .join(lt, lt.c.id == et.c.list_id)
            .where(et.c.value.in_(numbers))
        ):
            timeline.append(
                {
                    "at": at,
                    "kind": "opt_out" if source in ("agent", "ivr", "api", "sms") else "dnc",
                    "number": value,
                    "agent": by,
                    "reason": reason,
                    "detail": f"on {lst} by {source}" + (f" ({by})" if by else ""),
                }
            )
