"""Agentless campaigns: the message, the menu, opt-outs, and line-limited pacing,
on the real engine and the simulated PBX under the virtual r.clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from carriers.base import AudioClip, Dtmf
from carriers.simulated import PartyBehaviour, PartyKind
from dialer.agentstate import AgentState
from dialer.callstate import CallResult, CallState
from dialer.clock import VirtualClock
from dialer.engine import Call, Engine
from dialer.ivr import EspeakSpeech, IvrSettings, TimedSpeech, render_message
from dialer.ports import AgentEvent, NullRecorder, OptOut
from tests.conftest import need_tool
from tests.dialer.test_engine import HUMAN, Agents, build, login

MESSAGE = "Hello {{ name }}, your payment of {{ amount }} is due. Press 9 to stop these calls."


class Said(TimedSpeech):
    """Timed speech that remembers what it was asked to say."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def clip(self, text: str) -> AudioClip | None:
        self.texts.append(text)
        return super().clip(text)


class Recorder(NullRecorder):
    def __init__(self) -> None:
        self.updates: list[tuple[str, dict[str, object]]] = []
        self.opted: list[tuple[int, str, str]] = []  # (contact, number, source) stored

    def attempt_updated(self, call_id: str, values: dict[str, object]) -> None:
        self.updates.append((call_id, values))

    def opted_out(self, record: OptOut) -> None:
        assert record.contact_id is not None
        self.opted.append((record.contact_id, record.number, record.source))


def listener(key: str, at: float, ring: float = 2.0, patience: float = 4.0) -> PartyBehaviour:
    return PartyBehaviour(
        PartyKind.PERSON, ring, HUMAN, talk_s=60, patience_s=patience, ivr_key=key, ivr_key_s=at
    )


@dataclass
class Rig:
    clock: VirtualClock
    engine: Engine
    agents: Agents
    trace: list[tuple[str, CallState, CallState]]
    said: Said
    rec: Recorder
    opted: list[tuple[int, str, str]]


def ivr_engine(parties: list[PartyBehaviour], **ivr: object) -> Rig:
    settings = IvrSettings(message=MESSAGE, **ivr)  # type: ignore[arg-type]
    clock, engine, agents, trace = build(
        parties, leads=len(parties), ivr=settings, amd_enabled=False
    )
    rec = Recorder()
    rig = Rig(clock, engine, agents, trace, Said(), rec, rec.opted)
    engine.speech = rig.said
    engine.recorder = rec
    return rig


def test_press_9_opts_out_and_hears_the_confirmation() -> None:
    r = ivr_engine([listener("9", at=3.0)])
    r.engine.start()
    r.clock.run(until=60)
    assert len(r.opted) == 1 and r.opted[0][2] == "ivr"
    assert r.opted[0][1].startswith("+1212555")
    call_id = r.trace[0][0]
    assert (call_id, {"disposition": "ivr:opt_out"}) in r.rec.updates
    assert r.engine.results_by_call[call_id] is CallResult.IVR_COMPLETED
    assert r.said.texts[-1] == "You will not be called again. Goodbye."
    states = [dst for _, _, dst in r.trace]
    assert CallState.IVR in states and CallState.WAITING_AGENT not in states
    assert r.engine.counters.abandoned == 0
    assert r.engine.counters.ivr_outcomes == {"opt_out": 1}


def test_no_key_repeats_the_message_once_then_says_goodbye() -> None:
    r = ivr_engine([listener("", at=0.0, patience=120.0)], input_timeout_s=3.0)
    r.engine.start()
    r.clock.run(until=120)
    message = r.said.texts[0]
    # the fallback: the scripted contact has no name or amount
    assert message == "Hello. This is an automated message. Please call us back."
    assert r.said.texts.count(message) == 2 and r.said.texts[-1] == "Goodbye."
    assert not r.opted
    call_id = r.trace[0][0]
    assert (call_id, {"disposition": "ivr:no_input"}) in r.rec.updates
    assert r.engine.results_by_call[call_id] is CallResult.IVR_COMPLETED


def test_press_2_reaches_a_ready_agent_or_hears_that_nobody_can() -> None:
    r = ivr_engine([listener("2", at=2.0), listener("2", at=2.0, ring=5.0)], lines=1)
    login(r.clock, r.engine, "a1", 0.0)
    r.engine.start()
    r.clock.run(until=30)
    assert len(r.agents.connected) == 1 and r.agents.connected[0][0] == "a1"
    first = r.agents.connected[0][1]
    assert (first, {"disposition": "ivr:to_agent"}) in r.rec.updates
    # the agent is busy when the second person presses 2
    r.clock.run(until=150)
    assert r.engine.counters.ivr_outcomes == {"to_agent": 1, "agent_unavailable": 1}
    assert "Sorry, nobody can take your call now. Goodbye." in r.said.texts
    assert r.engine.counters.abandoned == 0


