"""Callbacks, dispositions, opt-outs and moves in the engine, on the virtual clock
against the simulated PBX, with the real dial gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from carriers.simulated import PartyBehaviour, PartyKind, SimulatedPbx
from dialer.agentstate import AgentState
from dialer.callstate import CallResult, CallState
from dialer.campaign import CampaignSettings, DialMode, Treatment
from dialer.clock import VirtualClock
from dialer.compliance.dnc import DncIndex
from dialer.compliance.gate import DialGate, gate_for
from dialer.engine import Call, Engine
from dialer.leadqueue import LeadQueue
from dialer.ports import AgentEvent, DispositionRecord, Lead, NullRecorder, OptOut
from tests.conftest import ANYTIME_CALLTIMES
from tests.dialer.test_engine import HUMAN, MESSAGE, FixedDetector

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday, 09:00 in New York


class World:
    """Every number answers as a person unless told otherwise."""

    def __init__(self) -> None:
        self.kinds: dict[str, PartyKind] = {}

    def sample(self, number: str, now: float, rng: np.random.Generator) -> PartyBehaviour:
        kind = self.kinds.get(number, PartyKind.PERSON)
        if kind is PartyKind.PERSON:
            return PartyBehaviour(kind, 2.0, HUMAN, talk_s=10.0, patience_s=30.0)
        return PartyBehaviour(kind, 30.0 if kind is PartyKind.NO_ANSWER else 2.0)


class Agents:
    def __init__(self) -> None:
        self.connected: list[tuple[str, str]] = []
        self.ended: list[tuple[str, str]] = []
        self.previewed: list[tuple[str, int]] = []

    def set_listener(self, listener: object) -> None:
        pass

    def connect(self, agent_id: str, call_id: str, lead: Lead) -> None:
        self.connected.append((agent_id, call_id))

    def call_ended(self, agent_id: str, call_id: str) -> None:
        self.ended.append((agent_id, call_id))

    def preview(self, agent_id: str, call_id: str, lead: Lead) -> None:
        self.previewed.append((agent_id, lead.contact_id))


@dataclass
class Rec(NullRecorder):
    optouts: list[OptOut] = field(default_factory=list)
    dispositions: list[DispositionRecord] = field(default_factory=list)
    moved: list[tuple[int, str]] = field(default_factory=list)
    statuses: dict[int, str] = field(default_factory=dict)
    booked: list[tuple[int, datetime | None, str | None]] = field(default_factory=list)
    served: list[tuple[int, str]] = field(default_factory=list)

    def opted_out(self, record: OptOut) -> None:
        self.optouts.append(record)

    def disposition(self, record: DispositionRecord) -> None:
        self.dispositions.append(record)

    def lead_moved(self, lead: Lead, to_campaign: str, at: float) -> None:
        self.moved.append((lead.contact_id, to_campaign))

    def lead_updated(
        self, lead: Lead, status: str, next_at: float | None, last_result: str | None
    ) -> None:
        self.statuses[lead.contact_id] = status

    def callback_booked(self, lead: Lead, source: str) -> None:
        self.booked.append((lead.contact_id, lead.callback_at, lead.callback_agent))

    def callback_dialled(self, lead: Lead, call_id: str) -> None:
        self.served.append((lead.contact_id, call_id))


@dataclass
class Rig:
    clock: VirtualClock
    engine: Engine
    agents: Agents
    rec: Rec
    world: World
    dials: list[tuple[float, int, str, str | None]]  # (t, contact, number, reserved agent)

    def login(self, agent: str) -> None:
        self.engine.on_agent_event(AgentEvent(agent, AgentState.READY, self.clock.monotonic()))

    def wrap(self, agent: str, disposition: str, **kw: object) -> None:
        self.engine.on_agent_event(
            AgentEvent(agent, AgentState.READY, self.clock.monotonic(), disposition, **kw)  # type: ignore[arg-type]
        )

    def at(self, t: datetime) -> float:
        return (t - T0).total_seconds()


def rig(
    leads: list[Lead],
    mode: DialMode = DialMode.PROGRESSIVE,
    dnc: DncIndex | None = None,
    **kw: object,
) -> Rig:
    clock = VirtualClock(T0)
    world = World()
    pbx = SimulatedPbx(clock, world, np.random.default_rng(0))
    agents = Agents()
    q = LeadQueue()
    for lead in leads:
        q.push(lead, 0.0)
    settings = CampaignSettings(
        name="c",
        mode=mode,
        calltimes=ANYTIME_CALLTIMES,
        **kw,  # type: ignore[arg-type]
    )
    rec = Rec()
    engine = Engine(
        clock=clock,
        carrier=pbx,
        agents=agents,
        recorder=rec,
        gate=gate_for(settings, dnc or DncIndex()),
        settings=settings,
        leads=q,
        amd_factory=FixedDetector,
        rng=np.random.default_rng(1),
        abandon_message=MESSAGE,
    )
    pbx.set_listener(engine)
    dials: list[tuple[float, int, str, str | None]] = []

    def on_transition(call: Call, src: CallState, dst: CallState) -> None:
        if dst is CallState.DIALING:
            dials.append((clock.monotonic(), call.lead.contact_id, call.number, call.agent))

    engine.on_transition = on_transition
    return Rig(clock, engine, agents, rec, world, dials)


def test_personal_callback_waits_for_its_agent_and_reserves_them() -> None:
    due = T0 + timedelta(minutes=5)
    r = rig(
        [
            Lead(1, ["+12125550101"], callback_at=due, callback_agent="bob"),
            Lead(2, ["+12125550102"]),
        ],
        mode=DialMode.PREDICTIVE,
    )
    r.login("ann")
    r.login("bob")
    r.engine.start()
    r.clock.run(until=r.at(due) - 1)
    assert [d[1] for d in r.dials] == [2]  # the callback is not due yet
    assert r.engine.counters.refusals_by_reason.get("callback_not_due", 0) >= 1
    r.clock.run(until=r.at(due) + 30)
    cb = [d for d in r.dials if d[1] == 1]
    assert len(cb) == 1
    t, _, _, reserved_for = cb[0]
    assert t >= r.at(due) and reserved_for == "bob"
    assert r.agents.previewed == [("bob", 1)]  # his screen shows the contact
    # bob was reserved for it (no AMD, no abandon risk) and got the call
    call_id = next(c for a, c in r.agents.connected if a == "bob")
    assert call_id.endswith("2")  # the second dial of the campaign
    assert r.rec.served == [(1, call_id)]


def test_personal_callback_goes_to_anyone_after_the_grace_period() -> None:
    due = T0 + timedelta(minutes=1)
    r = rig(
        [Lead(1, ["+12125550101"], callback_at=due, callback_agent="bob")],
        callback_grace_s=120,
    )
    r.login("ann")  # bob never logs in
    r.engine.start()
    r.clock.run(until=r.at(due) + 119)
    assert r.dials == []
    r.clock.run(until=r.at(due) + 200)
    assert len(r.dials) == 1 and r.dials[0][3] is None
    assert r.agents.connected and r.agents.connected[0][0] == "ann"


def test_personal_callback_waits_while_its_agent_is_busy_then_gets_them_first() -> None:
    due = T0 + timedelta(seconds=30)
    r = rig(
        [
            Lead(1, ["+12125550101"]),
            Lead(2, ["+12125550102"], callback_at=due, callback_agent="bob"),
            Lead(3, ["+12125550103"]),
        ]
    )
    r.login("bob")
    r.engine.start()
    r.clock.run(until=r.at(due) + 20)  # bob talks to contact 1 (ring 2 s, talk 10 s), wraps up
    assert [d[1] for d in r.dials] == [1]
    r.wrap("bob", "sale")
    # ready again: his own due callback first, ahead of contact 3
    r.clock.run(until=r.at(due) + 25)
    assert [d[1] for d in r.dials] == [1, 2] and r.dials[1][3] == "bob"


def test_due_campaign_callback_goes_before_top_of_list() -> None:
    r = rig(
        [
            Lead(1, ["+12125550101"], priority=1_000_000),
            Lead(2, ["+12125550102"], callback_at=T0 - timedelta(seconds=1)),
        ]
    )
    r.login("ann")
    r.engine.start()
    r.clock.run(until=5)
    assert [d[1] for d in r.dials] == [2]


def test_callback_for_a_queued_contact_moves_it_and_is_never_dialled_twice() -> None:
    r = rig([Lead(1, ["+12125550101"]), Lead(2, ["+12125550102"])])
    lead = Lead(1, ["+12125550101"])  # as the store would load it
    due = T0 + timedelta(minutes=10)
    same = r.engine.schedule_callback(lead, due, None)
    assert same is not lead and same.callback_at == due  # the engine's own lead was updated
    assert len(r.engine.leads) == 2
    r.login("ann")
    r.engine.start()
    r.clock.run(until=30)
    assert [d[1] for d in r.dials] == [2]
    r.wrap("ann", "sale")
    r.clock.run(until=r.at(due) + 60)
    assert [d[1] for d in r.dials] == [2, 1]
    assert next(d for d in r.dials if d[1] == 1)[0] >= r.at(due)


def test_cancelled_callback_is_dialled_as_any_other() -> None:
    due = T0 + timedelta(hours=5)
    r = rig([Lead(1, ["+12125550101"], callback_at=due)])
    assert r.engine.cancel_callback(1)
    assert not r.engine.cancel_callback(1)
    r.login("ann")
    r.engine.start()
    r.clock.run(until=10)
    assert [d[1] for d in r.dials] == [1]


def test_callback_disposition_books_local_time_and_dials_then() -> None:
    r = rig([Lead(1, ["+12125550101"]), Lead(2, ["+12125550102"])])
    r.login("ann")
    r.engine.start()
    r.clock.run(until=20)
    assert r.agents.ended
    # "call me tomorrow at 10:00" in the contact's zone (New York: 15:00 UTC)
    r.wrap("ann", "callback", callback_at=datetime(2026, 3, 3, 10, 0), callback_personal=True)
    assert r.rec.booked[0][0] == 1 and r.rec.booked[0][2] == "ann"
    assert r.rec.booked[0][1] == datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    assert r.rec.dispositions[0].callback and r.rec.dispositions[0].name == "callback"
    r.clock.run(until=r.at(datetime(2026, 3, 3, 14, 59, tzinfo=UTC)))
    assert [d[1] for d in r.dials] == [1, 2]
    r.wrap("ann", "sale")
    r.clock.run(until=r.at(datetime(2026, 3, 3, 15, 1, tzinfo=UTC)))
    assert [d[1] for d in r.dials] == [1, 2, 1] and r.dials[2][3] == "ann"


def test_callback_disposition_outside_hours_moves_to_next_callable_time() -> None:
    r = rig([Lead(1, ["+12125550101"])])
    r.engine.gate = gate_for(r.engine.settings.model_copy(update={"calltimes": "us-tcpa"}))
    r.login("ann")
    r.engine.start()
    r.clock.run(until=20)
    # 22:30 local is after 21:00: booked at 08:00 the next morning instead
    r.wrap("ann", "callback", callback_at=datetime(2026, 3, 2, 22, 30))
    assert r.rec.booked[0][1] == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)


def test_dnc_disposition_opts_out_at_once() -> None:
    dnc = DncIndex()
    r = rig([Lead(1, ["+12125550101", "+12125550111"])], dnc=dnc, optout_list="stop")
    r.login("ann")
    r.engine.start()
    r.clock.run(until=20)
    r.wrap("ann", "dnc")
    assert r.rec.optouts[0].number == "+12125550101" and r.rec.optouts[0].source == "agent"
    assert r.rec.optouts[0].by == "ann" and r.rec.optouts[0].list_name == "stop"
    assert dnc.check("+12125550101", "c", r.clock.wall())  # the gate's own index
    assert r.rec.statuses[1] == "done"
    assert r.rec.dispositions[0].dnc and not r.rec.dispositions[0].success


def test_campaign_scoped_optout_list_applies_to_that_campaign_only() -> None:
    dnc = DncIndex()
    r = rig([Lead(1, ["+12125550101"])], dnc=dnc, optout_scope="campaign")
    r.engine.opt_out("+12125550101", "api", "sup")
    assert dnc.check("+12125550101", "c", T0) and not dnc.check("+12125550101", "other", T0)


def test_ivr_press_nine_opts_out_the_number_of_the_call() -> None:
    dnc = DncIndex()
    r = rig([Lead(1, ["+12125550101"])], dnc=dnc)
    r.login("ann")
    r.engine.start()
    r.clock.run(until=8)
    call_id = next(iter(r.engine.calls))
    rec = r.engine.ivr_opt_out(call_id)
    assert rec is not None and rec.source == "ivr" and rec.call_id == call_id
    assert r.engine.ivr_opt_out("no-such-call") is None
    assert dnc.check("+12125550101", "c", r.clock.wall())
    gate = r.engine.gate
    assert isinstance(gate, DialGate)
    assert gate(Lead(1, ["+12125550101"]), r.clock.wall()).reason == "dnc"


def test_dispositions_drive_retry_final_and_unknown_codes() -> None:
    r = rig([Lead(1, ["+12125550101"]), Lead(2, ["+12125550102"]), Lead(3, ["+12125550103"])])
    r.login("ann")
    r.engine.start()
    r.clock.run(until=20)
    r.wrap("ann", "no_contact")  # retry in an hour
    r.clock.run(until=40)
    r.wrap("ann", "sale")  # final, success
    r.clock.run(until=60)
    r.wrap("ann", "bogus")  # unknown: recorded, treated as connected, never fatal
    assert [d.name for d in r.rec.dispositions] == ["no_contact", "sale", "bogus"]
    assert [d.known for d in r.rec.dispositions] == [True, True, False]
    assert r.rec.dispositions[1].success
    assert r.rec.statuses == {1: "pending", 2: "done", 3: "done"}
    r.clock.run(until=3500)
    assert [d[1] for d in r.dials] == [1, 2, 3]
    r.clock.run(until=3700)
    assert [d[1] for d in r.dials] == [1, 2, 3, 1]


def test_no_answer_moves_to_another_campaign_after_n_attempts() -> None:
    r = rig(
        [Lead(1, ["+12125550101"])],
        treatments={
            CallResult.NO_ANSWER: Treatment(action="retry", delay_s=60, move_to="sms", move_after=2)
        },
    )
    r.world.kinds["+12125550101"] = PartyKind.NO_ANSWER
    moved: list[tuple[int, str]] = []
    r.engine.on_move = lambda lead, target: moved.append((lead.contact_id, target))
    r.login("ann")
    r.engine.start()
    r.clock.run(until=600)
    assert len(r.dials) == 2
    assert moved == [(1, "sms")] and r.rec.moved == [(1, "sms")]
    assert r.rec.statuses[1] == "moved"


def test_treatment_action_move_moves_at_once() -> None:
    r = rig(
        [Lead(1, ["+12125550101"])],
        treatments={CallResult.BUSY: Treatment(action="move", move_to="later")},
    )
    r.world.kinds["+12125550101"] = PartyKind.BUSY
    r.login("ann")
    r.engine.start()
    r.clock.run(until=600)
    assert len(r.dials) == 1 and r.rec.moved == [(1, "later")]


def test_ivr_menu_key_opts_out_onto_the_list_with_its_source() -> None:
    from dialer.ivr import IvrSettings
    from tests.dialer.test_ivr import listener

    dnc = DncIndex()
    r = rig(
        [Lead(1, ["+12125550101"]), Lead(2, ["+12125550102"])],
        dnc=dnc,
        ivr=IvrSettings(message="Hello. Press 9 to stop these calls."),
        amd_enabled=False,
    )
    keys = iter([listener("9", at=3.0), listener("", at=99.0)])
    r.world.sample = lambda number, now, rng: next(keys)  # type: ignore[method-assign]
    r.engine.start()
    r.clock.run(until=120)
    assert [(o.number, o.source, o.contact_id) for o in r.rec.optouts] == [
        ("+12125550101", "ivr", 1)
    ]
    assert dnc.check("+12125550101", "c", r.clock.wall())
    assert not dnc.check("+12125550102", "c", r.clock.wall())


def test_desktop_callback_and_dnc_reach_the_engine() -> None:
    from dialer.desktop import DesktopAgents

    r = rig([Lead(1, ["+12125550101"]), Lead(2, ["+12125550102"])])
    desk = DesktopAgents(r.clock, "c", wrap_up_s=0)
    desk.set_listener(r.engine)
    r.engine.agents_port = desk
    desk.login("ann")
    desk.ready("ann")
    r.engine.start()
    r.clock.run(until=20)
    at = datetime(2026, 3, 3, 11, 0, tzinfo=ZoneInfo("America/New_York"))
    desk.dispose("ann", "callback", callback_at=at, callback_personal=True)
    assert r.rec.booked == [(1, at, "ann")]
    r.clock.run(until=40)
    desk.dispose("ann", "dnc")
    assert [(o.number, o.source, o.by) for o in r.rec.optouts] == [("+12125550102", "agent", "ann")]


def test_config_errors_name_the_key() -> None:
    import pytest

    from dialer.config import ConfigError, parse_config

    head = '[[campaigns]]\nname = "a"\nlist = "l"\n'
    cases = {
        '[campaigns.treatments.no_answer]\nmove_to = "sms"\nmove_after = 3\n': (
            "campaigns.0.treatments.no_answer.move_to: no campaign named 'sms' (known: a)"
        ),
        '[campaigns.treatments.busy]\naction = "move"\n': (
            "campaigns.0.treatments.busy: action 'move' needs move_to"
        ),
        '[campaigns.treatments.noanswer]\naction = "final"\n': "campaigns.0.treatments.noanswer",
        "[campaigns.dispositions.sale]\nfinal = true\ncallback = true\n": (
            "campaigns.0.dispositions.sale: set exactly one of final, retry_delay_s, callback, "
            "dnc (got final, callback)"
        ),
        "[campaigns.dispositions.sale]\nfinal = 1\n": "campaigns.0.dispositions.sale.final",
        '[campaigns.dispositions."Big Sale"]\nfinal = true\n': (
            "campaigns.0.dispositions: disposition name 'Big Sale'"
        ),
        'optout_scope = "world"\n': "campaigns.0.optout_scope",
    }
    for body, expected in cases.items():
        with pytest.raises(ConfigError) as err:
            parse_config(head + body)
        assert expected in str(err.value), (body, str(err.value))
    self_move = head + '[campaigns.treatments.no_answer]\naction = "move"\nmove_to = "a"\n'
    with pytest.raises(ConfigError, match="cannot move contacts to itself"):
        parse_config(self_move)
    ok = parse_config(
        head
        + '[campaigns.treatments.no_answer]\nmove_to = "b"\nmove_after = 2\n'
        + "[campaigns.dispositions.paid]\nfinal = true\nsuccess = true\n"
        + '[[campaigns]]\nname = "b"\nlist = "l2"\n'
    )
    s = ok.campaigns[0].settings()
    assert s.treatments[CallResult.NO_ANSWER].moves(2) and not s.treatments[
        CallResult.NO_ANSWER
    ].moves(1)
    assert list(s.dispositions) == ["paid"]


def test_a_callback_booked_twice_is_still_dialled_once() -> None:
    due = T0 + timedelta(seconds=30)
    r = rig([Lead(1, ["+12125550101"])])
    r.engine.schedule_callback(Lead(1, ["+12125550101"]), due, None)
    r.login("ann")
    r.engine.start()
    r.clock.run(until=r.at(due) + 20)
    assert [d[1] for d in r.dials] == [1] and len(r.rec.served) == 1
    r.wrap("ann", "no_contact")  # retry in an hour
    # the same booking arrives again (the store poll after the API): ignored
    r.engine.schedule_callback(Lead(1, ["+12125550101"]), due, None)
    r.clock.run(until=r.at(due) + 1800)
    assert [d[1] for d in r.dials] == [1] and len(r.rec.served) == 1
    # a new booking for the contact is honoured
    r.engine.schedule_callback(Lead(1, ["+12125550101"]), due + timedelta(hours=2), None)
    r.clock.run(until=r.at(due) + 3 * 3600)
    assert len(r.rec.served) == 2
