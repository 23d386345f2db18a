"""`dialer run CONFIG.toml`: the whole engine as a service."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import typer
import uvicorn

from carriers.sip.carrier import CarrierStartError
from dialer.api import create_app
from dialer.cli.common import db_url, err, out
from dialer.config import ConfigError, EngineConfig, SipCarrierConfig, load_config
from dialer.mqtt import MqttBridge
from dialer.runtime import Runtime, World
from dialer.store.db import Database, resolve_db_url
from sim.scenario import ScenarioError, load_scenario
from sim.sip_world import SipWorld
from sim.world import SimWorld


def make_world(cfg: EngineConfig) -> World:
    """The simulated PBX, or SIP trunks (with the scenario's simulated agents)."""
    scenario = load_scenario(cfg.carrier.scenario)
    if isinstance(cfg.carrier, SipCarrierConfig):
        return SipWorld(scenario, cfg.carrier.seed, cfg.carrier.params())
    return SimWorld(scenario, cfg.carrier.seed)


async def serve(cfg: EngineConfig, url: str, ready: asyncio.Event | None = None) -> Runtime:
    """Start everything, run until SIGTERM/SIGINT, then stop cleanly."""
    db = Database(url)
    runtime = Runtime(cfg, db, make_world(cfg))
    await runtime.start()
    app = create_app(runtime, db)
    server = _Server(
        uvicorn.Config(
            app, host=cfg.http.host, port=cfg.http.port, log_level="warning", lifespan="off"
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bridge = make_bridge(cfg, runtime) if cfg.mqtt.enabled else None
    bridge_task = asyncio.create_task(bridge.run(), name="mqtt") if bridge else None
    web = asyncio.create_task(server.serve(), name="http")
    while not server.started and not web.done():
        await asyncio.wait({web}, timeout=0.05)
    if web.done():
        await runtime.stop()
        await db.close()
        raise SystemExit(f"HTTP server failed to start on {cfg.http.host}:{cfg.http.port}")
    port = server.servers[0].sockets[0].getsockname()[1] if server.servers else cfg.http.port
    out.print(
        f"dialer running: {len(runtime.campaigns)} campaign(s); dashboard "
        f"http://{cfg.http.host}:{port}/campaigns/{cfg.campaigns[0].name}; database "
        f"{db.describe()}",
        markup=False,
    )
    if ready is not None:
        ready.set()
    await stop.wait()
    out.print("stopping: no new dials; waiting for calls in progress", markup=False)
    await runtime.stop()
    if bridge is not None and bridge_task is not None:
        await bridge.stop()  # publishes what is buffered, within a bounded time
        bridge_task.cancel()
    server.should_exit = True
    await web
    await db.close()
    out.print("stopped cleanly", markup=False)
    return runtime


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the engine must stop before the
    HTTP server does, and uvicorn would re-raise SIGTERM on exit."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_bridge(cfg: EngineConfig, runtime: Runtime) -> MqttBridge:
    """Events out to the broker; supervisors' control messages in."""
    return MqttBridge(
        runtime.hub,
        host=cfg.mqtt.host,
        port=cfg.mqtt.port,
        prefix=cfg.mqtt.prefix,
        buffer=cfg.mqtt.buffer,
        authorize=runtime.authorize_control,
        controller=runtime,
    )


def run(
    config: Path = typer.Argument(
        ..., help="Engine configuration (see config/engine.example.toml)."
    ),
) -> None:
    """Start the whole engine: carriers, campaigns, pacing, HTTP API and dashboard,
    events.  SIGTERM or Ctrl-C stops it cleanly."""
    try:
        cfg = load_config(config)
        load_scenario(cfg.carrier.scenario)
    except (ConfigError, ScenarioError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    url = resolve_db_url(cfg.db) if cfg.db else db_url()
    try:
        asyncio.run(serve(cfg, url))
    except CarrierStartError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
