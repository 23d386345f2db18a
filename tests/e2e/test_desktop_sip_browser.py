"""The agent desktop in Chromium for an agent on a SIP phone: logging in calls
the phone (the page shows the line), the call comes in over SIP and is bridged
to that phone, and putting the phone down shows on the page."""

from __future__ import annotations

import asyncio
from pathlib import Path

import uvicorn

from dialer.api import create_app
from dialer.runtime import Runtime
from dialer.store.db import Database
from sim.sip_pbx import SipPbxParams
from sim.sip_phones import SipPhone
from tests.conftest import ADMIN, need_tool
from tests.e2e.sip_agents_rig import ContactsWorld, sip_agents_config
from tests.e2e.test_desktop_browser import _Server, agent_token
from tests.sim.uac import scenario as pbx_scenario
from tests.sim.uac import start_pbx


async def test_desktop_shows_the_phone_line(tmp_path: Path) -> None:
    chromium = need_tool("chromium")
    from playwright.async_api import async_playwright

    people = pbx_scenario(
        talk='{ kind = "fixed", mean = 600 }', ring='{ kind = "fixed", mean = 0.3 }'
    )
    pbx = await start_pbx(people, SipPbxParams(post_dial_delay_s=0.05, reply_tone_hz=1000.0))
    cfg = sip_agents_config(
        pbx.addr[1], {"ann": "ann-pw"}, extra=f'bootstrap_admin_token = "{ADMIN}"'
    )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}")
    world = ContactsWorld(people, 1, cfg.carrier.params())  # type: ignore[union-attr]
    rt = Runtime(cfg, db, world)
    await rt.start()
    server = _Server(
        uvicorn.Config(
            create_app(rt, db), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    phone: SipPhone | None = None
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        assert rt.clock is not None and world._sip is not None
        phone = SipPhone(rt.clock, "ann", world._sip.local_addr, password="ann-pw")
        await phone.start()
        await asyncio.wait_for(phone.registered.wait(), 5.0)
        token = await agent_token(port, "ann")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
            )
            page = await browser.new_page(viewport={"width": 1200, "height": 800})
            await page.goto(f"http://127.0.0.1:{port}/agent")
            await page.fill("#token", token)
            await page.fill("#campaign", "desk")
            await page.click("#login")
            pill = "document.getElementById('phone').textContent"
            await page.wait_for_function(f"{pill} === 'phone connected'", timeout=10000)
            assert phone.up and phone.answered == 1  # the login rang the phone once
            await page.click("#ready")
            state = "document.getElementById('state').dataset.state"
            await page.wait_for_function(f"{state} === 'on_call'", timeout=20000)
            for _ in range(200):  # the customer's reply tone reaches the phone
                if phone.heard_tone(1000.0):
                    break
                await asyncio.sleep(0.02)
            assert phone.heard_tone(1000.0), list(phone.bursts)
            await page.click("#hangup")
            await page.wait_for_function(f"{state} === 'wrap_up'")
            await page.select_option("#disposition", "sale")
            await page.fill("#pause-reason", "coffee")
            phone.hang_up()  # and puts the phone down
            await page.wait_for_function(
                f'{pill} === "phone down: the agent\'s phone hung up"', timeout=10000
            )
            await browser.close()
    finally:
        server.should_exit = True
        await task
        await rt.stop()
        if phone is not None:
            await phone.stop(unregister=False)
        await db.close()
        await pbx.server.stop()
