"""After a restart the gate still knows each contact's attempts and abandoned
calls: per-number, per-day and 24-hour limits and the 72-hour cool-down hold (the
cool-down across campaigns)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from dialer.campaign import CampaignSettings
from dialer.compliance.gate import gate_for
from dialer.contacts import ParsedContact
from dialer.store import repo
from dialer.store.db import Database
from dialer.store.models import Attempt
from tests.conftest import ANYTIME_CALLTIMES


def test_restart_restores_attempt_log_and_abandon_cooldown(sqlite_url: str) -> None:
    async def go() -> None:
        db = Database(sqlite_url)
        await db.migrate()
        now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
        settings = CampaignSettings(
            name="c", calltimes=ANYTIME_CALLTIMES, max_attempts=10, max_attempts_per_24h=3
        )
        try:
            async with db.engine.begin() as conn:
                lid = await repo.ensure_list(conn, "l", "US", now)
                await repo.store_contacts(
                    conn,
                    lid,
                    [
                        ParsedContact(2, "a", [("+12125550100", "phone")], {}),
                        ParsedContact(3, "b", [("+12125550101", "phone")], {}),
                    ],
                    now,
                )
                camp = await repo.create_campaign(conn, settings, lid, now)
                a, b = await repo.enroll_contacts(conn, camp, lid)
                rows = [
                    # a: abandoned 10 hours ago (the cool-down runs 72 h)
                    (a, "+12125550100", now - timedelta(hours=10), True),
                    # b: three plain attempts within the last 24 hours
                    (b, "+12125550101", now - timedelta(hours=20), False),
                    (b, "+12125550101", now - timedelta(hours=5), False),
                    (b, "+12125550101", now - timedelta(hours=1), False),
                ]
                await conn.execute(
                    insert(Attempt),
                    [
                        {
                            "call_id": f"x{i}",
                            "campaign_id": camp,
                            "contact_id": cid,
                            "number": number,
                            "started_at": at,
                            "ended_at": at + timedelta(seconds=30),
                            "state": "done",
                            "abandoned": abandoned,
                        }
                        for i, (cid, number, at, abandoned) in enumerate(rows)
                    ],
                )
            async with db.engine.connect() as conn:
                leads = {lead.contact_id: lead for lead, _ in await repo.load_leads(conn, camp)}
            gate = gate_for(settings)
            assert leads[a].last_abandon_at == now - timedelta(hours=10) + timedelta(seconds=30)
            assert gate(leads[a], now).reason == "abandon_cooldown"
            assert len(leads[b].attempt_log) == 3
            assert gate(leads[b], now).reason == "rolling_24h_attempt_limit"
            assert gate(leads[b], now + timedelta(hours=5)).allowed
            # another campaign calling the same person (one moved there, say): its
            # own attempt counts start afresh, the cool-down does not
            async with db.engine.begin() as conn:
                other = await repo.create_campaign(
                    conn, settings.model_copy(update={"name": "other"}), lid, now
                )
                await repo.enroll_contacts(conn, other, lid)
            async with db.engine.connect() as conn:
                there = {lead.contact_id: lead for lead, _ in await repo.load_leads(conn, other)}
            assert there[a].attempt_log == [] and there[b].attempt_log == []
            assert gate(there[a], now).reason == "abandon_cooldown"
        finally:
            await db.close()

    asyncio.run(go())
