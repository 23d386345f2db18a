"""Run a scenario: the real engine under the virtual clock against the simulated
PBX and simulated agents, optionally recording everything in the store."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from amd.types import Detector
from carriers.base import AudioClip
from carriers.simulated import PartyKind, SimulatedPbx, SimulatedPbxParams
from dialer.agentstate import AgentState
from dialer.callstate import CallResult
from dialer.campaign import AmdAction, CampaignSettings, DialMode
from dialer.clock import VirtualClock, perf_counter
from dialer.compliance.dnc import DncIndex
from dialer.compliance.gate import gate_for
from dialer.engine import Engine, campaign_policy, policy_name
from dialer.leadqueue import LeadQueue
from dialer.ports import Lead, NullRecorder, Recorder
from dialer.runtime import amd_factory_for
from dialer.store import dnc_repo, repo
from dialer.store.db import Database
from dialer.store.recorder import StoreRecorder
from pacing.registry import SIMULATOR_ONLY
from sim.agents import SimulatedAgents
from sim.audio import ClipBank, corpus_clips, message_clip
from sim.numbers import synthetic_numbers
from sim.oracle import Foresight, SimOracle
from sim.population import Population
from sim.scenario import Scenario

FLUSH_ROWS = 5000
SERIES_STEP_S = 120.0


def campaign_settings(
    sc: Scenario, name: str, policy: str | None, target_pct: float | None
) -> CampaignSettings:
    c = sc.campaign
    return CampaignSettings(
        name=name,
        list_name=name,
        mode=DialMode(c.mode),
        policy=policy or c.policy,
        power_ratio=c.power_ratio,
        abandon_target=(target_pct if target_pct is not None else c.abandon_target_pct) / 100.0,
        abandon_window=c.abandon_window,
        no_answer_timeout_s=c.no_answer_timeout_s,
        max_attempts=c.max_attempts,
        amd_enabled=c.amd_enabled,
        amd_profile=c.amd_profile,
        amd_action=AmdAction(c.amd_action),
        max_lines_per_agent=c.max_lines_per_agent,
        tick_s=c.tick_s,
        calltimes=c.calltimes,
        timezone=c.timezone,
        max_attempts_per_day=c.max_attempts_per_day,
        ivr=c.ivr,
    )


async def run_scenario(sc: Scenario, opts: SimOptions) -> SimResult:
    """Run the scenario's shift under the virtual clock (see :class:`SimOptions`)."""
    with _few_collections():
        return await _run_scenario(sc, opts)


