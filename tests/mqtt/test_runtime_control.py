"""A target change published on the control topic of the real broker reaches the
running engine's pacing within one tick; the engine's events reach the broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import aiomqtt

from dialer.config import EngineConfig, MqttConfig
from dialer.runtime import Runtime
from tests.conftest import ADMIN

HOST, PORT = "127.0.0.1", 1883  # the machine's Mosquitto (.ci/run starts it if stopped)


async def test_target_change_over_mqtt_reaches_pacing_within_a_tick(runtime: Runtime) -> None:
    from dialer.cli.run import make_bridge

    prefix = f"dialer-test-{uuid.uuid4().hex[:8]}"
    cfg = EngineConfig.model_validate(
        {**runtime.cfg.model_dump(), "mqtt": MqttConfig(enabled=True, prefix=prefix).model_dump()}
    )
    bridge = make_bridge(cfg, runtime)
    task = asyncio.create_task(bridge.run())
    engine = runtime.get("c1").engine
    try:
        async with aiomqtt.Client(HOST, PORT) as client:
            await client.subscribe(f"{prefix}/c1/#", qos=1)
            seen: dict[str, dict] = {}
            results: list[dict] = []

            async def collect() -> None:
                async for msg in client.messages:
                    kind = str(msg.topic).rsplit("/", 1)[-1]
                    body = json.loads(msg.payload)  # type: ignore[arg-type]
                    seen.setdefault(kind, body)
                    if kind == "result":
                        results.append(body)

            reader = asyncio.create_task(collect())
            # a refused request (wrong token), repeated until the bridge has
            # subscribed and answers: requests sent before that are not kept
            for _ in range(100):
                await client.publish(
                    f"{prefix}/c1/control",
                    json.dumps({"token": "bad", "action": "set_abandon_target", "value_pct": 0.7}),
                    qos=1,
                )
                await asyncio.sleep(0.05)
                if "result" in seen:
                    break
            assert seen["result"]["ok"] is False and "token" in seen["result"]["reason"]
            await client.publish(
                f"{prefix}/c1/control",
                json.dumps(
                    {
                        "token": ADMIN,
                        "action": "set_abandon_target",
                        "value_pct": 0.7,
                        "request_id": "r1",
                    }
                ),
                qos=1,
            )
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            while abs(engine.settings.abandon_target - 0.007) > 1e-12:
                assert loop.time() - t0 < 5, f"target never arrived: {results}"
                await asyncio.sleep(0.01)
            # applied at once, so the next pacing tick (<= tick_s away) uses it
            assert loop.time() - t0 <= engine.settings.tick_s
            assert abs(engine.snapshot(loop.time()).budget.target - 0.007) < 1e-12
            for _ in range(300):
                if {"calls", "agents", "stats"} <= set(seen):
                    break
                await asyncio.sleep(0.02)
            assert {"calls", "agents", "stats"} <= set(seen), seen.keys()
            assert seen["calls"]["campaign"] == "c1"
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    finally:
        await bridge.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert bridge.control_rejected >= 1 and bridge.control_accepted >= 1
