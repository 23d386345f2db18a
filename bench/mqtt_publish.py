"""Events per second the MQTT bridge publishes to a local Mosquitto.

A burst of N engine-shaped events (call transitions) is put into an EventHub,
then the bridge connects and publishes them all; the time runs from starting the
bridge to the last acknowledgement (QoS 1) or hand-off (QoS 0), read back from
``bridge.published`` via ``stop()`` which waits for the buffer to drain.
Baseline in the same process: the same bridge with one publish in flight at a
time (what a plain ``await client.publish(...)`` loop does).

    .venv/bin/python bench/mqtt_publish.py [--host 127.0.0.1 --port 1883 -n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from dialer.events import Event, EventHub
from dialer.mqtt import MqttBridge

T = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def call_event(i: int) -> Event:
    return Event(
        "call",
        "bench",
        T,
        {
            "call_id": f"bench-r0-{i:07d}",
            "contact_id": i,
            "number": "+12125550100",
            "from": "ringing",
            "to": "answered",
            "detail": "sip 200",
            "agent": None,
        },
    )


async def run_once(host: str, port: int, n: int, qos: int, inflight: int) -> float:
    hub = EventHub()
    bridge = MqttBridge(
        hub,
        host=host,
        port=port,
        prefix=f"bench{qos}{inflight}",
        qos=qos,
        buffer=n,
        inflight=inflight,
    )
    for i in range(n):
        hub.publish(call_event(i))
    t0 = time.perf_counter()
    task = asyncio.create_task(bridge.run())
    while not bridge.connected:
        if task.done():
            task.result()
        await asyncio.sleep(0.001)
    await bridge.stop(flush_timeout=120)
    elapsed = time.perf_counter() - t0
    if bridge.published != n or bridge.dropped:
        raise SystemExit(f"only {bridge.published}/{n} published, {bridge.dropped} dropped")
    return n / elapsed


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("-n", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cases = [
        ("QoS 1, one in flight (baseline)", 1, 1),
        ("QoS 1, 64 in flight (default)", 1, 64),
        ("QoS 0, 64 in flight", 0, 64),
    ]
    print(f"{args.n} events per run, best of {args.repeat}, broker {args.host}:{args.port}")
    best: dict[str, float] = {}
    for label, qos, inflight in cases:
        rates = [
            await run_once(args.host, args.port, args.n, qos, inflight) for _ in range(args.repeat)
        ]
        best[label] = max(rates)
    base = best[cases[0][0]]
    print("| case | events/s | vs baseline |\n|---|---:|---:|")
    for label, rate in best.items():
        print(f"| {label} | {rate:,.0f} | {rate / base:.1f}x |")


if __name__ == "__main__":
    asyncio.run(main())
