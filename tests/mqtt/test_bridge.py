"""The bridge against a real Mosquitto: topics, JSON schema, order, control,
broker outages and the bounded buffer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from dialer.agentstate import AgentState
from dialer.events import Event, EventHub
from dialer.mqtt import MqttBridge
from dialer.mqtt_schema import (
    EVENT_MESSAGE,
    AgentMessage,
    AlertMessage,
    CallMessage,
    ControlResult,
    StatsMessage,
)
from dialer.ports import AgentEvent
from tests.dialer.test_engine import build, login, person
from tests.mqtt.conftest import Broker, subscriber

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def tick(i: int, campaign: str = "c1") -> Event:
    """An alert numbered i, to check order and drops."""
    return Event("alert", campaign, T, {"code": "tick", "message": str(i), "severity": "info"})


class Gate:
    """An injectable backoff sleep the test opens when it is ready, so the
    bridge reconnects exactly when the subscriber is listening."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._permits: asyncio.Queue[None] = asyncio.Queue()
        self._free = False

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if not self._free:
            await self._permits.get()

    def step(self) -> None:
        """Let one waiting (or the next) backoff end."""
        self._permits.put_nowait(None)

    def open(self) -> None:
        self._free = True
        self.step()


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


async def started(bridge: MqttBridge) -> asyncio.Task[None]:
    task = asyncio.create_task(bridge.run())
    await until(lambda: bridge.connected, what="bridge connected")
    return task


async def test_engine_events_arrive_on_their_topics_as_valid_json(broker: Broker) -> None:
    hub = EventHub()
    # a real engine run on the virtual clock: one connected call, one agent
    clock, engine, _, _ = build([person(ring=5, talk=20)])
    engine.hub = hub
    async with subscriber(broker.port, "dialer/#") as (col, _):
        bridge = MqttBridge(hub, host="127.0.0.1", port=broker.port)
        task = await started(bridge)
        login(clock, engine, "a1", 0.0)
        engine.start()
        clock.run(until=100)
        engine.on_agent_event(AgentEvent("a1", AgentState.READY, clock.monotonic(), "sale"))
        hub.publish(Event("stats", "t", clock.wall(), engine.stats()))
        hub.publish(Event("alert", "t", clock.wall(), {"code": "x", "message": "look"}))
        sent = hub.published
        await col.wait_for(sent, "")
        await bridge.stop()
        await asyncio.wait({task})

    topics = {t for t, _ in col.messages}
    assert topics == {
        "dialer/t/calls",
        "dialer/t/agents",
        "dialer/t/stats",
        "dialer/t/alerts",
    }
    kinds = {"calls": CallMessage, "agents": AgentMessage, "stats": StatsMessage}
    kinds["alerts"] = AlertMessage
    for topic, payload in col.messages:
        msg = EVENT_MESSAGE.validate_python(payload)
        assert isinstance(msg, kinds[topic.rsplit("/", 1)[1]])
        assert msg.campaign == "t" and msg.at.tzinfo is not None
    calls = [CallMessage.model_validate(p) for p in col.on("/calls")]
    assert [c.to.value for c in calls][-2:] == ["wrap_up", "done"]  # in engine order
    assert calls[0].from_.value == "queued"
    agents = [AgentMessage.model_validate(p) for p in col.on("/agents")]
    assert [a.state.value for a in agents] == ["ready", "on_call", "wrap_up", "ready"]
    assert agents[1].call_id == calls[0].call_id
    stats = StatsMessage.model_validate(col.on("/stats")[0])
    assert stats.connects == 1 and stats.dials == 1
    assert bridge.published == sent and bridge.dropped == 0


async def test_campaign_names_with_topic_characters_stay_one_level(broker: Broker) -> None:
    hub = EventHub()
    async with subscriber(broker.port, "ops/+/alerts") as (col, _):
        bridge = MqttBridge(hub, host="127.0.0.1", port=broker.port, prefix="ops", qos=0)
        task = await started(bridge)
        hub.publish(tick(1, campaign="a/b+#c"))
        [payload] = await col.wait_for(1)
        await bridge.stop()
        await asyncio.wait({task})
    assert col.messages[0][0] == "ops/a%2Fb%2B%23c/alerts"
    assert payload["campaign"] == "a/b+#c"


