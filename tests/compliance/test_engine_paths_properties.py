"""Every path to a dial added with callbacks, dispositions, opt-outs and moves goes
through the gate: a simulated campaign with random contacts, zones, DNC lists,
personal and campaign-wide callbacks (due or not, agents logged in or not), agent
dispositions (opt-outs, callbacks at random local times, retries) and IVR
opt-outs never places a dial that the rules forbid at that moment."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from carriers.simulated import PartyBehaviour, PartyKind, SimulatedPbx
from dialer.agentstate import AgentState
from dialer.callstate import CallResult, CallState
from dialer.campaign import CampaignSettings, DialMode, Treatment
from dialer.clock import VirtualClock
from dialer.compliance.dnc import DncIndex
from dialer.compliance.gate import DialGate, GateRules
from dialer.engine import Engine
from dialer.leadqueue import LeadQueue
from dialer.ports import AgentEvent, Lead, NullRecorder
from tests.compliance.test_gate_properties import (
    ANCHORS,
    NUMBERS,
    US,
    ZONES,
    dnc_indexes,
    violations,
)
from tests.dialer.test_engine import HUMAN, MESSAGE, FixedDetector

DISPOSITIONS = ["sale", "not_interested", "callback", "dnc", "no_contact", "bogus"]


class Parties:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def sample(self, number: str, now: float, rng: np.random.Generator) -> PartyBehaviour:
        kind = self.rng.choice(
            [PartyKind.PERSON, PartyKind.NO_ANSWER, PartyKind.BUSY, PartyKind.MACHINE]
        )
        if kind is PartyKind.PERSON:
            talk = float(self.rng.choice([20.0, 600.0, 3600.0]))
            return PartyBehaviour(kind, 3.0, HUMAN, talk_s=talk, patience_s=30.0)
        return PartyBehaviour(PartyKind(kind), 20.0 if kind is PartyKind.NO_ANSWER else 2.0)


class AutoAgents:
    """Agents that wrap up after a few seconds with a random disposition; a callback
    disposition names a random local time (in or out of hours, past or future)."""

    def __init__(self, clock: VirtualClock, rng: np.random.Generator) -> None:
        self.clock = clock
        self.rng = rng
        self.engine: Engine | None = None

    def set_listener(self, listener: object) -> None:
        pass

    def preview(self, agent_id: str, call_id: str, lead: Lead) -> None:
        pass

    def connect(self, agent_id: str, call_id: str, lead: Lead) -> None:
        if self.rng.random() < 0.2 and self.engine is not None:
            self.engine.ivr_opt_out(call_id)  # the IVR's "press 9", mid-call

    def call_ended(self, agent_id: str, call_id: str) -> None:
        disp = str(self.rng.choice(DISPOSITIONS))
        local = self.clock.wall().replace(tzinfo=None) + timedelta(
            minutes=int(self.rng.integers(-60, 3 * 1440))
        )
        personal = bool(self.rng.random() < 0.5)

        def wrap() -> None:
            assert self.engine is not None
            self.engine.on_agent_event(
                AgentEvent(
                    agent_id,
                    AgentState.READY,
                    self.clock.monotonic(),
                    disp,
                    callback_at=local,
                    callback_personal=personal,
                )
            )

        self.clock.call_later(float(self.rng.uniform(0.5, 30.0)), wrap)


class Checker(NullRecorder):
    """Checks each dial as it is recorded (before the INVITE), against rules
    written independently of the gate's code."""

    def __init__(self, gate: DialGate, clock: VirtualClock) -> None:
        self.gate = gate
        self.clock = clock
        self.bad: list[tuple[str, list[str]]] = []
        self.dials = 0
        self.callbacks_served = 0

    def callback_dialled(self, lead: Lead, call_id: str) -> None:
        self.callbacks_served += 1

    def attempt_started(
        self, call_id: str, lead: Lead, number: str, at: float, state: CallState
    ) -> None:
        self.dials += 1
        # the lead as the gate saw it: before this attempt was counted
        before = replace(lead, attempts=lead.attempts - 1, attempt_log=lead.attempt_log[:-1])
        v = violations(self.gate, before, self.clock.wall())
        if v:
            self.bad.append((call_id, v))