@contextmanager
def _few_collections() -> Iterator[None]:
    """The event loop allocates a few objects per event and keeps most of them
    (every call's record), so the cyclic collector's default young-generation
    threshold made it rescan a growing heap: 14 % of an 8-hour run (and building
    a list of 150,000 leads paid the same way).  Objects that exist before the
    run are frozen out of collections, and young ones
    are collected every 50,000 allocations instead of 700 (older ones more
    rarely still)."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@dataclass
class SimResult:
    summary: dict[str, Any]
    engine: Engine
    pbx: SimulatedPbx
    campaign_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimOptions:
    policy: str | None = None
    seed: int | None = None
    agents: int | None = None
    abandon_target_pct: float | None = None
    db: Database | None = None
    campaign: str | None = None
    hours: float | None = None  # override the shift length
    progress: Callable[[float, float], None] | None = None  # (sim seconds, of total)
    stop_after_events: int | None = None  # for crash tests: stop abruptly mid-run
    dnc: DncIndex | None = None  # lists the gate checks (else: the store's, or none)
    # fix each dial's called party and each wrap-up by position (see sim.oracle):
    # needed by the policies that read the future (clairvoyant, informed), and gives
    # every policy the same people for a seed (common random numbers); None: on for
    # those policies only
    foresight: bool | None = None
    policy_params: dict[str, Any] = field(default_factory=dict)  # e.g. {"min_gain": 0.2}


async def _run_scenario(sc: Scenario, opts: SimOptions) -> SimResult:
    seed = sc.seed if opts.seed is None else opts.seed
    if opts.agents is not None:
        sc = sc.model_copy(update={"agents": sc.agents.model_copy(update={"count": opts.agents})})
    shift_s = (opts.hours if opts.hours is not None else sc.shift_hours) * 3600.0
    name = opts.campaign or sc.name
    settings = campaign_settings(sc, name, opts.policy, opts.abandon_target_pct)
    root = np.random.default_rng(seed)
    r_clips, r_pbx, r_agents, r_engine, r_numbers = root.spawn(5)
    clock = VirtualClock(sc.start)
    wall_t0 = perf_counter()

    recorder: Recorder = NullRecorder()
    store: StoreRecorder | None = None
    campaign_id: int | None = None
    leads = LeadQueue()
    initial = (0, 0)
    recovered = 0
    run_tag = "r0"
    if opts.db is not None:
        campaign_id, run_tag, recovered, initial = await _prepare_store(
            opts.db, sc, settings, r_numbers, clock
        )
        store = StoreRecorder(opts.db, clock, campaign_id, run_tag, durable_dials=False)
        if opts.dnc is None:
            async with opts.db.engine.connect() as conn:
                opts.dnc = await dnc_repo.load_index(conn)
        recorder = store
        async with opts.db.engine.begin() as conn:
            loaded = []
            for lead, next_at in await repo.load_leads(conn, campaign_id):
                if next_at is not None:
                    nat = next_at if next_at.tzinfo else next_at.replace(tzinfo=sc.start.tzinfo)
                    lead.not_before = max(0.0, (nat - clock.wall()).total_seconds())
                loaded.append(lead)
            leads.extend(loaded, 0.0)
    else:
        numbers = synthetic_numbers(sc.list_size, r_numbers)
        leads.extend([Lead(contact_id=i + 1, numbers=[n]) for i, n in enumerate(numbers)], 0.0)

    note = ""
    corpus: list[AudioClip] = []
    if sc.audio == "corpus":
        corpus, note = corpus_clips(max(48, sc.audio_clips * 4), seed=1)
    clips = ClipBank(r_clips, sc.audio_clips, corpus)
    if clips.source == "corpus" and settings.amd_enabled:
        # Ofcom asks for a tested estimate of people hung up on by AMD: measure the
        # detector on the audio the called parties play
        settings.amd_false_positive_rate = measured_false_machine_rate(
            clips.human, amd_factory_for(settings.amd_profile)
        )
    population = Population(sc.called_party, clips)
    name = policy_name(settings)
    needs_oracle = name in SIMULATOR_ONLY
    foresight = opts.foresight if opts.foresight is not None else needs_oracle
    if needs_oracle and not foresight:
        raise ValueError(f"the {name} policy needs foresight (SimOptions.foresight)")
    fs_pbx, fs_agents = (int(x) for x in np.random.default_rng([seed, 7]).integers(2**63, size=2))
    model: Population | Foresight = Foresight(population, fs_pbx) if foresight else population
    pbx_params = SimulatedPbxParams(channels=sc.channels)
    pbx = SimulatedPbx(clock, model, r_pbx, pbx_params)
    agents = SimulatedAgents(clock, sc.agents, r_agents, fs_agents if foresight else None)
    gate = gate_for(settings, opts.dnc)
    engine = Engine(
        clock=clock,
        carrier=pbx,
        agents=agents,
        recorder=recorder,
        gate=gate,
        settings=settings,
        leads=leads,
        amd_factory=amd_factory_for(settings.amd_profile) if settings.amd_enabled else None,
        rng=r_engine,
        abandon_message=message_clip(settings.abandon_message_s, "abandon-message"),
        run_tag=run_tag,
        initial_counts=initial,
        policy=campaign_policy(settings, **opts.policy_params),
    )
    pbx.set_listener(engine)
    agents.set_listener(engine)
    if isinstance(model, Foresight) and agents.wrap_ahead is not None:
        engine.oracle = SimOracle(engine, model, pbx_params, pbx.truth, agents.wrap_ahead)

    def end_shift() -> None:
        engine.stop_dialing()
        # Agents stay until the calls already placed have been answered or have
        # failed: leaving while they still ring would abandon callers that only
        # the end of the simulation, not the pacing, left without an agent.
        if engine.snapshot(clock.monotonic()).calls.in_progress:
            clock.call_later(1.0, end_shift)
            return
        for agent_id, rec in engine.agents.items():
            agents.logged_out.add(agent_id)
            if rec.state in (AgentState.READY, AgentState.PAUSED):
                engine.log_out(agent_id)

    agents.login_all()
    engine.start()
    clock.call_at(shift_s, end_shift)
    events = 0
    next_report = 0.0
    next_sample = 0.0
    # cumulative (hour, abandoned, live answers) every 2 simulated minutes, for
    # plots of the abandon rate over the shift
    series: list[tuple[float, int, int]] = []
    while clock.step():
        events += 1
        if clock.monotonic() >= next_sample:
            c = engine.counters
            series.append((round(next_sample / 3600.0, 4), c.abandoned, c.live_answers))
            next_sample += SERIES_STEP_S
        if store is not None and store.pending >= FLUSH_ROWS:
            await store.flush()
        if opts.progress is not None and clock.monotonic() >= next_report:
            opts.progress(min(clock.monotonic(), shift_s), shift_s)
            next_report = clock.monotonic() + 600.0
        if opts.stop_after_events is not None and events >= opts.stop_after_events:
            raise SimulatedCrash(events)
    if store is not None:
        await store.flush()
    if opts.progress is not None:
        opts.progress(shift_s, shift_s)
    wall = perf_counter() - wall_t0
    summary = summarise(engine, pbx, clock, settings, seed, wall, events, shift_s)
    summary["recovered_attempts"] = recovered
    c = engine.counters
    series.append((round(clock.monotonic() / 3600.0, 4), c.abandoned, c.live_answers))
    summary["series"] = series
    summary["foresight"] = foresight
    summary["audio"] = clips.source
    summary["amd_false_positive_rate"] = settings.amd_false_positive_rate
    if note:
        summary["notes"] = [note]
    return SimResult(summary, engine, pbx, campaign_id)


def measured_false_machine_rate(people: list[AudioClip], factory: Callable[[], Detector]) -> float:
    """Share of people's greetings the detector calls machines (or fax)."""
    if not people:
        return 0.0
    from amd.types import Label
    from dialer.engine import AmdCache

    cache = AmdCache(factory)
    wrong = sum(cache.classify(c).label in (Label.MACHINE, Label.FAX) for c in people)
    return wrong / len(people)