class Recorder:
    """A Controller with async methods (like the runtime's) that records calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    async def set_abandon_target(self, campaign: str, fraction: float) -> None:
        self.calls.append(("target", campaign, f"{fraction:.4f}"))

    async def pause(self, campaign: str) -> None:
        if campaign == "ghost":
            raise KeyError(campaign)
        self.calls.append(("pause", campaign))

    def resume(self, campaign: str) -> None:  # a plain method works too
        self.calls.append(("resume", campaign))


def tokens(token: str) -> bool:
    return token == "sup-token"


async def control_session(
    port: int, requests: list[tuple[str, bytes | str]], controller: Recorder, **kw: Any
) -> tuple[list[ControlResult], MqttBridge]:
    hub = EventHub()
    kw.setdefault("authorize", tokens)
    bridge = MqttBridge(hub, host="127.0.0.1", port=port, controller=controller, **kw)
    async with subscriber(port, "dialer/+/control/result") as (col, client):
        task = await started(bridge)
        for campaign, body in requests:
            await client.publish(f"dialer/{campaign}/control", body, qos=1)
        results = await col.wait_for(len(requests))
        # the bridge still publishes events after whatever it was sent
        async with subscriber(port, "dialer/+/alerts") as (events, _):
            hub.publish(tick(7))
            await events.wait_for(1)
        await bridge.stop()
        await asyncio.wait({task})
    return [ControlResult.model_validate(r) for r in results], bridge


async def test_authorised_control_reaches_the_controller(broker: Broker) -> None:
    ctl = Recorder()
    reqs: list[tuple[str, bytes | str]] = [
        (
            "c1",
            json.dumps(
                {
                    "token": "sup-token",
                    "action": "set_abandon_target",
                    "value_pct": 2.5,
                    "request_id": "r1",
                }
            ),
        ),
        ("c1", json.dumps({"token": "sup-token", "action": "pause"})),
        ("c%2F2", json.dumps({"token": "sup-token", "action": "resume"})),
        ("c1", json.dumps({"token": "sup-token", "action": "set_abandon_target", "value_pct": 0})),
    ]
    results, bridge = await control_session(broker.port, reqs, ctl)
    assert ctl.calls == [
        ("target", "c1", "0.0250"),
        ("pause", "c1"),
        ("resume", "c/2"),
        ("target", "c1", "0.0000"),
    ]
    assert all(r.ok for r in results), results
    assert results[0].request_id == "r1" and results[0].action == "set_abandon_target"
    assert results[0].reason == "abandon target set to 2.5 %"
    assert results[2].campaign == "c/2"
    assert bridge.control_accepted == 4 and bridge.control_rejected == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "bad JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ("[1, 2]", "expected an object"),
        ('{"action": "pause"}', "'token' is missing"),
        ('{"token": "guess", "action": "pause"}', "invalid token"),
        ('{"token": "sup-token", "action": "explode"}', "unknown action 'explode'"),
        ('{"token": "sup-token"}', "'action' is missing"),
        (
            '{"token": "sup-token", "action": "set_abandon_target", "value_pct": 150}',
            "value_pct must be between 0 and 100",
        ),
        (
            '{"token": "sup-token", "action": "set_abandon_target", "value_pct": -1}',
            "value_pct must be between 0 and 100",
        ),
        (
            '{"token": "sup-token", "action": "set_abandon_target", "value_pct": "lots"}',
            "value_pct",
        ),
        ('{"token": "sup-token", "action": "set_abandon_target"}', "value_pct: Field required"),
        ('{"token": "sup-token", "action": "pause", "force": true}', "force"),
    ],
)
async def test_bad_control_is_refused_with_a_reason(
    broker: Broker, body: str | bytes, reason: str
) -> None:
    ctl = Recorder()
    [result], bridge = await control_session(broker.port, [("c1", body)], ctl)
    assert not result.ok
    assert reason in result.reason, result.reason
    assert ctl.calls == [] and bridge.control_rejected == 1


async def test_control_failures_from_the_controller_and_disabled_auth(broker: Broker) -> None:
    ctl = Recorder()
    [ghost], _ = await control_session(
        broker.port, [("ghost", '{"token": "sup-token", "action": "pause"}')], ctl
    )
    assert not ghost.ok and ghost.reason == "unknown campaign 'ghost'"

    [noauth], _ = await control_session(
        broker.port, [("c1", '{"token": "sup-token", "action": "pause"}')], ctl, authorize=None
    )
    assert not noauth.ok and "control is disabled" in noauth.reason

    def broken(token: str) -> bool:
        raise RuntimeError("token store down")

    [err], _ = await control_session(
        broker.port, [("c1", '{"token": "sup-token", "action": "pause"}')], ctl, authorize=broken
    )
    assert not err.ok and "token check failed (RuntimeError)" in err.reason
    assert ctl.calls == []


async def test_random_garbage_on_the_control_topic_never_stops_the_bridge(
    broker: Broker,
) -> None:
    rng = np.random.default_rng(7)
    valid = {"token": "sup-token", "action": "set_abandon_target", "value_pct": 3}
    reqs: list[tuple[str, bytes | str]] = []
    for i in range(150):
        if i % 3 == 0:
            reqs.append(("c1", rng.bytes(int(rng.integers(1, 64)))))
        else:
            body = dict(valid)
            for key in rng.choice(["token", "action", "value_pct", "extra"], 2):
                body[str(key)] = [None, 1e308, "", [], {"a": 1}, -5, "pause", True][
                    int(rng.integers(0, 8))
                ]
            reqs.append(("c1", json.dumps(body)))
    ctl = Recorder()
    results, bridge = await control_session(broker.port, reqs, ctl)
    assert len(results) == len(reqs)
    assert all(r.reason for r in results)
    assert bridge.control_accepted + bridge.control_rejected == len(reqs)
    assert bridge.control_accepted == len(ctl.calls)


async def test_broker_down_at_start_buffers_then_delivers_in_order(
    stopped_broker: Broker,
) -> None:
    hub = EventHub()
    gate = Gate()
    bridge = MqttBridge(
        hub, host="127.0.0.1", port=stopped_broker.port, sleep=gate, backoff=(0.5, 4.0)
    )
    task = asyncio.create_task(bridge.run())
    await until(lambda: len(gate.delays) >= 1, what="first refused connection")
    for i in range(300):
        hub.publish(tick(i))  # never blocks, broker or not
    assert not bridge.connected and bridge.buffered == 300 and bridge.last_error
    # a few more refused attempts, each waiting twice as long, up to the cap
    for _ in range(4):
        n = len(gate.delays)
        gate.step()
        await until(lambda n=n: len(gate.delays) > n, what="another attempt")  # type: ignore[misc]
    assert gate.delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    stopped_broker.start()
    async with subscriber(stopped_broker.port, "dialer/#") as (col, _):
        gate.open()
        got = await col.wait_for(300)
        assert [int(p["message"]) for p in got] == list(range(300))
        await until(lambda: bridge.published == 300, what="all acknowledged")
        assert bridge.connected and bridge.connects == 1
    await bridge.stop()
    await asyncio.wait({task})


async def test_broker_restart_mid_run_resends_everything_in_order(
    broker: Broker,
) -> None:
    hub = EventHub()
    gate = Gate()
    bridge = MqttBridge(hub, host="127.0.0.1", port=broker.port, sleep=gate)
    task = await started(bridge)
    async with subscriber(broker.port, "dialer/#") as (col, _):
        for i in range(100):
            hub.publish(tick(i))
        await col.wait_for(100)
    broker.stop()
    await until(lambda: not bridge.connected, what="bridge notices the broker is gone")
    for i in range(100, 400):
        hub.publish(tick(i))
    broker.start()
    async with subscriber(broker.port, "dialer/#") as (col, _):
        gate.open()
        await col.wait_for(300)
        seen = [int(p["message"]) for p in col.on("")[:300]]
    assert seen == list(range(100, 400))
    assert bridge.connects == 2 and bridge.dropped == 0
    assert gate.delays[0] == 0.1  # the backoff starts afresh after a good connection
    await bridge.stop()
    await asyncio.wait({task})


async def test_full_buffer_drops_the_oldest_and_counts_them(stopped_broker: Broker) -> None:
    hub = EventHub()
    gate = Gate()
    bridge = MqttBridge(hub, host="127.0.0.1", port=stopped_broker.port, sleep=gate, buffer=5)
    task = asyncio.create_task(bridge.run())
    await until(lambda: len(gate.delays) >= 1, what="first refused connection")
    for i in range(12):
        hub.publish(tick(i))
    assert bridge.dropped == 7 and bridge.buffered == 5
    stopped_broker.start()
    async with subscriber(stopped_broker.port, "dialer/#") as (col, _):
        gate.open()
        got = await col.wait_for(5)
        await asyncio.sleep(0.2)  # nothing else arrives
    assert [int(p["message"]) for p in col.on("")] == [7, 8, 9, 10, 11]
    assert [int(p["message"]) for p in got] == [7, 8, 9, 10, 11]
    await bridge.stop()
    await asyncio.wait({task})


async def test_stop_flushes_and_leaves_the_hub(broker: Broker) -> None:
    hub = EventHub()
    async with subscriber(broker.port, "dialer/#") as (col, _):
        bridge = MqttBridge(hub, host="127.0.0.1", port=broker.port)
        task = await started(bridge)
        for i in range(2000):
            hub.publish(tick(i))
        await bridge.stop()
        assert task.done()
        await col.wait_for(2000)
    assert bridge.published == 2000 and bridge.buffered == 0
    hub.publish(tick(-1))
    assert bridge.buffered == 0  # unsubscribed


async def test_nan_becomes_null_and_unjsonable_payload_is_counted_not_fatal(broker: Broker) -> None:
    hub = EventHub()
    async with subscriber(broker.port, "dialer/#") as (col, _):
        bridge = MqttBridge(hub, host="127.0.0.1", port=broker.port)
        task = await started(bridge)
        hub.publish(Event("alert", "c1", T, {"code": "x", "message": "m", "bad": float("nan")}))
        loop: dict[str, Any] = {}
        loop["self"] = loop
        hub.publish(Event("alert", "c1", T, {"code": "x", "message": "m", "bad": loop}))
        hub.publish(tick(1))
        got = await col.wait_for(2)
        await bridge.stop()
        await asyncio.wait({task})
    assert got[0]["bad"] is None  # NaN has no JSON spelling
    assert got[-1]["message"] == "1"
    assert bridge.dropped == 1


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"qos": 3}, "qos must be 0, 1 or 2"),
        ({"buffer": 0}, "buffer must hold at least 1"),
        ({"prefix": "a/#"}, "prefix"),
        ({"prefix": ""}, "prefix"),
        ({"backoff": (0.0, 1.0)}, "backoff"),
    ],
)
def test_bad_settings_are_refused_clearly(kw: dict[str, Any], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        MqttBridge(EventHub(), host="127.0.0.1", port=1, **kw)


async def test_broker_killed_mid_burst_resends_from_the_first_unacknowledged(
    broker: Broker,
) -> None:
    hub = EventHub()
    gate = Gate()
    bridge = MqttBridge(hub, host="127.0.0.1", port=broker.port, sleep=gate)
    task = await started(bridge)
    for i in range(5000):
        hub.publish(tick(i))
    await until(lambda: bridge.published >= 500, what="part of the burst acknowledged")
    broker.stop()
    await until(lambda: not bridge.connected, what="bridge notices the broker is gone")
    acked = bridge.published
    assert acked < 5000 and bridge.buffered == 5000 - acked
    broker.start()
    async with subscriber(broker.port, "dialer/#") as (col, _):
        gate.open()
        await until(lambda: bridge.published == 5000, what="the rest acknowledged")
        got = [int(p["message"]) for p in await col.wait_for(5000 - acked)]
    # nothing unacknowledged is lost, nothing is reordered
    assert got == list(range(acked, 5000))
    await bridge.stop()
    await asyncio.wait({task})


async def test_stop_while_the_broker_is_down_returns_at_once(stopped_broker: Broker) -> None:
    hub = EventHub()
    # the default backoff sleep (the real clock), not a test gate
    bridge = MqttBridge(hub, host="127.0.0.1", port=stopped_broker.port, backoff=(5.0, 5.0))
    task = asyncio.create_task(bridge.run())
    await until(lambda: bridge.last_error is not None, what="first refused connection")
    hub.publish(tick(1))
    await asyncio.wait_for(bridge.stop(), 1.0)
    assert task.done() and not bridge.connected and bridge.buffered == 1


async def test_credentials_are_used_and_a_refusal_is_retried(password_broker: Broker) -> None:
    hub = EventHub()
    gate = Gate()
    port = password_broker.port
    wrong = MqttBridge(
        hub, host="127.0.0.1", port=port, username="bridge", password="nope", sleep=gate
    )
    task = asyncio.create_task(wrong.run())
    await until(lambda: len(gate.delays) >= 1, what="refused login")
    assert not wrong.connected and wrong.last_error
    await wrong.stop()
    await asyncio.wait({task})

    right = MqttBridge(hub, host="127.0.0.1", port=port, username="bridge", password="s3cret")
    async with subscriber(port, "dialer/#", "bridge", "s3cret") as (col, _):
        task = await started(right)
        hub.publish(tick(5))
        [msg] = await col.wait_for(1)
        await right.stop()
        await asyncio.wait({task})
    assert msg["message"] == "5"
