"""API latency while a 200-agent floor dials in real time.

Starts the engine (simulated PBX and agents from config/scenarios/floor-200.toml,
real clock), serves the API with uvicorn on loopback, and for a bounded time sends
requests from concurrent clients: live figures, status, metrics, a report.  Prints
p50/p95/p99 latency per endpoint, requests per second, and the event loop's lag, with
an idle-engine run of the same requests in the same process as the baseline.

    .venv/bin/python bench/api_latency.py [--seconds 20] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from dialer.api import create_app
from dialer.config import parse_config
from dialer.runtime import Runtime
from dialer.store.db import Database
from sim.scenario import load_scenario
from sim.world import SimWorld

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token-0123456789"
PATHS = [
    "/api/campaigns/floor",
    "/api/campaigns/floor/status",
    "/metrics",
    "/api/campaigns/floor/reports/summary",
]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def measure(seconds: float, clients: int, autostart: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        cfg = parse_config(
            f'bootstrap_admin_token = "{TOKEN}"\nstats_interval_s = 2\n'
            f'[[campaigns]]\nname = "floor"\nlist = "floor"\nautostart = {str(autostart).lower()}\n'
        )
        sc = load_scenario(ROOT / "config/scenarios/floor-200.toml")
        sc = sc.model_copy(
            update={
                "list_size": 20000,
                "agents": sc.agents.model_copy(update={"login_spread_s": 5.0}),
            }
        )
        db = Database(f"sqlite+aiosqlite:///{d}/api.db")
        rt = Runtime(cfg, db, SimWorld(sc, 1))
        await rt.start()
        server = _Server(
            uvicorn.Config(
                create_app(rt, db), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
            )
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        lat: dict[str, list[float]] = {p: [] for p in PATHS}
        lags: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def lag_probe() -> None:
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                await asyncio.sleep(0.05)
                lags.append(time.perf_counter() - t - 0.05)

        async def client(i: int) -> None:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}
            ) as c:
                k = i
                while time.perf_counter() < stop_at:
                    path = PATHS[k % len(PATHS)]
                    k += 1
                    t = time.perf_counter()
                    r = await c.get(path)
                    r.raise_for_status()
                    lat[path].append(time.perf_counter() - t)

        await asyncio.sleep(10.0)  # let the floor log in and dialling ramp up
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(lag_probe(), *(client(i) for i in range(clients)))
        stats = rt.stats("floor")
        server.should_exit = True
        await task
        await rt.stop()
        await db.close()
    n = sum(len(v) for v in lat.values())
    return {"lat": lat, "lags": lags, "rps": n / seconds, "stats": stats}


def show(title: str, res: dict[str, object]) -> None:
    print(f"\n{title}: {res['rps']:.0f} requests/s")
    lat = res["lat"]
    assert isinstance(lat, dict)
    for path, xs in lat.items():
        a = np.asarray(xs) * 1000
        print(
            f"  {path:42s} n={len(a):5d}  p50 {np.percentile(a, 50):6.1f} ms  "
            f"p95 {np.percentile(a, 95):6.1f} ms  p99 {np.percentile(a, 99):6.1f} ms"
        )
    lags = np.asarray(res["lags"]) * 1000
    p50, p99 = np.percentile(lags, 50), np.percentile(lags, 99)
    print(f"  event-loop lag p50 {p50:.1f} ms  p99 {p99:.1f} ms")
    s = res["stats"]
    assert isinstance(s, dict)
    print(f"  engine during the run: {s['dials']} dials, agents {s['agents']}, calls {s['calls']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    print(
        f"machine: {platform.node()}, python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    show(
        "baseline: engine idle (campaign not dialling)",
        asyncio.run(measure(args.seconds, args.clients, autostart=False)),
    )
    show(
        "200-agent floor dialling in real time",
        asyncio.run(measure(args.seconds, args.clients, autostart=True)),
    )


if __name__ == "__main__":
    main()