class SimulatedCrash(RuntimeError):
    """Raised by ``stop_after_events`` to stop a run abruptly (crash tests)."""


async def _prepare_store(
    db: Database,
    sc: Scenario,
    settings: CampaignSettings,
    rng: np.random.Generator,
    clock: VirtualClock,
) -> tuple[int, str, int, tuple[int, int]]:
    """Create the campaign and its generated list, or resume it: recover attempts
    a crash left open and carry the campaign's abandonment history forward."""
    await db.migrate()
    now = clock.wall()
    async with db.engine.begin() as conn:
        camp = await repo.get_campaign(conn, settings.name)
        if camp is None:
            list_id = await repo.ensure_list(conn, settings.name, sc.region, now)
            from dialer.contacts import ParsedContact

            batch = [
                ParsedContact(i + 2, f"sim:{i}", [(n, "phone")], {"sim_index": str(i)})
                for i, n in enumerate(synthetic_numbers(sc.list_size, rng))
            ]
            for i in range(0, len(batch), 5000):
                await repo.store_contacts(conn, list_id, batch[i : i + 5000], now)
            campaign_id = await repo.create_campaign(conn, settings, list_id, now)
            await repo.enroll_contacts(conn, campaign_id, list_id)
            return campaign_id, "r0", 0, (0, 0)
        campaign_id = camp.id
        recovered = await repo.recover(conn, campaign_id, now)
        counts = await repo.campaign_counts(conn, campaign_id)
        sessions = await repo.count_agent_sessions(conn, campaign_id)
        # unique per run: every run that placed a call or logged an agent in moved one
        tag = f"r{sessions}a{counts.attempts}"
        return campaign_id, tag, recovered, (counts.abandoned, counts.live)


def summarise(
    engine: Engine,
    pbx: SimulatedPbx,
    clock: VirtualClock,
    settings: CampaignSettings,
    seed: int,
    wall: float,
    events: int,
    shift_s: float = 0.0,
) -> dict[str, Any]:
    c = engine.counters
    totals = engine.agent_totals(clock.monotonic())
    talk = totals.get(AgentState.ON_CALL, 0.0)
    busy = talk + totals.get(AgentState.WRAP_UP, 0.0)
    logged_in = sum(v for k, v in totals.items() if k is not AgentState.LOGGED_OUT)
    waits = engine.ready_waits
    # ground truth the engine never sees: people the detector hung up on
    false_machine = sum(
        1
        for cid, b in pbx.truth.items()
        if b.kind is PartyKind.PERSON
        and engine_result(engine, cid) in (CallResult.MACHINE, CallResult.MESSAGE_LEFT)
    )
    return {
        "policy": engine.policy.name,
        "seed": seed,
        "dials": c.dials,
        "live_answers": c.live_answers,
        "machine_answers": c.machine_answers,
        "connects": c.connects,
        "abandoned": c.abandoned,
        "abandon_rate": (c.abandoned / c.live_answers) if c.live_answers else 0.0,
        "abandon_target": settings.abandon_target,
        "occupancy": (busy / logged_in) if logged_in else 0.0,
        "agent_wait_mean_s": float(np.mean(waits)) if waits else 0.0,
        "talk_min_per_agent_hour": (talk / 60.0) / (logged_in / 3600.0) if logged_in else 0.0,
        "dials_per_hour": c.dials / (shift_s / 3600.0) if shift_s > 0 else 0.0,
        "agents": len(engine.agents),
        "gate_refusals": c.gate_refusals,
        "results": dict(sorted(c.results.items())),
        "amd_false_machine_true": false_machine,
        "contacts_left": len(engine.leads),
        "sim_seconds": clock.monotonic(),
        "wall_seconds": wall,
        "events": events,
        "amd_runs": engine.amd_cache.runs if engine.amd_cache else 0,
        "ivr_outcomes": dict(sorted(c.ivr_outcomes.items())),
    }


def engine_result(engine: Engine, call_id: str) -> CallResult | None:
    return engine.results_by_call.get(call_id)
