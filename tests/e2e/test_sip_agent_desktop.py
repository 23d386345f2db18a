"""An agent at the desktop with a SIP phone, the engine as `dialer run` builds it:
logging in calls the phone once, "ready" waits for that line, a live answer is
bridged to the phone, the disposition is stored, and a phone put down mid-shift
pauses the agent with the reason on their screen."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from dialer.runtime import Runtime
from dialer.store.db import Database
from sim.sip_pbx import SipPbxParams
from sim.sip_phones import SipPhone
from tests.e2e.sip_agents_rig import ContactsWorld, sip_agents_config
from tests.sim.uac import scenario as pbx_scenario
from tests.sim.uac import start_pbx

AGENT_HZ, CUSTOMER_HZ = 700.0, 1000.0


async def _message(
    box: asyncio.Queue[dict[str, Any]], kind: str, timeout: float = 15.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"no {kind!r} message on the desktop"
        msg = await asyncio.wait_for(box.get(), left)
        if msg.get("type") == kind:
            return msg


async def test_desktop_agent_on_a_sip_phone(tmp_path: Path) -> None:
    people = pbx_scenario(
        talk='{ kind = "fixed", mean = 1.5 }', ring='{ kind = "fixed", mean = 0.3 }'
    )
    pbx = await start_pbx(people, SipPbxParams(post_dial_delay_s=0.05, reply_tone_hz=CUSTOMER_HZ))
    cfg = sip_agents_config(pbx.addr[1], {"alice": "s3cret"})
    db_path = tmp_path / "desk.db"
    db = Database(f"sqlite+aiosqlite:///{db_path}")
    world = ContactsWorld(people, 1, cfg.carrier.params())  # type: ignore[union-attr]
    rt = Runtime(cfg, db, world)
    await rt.start()
    phone: SipPhone | None = None
    try:
        assert rt.clock is not None and world._sip is not None
        phone = SipPhone(
            rt.clock, "alice", world._sip.local_addr, password="s3cret", tone_hz=AGENT_HZ
        )
        await phone.start()
        await asyncio.wait_for(phone.registered.wait(), 5.0)
        desk = rt.desks["desk"]
        box = desk.attach("alice")
        desk.login("alice")
        # logging in rings the phone once; it answers and the line stays up
        for _ in range(300):
            if phone.up:
                break
            await asyncio.sleep(0.01)
        assert phone.up and phone.answered == 1
        desk.ready("alice")
        hello = await _message(box, "connected")
        assert hello["contact"]["fields"]["name"].startswith("Customer")
        await _message(box, "call_ended")
        closed = desk.dispose("alice", "sale", then_pause="lunch")
        assert closed["disposition"] == "sale"
        # the same nailed-up leg carried the call: no second ring
        assert phone.answered == 1 and phone.heard_tone(CUSTOMER_HZ), list(phone.bursts)
        leg = await pbx.wait_ended()
        assert abs(leg.heard_hz - AGENT_HZ) < 25, leg
        # the agent puts the phone down: ready now waits for the line, which the
        # engine calls again (the phone answers a new call)
        phone.hang_up()
        for _ in range(300):
            if desk.view("alice")["phone"].startswith("down"):
                break
            await asyncio.sleep(0.01)
        assert desk.view("alice")["phone"] == "down: the agent's phone hung up"
        desk.ready("alice")
        for _ in range(300):
            if phone.answered == 2 and desk.view("alice")["state"] == "ready":
                break
            await asyncio.sleep(0.01)
        assert phone.answered == 2 and rt.phones["desk"].lines.line_up("alice")
        desk.pause("alice", "done")
    finally:
        await rt.stop()
        if phone is not None:
            await phone.stop(unregister=False)
        await db.close()
        await pbx.server.stop()
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "select name, agent from attempt_dispositions where source = 'agent'"
        ).fetchall()
        connected = conn.execute(
            "select count(*) from attempts where result = 'connected' and agent = 'alice'"
        ).fetchone()[0]
    assert ("sale", "alice") in rows and connected >= 1
