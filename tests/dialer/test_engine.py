"""The engine against a scripted world: the simulated PBX with called parties
whose behaviour each test chooses, on the virtual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

import amd
from amd.types import FRAME_SAMPLES, Label, Verdict
from carriers.base import AudioClip, MediaFrames
from carriers.simulated import PartyBehaviour, PartyKind, SimulatedPbx
from dialer.agentstate import AgentState
from dialer.callstate import CallResult, CallState
from dialer.campaign import AmdAction, CampaignSettings, DialMode
from dialer.clock import VirtualClock
from dialer.engine import AmdCache, Call, Engine
from dialer.leadqueue import LeadQueue
from dialer.ports import AgentEvent, GateVerdict, Lead, NullRecorder
from tests.amd.signals import pcm, silence, tone, voice

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HUMAN = AudioClip("human", np.zeros(FRAME_SAMPLES * 50, dtype=np.int16), "human")
MACHINE = AudioClip("machine", np.zeros(FRAME_SAMPLES * 50, dtype=np.int16), "machine")
MESSAGE = AudioClip("msg", np.zeros(8000 * 3, dtype=np.int16))  # 3 s identification message


class FixedDetector:
    """Decides at 1.2 s: HUMAN for the human clip (speech ended at 0.5 s), MACHINE
    otherwise.  Feeding it the clip's frames is what the engine really does."""

    def __init__(self) -> None:
        self.frames = 0
        self.is_human = True

    def feed(self, frame: np.ndarray) -> Verdict | None:
        self.frames += 1
        if self.frames == 60:  # 1.2 s
            return self.finish()
        return None

    def finish(self) -> Verdict:
        return Verdict(Label.HUMAN, self.frames * 20, "test", speech_end_ms=500)


class Script:
    def __init__(self, behaviours: list[PartyBehaviour]) -> None:
        self.it: Iterator[PartyBehaviour] = iter(behaviours)

    def sample(self, number: str, now: float, rng: np.random.Generator) -> PartyBehaviour:
        return next(self.it)


class Agents:
    def __init__(self) -> None:
        self.connected: list[tuple[str, str]] = []
        self.ended: list[str] = []
        self.previewed: list[tuple[str, str]] = []

    def set_listener(self, listener: object) -> None:
        pass

    def connect(self, agent_id: str, call_id: str, lead: Lead) -> None:
        self.connected.append((agent_id, call_id))

    def call_ended(self, agent_id: str, call_id: str) -> None:
        self.ended.append(call_id)

    def preview(self, agent_id: str, call_id: str, lead: Lead) -> None:
        self.previewed.append((agent_id, call_id))


def person(ring: float = 5.0, talk: float = 60.0, patience: float = 30.0) -> PartyBehaviour:
    return PartyBehaviour(PartyKind.PERSON, ring, HUMAN, talk_s=talk, patience_s=patience)


def build(
    behaviours: list[PartyBehaviour],
    leads: int = 1,
    mode: DialMode = DialMode.PROGRESSIVE,
    numbers: int = 1,
    **settings: object,
) -> tuple[VirtualClock, Engine, Agents, list[tuple[str, CallState, CallState]]]:
    clock = VirtualClock(T0)
    pbx = SimulatedPbx(clock, Script(behaviours), np.random.default_rng(0))
    agents = Agents()
    q = LeadQueue()
    for i in range(leads):
        q.push(Lead(i + 1, [f"+1212555{i:04d}{j}"[:12] for j in range(numbers)]), 0.0)
    cs = CampaignSettings(name="t", mode=mode, **settings)  # type: ignore[arg-type]
    engine = Engine(
        clock=clock,
        carrier=pbx,
        agents=agents,
        recorder=NullRecorder(),
        gate=lambda lead, now: GateVerdict(lead.attempts < cs.max_attempts, "attempt_limit"),
        settings=cs,
        leads=q,
        amd_factory=FixedDetector,
        rng=np.random.default_rng(1),
        abandon_message=MESSAGE,
    )
    pbx.set_listener(engine)
    trace: list[tuple[str, CallState, CallState]] = []

    def on_transition(call: Call, src: CallState, dst: CallState) -> None:
        trace.append((call.call_id, src, dst))

    engine.on_transition = on_transition
    return clock, engine, agents, trace


def login(clock: VirtualClock, engine: Engine, agent: str, at: float) -> None:
    clock.call_at(at, lambda: engine.on_agent_event(AgentEvent(agent, AgentState.READY, at)))


def states(trace: list[tuple[str, CallState, CallState]]) -> list[str]:
    return [dst.value for _, _, dst in trace]


