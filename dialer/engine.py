"""The engine core: events in (carrier, agents, AMD verdicts, pacing ticks),
commands out (dial, hang up, bridge, play, record).

It runs on whatever :class:`~dialer.clock.Clock` it is given: the asyncio loop in
production, the virtual clock in the simulator, so both exercise the same code.
All its I/O goes through ports (carrier, agents, recorder), so it never blocks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from jinja2 import TemplateError

from amd.types import FRAME_SAMPLES, Detector, Label, Verdict
from carriers.base import (
    Answered,
    AudioClip,
    CallOutcome,
    Carrier,
    CarrierEvent,
    DialRequest,
    Dtmf,
    Ended,
    MediaFrames,
    Ringing,
)
from dialer.agentstate import AgentState, IllegalAgentTransition, check_agent_transition
from dialer.callstate import CallResult, CallState, check_transition
from dialer.campaign import AmdAction, CampaignSettings, DialMode, Disposition
from dialer.clock import Clock, TimerHandle
from dialer.compliance.dnc import DncIndex
from dialer.compliance.hours import zones_for
from dialer.events import Event, EventHub
from dialer.ivr import Speech, TimedSpeech, render_message, wav_clip
from dialer.leadqueue import LeadQueue
from dialer.ports import (
    AgentEvent,
    AgentPort,
    DispositionRecord,
    Gate,
    GateVerdict,
    Lead,
    OptOut,
    Recorder,
)
from dialer.ratewindow import RateWindow
from pacing.registry import create as create_policy
from pacing.types import (
    AbandonBudget,
    AgentView,
    CallView,
    Decision,
    Limits,
    Oracle,
    OutcomeStats,
    PacingSnapshot,
    Policy,
)

S = CallState
_FAILURE_STATE = {
    CallOutcome.BUSY: S.BUSY,
    CallOutcome.NO_ANSWER: S.NO_ANSWER,
    CallOutcome.BAD_NUMBER: S.BAD_NUMBER,
    CallOutcome.TRUNK_FAILURE: S.TRUNK_FAILURE,
    CallOutcome.REJECTED: S.REJECTED,
    CallOutcome.FAILED: S.FAILED,
    CallOutcome.ANSWERED: S.FAILED,  # "ended normally" before an answer is a bug upstream
}
_FAILURE_RESULT = {
    S.BUSY: CallResult.BUSY,
    S.NO_ANSWER: CallResult.NO_ANSWER,
    S.BAD_NUMBER: CallResult.BAD_NUMBER,
    S.TRUNK_FAILURE: CallResult.TRUNK_FAILURE,
    S.REJECTED: CallResult.REJECTED,
    S.FAILED: CallResult.FAILED,
}
_DIALING = frozenset({S.DIALING, S.RINGING, S.EARLY_MEDIA})
# how pacing sees a call in each open state
_PHASE: dict[CallState, str] = {
    S.QUEUED: "dialing",
    S.DIALING: "dialing",
    S.RINGING: "dialing",
    S.EARLY_MEDIA: "dialing",
    S.ANSWERED: "classifying",
    S.CLASSIFYING: "classifying",
    S.WAITING_AGENT: "waiting",
}
TRUNK_DOWN_AFTER = 5  # dials in a row failing at the carrier before we call it down
IVR_RENDER_WAIT_S = 2.0  # speech not ready by then: say a timed pause and alert
_TIMED_SPEECH = TimedSpeech()  # that stand-in (its clips are cached by length)
MAX_CLASSIFY_S = 6.0  # a detector that has not decided by then is told the audio ended
# message drop: a greeting whose end was not heard by then gets the message anyway
MAX_GREETING_S = 30.0
STATS_SAMPLES = 400
STATS_REFRESH_S = 30.0


@dataclass(slots=True, eq=False)
class Call:
    call_id: str
    lead: Lead
    number: str
    state: CallState
    t_dial: float
    t_state: float
    t_answer: float | None = None
    agent: str | None = None
    preview: bool = False
    detector: Detector | None = None
    verdict: Verdict | None = None
    timer: TimerHandle | None = None
    live: bool = False
    connect_deadline: float = math.inf
    result: CallResult | None = None
    ivr_plays: int = 0  # repeats of the IVR message so far
    ivr_done: bool = False  # a menu key was taken: later keys are ignored


@dataclass(slots=True)
class AgentRecord:
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    call_id: str | None = None
    time_in: dict[AgentState, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Blocker:
    code: str
    message: str
    until: float | None


@dataclass
class EngineCounters:
    dials: int = 0
    live_answers: int = 0
    machine_answers: int = 0
    connects: int = 0
    abandoned: int = 0
    other_outcomes: int = 0
    gate_refusals: int = 0
    refusals_by_reason: dict[str, int] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)
    ivr_outcomes: dict[str, int] = field(default_factory=dict)  # opt_out, to_agent, ...


class AmdCache:
    """Verdicts for audio known in advance, by clip id: a detector is a pure
    function of its input, so the simulator need not run it twice on one clip.

    With ``want_beep`` (message drop) a MACHINE verdict carries the end of the
    greeting as ``beep_ms``, taken from the detector's second verdict."""

    def __init__(self, factory: Callable[[], Detector]) -> None:
        self._factory = factory
        self._cache: dict[tuple[str, bool], Verdict] = {}
        self.runs = 0

    def classify(self, clip: AudioClip, want_beep: bool = False) -> Verdict:
        key = (clip.clip_id, want_beep)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        self.runs += 1
        det = self._factory()
        waiting = want_beep and _ask_for_beep(det)
        first: Verdict | None = None
        samples = clip.samples
        for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            verdict = det.feed(samples[start : start + FRAME_SAMPLES])
            if verdict is None:
                continue
            if first is None:
                first = verdict
                if not (waiting and verdict.label is Label.MACHINE and verdict.beep_ms is None):
                    break
            else:
                first = _with_beep(first, verdict)
                break
        else:
            end = det.finish()
            first = end if first is None else _with_beep(first, end)
        self._cache[key] = first
        return first


def _ask_for_beep(det: Detector) -> bool:
    """Asks a detector that can (the product's) to follow MACHINE with the greeting end."""
    wait = getattr(det, "wait_for_beep", None)
    if not callable(wait):
        return False
    wait()
    return True


def _with_beep(first: Verdict, end: Verdict) -> Verdict:
    # the decision stays the first verdict's; only the greeting end comes from the second
    return first if end.beep_ms is None else replace(first, beep_ms=end.beep_ms)


def policy_name(settings: CampaignSettings) -> str:
    """The policy the engine runs for these settings (the mode decides outside predictive)."""
    if settings.mode is DialMode.PREDICTIVE:
        return settings.policy
    return "power" if settings.mode is DialMode.POWER else "progressive"


def campaign_policy(settings: CampaignSettings, **params: Any) -> Policy:
    name = policy_name(settings)
    if name == "vicidial-adaptive" and "dropped_percentage" not in params:
        # VICIdial's adaptive_dropped_percentage is its campaign's abandon target;
        # without it the baseline would pace to its own 3 % whatever the campaign says
        params = {**params, "dropped_percentage": settings.abandon_target * 100.0}
    return create_policy(name, **params)


