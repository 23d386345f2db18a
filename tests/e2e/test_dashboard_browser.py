"""The supervisor dashboard in a real browser (Debian's Chromium, driven by
Playwright): load it, see the figures move, change the target, see it applied."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from dialer.api import create_app
from dialer.runtime import Runtime
from tests.conftest import ADMIN, ROOT, need_tool

ARTIFACTS = ROOT / "test-artifacts"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test's loop owns signals
        yield


async def test_dashboard_live_figures_and_target_change(runtime: Runtime, tmp_path: Path) -> None:
    chromium = need_tool("chromium")
    from playwright.async_api import async_playwright

    app = create_app(runtime, runtime.db)
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            await page.goto(f"http://127.0.0.1:{port}/campaigns/c1?token={ADMIN}")
            await page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('running')"
            )
            first = int(await page.text_content("#dials") or "0")
            # figures move: more dials arrive through the live stream
            await page.wait_for_function(
                f"parseInt(document.getElementById('dials').textContent) > {first}", timeout=15000
            )
            assert await page.text_content("#target") == "3.00%"
            await page.fill("#target-input", "1.25")
            await page.click("#target-form button[type=submit]")
            await page.wait_for_function(
                "document.getElementById('target-result').textContent !== ''"
            )
            result = await page.text_content("#target-result")
            assert result is not None and "applied" in result, (result, console)
            assert runtime.get("c1").engine.settings.abandon_target == pytest.approx(0.0125)
            # and the next stats event shows the new target
            await page.wait_for_function(
                "document.getElementById('target').textContent === '1.25%'"
            )
            await page.fill("#target-input", "150")
            await page.click("#target-form button[type=submit]")
            await page.wait_for_function(
                "document.getElementById('target-result').textContent.includes('refused')"
            )
            assert runtime.get("c1").engine.settings.abandon_target == pytest.approx(0.0125)
            await page.click("#pause")
            await page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('paused')"
            )
            await page.wait_for_function(
                "[...document.querySelectorAll('#blockers li')]"
                ".some(li => li.dataset.code === 'paused')"
            )
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            await browser.close()
    finally:
        server.should_exit = True
        await task