def test_live_answer_with_ready_agent_is_connected_and_wraps_up() -> None:
    clock, engine, agents, trace = build([person(ring=5, talk=60)])
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.run(until=100)
    assert states(trace) == [
        "dialing",
        "ringing",
        "answered",
        "classifying",
        "waiting_agent",
        "connected",
        "wrap_up",
    ]
    assert agents.connected and agents.ended
    # wrap-up ends when the agent is ready again, with a disposition
    engine.on_agent_event(AgentEvent("a1", AgentState.READY, clock.monotonic(), "sale"))
    assert states(trace)[-1] == "done"
    assert engine.counters.connects == 1 and engine.counters.abandoned == 0
    assert engine.results_by_call[trace[0][0]] is CallResult.CONNECTED


def test_no_agent_within_two_seconds_of_greeting_end_is_abandoned_with_message() -> None:
    clock, engine, agents, _trace = build([person(ring=5)], mode=DialMode.POWER)
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.step()  # login
    clock.step()  # first tick: dials
    # the agent goes on pause before the answer
    engine.on_agent_event(AgentEvent("a1", AgentState.PAUSED, clock.monotonic()))
    times: dict[str, float] = {}
    engine.on_transition = lambda c, s, d: times.setdefault(d.value, clock.monotonic())
    clock.run(until=60)
    answered = times["answered"]
    # greeting ended 0.5 s after answer; the rule gives 2 s from there
    assert times["abandoned"] == pytest.approx(answered + 0.5 + 2.0)
    # the identification message (3 s) is played, then we hang up
    assert times["done"] == pytest.approx(times["abandoned"] + 3.0)
    assert engine.counters.abandoned == 1 and engine.counters.live_answers == 1
    assert agents.connected == []


def test_agent_free_within_the_window_takes_the_waiting_call() -> None:
    clock, engine, agents, _trace = build([person(ring=5)], mode=DialMode.POWER)
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.step()
    clock.step()
    engine.on_agent_event(AgentEvent("a1", AgentState.PAUSED, clock.monotonic()))
    # ring 5 s + verdict at 1.2 s after answer; greeting end at 5.5 (+0.4 post-dial)
    clock.run(until=7.0)
    assert engine.calls and next(iter(engine.calls.values())).state is CallState.WAITING_AGENT
    engine.on_agent_event(AgentEvent("a1", AgentState.READY, clock.monotonic()))
    assert agents.connected == [("a1", next(iter(engine.calls)))]
    assert engine.counters.abandoned == 0


def test_person_hanging_up_while_waiting_counts_as_abandoned() -> None:
    clock, engine, _, trace = build([person(ring=5, patience=1.5)], mode=DialMode.POWER)
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.step()
    clock.step()
    engine.on_agent_event(AgentEvent("a1", AgentState.PAUSED, clock.monotonic()))
    clock.run(until=60)
    # patience (1.5 s from answer) runs out after the verdict (1.2 s) and before 2 s
    assert "abandoned" in states(trace)
    assert engine.counters.abandoned == 1


def test_machine_is_hung_up_without_an_agent() -> None:
    class MachineDetector(FixedDetector):
        def finish(self) -> Verdict:
            return Verdict(Label.MACHINE, self.frames * 20, "LONGGREETING")

    clock, engine, agents, trace = build(
        [PartyBehaviour(PartyKind.MACHINE, 5.0, MACHINE)], amd_profile="fast"
    )
    engine.amd_factory = MachineDetector
    engine.amd_cache = None
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.run(until=60)
    assert states(trace)[-2:] == ["machine_handled", "done"]
    assert agents.connected == []
    assert engine.counters.machine_answers == 1


def test_busy_is_retried_after_its_delay_and_bad_number_moves_to_the_next_number() -> None:
    clock, engine, _, trace = build(
        [
            PartyBehaviour(PartyKind.BAD_NUMBER, 0),
            PartyBehaviour(PartyKind.BUSY, 0),
            person(ring=3),
        ],
        numbers=2,
    )
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.run(until=30)
    first, second = trace[0][0], next(t[0] for t in trace if t[0] != trace[0][0])
    assert engine.results_by_call[first] is CallResult.BAD_NUMBER
    assert engine.results_by_call[second] is CallResult.BUSY
    clock.run(until=590)
    assert len({t[0] for t in trace}) == 2  # busy waits 600 s
    clock.run(until=700)
    assert len({t[0] for t in trace}) == 3


