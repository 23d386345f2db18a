"""SIP agents on real loopback sockets: the carrier calls an agent's phone once
(the nailed-up leg), bridges a customer from the SIP simulated PBX to it, and
audio and keys cross the bridge both ways.  The phones are `sim.sip_phones`
(our own Endpoint on its own socket, as a softphone would be); the customers are
the SIP PBX, whose people answer what they hear with a tone of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import numpy as np
import pytest

from carriers.base import AgentLegRequest, AgentLineDown, AgentLineEvent, AgentLineUp, Answered
from carriers.sip.carrier import SipCarrier, SipCarrierParams, Trunk
from carriers.sip.sdp import PCMA
from dialer.clock import RealClock
from sim.sip_pbx import SipPbxParams
from sim.sip_phones import SipPhone
from tests.carriers.sip.peers import LOOPBACK, Collector, DialRequest
from tests.sim.uac import FAST, Pbx, scenario, start_pbx

AGENT_HZ = 700.0  # the agent's phone sends this
CUSTOMER_HZ = 1000.0  # a customer who hears the agent answers with this
CONNECT_HZ = 880.0  # the carrier's connect tone, to the agent only


@dataclass
class Rig:
    carrier: SipCarrier
    calls: Collector
    lines: list[AgentLineEvent]
    clock: RealClock
    pbx: Pbx

    async def line_event(self, agent: str, timeout: float = 5.0) -> AgentLineEvent:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for ev in self.lines:
                if ev.agent_id == agent:
                    self.lines.remove(ev)
                    return ev
            assert asyncio.get_running_loop().time() < deadline, f"no line event for {agent}"
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.carrier.stop()
        await self.pbx.server.stop()

    async def answered(self, call_id: str, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.calls.of(call_id, Answered):
            assert asyncio.get_running_loop().time() < deadline, "customer did not answer"
            await asyncio.sleep(0.01)


async def make_rig(
    pbx_params: SipPbxParams | None = None,
    talk_s: float = 2.0,
    ivr: str | None = None,
    **carrier: object,
) -> Rig:
    params = pbx_params or replace(FAST, reply_tone_hz=CUSTOMER_HZ)
    called = {
        "talk": f'{{ kind = "fixed", mean = {talk_s} }}',
        "ring": '{ kind = "fixed", mean = 0.2 }',
    }
    if ivr is not None:
        called["ivr"] = ivr
    pbx = await start_pbx(scenario(**called), params)
    clock = RealClock()
    cp = SipCarrierParams(
        trunks=(Trunk("pbx", LOOPBACK, pbx.addr[1], max_concurrent=50, max_cps=50),),
        bind_host=LOOPBACK,
        bind_port=0,
        rtp_port_min=0,
        rtp_port_max=0,
        agents=True,
        **carrier,  # type: ignore[arg-type]
    )
    sip = SipCarrier(clock, cp, np.random.default_rng(3))
    calls = Collector()
    lines: list[AgentLineEvent] = []
    sip.set_listener(calls)
    sip.set_line_listener(lines.append)
    await sip.start()
    return Rig(sip, calls, lines, clock, pbx)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = await make_rig()
    yield r
    await r.close()


async def phone_for(rig: Rig, user: str = "alice") -> SipPhone:
    phone = SipPhone(rig.clock, user, rig.carrier.local_addr, tone_hz=AGENT_HZ)
    await phone.start(register=False)
    rig.carrier.nail_up(AgentLegRequest(user, phone.uri))
    ev = await rig.line_event(user)
    assert isinstance(ev, AgentLineUp), ev
    assert phone.answered == 1 and rig.carrier.line_up(user)
    return phone


async def bridged_call(rig: Rig, agent: str, call_id: str = "c1") -> None:
    rig.carrier.dial(DialRequest(call_id, "+15550001111", timeout_s=15))
    await rig.answered(call_id)
    await asyncio.sleep(0.3)  # the greeting; the engine's AMD would wait for its end
    rig.carrier.bridge(call_id, agent)


async def test_customer_and_agent_hear_each_other_and_the_line_stays_up(rig: Rig) -> None:
    phone = await phone_for(rig)
    await bridged_call(rig, "alice")
    ended = await rig.calls.wait("c1")
    leg = await rig.pbx.wait_ended()
    # the customer heard the agent's tone (through our relay), then talked for
    # talk_s and hung up, as a person spoken to by an agent does
    assert leg.heard_at is not None and abs(leg.heard_hz - AGENT_HZ) < 25, leg
    assert leg.hung_up_by == "far end" or ended.by_remote, (leg, ended)
    # the agent heard the connect tone first, then the customer's answer
    assert phone.bursts and abs(phone.bursts[0].peak_hz - CONNECT_HZ) < 25, list(phone.bursts)
    assert phone.heard_tone(CUSTOMER_HZ), list(phone.bursts)
    assert rig.carrier.stats.bridges == 1 and rig.carrier.relayed_total() > 50
    assert len(rig.carrier.stats.bridge_to_audio) == 1
    # the nailed-up leg outlives the customer's call: the next one needs no ring
    assert rig.carrier.line_up("alice") and phone.up and phone.answered == 1
    await bridged_call(rig, "alice", "c2")
    await rig.calls.wait("c2")
    assert phone.answered == 1 and rig.carrier.stats.bridges == 2
    await phone.stop()
    down = await rig.line_event("alice")
    assert isinstance(down, AgentLineDown) and down.cause == "the agent's phone hung up"


async def test_agent_hanging_up_ends_the_customer_call_too(rig: Rig) -> None:
    phone = await phone_for(rig)
    await bridged_call(rig, "alice")
    await asyncio.sleep(0.5)
    phone.hang_up()
    ended = await rig.calls.wait("c1")
    assert "agent alice" in ended.cause and "hung up" in ended.cause, ended
    down = await rig.line_event("alice")
    assert isinstance(down, AgentLineDown) and down.by_remote
    assert not rig.carrier.line_up("alice")
    await phone.stop()


async def test_keys_cross_the_bridge_both_ways() -> None:
    rig = await make_rig(ivr='{ keys = { "7" = 1.0 }, press = { kind = "fixed", mean = 0.5 } }')
    try:
        phone = await phone_for(rig)
        await bridged_call(rig, "alice")
        await asyncio.sleep(0.3)
        phone.send_digit("5")
        await rig.calls.wait("c1")
        leg = await rig.pbx.wait_ended()
        # the customer's key reached the agent's phone as RFC 4733
        assert leg.pressed == "7" and phone.digits == ["7"], (leg, phone.digits)
        # and the agent's key reached the customer's leg
        assert leg.digits_heard == "5", leg
        await phone.stop()
    finally:
        await rig.close()


async def test_pcma_customer_is_transcoded_for_a_pcmu_phone() -> None:
    rig = await make_rig(replace(FAST, reply_tone_hz=CUSTOMER_HZ, codecs=(PCMA,)))
    try:
        phone = await phone_for(rig)
        assert phone.stream is not None and phone.stream.session is not None
        assert phone.stream.session.payload_type == 0  # the phone took PCMU
        await bridged_call(rig, "alice")
        await rig.calls.wait("c1")
        leg = await rig.pbx.wait_ended()
        assert abs(leg.heard_hz - AGENT_HZ) < 25, leg
        assert phone.heard_tone(CUSTOMER_HZ), list(phone.bursts)
        await phone.stop()
    finally:
        await rig.close()


async def test_bridge_to_an_agent_without_a_line_ends_the_call_with_a_cause(rig: Rig) -> None:
    rig.carrier.dial(DialRequest("c1", "+15550001111", timeout_s=15))
    await rig.answered("c1")
    rig.carrier.bridge("c1", "nobody")
    ended = await rig.calls.wait("c1")
    assert "nobody's phone line is not up" in ended.cause, ended


async def test_lines_that_cannot_come_up_say_why(rig: Rig) -> None:
    cases = {
        "a": ("bob", "no phone registered as 'bob'"),
        "b": ("sip:bob@phones.example.com:5060", "the host must be an IP address"),
        "c": ("sip:bob@[not", "bad phone URI"),
        "d": ("tel:+15551234567", "neither a sip: URI nor a registered user"),
        "e": ("sips:bob@127.0.0.1:5061", "is not a sip: URI"),
    }
    for agent, (target, _) in cases.items():
        rig.carrier.nail_up(AgentLegRequest(agent, target))
    for agent, (_, why) in cases.items():
        ev = await rig.line_event(agent)
        assert isinstance(ev, AgentLineDown) and why in ev.cause, (target, ev)
        assert not ev.by_remote
    # the bad ones leave nothing behind: a good phone still comes up and takes a call
    phone = await phone_for(rig)
    await bridged_call(rig, "alice")
    await rig.calls.wait("c1")
    assert phone.heard_tone(CUSTOMER_HZ) and rig.carrier.line_up("alice")
    await phone.stop()


async def test_a_phone_that_never_answers_times_out() -> None:
    rig = await make_rig(line_answer_timeout_s=0.5)
    try:
        # a socket that reads nothing: the INVITE is never answered
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(LOOPBACK, 0)
        )
        port = transport.get_extra_info("sockname")[1]
        rig.carrier.nail_up(AgentLegRequest("carol", f"sip:carol@{LOOPBACK}:{port}"))
        ev = await rig.line_event("carol", timeout=5.0)
        assert isinstance(ev, AgentLineDown) and "did not answer" in ev.cause, ev
        transport.close()
    finally:
        await rig.close()


async def test_a_phone_that_dies_without_a_bye_is_hung_up_and_its_customer_not_left() -> None:
    rig = await make_rig(line_rtp_timeout_s=0.8, talk_s=30.0)
    try:
        alive = await phone_for(rig, "alice")
        dead = await phone_for(rig, "bob")
        # both phones send audio continuously: neither line is dropped while they do
        await asyncio.sleep(1.5)
        assert rig.carrier.line_up("alice") and rig.carrier.line_up("bob")
        assert not rig.lines
        await bridged_call(rig, "bob", "c1")
        await asyncio.sleep(0.3)
        assert rig.carrier.line_up("bob")  # bridged and relaying: still heard
        dead.crash()
        ev = await rig.line_event("bob", timeout=5.0)
        assert isinstance(ev, AgentLineDown) and ev.by_remote, ev
        assert "no audio from the agent's phone for 0.8 s" in ev.cause
        assert not rig.carrier.line_up("bob")
        # the customer bridged to the dead phone is hung up with the reason, not left
        ended = await rig.calls.wait("c1")
        assert "agent bob" in ended.cause and "no audio" in ended.cause, ended
        # the live phone's line is untouched
        assert rig.carrier.line_up("alice") and not rig.lines
        await alive.stop()
        await dead.stop()
    finally:
        await rig.close()


async def test_a_registered_phone_is_called_at_its_binding() -> None:
    rig = await make_rig(agent_users=(("alice", "s3cret"), ("bob", "other")))
    try:
        phone = SipPhone(rig.clock, "alice", rig.carrier.local_addr, password="s3cret")
        await phone.start()
        await asyncio.wait_for(phone.registered.wait(), 5.0)
        assert rig.carrier.registrar is not None
        binding = rig.carrier.registrar.lookup("alice", rig.clock.monotonic())
        assert binding is not None and binding.addr == phone.addr
        # the phone shares 127.0.0.1 with the trunk: its traffic is still the agent's
        rig.carrier.nail_up(AgentLegRequest("alice", "alice"))
        ev = await rig.line_event("alice")
        assert isinstance(ev, AgentLineUp) and phone.answered == 1, ev
        await bridged_call(rig, "alice")
        await rig.calls.wait("c1")
        leg = await rig.pbx.wait_ended()
        assert abs(leg.heard_hz - AGENT_HZ) < 25 and phone.heard_tone(CUSTOMER_HZ)
        await phone.stop()  # BYE, then REGISTER with Expires: 0
        down = await rig.line_event("alice")
        assert isinstance(down, AgentLineDown)
        for _ in range(100):
            if rig.carrier.registrar.lookup("alice", rig.clock.monotonic()) is None:
                break
            await asyncio.sleep(0.01)
        assert rig.carrier.registrar.lookup("alice", rig.clock.monotonic()) is None
    finally:
        await rig.close()


async def test_a_wrong_password_registers_nothing() -> None:
    rig = await make_rig(agent_users=(("alice", "s3cret"),))
    try:
        phone = SipPhone(rig.clock, "alice", rig.carrier.local_addr, password="guess")
        await phone.start()
        for _ in range(200):
            if phone.register_failure is not None:
                break
            await asyncio.sleep(0.01)
        assert phone.register_failure is not None and phone.register_failure.startswith("40")
        assert not phone.registered.is_set()
        rig.carrier.nail_up(AgentLegRequest("alice", "alice"))
        ev = await rig.line_event("alice")
        assert isinstance(ev, AgentLineDown) and "no phone registered as 'alice'" in ev.cause
        await phone.stop()
    finally:
        await rig.close()


async def test_transfer_joins_the_customer_to_another_number(rig: Rig) -> None:
    rig.carrier.dial(DialRequest("c1", "+15550001111", timeout_s=15))
    await rig.answered("c1")
    results: list[tuple[bool, str]] = []
    rig.carrier.transfer("c1", "+15550002222", lambda ok, why: results.append((ok, why)))
    for _ in range(300):
        if results:
            break
        await asyncio.sleep(0.01)
    assert results == [(True, "")]
    # both are PBX people: each hears the other's greeting through the join and
    # replies; the first to finish talking hangs up, which ends the other too
    ended = await rig.calls.wait("c1", timeout=15)
    legs = [await rig.pbx.wait_ended(), await rig.pbx.wait_ended()]
    assert {leg.number for leg in legs} == {"+15550001111", "+15550002222"}
    assert all(leg.heard_at is not None for leg in legs), legs
    assert "transfer" in ended.cause or ended.by_remote, ended
    # the transfer's own call never reached the engine's listener
    assert all(not e.call_id.endswith("/transfer") for e in rig.calls.events)


async def test_a_transfer_that_is_not_answered_says_why() -> None:
    # a PBX with one channel: the transfer's call gets 503 (and no other trunk)
    rig = await make_rig(pbx_params=replace(FAST, reply_tone_hz=CUSTOMER_HZ, channels=1))
    try:
        rig.carrier.dial(DialRequest("c1", "+15550001111", timeout_s=15))
        await rig.answered("c1")
        results: list[tuple[bool, str]] = []
        rig.carrier.transfer("c1", "+15550002222", lambda ok, why: results.append((ok, why)))
        rig.carrier.transfer("nope", "+15550002222", lambda ok, why: results.append((ok, why)))
        for _ in range(500):
            if len(results) == 2:
                break
            await asyncio.sleep(0.01)
        assert (False, "the call is not answered") in results, results
        failed = [r for r in results if r[1] != "the call is not answered"]
        assert failed and not failed[0][0] and "503" in failed[0][1], results
        # the customer is still on the line (the engine decides what they hear next)
        assert rig.carrier.free_channels() >= 0 and "c1" not in rig.calls.ended
        rig.carrier.hangup("c1")
        await rig.calls.wait("c1")
    finally:
        await rig.close()