@st.composite
def campaigns(draw: st.DrawFn) -> tuple[list[Lead], datetime]:
    start = draw(st.sampled_from(ANCHORS)) + timedelta(hours=draw(st.integers(-12, 12)))
    leads = []
    for i in range(draw(st.integers(1, 6))):
        nums = draw(st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=2, unique=True))
        cb = draw(st.one_of(st.none(), st.integers(-3600, 86400), st.integers(0, 4 * 3600)))
        leads.append(
            Lead(
                i + 1,
                nums,
                timezone=draw(st.sampled_from(ZONES)),
                priority=draw(st.sampled_from([0, 0, 1_000_000])),
                callback_at=None if cb is None else start + timedelta(seconds=cb),
                callback_agent=draw(st.sampled_from([None, "a1", "a1", "a2", "ghost"]))
                if cb is not None
                else None,
            )
        )
    return leads, start


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    camp=campaigns(),
    dnc=dnc_indexes(),
    agents=st.lists(st.sampled_from(["a1", "a2", "a3"]), min_size=1, max_size=3, unique=True),
    optouts=st.lists(st.tuples(st.integers(0, 30 * 3600), st.sampled_from(NUMBERS)), max_size=4),
    # callbacks booked (or cancelled) from outside while the campaign runs, as the
    # API does: (when, which contact, due in seconds from then, agent or None/cancel)
    bookings=st.lists(
        st.tuples(
            st.integers(0, 30 * 3600),
            st.integers(1, 6),
            st.integers(-600, 12 * 3600),
            st.sampled_from([None, "a1", "a2", "ghost", "cancel"]),
        ),
        max_size=5,
    ),
    mode=st.sampled_from([DialMode.PROGRESSIVE, DialMode.PREDICTIVE, DialMode.PREVIEW]),
    max_attempts=st.integers(1, 4),
    per_day=st.one_of(st.none(), st.integers(1, 2)),
    seed=st.integers(0, 2**16),
)
def test_no_dial_on_any_path_breaks_the_rules(
    camp: tuple[list[Lead], datetime],
    dnc: DncIndex,
    agents: list[str],
    mode: DialMode,
    max_attempts: int,
    per_day: int | None,
    optouts: list[tuple[int, str]],
    bookings: list[tuple[int, int, int, str | None]],
    seed: int,
) -> None:
    leads, start = camp
    rng = np.random.default_rng(seed)
    clock = VirtualClock(start)
    pbx = SimulatedPbx(clock, Parties(rng), np.random.default_rng(seed))
    cs = CampaignSettings(
        name="c",
        mode=mode,
        max_attempts=max_attempts,
        max_attempts_per_day=per_day,
        tick_s=15.0,
        preview_s=2.0,
        callback_grace_s=float(rng.choice([0.0, 600.0, 6 * 3600.0])),
        treatments={
            CallResult.NO_ANSWER: Treatment(action="retry", delay_s=300, move_to="x", move_after=3),
            CallResult.BUSY: Treatment(action="retry", delay_s=120),
            CallResult.MACHINE: Treatment(action="retry", delay_s=900),
        },
    )
    gate = DialGate(
        GateRules(
            "c",
            US,
            "America/New_York",
            max_attempts=max_attempts,
            max_attempts_per_day=per_day,
        ),
        dnc,
    )
    checker = Checker(gate, clock)
    port = AutoAgents(clock, rng)
    q = LeadQueue()
    for lead in leads:
        q.push(lead, 0.0)
    engine = Engine(
        clock=clock,
        carrier=pbx,
        agents=port,
        recorder=checker,
        gate=gate,
        settings=cs,
        leads=q,
        amd_factory=FixedDetector,
        rng=np.random.default_rng(seed),
        abandon_message=MESSAGE,
    )
    port.engine = engine
    pbx.set_listener(engine)
    for a in agents:
        engine.on_agent_event(AgentEvent(a, AgentState.READY, 0.0))

    def book(contact: int, due_s: int, agent: str | None) -> None:
        if contact > len(leads):
            return
        if agent == "cancel":
            engine.cancel_callback(contact)
            return
        # as the store would load the contact (attempts, their log, the last
        # abandon): a fresh Lead the engine must not add beside its own
        src = leads[contact - 1]
        fresh = Lead(
            contact,
            list(src.numbers),
            attempts=src.attempts,
            timezone=src.timezone,
            attempt_log=list(src.attempt_log),
            last_abandon_at=src.last_abandon_at,
        )
        engine.schedule_callback(fresh, clock.wall() + timedelta(seconds=due_s), agent)

    for t, contact, due_s, agent in bookings:
        clock.call_at(float(t), lambda c=contact, d=due_s, a=agent: book(c, d, a))  # type: ignore[misc]
    for t, number in optouts:  # opt-outs through the API at random moments
        clock.call_at(float(t), lambda n=number: engine.opt_out(n, "api", "sup"))  # type: ignore[misc]
    engine.start()
    clock.run(until=30 * 3600.0)
    assert checker.bad == []
    # every contact is in the engine at most once, wherever it is
    in_engine = [lead.contact_id for lead in engine._all_leads()]
    assert len(in_engine) == len(set(in_engine))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.builds(
        lambda a, h: a + timedelta(minutes=h), st.sampled_from(ANCHORS), st.integers(-720, 720)
    ),
    number=st.sampled_from(NUMBERS),
    zone=st.sampled_from(ZONES),
    due_s=st.integers(-3600, 6 * 3600),
    login_s=st.integers(0, 10 * 3600),
    optout_s=st.one_of(st.none(), st.integers(0, 10 * 3600)),
    grace_s=st.sampled_from([0.0, 3600.0, 12 * 3600.0]),
)
# parked at 19:00 in New York, the agent comes at 23:00: the hours have closed
@example(ANCHORS[5] + timedelta(hours=12), NUMBERS[0], None, 0, 4 * 3600, None, 12 * 3600.0)
# parked at 12:00, the person opts out (IVR) before the agent comes
@example(ANCHORS[5] + timedelta(hours=5), NUMBERS[0], None, 0, 600, 100, 3600.0)
def test_a_parked_personal_callback_passes_the_gate_again_when_its_agent_comes(
    start: datetime,
    number: str,
    zone: str | None,
    due_s: int,
    login_s: int,
    optout_s: int | None,
    grace_s: float,
) -> None:
    """The callback passes the gate, waits for its agent (not logged in yet), and
    meanwhile the hours may close or the person may opt out: when the agent comes
    (or the grace period ends) the dial is checked again."""
    clock = VirtualClock(start)
    pbx = SimulatedPbx(clock, Parties(np.random.default_rng(0)), np.random.default_rng(0))
    cs = CampaignSettings(name="c", mode=DialMode.PREDICTIVE, tick_s=30.0, callback_grace_s=grace_s)
    gate = DialGate(GateRules("c", US, "America/New_York"), DncIndex())
    checker = Checker(gate, clock)
    q = LeadQueue()
    due = start + timedelta(seconds=due_s)
    q.push(Lead(1, [number], timezone=zone, callback_at=due, callback_agent="a1"), 0.0)
    port = AutoAgents(clock, np.random.default_rng(0))
    engine = Engine(
        clock=clock,
        carrier=pbx,
        agents=port,
        recorder=checker,
        gate=gate,
        settings=cs,
        leads=q,
        amd_factory=FixedDetector,
        rng=np.random.default_rng(0),
        abandon_message=MESSAGE,
    )
    port.engine = engine
    pbx.set_listener(engine)
    engine.on_agent_event(AgentEvent("a2", AgentState.READY, 0.0))
    clock.call_at(
        float(login_s),
        lambda: engine.on_agent_event(AgentEvent("a1", AgentState.READY, clock.monotonic())),
    )
    if optout_s is not None:
        clock.call_at(float(optout_s), lambda: engine.opt_out(number, "ivr"))
    engine.start()
    clock.run(until=12 * 3600.0)
    assert checker.bad == []
    assert checker.callbacks_served <= 1  # a callback is consumed by its dial