def test_lines_never_exceed_the_per_agent_limit() -> None:
    behaviours = [PartyBehaviour(PartyKind.NO_ANSWER, 30.0) for _ in range(500)]
    clock, engine, _, _ = build(
        behaviours, leads=500, mode=DialMode.POWER, power_ratio=10.0, max_lines_per_agent=2.0
    )
    for i in range(3):
        login(clock, engine, f"a{i}", 0.0)
    engine.start()
    peak = 0
    while clock.step(until=600):
        peak = max(peak, len(engine.calls))
    assert peak == 6


def test_no_answer_timeout_has_a_regulatory_floor() -> None:
    with pytest.raises(ValueError, match="at least 15 s"):
        CampaignSettings(name="x", no_answer_timeout_s=10)


def test_stats_and_blockers_say_why_nothing_is_dialled() -> None:
    clock, engine, _, _ = build([person()], leads=1)
    engine.start()
    clock.run(until=5)
    codes = {b["code"] for b in engine.stats()["blockers"]}  # type: ignore[attr-defined]
    assert "no_agents" in codes
    login(clock, engine, "a1", 5.0)
    clock.run(until=200)
    engine.on_agent_event(AgentEvent("a1", AgentState.READY, clock.monotonic()))
    clock.run(until=260)
    stats = engine.stats()
    codes = {b["code"] for b in stats["blockers"]}  # type: ignore[attr-defined]
    assert "list_exhausted" in codes and "no_agents" not in codes
    assert stats["connects"] == 1 and stats["dials"] == 1
    engine.stop_dialing()
    assert "paused" in {b.code for b in engine.blockers(clock.monotonic())}


def machine_with_beep() -> tuple[AudioClip, float]:
    """A 5 s greeting, 0.3 s pause and a 0.5 s 1 kHz beep; returns the clip and beep end (s)."""
    x = pcm(silence(0.5), voice(5.0, seed=3), silence(0.3), tone([1000.0], 0.5), silence(3.0))
    return AudioClip("vm-beep", x, "machine"), 0.5 + 5.0 + 0.3 + 0.5


@pytest.mark.parametrize("streamed", [False, True])
def test_message_drop_starts_right_after_the_beep(streamed: bool) -> None:
    """The real detector, on a clip known in advance (simulation) or streamed as a live
    carrier sends it: the message starts when the beep ends, not at the MACHINE verdict."""
    clip, beep_end = machine_with_beep()
    clock, engine, agents, trace = build(
        [PartyBehaviour(PartyKind.MACHINE, 5.0, clip)], amd_action=AmdAction.MESSAGE
    )
    engine.amd_factory = lambda: amd.create("balanced")
    engine.amd_cache = None if streamed else AmdCache(engine.amd_factory)
    pbx = engine.carrier
    assert isinstance(pbx, SimulatedPbx)
    played: list[tuple[float, str]] = []
    play = pbx.play

    def logged_play(call_id: str, c: AudioClip, on_done: Callable[[], None]) -> None:
        played.append((clock.monotonic(), c.clip_id))
        play(call_id, c, on_done)

    pbx.play = logged_play  # type: ignore[method-assign]
    answered: list[float] = []
    on_transition = engine.on_transition

    def noted(call: Call, src: CallState, dst: CallState) -> None:
        on_transition(call, src, dst)
        if dst is CallState.ANSWERED:
            answered.append(clock.monotonic())
            if streamed:  # a live carrier sends the audio in 200 ms packets after answer
                for i in range(0, len(clip.samples), 1600):
                    chunk = clip.samples[i : i + 1600]
                    ev = MediaFrames(call.call_id, 0.0, i / 8000, chunk)
                    at = answered[0] + (i + len(chunk)) / 8000
                    clock.call_at(at, lambda ev=ev: engine.on_carrier_event(ev))

    engine.on_transition = noted
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.run(until=60)
    assert "machine_handled" in states(trace)
    assert agents.connected == []
    assert list(engine.results_by_call.values()) == [CallResult.MESSAGE_LEFT]
    (start, clip_id), *_ = played
    assert clip_id == MESSAGE.clip_id
    after_beep = start - answered[0] - beep_end
    # the message starts once the beep has ended (within the detector's 20 ms frames):
    # at once for audio known in advance; streamed, after the detector has heard that no
    # speech follows the beep (beep_confirm_ms) and the packet holding that moment came
    latest = 0.04 if not streamed else 0.2 + 0.2 + 0.04
    assert -0.04 <= after_beep <= latest, after_beep


