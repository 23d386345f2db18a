"""The compliance endpoints against the real app, a running engine (simulated PBX,
real clock) and a real SQLite store: DNC lists, opt-outs, callbacks, dispositions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from dialer.config import parse_config
from dialer.ports import Lead
from dialer.runtime import Runtime
from dialer.store import repo
from dialer.store.models import Attempt, Callback, CampaignContact, PhoneNumber
from sim.scenario import parse_scenario
from sim.world import SimWorld
from tests.api.test_api import wait_for
from tests.conftest import ANYTIME_CALLTIMES, CONFIG, FAST


async def settled(runtime: Runtime, name: str = "c1") -> None:
    """What the engine recorded so far is committed: the background flusher may
    hold a batch in its own transaction when this flush finds nothing to do."""
    rec = runtime.get(name).recorder
    await rec.flush()
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while rec.flushing and loop.time() < end:
        await asyncio.sleep(0.02)
    await rec.flush()


async def _contact_with_number(runtime: Runtime, prefix: str = "+1") -> tuple[int, str]:
    async with runtime.db.engine.connect() as conn:
        cid, number = (
            await conn.execute(
                select(PhoneNumber.contact_id, PhoneNumber.number)
                .where(PhoneNumber.number.startswith(prefix))
                .order_by(PhoneNumber.id.desc())
                .limit(1)
            )
        ).one()
    return int(cid), str(number)


async def test_dnc_entries_add_check_remove_and_reach_the_gate(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    r = await client.post(
        "/api/dnc/suppress/entries",
        json={"value": "(212) 555-0177", "reason": "complaint", "expires_at": "2099-01-01T00:00"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["value"] == "+12125550177" and r.json()["source"] == "api"
    lists = {x["name"]: x for x in (await client.get("/api/dnc")).json()}
    assert lists["suppress"]["entries"] == 1 and lists["suppress"]["campaigns"] == []
    chk = (await client.get("/api/dnc/check", params={"number": "2125550177"})).json()
    assert chk["blocked"] is True
    assert chk["matches"] == [
        {"list": "suppress", "entry": "+12125550177", "expires_at": "2099-01-01T00:00:00+00:00"}
    ]
    # the running engine's gate refuses it from the next dial on
    gate = runtime.get("c1").engine.gate
    assert gate(Lead(1, ["+12125550177"]), datetime.now(UTC)).reason == "dnc"
    entries = (await client.get("/api/dnc/suppress/entries")).json()
    assert entries[0]["reason"] == "complaint" and entries[0]["added_by"] == "bootstrap-admin"
    # a prefix covers a whole area code
    r = await client.post("/api/dnc/suppress/entries", json={"value": "+1305*"})
    assert r.status_code == 201
    assert (await client.get("/api/dnc/check", params={"number": "+13055550100"})).json()["blocked"]
    r = await client.delete("/api/dnc/suppress/entries/+12125550177")
    assert r.status_code == 200 and r.json()["removed"] == "+12125550177"
    assert gate(Lead(1, ["+12125550177"]), datetime.now(UTC)).reason != "dnc"
    chk = (await client.get("/api/dnc/check", params={"number": "+12125550177"})).json()
    assert chk["blocked"] is False
    assert (await client.delete("/api/dnc/suppress/entries/+12125550177")).status_code == 404
    assert (await client.delete("/api/dnc/nolist/entries/+12125550177")).status_code == 404
    assert (await client.get("/api/dnc/nolist/entries")).status_code == 404
    r = await client.post("/api/dnc/suppress/entries", json={"value": "not a number"})
    assert r.status_code == 400 and r.json()["detail"].startswith("value:")
    r = await client.post("/api/dnc/suppress/entries", json={"value": "+12125550100", "x": 1})
    assert r.status_code == 422
    r = await client.get("/api/dnc/check", params={"number": "+1212*"})
    assert r.status_code == 400
    # the path serves GET and POST only
    r = await client.put("/api/dnc/suppress/entries", json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


async def test_roles_for_dnc_and_callbacks(client: httpx.AsyncClient) -> None:
    token = (await client.post("/api/tokens", json={"name": "ag", "role": "agent"})).json()["token"]
    agent = {"Authorization": f"Bearer {token}"}
    r = await client.post("/api/dnc/x/entries", json={"value": "+12125550100"}, headers=agent)
    assert r.status_code == 403
    assert (await client.get("/api/dnc", headers=agent)).status_code == 200
    assert (
        await client.get("/api/dnc/check?number=+12125550100", headers=agent)
    ).status_code == 200
    assert (await client.get("/api/campaigns/c1/callbacks", headers=agent)).status_code == 200
    assert (await client.get("/api/dnc", headers={"Authorization": ""})).status_code == 401


async def test_api_opt_out_lands_on_the_campaign_list_with_source(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    r = await client.post("/api/campaigns/c1/opt-out", json={"number": "212 555 0199"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["list"], body["source"], body["by"]) == ("optouts", "api", "bootstrap-admin")
    gate = runtime.get("c1").engine.gate
    assert gate(Lead(1, ["+12125550199"]), datetime.now(UTC)).reason == "dnc"
    await settled(runtime)
    entries = (await client.get("/api/dnc/optouts/entries")).json()
    assert [(e["value"], e["source"], e["added_by"]) for e in entries] == [
        ("+12125550199", "api", "bootstrap-admin")
    ]
    assert "campaign c1" in entries[0]["reason"]
    r = await client.post("/api/campaigns/c1/opt-out", json={"number": "nope"})
    assert r.status_code == 400 and "number" in r.json()["detail"]
    r = await client.post("/api/campaigns/zz/opt-out", json={"number": "2125550100"})
    assert r.status_code == 404


async def test_callbacks_book_list_cancel_in_the_contacts_zone(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cid, _number = await _contact_with_number(runtime)
    local = (datetime.now(UTC) + timedelta(days=2)).replace(
        hour=10, minute=30, second=0, microsecond=0, tzinfo=None
    )
    r = await client.post(
        "/api/campaigns/c1/callbacks",
        json={"contact_id": cid, "at": local.isoformat(), "agent": "agent0002", "note": "wife"},
    )
    assert r.status_code == 201, r.text
    cb = r.json()
    assert cb["status"] == "scheduled" and cb["agent"] == "agent0002"
    assert cb["local_time"] == local.strftime("%Y-%m-%dT%H:%M")
    due = datetime.fromisoformat(cb["due_at"])
    assert due.astimezone(ZoneInfo(cb["timezone"])).replace(tzinfo=None) == local
    # the engine holds the callback on its own lead for the contact, once
    engine = runtime.get("c1").engine
    leads = [x for x in engine._all_leads() if x.contact_id == cid]
    assert (
        len(leads) == 1 and leads[0].callback_at == due and leads[0].callback_agent == "agent0002"
    )
    r = await client.post(
        "/api/campaigns/c1/callbacks", json={"contact_id": cid, "at": local.isoformat()}
    )
    assert r.status_code == 409 and "already has callback" in r.json()["detail"]
    async with runtime.db.engine.connect() as conn:
        h = await repo.contact_history(conn, cid)
    assert h is not None
    (booked,) = [e for e in h["timeline"] if e["kind"] == "callback"]
    assert booked["detail"].startswith(f"scheduled: {local:%Y-%m-%dT%H:%M}")
    assert "for agent0002, booked by api" in booked["detail"]
    listed = (
        await client.get("/api/campaigns/c1/callbacks", params={"status": "scheduled"})
    ).json()
    assert [x["id"] for x in listed] == [cb["id"]]
    r = await client.delete(f"/api/campaigns/c1/callbacks/{cb['id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert next(x for x in engine._all_leads() if x.contact_id == cid).callback_at is None
    assert (await client.delete(f"/api/campaigns/c1/callbacks/{cb['id']}")).status_code == 409
    assert (await client.delete("/api/campaigns/c1/callbacks/99999")).status_code == 404
    # bad requests say what and where
    r = await client.post(
        "/api/campaigns/c1/callbacks", json={"contact_id": 999999, "at": "2030-01-01T10:00"}
    )
    assert r.status_code == 404 and "contact_id" in r.json()["detail"]
    r = await client.post(
        "/api/campaigns/c1/callbacks", json={"contact_id": cid, "at": "2001-01-01T10:00"}
    )
    assert r.status_code == 400 and "in the past" in r.json()["detail"]
    r = await client.post(
        "/api/campaigns/c1/callbacks",
        json={"contact_id": cid, "at": "2030-01-01T10:00", "timezone": "Mars/Base"},
    )
    assert r.status_code == 400 and "timezone" in r.json()["detail"]
    r = await client.post("/api/campaigns/c1/callbacks", json={"contact_id": cid, "at": "soon"})
    assert r.status_code == 422
    assert (
        await client.get("/api/campaigns/c1/callbacks", params={"status": "x"})
    ).status_code == 422
    r = await client.patch(f"/api/campaigns/c1/callbacks/{cb['id']}", json={})
    assert r.status_code == 405 and r.headers["allow"] == "DELETE"


async def test_callback_outside_hours_or_on_dnc_is_refused_with_the_reason(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    r = await client.post(
        "/api/campaigns",
        json={"name": "tcpa", "list": "l1", "autostart": False, "calltimes": "us-tcpa"},
    )
    assert r.status_code == 201, r.text
    cid, number = await _contact_with_number(runtime)
    day = (datetime.now(UTC) + timedelta(days=9)).date()
    r = await client.post(
        "/api/campaigns/tcpa/callbacks",
        json={"contact_id": cid, "at": f"{day.isoformat()}T22:30", "timezone": "America/Chicago"},
    )
    assert r.status_code == 400
    msg = r.json()["detail"]
    # 22:30 is closed whatever the day (a public holiday says so instead)
    assert "next callable time is" in msg and "22:30 America/Chicago" in msg
    assert "outside the callable hours of 'us-tcpa'" in msg or "public holiday" in msg
    await client.post("/api/campaigns/tcpa/opt-out", json={"number": number})
    r = await client.post(
        "/api/campaigns/tcpa/callbacks",
        json={"contact_id": cid, "at": f"{day.isoformat()}T12:00", "timezone": "America/Chicago"},
    )
    assert r.status_code == 400 and "dnc" in r.json()["detail"] and number in r.json()["detail"]


async def test_callback_for_a_contact_out_of_attempts_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from sqlalchemy import update

    cid, _ = await _contact_with_number(runtime)
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            update(CampaignContact).where(CampaignContact.contact_id == cid).values(attempts=3)
        )
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = await client.post("/api/campaigns/c1/callbacks", json={"contact_id": cid, "at": at})
    assert r.status_code == 400
    assert r.json()["detail"] == (
        f"contact_id: contact {cid} has had all 3 attempts this campaign allows (max_attempts)"
    )


async def test_callback_for_a_number_spanning_zones_needs_the_zone(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    r = await client.post("/api/lists/l1/contact", json={"numbers": ["+1 800 555 0123"]})
    assert r.status_code == 201
    cid, _ = await _contact_with_number(runtime, "+1800")
    at = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT11:00")
    r = await client.post("/api/campaigns/c1/callbacks", json={"contact_id": cid, "at": at})
    assert r.status_code == 400 and "several time zones" in r.json()["detail"]
    r = await client.post(
        "/api/campaigns/c1/callbacks",
        json={"contact_id": cid, "at": at, "timezone": "America/Denver"},
    )
    assert r.status_code == 201 and r.json()["timezone"] == "America/Denver"


async def test_due_callback_is_dialled_once_and_a_restart_does_not_redial_it(
    client: httpx.AsyncClient, runtime: Runtime, tmp_path: object
) -> None:
    cid, _ = await _contact_with_number(runtime)
    now = datetime.now(UTC) + timedelta(seconds=1)
    r = await client.post(
        "/api/campaigns/c1/callbacks", json={"contact_id": cid, "at": now.isoformat()}
    )
    assert r.status_code == 201, r.text
    cb_id = r.json()["id"]
    engine = runtime.get("c1").engine
    recorder = runtime.get("c1").recorder

    async def served() -> bool:
        await recorder.flush()
        async with runtime.db.engine.connect() as conn:
            st = (
                await conn.execute(select(Callback.status).where(Callback.id == cb_id))
            ).scalar_one()
        return st == "dialled"

    loop_end = datetime.now(UTC) + timedelta(seconds=15)
    while not await served():
        assert datetime.now(UTC) < loop_end, "callback not dialled in time"
        await wait_for(lambda: True)
    async with runtime.db.engine.connect() as conn:
        call_id = (
            await conn.execute(select(Callback.call_id).where(Callback.id == cb_id))
        ).scalar_one()
        assert (
            await conn.execute(select(Attempt.contact_id).where(Attempt.call_id == call_id))
        ).scalar_one() == cid
    assert all(x.callback_at is None for x in engine._all_leads() if x.contact_id == cid)
    # a restart loads no scheduled callback for it
    await runtime.stop()
    rt2 = Runtime(parse_config(CONFIG), runtime.db, SimWorld(parse_scenario(FAST), 2))
    rt2.cfg.campaigns[0].autostart = False
    await rt2.start()
    try:
        again = [x for x in rt2.get("c1").engine._all_leads() if x.contact_id == cid]
        assert all(x.callback_at is None for x in again)
    finally:
        await rt2.stop()


async def test_a_scheduled_callback_survives_a_restart(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cid, _ = await _contact_with_number(runtime)
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    r = await client.post(
        "/api/campaigns/c1/callbacks",
        json={"contact_id": cid, "at": at.isoformat(), "agent": "agent0001"},
    )
    assert r.status_code == 201
    await runtime.stop()
    rt2 = Runtime(parse_config(CONFIG), runtime.db, SimWorld(parse_scenario(FAST), 2))
    rt2.cfg.campaigns[0].autostart = False
    await rt2.start()
    try:
        leads = [x for x in rt2.get("c1").engine._all_leads() if x.contact_id == cid]
        assert len(leads) == 1
        assert leads[0].callback_at == at and leads[0].callback_agent == "agent0001"
        async with rt2.db.engine.connect() as conn:
            status = (
                await conn.execute(
                    select(CampaignContact.status).where(CampaignContact.contact_id == cid)
                )
            ).scalar_one()
        assert status == "pending"
    finally:
        await rt2.stop()


async def test_dispositions_of_an_attempt(client: httpx.AsyncClient, runtime: Runtime) -> None:
    engine = runtime.get("c1").engine
    await wait_for(lambda: engine.counters.connects >= 1 and len(engine.results_by_call) >= 2, 20)
    await settled(runtime)
    async with runtime.db.engine.connect() as conn:
        call_id, number, disp = (
            await conn.execute(
                select(Attempt.call_id, Attempt.number, Attempt.disposition)
                .where(Attempt.disposition.is_not(None))
                .limit(1)
            )
        ).one()
    # the simulated agents' own wrap-up codes are stored per attempt with their flags
    got = (await client.get(f"/api/attempts/{call_id}/dispositions")).json()
    assert got[0]["name"] == disp and got[0]["source"] == "agent" and got[0]["known"]
    assert got[0]["success"] == (disp == "sale")
    r = await client.post(f"/api/attempts/{call_id}/dispositions", json={"name": "bogus"})
    assert r.status_code == 400 and "known: callback, dnc" in r.json()["detail"]
    r = await client.post(f"/api/attempts/{call_id}/dispositions", json={"name": "dnc"})
    assert r.status_code == 201 and r.json()["flags"]["dnc"] is True
    got = (await client.get(f"/api/attempts/{call_id}/dispositions")).json()
    assert [g["name"] for g in got] == [disp, "dnc"] and got[1]["source"] == "api"
    # a dnc code is an opt-out: the number is refused at once
    assert engine.gate(Lead(1, [number]), datetime.now(UTC)).reason == "dnc"
    # and the contact's audit trail shows both codes and the opt-out
    await settled(runtime)
    async with runtime.db.engine.connect() as conn:
        contact = (
            await conn.execute(select(Attempt.contact_id).where(Attempt.call_id == call_id))
        ).scalar_one()
        h = await repo.contact_history(conn, contact)
    assert h is not None
    kinds = [(e["kind"], e.get("disposition")) for e in h["timeline"]]
    assert ("disposition", disp) in kinds and ("disposition", "dnc") in kinds
    optouts = [e for e in h["timeline"] if e["kind"] == "opt_out"]
    assert optouts and "by api (bootstrap-admin)" in optouts[0]["detail"]
    assert (await client.get("/api/attempts/none/dispositions")).status_code == 404
    r = await client.post("/api/attempts/none/dispositions", json={"name": "sale"})
    assert r.status_code == 404


async def test_move_target_must_exist(client: httpx.AsyncClient) -> None:
    body = {
        "name": "m1",
        "list": "l1",
        "autostart": False,
        "calltimes": ANYTIME_CALLTIMES,
        "treatments": {"no_answer": {"action": "retry", "move_to": "sms", "move_after": 3}},
    }
    r = await client.post("/api/campaigns", json=body)
    assert r.status_code == 400
    assert (
        r.json()["detail"]
        == "body.treatments.no_answer.move_to: no campaign named 'sms' (known: c1)"
    )
    body["treatments"]["no_answer"]["move_to"] = "c1"  # type: ignore[index]
    assert (await client.post("/api/campaigns", json=body)).status_code == 201


async def test_refusal_times_in_the_contacts_zone_are_stored_as_utc(runtime: Runtime) -> None:
    from dialer.ports import GateVerdict
    from dialer.store.models import GateRefusal

    crt = runtime.get("c1")
    cid, number = await _contact_with_number(runtime)
    local = datetime(2026, 3, 2, 8, 0, tzinfo=ZoneInfo("America/New_York"))
    assert runtime.clock is not None
    crt.recorder.gate_refused(
        Lead(cid, [number]), runtime.clock.monotonic(), GateVerdict(False, "outside_hours", local)
    )
    await settled(runtime)
    async with runtime.db.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(GateRefusal.not_before).where(GateRefusal.reason == "outside_hours")
            )
        ).scalar_one()
    assert stored.replace(tzinfo=UTC) == local


async def test_a_machine_result_moves_the_contact_to_the_other_campaign(tmp_path: Path) -> None:
    from dialer.store.db import Database
    from dialer.store.models import Campaign

    cfg = parse_config(
        CONFIG
        + f"""
