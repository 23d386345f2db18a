"""Desktop agents (people at the web desktop) driving the real engine on the
virtual clock: the messages their screens get and what the engine records."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from carriers.simulated import SimulatedPbx
from dialer.agentstate import AgentState
from dialer.callstate import CallResult
from dialer.campaign import DialMode
from dialer.desktop import WRAP_TIMEOUT, DeskError, DesktopAgents
from dialer.events import EventHub
from dialer.ports import NullRecorder
from tests.dialer.test_engine import build, person


class Recorder(NullRecorder):
    def __init__(self) -> None:
        self.updates: list[tuple[str, dict[str, object]]] = []

    def attempt_updated(self, call_id: str, values: dict[str, object]) -> None:
        self.updates.append((call_id, values))


def desk_engine(behaviours: list[Any], **settings: object) -> tuple[Any, ...]:
    clock, engine, _, trace = build(behaviours, leads=len(behaviours), **settings)
    desk = DesktopAgents(clock, engine.settings.name, wrap_up_s=30.0)
    engine.agents_port = desk
    desk.set_listener(engine)
    rec = Recorder()
    engine.recorder = rec
    engine.hub = EventHub()
    engine.hub.add_listener(desk.follow)
    assert isinstance(engine.carrier, SimulatedPbx)
    return clock, engine, desk, rec, trace


def drain(box: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    while not box.empty():
        out.append(box.get_nowait())
    return out


def test_agent_works_a_call_from_login_to_disposition() -> None:
    clock, engine, desk, rec, _ = desk_engine([person(ring=3, talk=500), person(ring=3)])
    box = desk.attach("ann")
    assert drain(box)[0]["state"] == "logged_out"
    with pytest.raises(DeskError, match="log in first"):
        desk.ready("ann")
    desk.login("ann")
    engine.start()
    clock.run(until=30)
    # logged in, but paused until ready: nothing is dialled for a paused agent
    assert engine.agents["ann"].state is AgentState.PAUSED
    assert engine.counters.dials == 0
    desk.ready("ann")
    clock.run(until=60)
    msgs = drain(box)
    pop = [m for m in msgs if m["type"] == "connected"]
    assert len(pop) == 1 and pop[0]["contact"]["number"].startswith("+1212555")
    assert engine.agents["ann"].state is AgentState.ON_CALL
    assert desk.view("ann")["state"] == "on_call"
    with pytest.raises(DeskError, match="finish the call"):
        desk.logout("ann")
    assert engine.agent_hangup("ann") is None
    clock.run(until=61)
    assert [m["type"] for m in drain(box)][-1] in ("call_ended", "state")
    assert desk.view("ann")["state"] == "wrap_up"
    with pytest.raises(DeskError, match="disposition for the last call"):
        desk.ready("ann")
    with pytest.raises(DeskError, match="unknown disposition 'great'"):
        desk.dispose("ann", "great")
    closed = desk.dispose("ann", "sale", then_pause="lunch")
    call_id = pop[0]["call_id"]
    assert closed["call_id"] == call_id and closed["disposition"] == "sale"
    assert (call_id, {"disposition": "sale"}) in rec.updates
    assert engine.results_by_call[call_id] is CallResult.CONNECTED
    assert engine.agents["ann"].state is AgentState.PAUSED
    assert desk.view("ann")["pause_reason"] == "lunch"
    clock.run(until=200)
    assert engine.counters.dials == 1  # paused again: the second contact waits
    desk.logout("ann")
    assert engine.agents["ann"].state is AgentState.LOGGED_OUT


def test_wrap_up_times_out_to_ready_with_its_own_disposition() -> None:
    clock, engine, desk, rec, _ = desk_engine([person(ring=2, talk=20), person(ring=2)])
    box = desk.attach("bob")
    desk.login("bob")
    desk.ready("bob")
    engine.start()
    clock.run(until=35)  # connected at ~3 s, the customer hangs up at ~23 s
    assert desk.view("bob")["state"] == "wrap_up"
    clock.run(until=60)  # 30 s of wrap-up ran out
    assert any(m.get("message") == "wrap-up time ran out" for m in drain(box))
    first = next(c for c, v in rec.updates if v == {"disposition": WRAP_TIMEOUT})
    assert engine.results_by_call[first] is CallResult.CONNECTED
    # ready again, so the second contact is dialled and connected to bob
    clock.run(until=70)
    assert engine.agents["bob"].state is AgentState.ON_CALL


def test_preview_agent_reads_the_record_then_dials() -> None:
    clock, engine, desk, _, _ = desk_engine(
        [person(ring=2, talk=100)], mode=DialMode.PREVIEW, preview_s=0.0
    )
    box = desk.attach("cy")
    desk.login("cy")
    desk.ready("cy")
    engine.start()
    clock.run(until=20)
    msgs = drain(box)
    preview = [m for m in msgs if m["type"] == "preview"]
    assert len(preview) == 1 and desk.view("cy")["state"] == "reserved"
    assert engine.counters.dials == 0
    assert engine.dial_preview("cy") is None
    clock.run(until=30)
    assert engine.counters.dials == 1
    assert any(m["type"] == "connected" for m in drain(box))


def test_a_stalled_tab_loses_old_messages_not_the_engine() -> None:
    _, _, desk, _, _ = desk_engine([person()])
    desk.outbox_size = 3
    box = desk.attach("dee")
    desk.login("dee")
    for reason in ("a", "b", "c", "d", "e"):
        desk.pause("dee", reason)
    msgs = drain(box)
    assert len(msgs) == 3 and msgs[-1]["pause_reason"] == "e"
    with pytest.raises(DeskError, match="say why"):
        desk.pause("dee", "  ")


def test_a_callback_code_without_a_time_is_refused_and_the_wrap_up_kept() -> None:
    from datetime import UTC, datetime

    clock, engine, desk, rec, _ = desk_engine([person(ring=2, talk=10), person(ring=2)])
    desk.callback_codes = frozenset({"call_me"})
    desk.dispositions = ("sale", "call_me")
    desk.login("eve")
    desk.ready("eve")
    engine.start()
    clock.run(until=20)  # connected, and the customer has hung up
    assert desk.view("eve")["state"] == "wrap_up"
    assert desk.view("eve")["callback_dispositions"] == ["call_me"]
    with pytest.raises(DeskError, match="'call_me' books a callback: give a date and time"):
        desk.dispose("eve", "call_me")
    # nothing was lost: still in wrap-up with the same call, which can be closed
    assert desk.view("eve")["state"] == "wrap_up" and desk.view("eve")["call_id"]
    closed = desk.dispose("eve", "call_me", callback_at=datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    assert closed["disposition"] == "call_me"
    assert (closed["call_id"], {"disposition": "call_me"}) in rec.updates