def test_amd_cache_keeps_first_verdicts_and_greeting_ends_apart() -> None:
    clip, beep_end = machine_with_beep()
    cache = AmdCache(lambda: amd.create("balanced"))
    plain = cache.classify(clip)
    with_beep = cache.classify(clip, want_beep=True)
    assert plain.label is Label.MACHINE and plain.beep_ms is None
    # the same decision (time, cause, speech end), now with the greeting end
    assert with_beep.decision_ms == plain.decision_ms and with_beep.cause == plain.cause
    assert with_beep.speech_end_ms == plain.speech_end_ms
    assert with_beep.beep_ms is not None and abs(with_beep.beep_ms - beep_end * 1000) <= 40
    assert cache.classify(clip) is plain and cache.classify(clip, True) is with_beep
    assert cache.runs == 2


def test_preview_reserves_the_agent_and_never_abandons() -> None:
    clock, engine, agents, trace = build(
        [person(ring=4), PartyBehaviour(PartyKind.BUSY, 0), person(ring=3)],
        leads=3,
        mode=DialMode.PREVIEW,
        preview_s=5.0,
    )
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.run(until=1.5)
    # the agent holds the record while previewing: reserved, nothing dialled yet
    assert engine.agents["a1"].state is AgentState.RESERVED
    assert "dialing" not in states(trace)
    clock.run(until=30)
    assert agents.connected and agents.connected[0][0] == "a1"
    assert engine.counters.abandoned == 0
    # a desktop that says "ready" while its agent is on a call is refused, not fatal
    engine.on_agent_event(AgentEvent("a1", AgentState.READY, clock.monotonic(), "ok"))
    assert engine.rejected_agent_events == 1
    assert engine.agents["a1"].state is AgentState.ON_CALL
    clock.run(until=100)  # the customer hangs up after 60 s of talk
    engine.on_agent_event(AgentEvent("a1", AgentState.READY, clock.monotonic(), "ok"))
    clock.run(until=130)
    # next record: busy; the reserved agent is given back and previews the third
    busy = [c for c, r in engine.results_by_call.items() if r is CallResult.BUSY]
    assert len(busy) == 1
    assert len(agents.connected) == 2
    assert engine.counters.abandoned == 0


def test_preview_without_timer_waits_for_the_agent_to_dial_and_hang_up() -> None:
    clock, engine, agents, trace = build(
        [person(ring=4, talk=600)], leads=1, mode=DialMode.PREVIEW, preview_s=0.0
    )
    assert engine.agent_hangup("a1") == "the agent is not on a call"
    login(clock, engine, "a1", 0.0)
    engine.start()
    clock.run(until=60)
    # with no timer the record waits on the agent's screen, undialled
    assert agents.previewed and agents.previewed[0][0] == "a1"
    assert "dialing" not in states(trace)
    assert engine.agents["a1"].state is AgentState.RESERVED
    assert engine.dial_preview("a2") == "no previewed call is waiting for this agent"
    assert engine.dial_preview("a1") is None
    clock.run(until=61)
    assert "dialing" in states(trace)
    assert engine.dial_preview("a1") is not None  # a double click does not dial twice
    clock.run(until=70)
    assert agents.connected == [("a1", agents.previewed[0][1])]
    assert engine.agent_hangup("a1") is None
    clock.run(until=71)
    assert engine.agents["a1"].state is AgentState.WRAP_UP
    assert engine.counters.dials == 1


def test_vicidial_baseline_paces_to_the_campaigns_target() -> None:
    from dialer.engine import campaign_policy

    cs = CampaignSettings(name="v", policy="vicidial-adaptive", abandon_target=0.012)
    from pacing.vicidial import VicidialAdaptive

    policy = campaign_policy(cs)
    assert isinstance(policy, VicidialAdaptive)
    assert policy.params.dropped_percentage == pytest.approx(1.2)


def test_a_run_of_trunk_failures_is_reported_as_a_trunk_down() -> None:
    from dialer.events import EventHub

    clock, engine, _, _ = build([PartyBehaviour(PartyKind.BUSY, 0)] * 8, leads=8)
    hub = EventHub()
    seen = hub.subscribe(kinds={"alert"})
    engine.hub = hub
    login(clock, engine, "a1", 0.0)
    # the trunk says it has room but answers every INVITE with 503
    pbx = engine.carrier
    assert isinstance(pbx, SimulatedPbx)
    pbx.params = type(pbx.params)(channels=0)
    pbx.free_channels = lambda: 10  # type: ignore[method-assign]
    engine.start()
    clock.run(until=30)
    codes = [b.code for b in engine.blockers(clock.monotonic())]
    assert "trunk_down" in codes
    alerts = []
    while not seen.queue.empty():
        alerts.append(seen.queue.get_nowait().payload["code"])
    assert alerts.count("trunk_down") == 1  # once per streak, not per call