class Engine:
    """One campaign's dialing engine."""

    def __init__(
        self,
        *,
        clock: Clock,
        carrier: Carrier,
        agents: AgentPort,
        recorder: Recorder,
        gate: Gate,
        settings: CampaignSettings,
        leads: LeadQueue,
        amd_factory: Callable[[], Detector] | None,
        rng: np.random.Generator,
        abandon_message: AudioClip,
        machine_message: AudioClip | None = None,
        run_tag: str = "r0",
        policy: Policy | None = None,
        initial_counts: tuple[int, int] = (0, 0),
        speech: Speech | None = None,
        dnc: DncIndex | None = None,
    ) -> None:
        self.clock = clock
        self.carrier = carrier
        self.agents_port = agents
        self.recorder = recorder
        self.gate = gate
        self.settings = settings
        self.leads = leads
        self.rng = rng
        self.amd_factory = amd_factory
        self.amd_cache = AmdCache(amd_factory) if amd_factory else None
        self.abandon_message = abandon_message
        self.machine_message = machine_message or abandon_message
        self.run_tag = run_tag
        self.policy = policy or campaign_policy(settings)
        self.calls: dict[str, Call] = {}
        self.results_by_call: dict[str, CallResult] = {}
        self.rejected_agent_events = 0
        self.agents: dict[str, AgentRecord] = {}
        self._ready: dict[str, None] = {}  # ordered set: longest-idle agent first
        # since-times by agent state and by call phase, kept current so a pacing
        # snapshot is a few array conversions rather than a scan of every object
        self._agent_since: dict[AgentState, dict[str, float]] = {st: {} for st in AgentState}
        self._phase_since: dict[str, dict[str, float]] = {
            "dialing": {},
            "classifying": {},
            "waiting": {},
        }
        self._waiting: dict[str, None] = {}  # live calls waiting for an agent, FIFO
        self._seq = 0
        self.counters = EngineCounters()
        # abandonment before this run (a resumed campaign counts its whole history)
        self._prior_abandoned, self._prior_live = initial_counts
        self._window = RateWindow()  # the regulatory window's answers and abandons
        self._last_hour = RateWindow()  # the same, trimmed to 1 h
        self._ring_live: deque[float] = deque(maxlen=STATS_SAMPLES)
        self._answer_live: deque[float] = deque(maxlen=STATS_SAMPLES)
        self._ring_all: deque[float] = deque(maxlen=STATS_SAMPLES)
        self._talk: deque[float] = deque(maxlen=STATS_SAMPLES)
        self._wrap: deque[float] = deque(maxlen=STATS_SAMPLES)
        self._handle: deque[float] = deque(maxlen=STATS_SAMPLES)
        self._stats_cache: OutcomeStats | None = None
        self._stats_built = -math.inf
        self._talk_start: dict[str, float] = {}
        self.ready_waits: list[float] = []  # completed ready periods ending in a call
        self.dialing_enabled = False
        self._tick_timer: TimerHandle | None = None
        self.last_decision: Decision | None = None
        self.stopped = False
        self._trunk_failures = 0  # dials in a row that ended as trunk failures
        self.on_transition: Callable[[Call, CallState, CallState], None] | None = None
        self.hub: EventHub | None = None  # set by whoever runs the engine live
        self.speech: Speech = speech or TimedSpeech()
        ivr = settings.ivr
        self._ivr_wav = wav_clip(ivr.prompt_wav) if ivr and ivr.prompt_wav else None
        # set only by the simulator, which knows the future (the clairvoyant bound)
        self.oracle: Callable[[PacingSnapshot], Oracle] | None = None
        # Opt-outs are written into this index at once, so the gate (which holds
        # the same index in production) refuses the number from the next dial on.
        self.dnc = dnc if dnc is not None else getattr(gate, "dnc", None) or DncIndex()
        # Personal callbacks that are due and passed the gate but whose agent is
        # not ready yet, by agent; they go back to the queue for anyone after
        # ``callback_grace_s``.  A lead is here, or queued, or in a call: never two.
        self._parked: dict[str, dict[int, Lead]] = {}
        # callbacks already served, (contact, due): booking one again is ignored,
        # so a booking that reaches the engine twice cannot dial twice
        self._served_callbacks: set[tuple[int, datetime]] = set()
        # A contact whose treatment moves it to another campaign is handed to this
        # (the runtime queues it there); the store records the move either way.
        self.on_move: Callable[[Lead, str], None] | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self.dialing_enabled = True
        self._schedule_tick(0.0)

    def stop_dialing(self) -> None:
        """No new dials; calls in progress finish."""
        self.dialing_enabled = False

    def set_abandon_target(self, fraction: float) -> None:
        """Takes effect at the next pacing tick."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"abandon target must be within 0..1, got {fraction}")
        self.settings.abandon_target = fraction

    @property
    def idle(self) -> bool:
        return not self.calls

    def _schedule_tick(self, delay: float) -> None:
        if self._tick_timer is not None:
            self._tick_timer.cancel()
        self._tick_timer = self.clock.call_later(delay, self._tick)

    # ------------------------------------------------------------------ pacing
    def _tick(self) -> None:
        self._tick_timer = None
        if not self.dialing_enabled:
            return
        now = self.clock.monotonic()
        # personal callbacks first, so their agents are reserved before pacing counts
        self._serve_callbacks(now)
        if self.settings.mode is DialMode.PREVIEW:
            self._preview_tick(now)
        elif self.settings.ivr is not None:
            # agentless: the IVR takes every answer, so lines, not agents, set the pace
            # closed calls leave the table; a call in wrap-up has no line any more
            active = sum(1 for c in self.calls.values() if c.state is not S.WRAP_UP)
            room = min(self.settings.ivr.lines - active, self.carrier.free_channels())
            for _ in range(max(0, room)):
                if not self._dial_next(now):
                    break
        else:
            snap = self.snapshot(now)
            decision = self.policy.decide(snap, self.rng)
            self.last_decision = decision
            for _ in range(decision.calls):
                if not self._dial_next(now):
                    break
        self._schedule_tick(self.settings.tick_s)

    def _outcome_stats(self, now: float) -> OutcomeStats:
        # Duration samples change slowly; converting five deques every tick was the
        # simulator's largest cost, so arrays are refreshed at most every 30 s.
        if self._stats_cache is None or now - self._stats_built >= STATS_REFRESH_S:
            self._stats_cache = OutcomeStats(
                ring_times_live=np.fromiter(self._ring_live, float, len(self._ring_live)),
                answer_times_live=np.fromiter(self._answer_live, float, len(self._answer_live)),
                ring_times_all=np.fromiter(self._ring_all, float, len(self._ring_all)),
                talk_times=np.fromiter(self._talk, float, len(self._talk)),
                wrap_times=np.fromiter(self._wrap, float, len(self._wrap)),
                handle_times=np.fromiter(self._handle, float, len(self._handle)),
            )
            self._stats_built = now
        c = self.counters
        return replace(
            self._stats_cache,
            dials=float(c.dials),
            live_answers=float(c.live_answers),
            machine_answers=float(c.machine_answers),
            other_outcomes=float(c.other_outcomes),
            abandoned=float(c.abandoned),
        )

    def last_hour_rate(self, now: float) -> tuple[int, int]:
        """(abandoned, live answers) over the last hour, for supervisors."""
        self._last_hour.trim(now - 3600.0)
        return self._last_hour.counts()

    def budget(self, now: float) -> AbandonBudget:
        window = self.settings.window_s
        if window is None:
            # the campaign window needs no per-call history
            self._window.clear()
            abandoned = self._prior_abandoned + self.counters.abandoned
            live = self._prior_live + self.counters.live_answers
        else:
            self._window.trim(now - window)
            abandoned, live = self._window.counts()
        fp = self.settings.amd_false_positive_rate * self.counters.machine_answers
        return AbandonBudget(self.settings.abandon_target, abandoned + fp, live + fp)

    def snapshot(self, now: float) -> PacingSnapshot:
        def ages(d: dict[str, float]) -> np.ndarray:
            return now - np.fromiter(d.values(), float, len(d))

        a = self._agent_since
        ph = self._phase_since
        st = self.settings
        snap = PacingSnapshot(
            now=now,
            agents=AgentView(
                ready=ages(a[AgentState.READY]),
                on_call=ages(a[AgentState.ON_CALL]),
                wrap_up=ages(a[AgentState.WRAP_UP]),
                reserved=len(a[AgentState.RESERVED]),
                paused=len(a[AgentState.PAUSED]),
            ),
            calls=CallView(
                dialing=ages(ph["dialing"]),
                classifying=ages(ph["classifying"]),
                waiting=ages(ph["waiting"]),
            ),
            stats=self._outcome_stats(now),
            budget=self.budget(now),
            limits=Limits(
                max_lines_per_agent=st.max_lines_per_agent,
                max_lines=st.max_lines,
                carrier_free=self.carrier.free_channels(),
                power_ratio=st.power_ratio,
            ),
            tick_s=st.tick_s,
        )
        if self.oracle is not None:
            snap = replace(snap, oracle=self.oracle(snap))
        return snap

    def _preview_tick(self, now: float) -> None:
        for agent_id in list(self._ready):
            lead = self._next_allowed_lead(now)
            if lead is None:
                return
            call = self._new_call(lead, now, agent=agent_id, preview=True)
            self._set_agent(agent_id, AgentState.RESERVED, now, call.call_id)
            self.agents_port.preview(agent_id, call.call_id, lead)
            if self.settings.preview_s > 0:
                # the optional timer: the call goes out unless the agent dials first
                self.clock.call_later(self.settings.preview_s, partial(self._place, call))

    # ------------------------------------------------------------------ agent commands
    def _agent_call(self, agent_id: str) -> Call | None:
        rec = self.agents.get(agent_id)
        if rec is None or rec.call_id is None:
            return None
        return self.calls.get(rec.call_id)

    def dial_preview(self, agent_id: str) -> str | None:
        """The agent has read the record and dials now.  None, or why not."""
        call = self._agent_call(agent_id)
        if call is None or not call.preview or call.state is not S.QUEUED:
            return "no previewed call is waiting for this agent"
        if not self.dialing_enabled:
            return "the campaign is not dialling"
        self._place(call)  # the timer, if any, later finds the call already placed
        return None

    def agent_hangup(self, agent_id: str) -> str | None:
        """The agent ends the customer leg.  None, or why not."""
        call = self._agent_call(agent_id)
        if call is None or call.state is not S.CONNECTED:
            return "the agent is not on a call"
        self.carrier.hangup(call.call_id)
        return None

    # ------------------------------------------------------------------ dialing
    def _next_allowed_lead(self, now: float) -> Lead | None:
        wall = self.clock.wall()
        while True:
            lead = self.leads.pop_ready(now)
            if lead is None:
                return None
            verdict = self.gate(lead, wall)
            if verdict.allowed:
                if self._personal_pending(lead, wall):
                    # only its agent may take it: wait for them (it passes the gate
                    # again when it is dialled)
                    self._park(lead)
                    if lead.callback_agent in self._ready:
                        # the agent is free now: reserve them for it at once, and
                        # end this round, whose call count included that agent
                        self._serve_callbacks(now, only=lead.callback_agent)
                        return None
                    continue
                return lead
            self._refused(lead, now, wall, verdict)

    def _refused(self, lead: Lead, now: float, wall: datetime, verdict: GateVerdict) -> None:
        self.counters.gate_refusals += 1
        by = self.counters.refusals_by_reason
        by[verdict.reason] = by.get(verdict.reason, 0) + 1
        self.recorder.gate_refused(lead, now, verdict)
        if verdict.reason == "number_attempt_limit" and lead.number_index + 1 < len(lead.numbers):
            # this number has had its attempts; the contact's next number may be tried
            lead.number_index += 1
            lead.not_before = now
            self.recorder.lead_updated(lead, "pending", now, None)
            self.leads.push(lead, now)
            return
        if verdict.not_before is None:
            self.recorder.lead_updated(lead, "done", None, f"refused:{verdict.reason}")
            return
        lead.not_before = now + max(1.0, (verdict.not_before - wall).total_seconds())
        self.recorder.lead_updated(lead, "pending", lead.not_before, None)
        self.leads.push(lead, now)

    def _dial_next(self, now: float) -> bool:
        lead = self._next_allowed_lead(now)
        if lead is None:
            return False
        self._place(self._new_call(lead, now))
        return True

    def _new_call(
        self, lead: Lead, now: float, agent: str | None = None, preview: bool = False
    ) -> Call:
        self._seq += 1
        call_id = f"{self.settings.name}-{self.run_tag}-{self._seq:07d}"
        call = Call(call_id, lead, lead.number, S.QUEUED, now, now, agent=agent, preview=preview)
        self.calls[call_id] = call
        self._phase_since["dialing"][call_id] = now
        lead.attempts += 1
        lead.attempt_log.append((self.clock.wall(), call.number))
        self.recorder.attempt_started(call_id, lead, call.number, now, S.QUEUED)
        if self.settings.ivr is not None and self._ivr_wav is None:
            self.speech.prepare(self._ivr_text(lead))  # rendered while the phone rings
        if lead.callback_at is not None:
            # this dial serves the callback: consumed, so it is never dialled twice
            self.recorder.callback_dialled(lead, call_id)
            self._served_callbacks.add((lead.contact_id, lead.callback_at))
            lead.callback_at = lead.callback_agent = None
        self.recorder.lead_updated(lead, "dialing", None, None)
        return call

    def _place(self, call: Call) -> None:
        if call.state is not S.QUEUED:
            return
        request = DialRequest(
            call_id=call.call_id,
            number=call.number,
            caller_id=self.settings.caller_id,
            timeout_s=self.settings.no_answer_timeout_s,
            campaign=self.settings.name,
        )

        def go() -> None:
            # the attempt row is committed before the dial leaves the building
            if call.state is not S.QUEUED:
                return
            self.counters.dials += 1
            self._move(call, S.DIALING, "")
            call.t_dial = self.clock.monotonic()
            self.carrier.dial(request)

        self.recorder.when_durable(go)

    # ------------------------------------------------------------------ transitions
    def _move(self, call: Call, dst: CallState, detail: str) -> None:
        src = call.state
        check_transition(call.call_id, src, dst)
        now = self.clock.monotonic()
        call.state = dst
        call.t_state = now
        old, new = _PHASE.get(src), _PHASE.get(dst)
        if old is not new:
            if old is not None:
                del self._phase_since[old][call.call_id]
            if new is not None:
                self._phase_since[new][call.call_id] = now
        self.recorder.transition(call.call_id, now, src, dst, detail)
        if self.on_transition is not None:
            self.on_transition(call, src, dst)
        if self.hub is not None:
            self.hub.publish(
                Event(
                    "call",
                    self.settings.name,
                    self.clock.wall(),
                    {
                        "call_id": call.call_id,
                        "contact_id": call.lead.contact_id,
                        "number": call.number,
                        "from": src.value,
                        "to": dst.value,
                        "detail": detail,
                        "agent": call.agent,
                    },
                )
            )

    def _finish(
        self,
        call: Call,
        dst: CallState,
        result: CallResult,
        detail: str = "",
        disposition: Disposition | None = None,
    ) -> None:
        """Close the attempt and decide what happens to the contact next."""
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        self._waiting.pop(call.call_id, None)
        if call.state is not dst:
            self._move(call, dst, detail)
        call.result = result
        if call.agent is not None:
            rec = self.agents.get(call.agent)
            if rec is not None and rec.state is AgentState.RESERVED:
                # a previewed call that did not connect gives its agent back
                self._set_agent(call.agent, AgentState.READY, self.clock.monotonic())
        self.counters.results[result.value] = self.counters.results.get(result.value, 0) + 1
        self.results_by_call[call.call_id] = result
        now = self.clock.monotonic()
        values: dict[str, object] = {"ended_mono": now, "state": dst.value, "result": result.value}
        if call.verdict is not None:
            values.update(
                amd_label=call.verdict.label.value,
                amd_cause=call.verdict.cause,
                amd_ms=call.verdict.decision_ms,
            )
        self.recorder.attempt_updated(call.call_id, values)
        del self.calls[call.call_id]
        self._treat(call.lead, result, now, disposition)

    def _treat(
        self, lead: Lead, result: CallResult, now: float, disposition: Disposition | None = None
    ) -> None:
        t = self.settings.treatments[result]
        if not t.charge:
            lead.attempts = max(0, lead.attempts - 1)
        if lead.callback_at is not None:
            # a callback booked during the call (disposition or API) overrides the
            # result's treatment; the gate still checks the dial when it is due
            lead.not_before = now + max(0.0, (lead.callback_at - self.clock.wall()).total_seconds())
            self.recorder.lead_updated(lead, "pending", lead.not_before, result)
            self.leads.push(lead, now)
            return
        if disposition is not None:
            if disposition.retry_delay_s is not None and lead.attempts < self.settings.max_attempts:
                lead.not_before = now + disposition.retry_delay_s
                self.recorder.lead_updated(lead, "pending", lead.not_before, result)
                self.leads.push(lead, now)
            else:  # final, dnc, or a callback whose time could not be booked
                self.recorder.lead_updated(lead, "done", None, result)
            return
        if t.move_to is not None and t.moves(lead.attempts):
            self._move_to_campaign(lead, t.move_to, result, now)
            return
        action = t.action
        if action == "next_number":
            if lead.number_index + 1 < len(lead.numbers):
                lead.number_index += 1
                action = "retry"
                delay = 0.0
            else:
                action = "final"
                delay = 0.0
        else:
            delay = t.delay_s
        if action == "retry" and lead.attempts < self.settings.max_attempts:
            lead.not_before = now + delay
            self.recorder.lead_updated(lead, "pending", lead.not_before, result)
            self.leads.push(lead, now)
        else:
            self.recorder.lead_updated(lead, "done", None, result)

    def _move_to_campaign(self, lead: Lead, target: str, result: CallResult, now: float) -> None:
        """The contact leaves this campaign for ``target`` (validated to exist when
        the configuration was loaded); it is dialled there only through that
        campaign's own queue and gate."""
        self.recorder.lead_updated(lead, "moved", None, result)
        self.recorder.lead_moved(lead, target, now)
        self._alert("contact_moved", f"contact {lead.contact_id} moved to {target!r}", "info")
        if self.on_move is not None:
            self.on_move(lead, target)

    # ------------------------------------------------------------------ carrier events
    def on_carrier_event(self, event: CarrierEvent) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            return  # late event for a call we already closed (e.g. a 200 crossing our CANCEL)
        if isinstance(event, Ringing):
            target = S.EARLY_MEDIA if event.early_media else S.RINGING
            if call.state in (S.DIALING, S.RINGING, S.EARLY_MEDIA) and call.state is not target:
                self._move(call, target, "")
        elif isinstance(event, Answered):
            self._answered(call, event)
        elif isinstance(event, MediaFrames):
            self._media(call, event)
        elif isinstance(event, Dtmf):
            self._dtmf(call, event.digit)
        elif isinstance(event, Ended):
            self._ended(call, event)

    def _note_carrier(self, failed: bool) -> None:
        # Every trunk failing in a row is a trunk that is down, not bad luck:
        # say so (once per streak) rather than let the campaign stall silently.
        self._trunk_failures = self._trunk_failures + 1 if failed else 0
        if self._trunk_failures == TRUNK_DOWN_AFTER:
            self._alert(
                "trunk_down",
                f"the last {TRUNK_DOWN_AFTER} calls all failed at the carrier "
                "(503, timeout or no trunk): is the trunk down?",
                "critical",
            )

    def _answered(self, call: Call, ev: Answered) -> None:
        if call.state not in _DIALING:
            return
        self._note_carrier(False)
        now = self.clock.monotonic()
        call.t_answer = now
        self._ring_all.append(now - call.t_dial)
        self._move(call, S.ANSWERED, f"sip {ev.sip_status}")
        self.recorder.attempt_updated(call.call_id, {"ring_s": round(now - call.t_dial, 3)})
        if call.preview and call.agent is not None:
            # the agent chose this call and hears it ring: no AMD, no abandonment
            self._move(call, S.WAITING_AGENT, "preview")
            self._count_live(call, now)
            self._connect(call, call.agent, now)
            return
        if not self.settings.amd_enabled or self.amd_factory is None:
            self._live(call, now, now)
            return
        self._move(call, S.CLASSIFYING, self.settings.amd_profile)
        want_beep = self.settings.amd_action is AmdAction.MESSAGE
        if ev.clip is not None and self.amd_cache is not None:
            verdict = self.amd_cache.classify(ev.clip, want_beep)
            call.timer = self.clock.call_at(
                now + verdict.decision_ms / 1000.0, lambda: self._verdict(call, verdict)
            )
        else:
            call.detector = self.amd_factory()
            if want_beep:
                _ask_for_beep(call.detector)
            call.timer = self.clock.call_at(now + MAX_CLASSIFY_S, lambda: self._amd_timeout(call))

    def _media(self, call: Call, ev: MediaFrames) -> None:
        det = call.detector
        if det is None or call.state not in (S.CLASSIFYING, S.MACHINE_HANDLED):
            return
        samples = ev.samples
        for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            verdict = det.feed(samples[start : start + FRAME_SAMPLES])
            if verdict is None:
                continue
            if call.timer is not None:
                call.timer.cancel()
                call.timer = None
            if call.state is S.CLASSIFYING:
                self._verdict(call, verdict)
                if call.detector is None:
                    return
            else:  # the second verdict: the machine greeting has ended
                self._greeting_ended(call, verdict)
                return

    def _amd_timeout(self, call: Call) -> None:
        call.timer = None
        if call.state is S.CLASSIFYING and call.detector is not None:
            self._verdict(call, call.detector.finish())

    def _verdict(self, call: Call, verdict: Verdict) -> None:
        call.timer = None
        if call.state is not S.CLASSIFYING:
            return
        call.verdict = verdict
        det, call.detector = call.detector, None
        now = self.clock.monotonic()
        st = self.settings
        label = verdict.label
        to_agent = (
            label is Label.HUMAN
            or (label is Label.NOTSURE and st.notsure_to_agent)
            or (label is Label.SILENCE and st.silence_to_agent)
        )
        assert call.t_answer is not None
        if to_agent:
            end_ms = (
                verdict.speech_end_ms if verdict.speech_end_ms is not None else verdict.decision_ms
            )
            greeting_end = min(now, call.t_answer + end_ms / 1000.0)
            self._live(call, now, greeting_end, f"{label.value}:{verdict.cause}")
            return
        self.counters.machine_answers += 1
        self._move(call, S.MACHINE_HANDLED, f"{label.value}:{verdict.cause}")
        result = CallResult.FAX if label is Label.FAX else CallResult.MACHINE
        call.result = result
        if st.amd_action is AmdAction.MESSAGE and label is Label.MACHINE:
            call.result = CallResult.MESSAGE_LEFT
            if verdict.beep_ms is None and det is not None:
                # streamed audio: keep listening until the detector hears the greeting end
                call.detector = det
                call.timer = self.clock.call_at(
                    call.t_answer + MAX_GREETING_S, lambda: self._greeting_ended(call, det.finish())
                )
                return
            self._drop_message(call, verdict.beep_ms)
        else:
            self.carrier.hangup(call.call_id)

    def _greeting_ended(self, call: Call, end: Verdict) -> None:
        call.timer = None
        if call.detector is None or call.state is not S.MACHINE_HANDLED:
            return
        call.detector = None
        if call.verdict is not None and end.beep_ms is not None:
            call.verdict = replace(call.verdict, beep_ms=end.beep_ms)
        self._drop_message(call, end.beep_ms)

    def _drop_message(self, call: Call, beep_ms: int | None) -> None:
        """Plays the machine message once the greeting has ended (at ``beep_ms``)."""
        assert call.t_answer is not None
        wait = 0.0
        if beep_ms is not None:
            wait = max(0.0, call.t_answer + beep_ms / 1000.0 - self.clock.monotonic())
        call.timer = self.clock.call_later(
            wait,
            lambda: self.carrier.play(
                call.call_id, self.machine_message, lambda: self.carrier.hangup(call.call_id)
            ),
        )

    def _count_live(self, call: Call, now: float) -> None:
        call.live = True
        self.counters.live_answers += 1
        self._window.push(now, False)
        self._last_hour.push(now, False)
        self._ring_live.append(now - call.t_dial)
        if call.t_answer is not None:
            self._answer_live.append(call.t_answer - call.t_dial)
        self.recorder.attempt_updated(call.call_id, {"live": True})

    def _live(self, call: Call, now: float, greeting_end: float, detail: str = "") -> None:
        """A person is on the line: an agent within the connect window, or abandon
        (or, in an agentless campaign, the IVR)."""
        if self.settings.ivr is not None and call.state is not S.IVR:
            self._move(call, S.IVR, detail)
            self._count_live(call, now)
            self._ivr_play(call, first=True)
            return
        self._move(call, S.WAITING_AGENT, detail)
        if not call.live:
            self._count_live(call, now)
        call.connect_deadline = greeting_end + self.settings.connect_window_s
        agent = next(iter(self._ready), None)
        if agent is not None:
            self._connect(call, agent, now)
            return
        self._waiting[call.call_id] = None
        call.timer = self.clock.call_at(
            call.connect_deadline, lambda: self._abandon(call, "no agent")
        )

    def _alert(self, code: str, message: str, severity: str = "warning") -> None:
        if self.hub is not None:
            self.hub.publish(
                Event(
                    "alert",
                    self.settings.name,
                    self.clock.wall(),
                    {"code": code, "message": message, "severity": severity},
                )
            )

    # ------------------------------------------------------------------ agentless IVR
    def _ivr_text(self, lead: Lead) -> str:
        ivr = self.settings.ivr
        assert ivr is not None
        try:
            return render_message(ivr.message, lead.fields)
        except (TemplateError, TypeError, ValueError, ArithmeticError):
            # a contact without a field the message uses (or a field that breaks
            # it) hears the generic message rather than a broken sentence
            return render_message(ivr.fallback_message, {})

    def _ivr_say(
        self, call: Call, text: str, then: Callable[[], None], waited: float = 0.0
    ) -> None:
        clip = self.speech.clip(text)
        if clip is None:
            if waited < IVR_RENDER_WAIT_S:
                call.timer = self.clock.call_later(
                    0.05, lambda: self._ivr_say(call, text, then, waited + 0.05)
                )
                return
            clip = _TIMED_SPEECH.clip(text)  # never silence forever: a timed pause
            assert clip is not None
            self._alert("ivr_speech_slow", f"speech for {call.call_id} was not ready in time")
        call_id = call.call_id

        def done() -> None:
            live = self.calls.get(call_id)
            if live is not None and live.state is S.IVR:
                then()

        self.carrier.play(call_id, clip, done)

    def _ivr_play(self, call: Call, first: bool) -> None:
        ivr = self.settings.ivr
        assert ivr is not None
        if not first:
            call.ivr_plays += 1
        if self._ivr_wav is not None:  # a recorded message: the same for everyone
            self.carrier.play(call.call_id, self._ivr_wav, lambda: self._ivr_heard(call))
            return
        self._ivr_say(call, self._ivr_text(call.lead), lambda: self._ivr_listen(call))

    def _ivr_heard(self, call: Call) -> None:
        live = self.calls.get(call.call_id)
        if live is not None and live.state is S.IVR:
            self._ivr_listen(live)

    def _ivr_listen(self, call: Call) -> None:
        ivr = self.settings.ivr
        assert ivr is not None
        call.result = CallResult.IVR_COMPLETED  # the message has been heard through
        call.timer = self.clock.call_later(ivr.input_timeout_s, lambda: self._ivr_no_input(call))

    def _ivr_no_input(self, call: Call) -> None:
        call.timer = None
        ivr = self.settings.ivr
        if call.state is not S.IVR or ivr is None:
            return
        if call.ivr_plays < ivr.repeats:
            self._ivr_play(call, first=False)
            return
        self._ivr_end(call, "no_input", ivr.goodbye)

    def _ivr_outcome(self, call: Call, outcome: str) -> None:
        self.counters.ivr_outcomes[outcome] = self.counters.ivr_outcomes.get(outcome, 0) + 1
        self.recorder.attempt_updated(call.call_id, {"disposition": f"ivr:{outcome}"})

    def _ivr_end(self, call: Call, outcome: str, text: str) -> None:
        self._ivr_outcome(call, outcome)
        call.result = CallResult.IVR_COMPLETED
        call_id = call.call_id
        self._ivr_say(call, text, lambda: self.carrier.hangup(call_id))

    def _dtmf(self, call: Call, digit: str) -> None:
        ivr = self.settings.ivr
        if call.state is not S.IVR or ivr is None or call.ivr_done:
            return  # keys outside the menu (or after it) mean nothing
        action = ivr.menu.get(digit)
        if action is None:
            return
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        # whatever plays next replaces the message (the carrier's play barges in)
        if action == "repeat":
            self._ivr_play(call, first=False)
            return
        call.ivr_done = True
        if action == "opt_out":
            # on the opt-out list at once, with source and time (see opt_out)
            self.opt_out(call.number, "ivr", "", call.lead.contact_id, call.call_id)
            self._ivr_end(call, "opt_out", ivr.opt_out_confirmation)
            return
        if action == "transfer" and ivr.transfer_to is not None:
            self._ivr_transfer(call, ivr.transfer_to)
            return
        agent = next(iter(self._ready), None)
        if agent is None:
            self._ivr_end(call, "agent_unavailable", ivr.no_agent_message)
            return
        self._ivr_outcome(call, "to_agent")
        now = self.clock.monotonic()
        self._move(call, S.WAITING_AGENT, "ivr menu")
        call.connect_deadline = now + self.settings.connect_window_s
        self._connect(call, agent, now)

    def _ivr_transfer(self, call: Call, number: str) -> None:
        """The person asked for the business's number: they hear the hold message
        while the carrier calls it and joins them; the call stays in the IVR state
        until either side hangs up."""
        ivr = self.settings.ivr
        assert ivr is not None
        call_id = call.call_id

        def result(ok: bool, cause: str) -> None:
            live = self.calls.get(call_id)
            if live is None or live.state is not S.IVR:
                return
            if ok:
                self._ivr_outcome(live, "transferred")
                self.recorder.attempt_updated(call_id, {"agent": f"transfer:{number}"})
                return
            self._alert("transfer_failed", f"transfer of {call_id} to {number} failed: {cause}")
            self._ivr_end(live, "transfer_failed", ivr.transfer_failed_message)

        call.result = CallResult.IVR_COMPLETED
        self._ivr_say(
            call, ivr.transfer_message, lambda: self.carrier.transfer(call_id, number, result)
        )

    def _connect(self, call: Call, agent_id: str, now: float) -> None:
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        self._waiting.pop(call.call_id, None)
        self._set_agent(agent_id, AgentState.ON_CALL, now, call.call_id)
        call.agent = agent_id
        self._move(call, S.CONNECTED, agent_id)
        self.counters.connects += 1
        self._talk_start[call.call_id] = now
        greeting_end = call.connect_deadline - self.settings.connect_window_s
        delay = now - greeting_end if math.isfinite(greeting_end) else 0.0
        self.recorder.attempt_updated(
            call.call_id, {"agent": agent_id, "connect_delay_s": round(max(0.0, delay), 3)}
        )
        self.carrier.bridge(call.call_id, agent_id)
        self.agents_port.connect(agent_id, call.call_id, call.lead)

    def _abandon(self, call: Call, why: str) -> None:
        call.timer = None
        if call.state is not S.WAITING_AGENT:
            return
        self._waiting.pop(call.call_id, None)
        now = self.clock.monotonic()
        self.counters.abandoned += 1
        self._window.push(now, True)
        self._last_hour.push(now, True)
        call.lead.last_abandon_at = self.clock.wall()
        self._move(call, S.ABANDONED, why)
        call.result = CallResult.ABANDONED
        self.recorder.attempt_updated(call.call_id, {"abandoned": True})
        # the safe-harbour message: caller's name and a number to call back
        self.carrier.play(
            call.call_id, self.abandon_message, lambda: self.carrier.hangup(call.call_id)
        )

    def _ended(self, call: Call, ev: Ended) -> None:
        st = call.state
        self.recorder.attempt_updated(call.call_id, {"sip_status": ev.sip_status})
        if st in _DIALING or st is S.QUEUED:
            self._note_carrier(ev.outcome is CallOutcome.TRUNK_FAILURE)
            dst = _FAILURE_STATE[ev.outcome]
            self.counters.other_outcomes += 1
            self._ring_all.append(self.clock.monotonic() - call.t_dial)
            if st is S.QUEUED:
                dst = S.FAILED
            self._finish(call, dst, _FAILURE_RESULT[dst], ev.cause or ev.outcome.value)
        elif st in (S.ANSWERED, S.CLASSIFYING):
            self._finish(call, S.DONE, CallResult.HANGUP, "hangup before routing")
        elif st is S.WAITING_AGENT:
            # the person gave up before an agent came: abandoned all the same
            self.counters.abandoned += 1
            self._window.push(self.clock.monotonic(), True)
            self._last_hour.push(self.clock.monotonic(), True)
            self.recorder.attempt_updated(call.call_id, {"abandoned": True})
            call.lead.last_abandon_at = self.clock.wall()
            self._move(call, S.ABANDONED, "caller hung up waiting")
            self._finish(call, S.DONE, CallResult.ABANDONED)
        elif st is S.CONNECTED:
            now = self.clock.monotonic()
            talk = now - self._talk_start.pop(call.call_id, now)
            self._talk.append(talk)
            self.recorder.attempt_updated(call.call_id, {"talk_s": round(talk, 3)})
            self._move(call, S.WRAP_UP, "remote hangup" if ev.by_remote else "agent hangup")
            assert call.agent is not None
            self._set_agent(call.agent, AgentState.WRAP_UP, now, call.call_id)
            self.agents_port.call_ended(call.agent, call.call_id)
        elif st in (S.ABANDONED, S.MACHINE_HANDLED, S.IVR):
            result = call.result or CallResult.HANGUP
            self._finish(call, S.DONE, result)

    # ------------------------------------------------------------------ agents
    def _set_agent(
        self, agent_id: str, state: AgentState, now: float, call_id: str | None = None
    ) -> None:
        rec = self.agents.get(agent_id)
        if rec is None:
            rec = self.agents[agent_id] = AgentRecord(since=now)
            self._agent_since[rec.state][agent_id] = now
        check_agent_transition(agent_id, rec.state, state)
        spent = now - rec.since
        rec.time_in[rec.state] = rec.time_in.get(rec.state, 0.0) + spent
        if rec.state is AgentState.READY and state in (AgentState.ON_CALL, AgentState.RESERVED):
            self.ready_waits.append(spent)
        if rec.state is AgentState.WRAP_UP:
            self._wrap.append(spent)
        del self._agent_since[rec.state][agent_id]
        self._agent_since[state][agent_id] = now
        rec.state = state
        rec.since = now
        if call_id is not None:
            rec.call_id = call_id
        if state is AgentState.READY:
            self._ready[agent_id] = None
        else:
            self._ready.pop(agent_id, None)
        self.recorder.agent_event(agent_id, now, state, call_id or "")
        if self.hub is not None:
            self.hub.publish(
                Event(
                    "agent",
                    self.settings.name,
                    self.clock.wall(),
                    {"agent": agent_id, "state": state.value, "call_id": call_id},
                )
            )

    def on_agent_event(self, ev: AgentEvent) -> None:
        """An agent's own action.  One that makes no sense in the agent's state (a
        stale desktop, a double click) is refused and reported, never fatal."""
        now = self.clock.monotonic()
        rec = self.agents.get(ev.agent_id)
        prev = rec.state if rec else AgentState.LOGGED_OUT
        try:
            check_agent_transition(ev.agent_id, prev, ev.state)
        except IllegalAgentTransition as exc:
            self.rejected_agent_events += 1
            self._alert("agent_event_refused", str(exc))
            return
        if prev is AgentState.WRAP_UP and rec is not None and rec.call_id:
            call = self.calls.get(rec.call_id)
            if call is not None and call.state is S.WRAP_UP:
                handle = now - self._talk_start.get(call.call_id, call.t_state)
                self._handle.append(handle)
                disp = self._apply_disposition(call, ev, now) if ev.disposition else None
                self._finish(call, S.DONE, CallResult.CONNECTED, ev.disposition, disp)
            rec.call_id = None
        self._set_agent(ev.agent_id, ev.state, now)
        if ev.state is AgentState.READY and self._parked.get(ev.agent_id):
            # the agent's own due callback comes before anyone waiting in the queue
            self._serve_callbacks(now, only=ev.agent_id)
        if ev.state is AgentState.READY and self._waiting and ev.agent_id in self._ready:
            call_id = next(iter(self._waiting))
            self._connect(self.calls[call_id], ev.agent_id, now)

    # ------------------------------------------------------------------ dispositions
    def _apply_disposition(self, call: Call, ev: AgentEvent, now: float) -> Disposition | None:
        """Records the wrap-up code and carries out what it means (opt-out,
        callback).  An unknown code is stored as picked, reported, and the
        contact treated as an ordinary connected call: never fatal."""
        disp = self.settings.dispositions.get(ev.disposition)
        self.recorder.attempt_updated(call.call_id, {"disposition": ev.disposition[:50]})
        self.recorder.disposition(
            DispositionRecord(
                call.call_id,
                call.lead.contact_id,
                ev.disposition[:50],
                ev.agent_id,
                now,
                success=bool(disp and disp.success),
                contact=bool(disp and disp.contact),
                final=bool(disp and disp.final),
                dnc=bool(disp and disp.dnc),
                callback=bool(disp and disp.callback),
                known=disp is not None,
            )
        )
        if disp is None:
            self._alert(
                "unknown_disposition",
                f"agent {ev.agent_id} picked {ev.disposition!r}, which campaign "
                f"{self.settings.name!r} does not configure; treated as connected",
            )
            return None
        if disp.dnc:
            self.opt_out(call.number, "agent", ev.agent_id, call.lead.contact_id, call.call_id)
        elif disp.callback:
            self._callback_from_agent(call.lead, ev)
        return disp

    def _callback_from_agent(self, lead: Lead, ev: AgentEvent) -> None:
        if ev.callback_at is None:
            self._alert(
                "callback_without_time",
                f"agent {ev.agent_id} picked a callback for contact {lead.contact_id} "
                "without a time; the contact is closed",
            )
            return
        at = self.callback_time(lead, ev.callback_at)
        check = getattr(self.gate, "check_schedule", None)
        if check is not None:
            verdict: GateVerdict = check(lead, at)
            if not verdict.allowed:
                if verdict.not_before is None:
                    self._alert("callback_refused", f"callback not booked: {verdict.detail}")
                    return
                # the agent cannot be asked again from here: the callback moves to
                # the next callable moment, and the supervisor is told why
                self._alert("callback_moved", f"callback moved: {verdict.detail}", "info")
                at = verdict.not_before
        lead.callback_at = at
        lead.callback_agent = ev.agent_id if ev.callback_personal else None
        self.recorder.callback_booked(lead, f"agent:{ev.agent_id}")

    def callback_time(self, lead: Lead, at: datetime) -> datetime:
        """A naive time is the contact's own local time (its zone column, else the
        number's first zone, else the campaign's); an aware one is taken as is."""
        if at.tzinfo is not None:
            return at
        zone = zones_for(lead.number, lead.timezone, self.settings.timezone)[0]
        return at.replace(tzinfo=zone)

    # ------------------------------------------------------------------ callbacks
    def _personal_pending(self, lead: Lead, wall: datetime) -> bool:
        """A personal callback that only its agent may take yet."""
        if lead.callback_agent is None or lead.callback_at is None:
            return False
        return wall < lead.callback_at + timedelta(seconds=self.settings.callback_grace_s)

    def _park(self, lead: Lead) -> None:
        assert lead.callback_agent is not None
        self._parked.setdefault(lead.callback_agent, {})[lead.contact_id] = lead

    def _serve_callbacks(self, now: float, only: str | None = None) -> None:
        """Dials the due personal callbacks whose agent is ready, reserving the
        agent (predictive mode does not give that agent another call meanwhile);
        hands those past their grace period back to the queue for anyone."""
        if not self._parked or not self.dialing_enabled:
            return
        wall = self.clock.wall()
        for agent_id in [only] if only is not None else list(self._parked):
            waiting = self._parked.get(agent_id, {})
            for cid, lead in list(waiting.items()):
                if not self._personal_pending(lead, wall):
                    del waiting[cid]
                    lead.callback_agent = None  # anyone may take it now
                    lead.not_before = now
                    self.leads.push(lead, now)
                    continue
                if agent_id not in self._ready:
                    continue
                del waiting[cid]
                # the gate again: time has passed since the lead was parked, and an
                # opt-out may have arrived meanwhile
                verdict = self.gate(lead, wall)
                if not verdict.allowed:
                    self._refused(lead, now, wall, verdict)
                    continue
                # a reserved call: the agent sees the contact (as in preview mode) and
                # hears it ring, so no AMD and no abandon; it goes out at once
                call = self._new_call(lead, now, agent=agent_id, preview=True)
                self._set_agent(agent_id, AgentState.RESERVED, now, call.call_id)
                self.agents_port.preview(agent_id, call.call_id, lead)
                self._place(call)
            if not waiting:
                self._parked.pop(agent_id, None)

    def schedule_callback(self, lead: Lead, at: datetime, agent: str | None) -> Lead:
        """A callback booked from outside (the API), already checked and stored.
        The campaign's own lead for the contact is updated if it has one (queued,
        parked or in a call), so the contact is never in the engine twice."""
        now = self.clock.monotonic()
        own = self._find_lead(lead.contact_id)
        target = own if own is not None else lead
        if (lead.contact_id, at) in self._served_callbacks:
            return target  # this very callback has been dialled already
        target.callback_at = at
        target.callback_agent = agent
        if self._in_call(target.contact_id):
            return target  # _treat queues it for the callback when the call ends
        self._unpark(target.contact_id)
        target.not_before = now + max(0.0, (at - self.clock.wall()).total_seconds())
        self.leads.push(target, now)  # replaces its older entry, if any
        return target

    def cancel_callback(self, contact_id: int, due: datetime | None = None) -> bool:
        """The contact's callback (the one due at ``due``, if given) is off; the
        contact is dialled again as any other (once the gate allows)."""
        now = self.clock.monotonic()
        for lead in self._all_leads():
            if (
                lead.contact_id == contact_id
                and lead.callback_at is not None
                and (due is None or lead.callback_at == due)
            ):
                lead.callback_at = lead.callback_agent = None
                if not self._in_call(lead.contact_id):
                    self._unpark(lead.contact_id)
                    lead.not_before = now
                    self.leads.push(lead, now)
                return True
        return False

    def _in_call(self, contact_id: int) -> bool:
        return any(c.lead.contact_id == contact_id for c in self.calls.values())

    def _unpark(self, contact_id: int) -> None:
        for waiting in self._parked.values():
            waiting.pop(contact_id, None)

    def _parked_count(self) -> int:
        return sum(len(waiting) for waiting in self._parked.values())

    def has_contact(self, contact_id: int) -> bool:
        """Is the contact queued, parked for its agent, or in a call here?"""
        return self._find_lead(contact_id) is not None

    def _find_lead(self, contact_id: int) -> Lead | None:
        for lead in self._all_leads():
            if lead.contact_id == contact_id:
                return lead
        return None

    def _all_leads(self) -> list[Lead]:
        out = [c.lead for c in self.calls.values()]
        out += [lead for waiting in self._parked.values() for lead in waiting.values()]
        out += self.leads.leads()
        return out

    # ------------------------------------------------------------------ opt-outs
    def opt_out(
        self,
        number: str,
        source: str,
        by: str = "",
        contact_id: int | None = None,
        call_id: str | None = None,
    ) -> OptOut:
        """The person asked not to be called again: the number goes on the
        campaign's opt-out list now (the gate refuses it from the next dial on)
        and the store records who, when and how."""
        st = self.settings
        scope = frozenset({st.name}) if st.optout_scope == "campaign" else frozenset()
        self.dnc.ensure_list(st.optout_list, scope).add(number)
        record = OptOut(
            number,
            st.optout_list,
            st.name,
            source,
            self.clock.wall(),
            by,
            contact_id,
            call_id,
            tuple(sorted(scope)),
        )
        self.recorder.opted_out(record)
        self._alert("opt_out", f"{number} opted out ({source}{', ' + by if by else ''})", "info")
        return record

    def ivr_opt_out(self, call_id: str) -> OptOut | None:
        """The called person pressed the opt-out key in the IVR ("press 9").
        None if the call is not (or no longer) this engine's."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        return self.opt_out(call.number, "ivr", "", call.lead.contact_id, call_id)

    def close(self) -> None:
        """Shutting down: finish wrap-ups (the conversation is over), close any call
        the carrier could not end as failed, and log every agent out."""
        self.stop_dialing()
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        for call in list(self.calls.values()):
            if call.state is S.WRAP_UP:
                self._finish(call, S.DONE, CallResult.CONNECTED, "shutdown during wrap-up")
            elif call.state is S.QUEUED:
                self._finish(call, S.FAILED, CallResult.FAILED, "shutdown before dialling")
            elif call.state in (S.ABANDONED, S.MACHINE_HANDLED):
                self._finish(call, S.DONE, call.result or CallResult.HANGUP, "shutdown")
            else:
                self._finish(call, S.FAILED, CallResult.FAILED, "shutdown")
        now = self.clock.monotonic()
        for agent_id, rec in self.agents.items():
            if rec.state is not AgentState.LOGGED_OUT:
                if rec.state is AgentState.RESERVED:
                    self._set_agent(agent_id, AgentState.READY, now)
                self._set_agent(agent_id, AgentState.LOGGED_OUT, now)

    def log_out(self, agent_id: str) -> None:
        """Log an idle or paused agent out now (end of shift, supervisor action)."""
        self.on_agent_event(AgentEvent(agent_id, AgentState.LOGGED_OUT, self.clock.monotonic()))

    # ------------------------------------------------------------------ figures
    def stats(self) -> dict[str, object]:
        """The campaign's live figures (published periodically as a ``stats`` event)."""
        now = self.clock.monotonic()
        c = self.counters
        b = self.budget(now)
        d = self.last_decision
        ab_h, live_h = self.last_hour_rate(now)
        return {
            "abandoned_last_hour": ab_h,
            "live_answers_last_hour": live_h,
            "abandon_rate_last_hour": ab_h / live_h if live_h else 0.0,
            "abandoned_window": b.abandoned,
            "live_answers_window": b.live_answers,
            "amd_false_positive_rate": self.settings.amd_false_positive_rate,
            "refusals_by_reason": dict(c.refusals_by_reason),
            "dials": c.dials,
            "live_answers": c.live_answers,
            "machine_answers": c.machine_answers,
            "connects": c.connects,
            "abandoned": c.abandoned,
            "gate_refusals": c.gate_refusals,
            "abandon_rate_window": b.rate,
            "abandon_window": self.settings.abandon_window,
            "abandon_target": self.settings.abandon_target,
            "agents": {st.value: len(ids) for st, ids in self._agent_since.items() if ids},
            "calls": {ph: len(ids) for ph, ids in self._phase_since.items()},
            "calls_in_progress": len(self.calls),
            "dial_level": d.dial_level if d else 0.0,
            "forecast_free_agents": d.expected_free_agents if d else 0.0,
            "forecast_abandon_prob": d.expected_abandon_prob if d else 0.0,
            "dialing": self.dialing_enabled,
            "leads_remaining": len(self.leads) + self._parked_count(),
            "blockers": [asdict(blk) for blk in self.blockers(now)],
        }

    def blockers(self, now: float) -> list[Blocker]:
        """What limits dialling right now, and until when (``until`` is monotonic
        seconds, or None when it depends on people rather than time)."""
        out: list[Blocker] = []
        if not self.dialing_enabled:
            out.append(Blocker("paused", "dialling is paused or stopped", None))
        if not self._agent_since[AgentState.READY] and not self._agent_since[AgentState.WRAP_UP]:
            if not self._agent_since[AgentState.ON_CALL]:
                out.append(Blocker("no_agents", "no agent is logged in and available", None))
            else:
                out.append(Blocker("no_agent_ready", "every agent is on a call", None))
        if len(self.leads) == 0 and not self.calls and not self._parked_count():
            out.append(Blocker("list_exhausted", "no contact left to dial", None))
        elif self.leads.ready_count(now) == 0 and len(self.leads) > 0:
            nxt = self.leads.next_due()
            out.append(Blocker("no_contact_callable", "no contact may be dialled now", nxt))
        if self.carrier.free_channels() <= 0:
            out.append(Blocker("carrier_full", "the carrier has no free channel", None))
        if self._trunk_failures >= TRUNK_DOWN_AFTER:
            out.append(
                Blocker(
                    "trunk_down",
                    f"the last {self._trunk_failures} calls all failed at the carrier "
                    "(503, timeout or no trunk)",
                    None,
                )
            )
        b = self.budget(now)
        if self.settings.mode is DialMode.PREDICTIVE and b.live_answers > 0 and b.headroom() <= 0:
            out.append(
                Blocker(
                    "abandon_budget", "abandon budget spent: dialling one line per free agent", None
                )
            )
        return out

    def agent_totals(self, now: float) -> dict[AgentState, float]:
        totals: dict[AgentState, float] = {}
        for rec in self.agents.values():
            for st, t in rec.time_in.items():
                totals[st] = totals.get(st, 0.0) + t
            totals[rec.state] = totals.get(rec.state, 0.0) + (now - rec.since)
        return totals
