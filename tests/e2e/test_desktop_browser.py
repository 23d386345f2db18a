"""The agent desktop in a real browser (Debian's Chromium, driven by Playwright)
against a running engine: log in, go ready, get the screen pop, hang up, pick a
disposition, and find it stored.  Also the WebSocket's refusals, from a plain
client."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
import websockets
from PIL import Image

from dialer.api import create_app
from dialer.config import parse_config
from dialer.runtime import Runtime
from dialer.store.db import Database
from sim.scenario import parse_scenario
from sim.world import SimWorld
from tests.conftest import ADMIN, ANYTIME_CALLTIMES, ROOT, need_tool

ARTIFACTS = ROOT / "test-artifacts"
# customers who answer quickly and stay on the line until the agent hangs up
PATIENT = """
name = "patient"
seed = 5
shift_hours = 8
list_size = 50
[agents]
count = 1
[called_party]
answer_rate = 0.9
machine_share = 0.0
ring = { kind = "lognormal", mean = 1.0, sd = 0.3, min = 0.3, max = 3.0 }
talk = { kind = "lognormal", mean = 600.0, sd = 10.0, min = 500.0, max = 700.0 }
"""
CONFIG = f"""
stats_interval_s = 0.5
shutdown_grace_s = 2
bootstrap_admin_token = "{ADMIN}"
[[campaigns]]
name = "desk1"
list = "l1"
mode = "progressive"
agents = "desktop"
wrap_up_s = 300
amd_enabled = false
no_answer_timeout_s = 15
calltimes = "{ANYTIME_CALLTIMES}"
"""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test's loop owns signals
        yield


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Runtime, int]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}")
    rt = Runtime(parse_config(CONFIG), db, SimWorld(parse_scenario(PATIENT), 1))
    await rt.start()
    server = _Server(
        uvicorn.Config(
            create_app(rt, db), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield rt, server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
        await rt.stop()
        await db.close()


async def agent_token(port: int, name: str) -> str:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as c:
        r = await c.post("/api/tokens", json={"name": name, "role": "agent"})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def mostly(png: Path, rgb: tuple[int, int, int]) -> float:
    """Share of the image's pixels within a small distance of ``rgb``."""
    px = np.asarray(Image.open(png).convert("RGB"), dtype=np.int32).reshape(-1, 3)
    near = np.abs(px - np.asarray(rgb)).sum(axis=1) < 40
    return float(near.mean())


async def test_agent_takes_a_call_at_the_desktop(served: tuple[Runtime, int]) -> None:
    chromium = need_tool("chromium")
    from playwright.async_api import async_playwright

    rt, port = served
    token = await agent_token(port, "ann")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        page = await browser.new_page(viewport={"width": 1200, "height": 800})
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        await page.goto(f"http://127.0.0.1:{port}/agent")
        await page.fill("#token", token)
        await page.fill("#campaign", "desk1")
        await page.click("#login")
        state = "document.getElementById('state').dataset.state"
        await page.wait_for_function(f"{state} === 'paused'")
        assert (await page.text_content("#who")) == "ann"
        # a pause without a reason is refused, and says why
        await page.fill("#pause-reason", "")
        await page.click("#pause")
        await page.wait_for_function("document.getElementById('error').textContent !== ''")
        assert "say why" in (await page.text_content("#error") or "")
        assert rt.get("desk1").engine.counters.dials == 0  # paused: nothing dialled
        await page.click("#ready")
        await page.wait_for_function(f"{state} === 'on_call'", timeout=20000)
        # the screen pop follows the state (it waits for the contact's history)
        await page.wait_for_function("document.getElementById('number').textContent !== ''")
        number = await page.text_content("#number")
        assert number is not None and number.startswith("+1"), console
        assert "Customer" in (await page.text_content("#fields") or "")
        ARTIFACTS.mkdir(exist_ok=True)
        pill = ARTIFACTS / "desktop-pill.png"
        await page.locator("#state").screenshot(path=str(pill))
        assert mostly(pill, (0x17, 0x5C, 0xD3)) > 0.5  # the on-call colour is shown
        shot = ARTIFACTS / "desktop.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        await page.click("#hangup")
        await page.wait_for_function(f"{state} === 'wrap_up'")
        assert not await page.is_disabled("#dispose")
        await page.select_option("#disposition", "sale")
        await page.click("#dispose")
        # ready again: the next customer may already be connected
        await page.wait_for_function(f"['ready', 'reserved', 'on_call'].includes({state})")
        await browser.close()
    await asyncio.sleep(0.6)  # the recorder flushes every 0.25 s
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as c:
        r = await c.get("/api/campaigns/desk1/attempts.csv")
        assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    sold = [row for row in rows if row["disposition"] == "sale"]
    assert len(sold) == 1 and sold[0]["agent"] == "ann" and sold[0]["number"] == number


async def test_desktop_socket_refuses_what_is_wrong(served: tuple[Runtime, int]) -> None:
    _, port = served
    url = f"ws://127.0.0.1:{port}/api/agent/ws"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"token": "not-a-token"}))
        msg = json.loads(await ws.recv())
        assert msg == {"type": "error", "message": "unknown or revoked API token"}
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    token = await agent_token(port, "bea")
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"token": token}))
        hello = json.loads(await ws.recv())
        assert hello == {"type": "hello", "agent": "bea", "campaigns": ["desk1"]}

        async def ask(payload: str) -> dict[str, object]:
            await ws.send(payload)
            return dict(json.loads(await ws.recv()))

        assert (await ask("{nope"))["message"].startswith("not JSON")  # type: ignore[union-attr]
        assert (await ask('{"action": "ready"}'))["message"] == "log in to a campaign first"
        reply = await ask('{"action": "login", "campaign": "zzz"}')
        assert reply["message"] == "no desktop campaign 'zzz' (desktop campaigns: desk1)"
        assert (await ask("x" * 5000))["message"].startswith("message too long")
        first = await ask('{"action": "login", "campaign": "desk1"}')
        assert first["type"] == "state"
        # a disposition with a time that is not one: refused, the session goes on
        reply = await ask('{"action": "dispose", "disposition": "callback", "callback_at": "soon"}')
        while reply.get("type") != "error":
            reply = dict(json.loads(await ws.recv()))
        assert reply["message"] == "not a date and time: 'soon'"
        reply = await ask(
            '{"action": "dispose", "disposition": "callback", "callback_at": "2026-12-02T10:00"}'
        )
        assert reply["message"] == "the callback time needs a time zone offset"
        reply = await ask('{"action": "fly"}')
        # the state pushed after login may come first; read until the error
        while reply.get("type") != "error":
            reply = dict(json.loads(await ws.recv()))
        assert reply["message"] == "unknown action 'fly'"