def test_lines_limit_concurrent_calls_with_no_agents() -> None:
    parties = [listener("", at=0.0, ring=10.0) for _ in range(6)]
    r = ivr_engine(parties, lines=2)
    peak = 0

    def watch(call: Call, src: CallState, dst: CallState) -> None:
        nonlocal peak
        r.trace.append((call.call_id, src, dst))
        peak = max(peak, len(r.engine.calls))

    r.engine.on_transition = watch
    r.engine.start()
    r.clock.run(until=400)
    assert r.engine.counters.dials == 6 and peak == 2
    assert not r.engine.agents


def test_message_is_personalised_in_a_sandbox() -> None:
    fields = {"name": "Ada", "amount": "$40"}
    assert render_message(MESSAGE, fields).startswith("Hello Ada, your payment of $40 is due.")
    with pytest.raises(Exception, match="name"):
        render_message(MESSAGE, {"amount": "1"})
    # the sandbox refuses to reach Python internals through a field
    with pytest.raises(Exception, match=r"unsafe|not safely|access"):
        render_message("{{ name.__class__.__mro__ }}", {"name": "x"})


def test_settings_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a valid template"):
        IvrSettings(message="Hello {{ name ")
    with pytest.raises(ValidationError, match="one DTMF digit"):
        IvrSettings(message="hi", menu={"12": "agent"})
    with pytest.raises(ValidationError, match="opt_out"):
        IvrSettings(message="hi", menu={"9": "explode"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="no such file"):
        IvrSettings(message="hi", prompt_wav=tmp_path / "missing.wav")
    with pytest.raises(ValidationError, match="menu key '2' transfers, but transfer_to is not set"):
        IvrSettings(message="hi", menu={"2": "transfer"})
    with pytest.raises(ValidationError, match="transfer_to: 'call us' is not a phone number"):
        IvrSettings(message="hi", menu={"2": "transfer"}, transfer_to="call us")
    ok = IvrSettings(message="hi", menu={"2": "transfer"}, transfer_to="(212) 555-0199")
    assert ok.transfer_to == "+12125550199"  # national numbers read in transfer_region


def test_press_2_transfers_to_the_business_line() -> None:
    r = ivr_engine([listener("2", at=2.0)], menu={"2": "transfer"}, transfer_to="+12125550199")
    r.engine.start()
    r.clock.run(until=20)
    call_id = r.trace[0][0]
    assert "Please hold while we connect you." in r.said.texts
    assert (call_id, {"disposition": "ivr:transferred"}) in r.rec.updates
    assert (call_id, {"agent": "transfer:+12125550199"}) in r.rec.updates
    # still in the IVR state while they talk to the business (talk_s = 60)
    assert r.engine.calls[call_id].state is CallState.IVR
    r.clock.run(until=120)
    assert r.engine.results_by_call[call_id] is CallResult.IVR_COMPLETED
    assert r.engine.counters.ivr_outcomes == {"transferred": 1}


def test_desk_agent_is_unaffected_by_keys_outside_ivr() -> None:
    # a key pressed while talking to an agent is not a menu choice
    r = ivr_engine([listener("2", at=2.0)])
    r.engine.on_agent_event(AgentEvent("a1", AgentState.READY, 0.0))
    r.engine.start()
    r.clock.run(until=20)
    call_id = r.agents.connected[0][1]
    r.engine.on_carrier_event(Dtmf(call_id, r.clock.monotonic(), "9"))
    assert not r.opted


async def test_espeak_renders_real_speech_off_the_loop() -> None:
    need_tool("espeak-ng")
    speech = EspeakSpeech()
    text = "Hello Ada, this is a reminder from Acme."
    assert speech.clip(text) is None
    speech.prepare(text)
    for _ in range(200):
        if speech.clip(text) is not None:
            break
        await asyncio.sleep(0.02)
    clip = speech.clip(text)
    assert clip is not None
    assert 1.0 < clip.duration_s < 6.0  # eight words at 160 words a minute
    rms = float(np.sqrt(np.mean(clip.samples.astype(np.float64) ** 2)))
    assert rms > 300  # speech, not silence
    assert speech.render_now(text).clip_id == clip.clip_id