[campaigns.treatments.machine]
action = "move"
move_to = "sms"

[[campaigns]]
name = "sms"
list = "l-sms"
autostart = false
no_answer_timeout_s = 15
calltimes = "{ANYTIME_CALLTIMES}"
"""
    )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'move.db'}")
    machines = FAST.replace("machine_share = 0.2", "machine_share = 0.9")
    rt = Runtime(cfg, db, SimWorld(parse_scenario(machines), 1))
    await rt.start()
    try:
        sms = rt.get("sms").engine
        before = len(sms.leads)
        await wait_for(lambda: rt.get("c1").engine.counters.results.get("machine", 0) >= 2, 30)
        await rt.get("c1").recorder.flush()
        await wait_for(lambda: len(sms.leads) >= before + 2, 5)
        async with db.engine.connect() as conn:
            camp = {n: i for i, n in (await conn.execute(select(Campaign.id, Campaign.name)))}
            rows = (
                await conn.execute(
                    select(CampaignContact.campaign_id, CampaignContact.status).where(
                        CampaignContact.contact_id.in_(
                            select(CampaignContact.contact_id).where(
                                CampaignContact.status == "moved"
                            )
                        )
                    )
                )
            ).all()
        moved = [r for r in rows if r[0] == camp["c1"]]
        arrived = [r for r in rows if r[0] == camp["sms"]]
        assert len(moved) >= 2 and len(arrived) == len(moved)
        assert {s for _, s in arrived} <= {"pending", "dialing", "done"}
    finally:
        await rt.stop()
        await db.close()


async def test_dnc_entries_and_callbacks_written_by_another_process_reach_the_engine(
    runtime: Runtime,
) -> None:
    """What `dialer dnc add` or another API process writes to the store binds the
    running engine within a tick or two."""
    from typer.testing import CliRunner

    from dialer.cli import app as cli
    from dialer.store import callbacks_repo

    engine = runtime.get("c1").engine
    r = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--db", runtime.db.url, "dnc", "add", "cli", "+12125550166"]
    )
    assert r.exit_code == 0, r.output
    await wait_for(
        lambda: engine.gate(Lead(1, ["+12125550166"]), datetime.now(UTC)).reason == "dnc", 5
    )
    cid, _ = await _contact_with_number(runtime)
    due = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    async with runtime.db.engine.begin() as conn:
        camp = await repo.get_campaign(conn, "c1")
        assert camp is not None
        cb_id = await callbacks_repo.book(
            conn,
            camp.id,
            callbacks_repo.CallbackIn(cid, due, "", "UTC", "agent0003", "api", "elsewhere"),
            datetime.now(UTC),
        )

    def lead_callback() -> datetime | None:
        return next(x for x in engine._all_leads() if x.contact_id == cid).callback_at

    await wait_for(lambda: lead_callback() == due, 5)
    async with runtime.db.engine.begin() as conn:
        assert await callbacks_repo.cancel(conn, cb_id, datetime.now(UTC))
    await wait_for(lambda: lead_callback() is None, 5)
