"""The engine running for real: campaigns on the asyncio loop with the real
clock, their stores, the event hub, periodic statistics and alerts, and a clean
shutdown.  `dialer run` builds one; the HTTP API and MQTT steer it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import numpy as np
from sqlalchemy import and_, func, select, update

from amd import registry as amd_registry
from amd.types import Detector
from carriers.base import AgentLineEvent, AgentLines, AudioClip, Carrier, CarrierEvent
from dialer.agentstate import AgentState
from dialer.campaign import CampaignSettings
from dialer.clock import Clock, RealClock
from dialer.compliance.dnc import DncIndex
from dialer.compliance.gate import gate_for
from dialer.config import CampaignConfig, EngineConfig, SipCarrierConfig, check_move_targets
from dialer.desktop import WRAP_TIMEOUT, DesktopAgents
from dialer.engine import Engine
from dialer.events import Event, EventHub
from dialer.ivr import EspeakSpeech
from dialer.leadqueue import LeadQueue
from dialer.phones import PhoneAgents
from dialer.ports import AgentPort, Lead
from dialer.store import dnc_repo, repo
from dialer.store.db import Database
from dialer.store.models import Callback, Campaign, DncEntry, DncListRow, table_of
from dialer.store.recorder import StoreRecorder
from dialer.tokens import Role, ensure_token
from dialer.tokens import lookup as token_lookup


class World(Protocol):
    """What the runtime dials into: a carrier, and the agents of each campaign.
    The simulator provides one; SIP trunks and SIP agents provide another."""

    @property
    def carrier(self) -> Carrier: ...

    def bind(self, clock: Clock) -> None:
        """Called once with the runtime's clock, before anything else."""
        ...

    def agents_for(self, campaign: str, clock: Clock) -> AgentPort: ...

    def start_agents(self, campaign: str) -> None: ...

    def fill_list(self, campaign: CampaignConfig) -> list[tuple[str, dict[str, str]]]:
        """Contacts for an empty list (demo worlds generate some; real ones none)."""
        ...

    def abandon_message(self, settings: CampaignSettings) -> AudioClip: ...


DNC_SYNC_BATCH = 20_000  # DNC entries taken from the store per control tick


class UnknownCampaign(KeyError):
    pass


@dataclass
class CampaignRuntime:
    config: CampaignConfig
    campaign_id: int
    engine: Engine
    recorder: StoreRecorder
    last_dials: int = 0
    last_dial_change: float = 0.0
    alerted_idle: bool = False
    status: str = "created"


def amd_factory_for(profile: str) -> Callable[[], Detector]:
    """A fresh detector of the named profile for each call (detectors keep state)."""

    def make() -> Detector:
        return amd_registry.create(profile)

    return make


class _Router:
    """One carrier, several campaigns: each event goes to the engine that owns the call."""

    def __init__(self) -> None:
        self.engines: list[Engine] = []

    def on_carrier_event(self, event: CarrierEvent) -> None:
        for e in self.engines:
            if event.call_id in e.calls:
                e.on_carrier_event(event)
                return


@dataclass
class Runtime:
    cfg: EngineConfig
    db: Database
    world: World
    hub: EventHub = field(default_factory=EventHub)
    campaigns: dict[str, CampaignRuntime] = field(default_factory=dict)
    clock: Clock | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _router: _Router = field(default_factory=_Router)
    stopping: bool = False
    dnc: DncIndex = field(default_factory=DncIndex)
    # the newest DNC entry and callback row the engines have taken from the store
    _dnc_seen: int = 0
    _cb_seen: int = 0
    _cb_applied: dict[int, tuple[str, int, datetime]] = field(default_factory=dict)
    desks: dict[str, DesktopAgents] = field(default_factory=dict)  # campaigns worked from /agent
    phones: dict[str, PhoneAgents] = field(default_factory=dict)  # campaigns on SIP phones
    _trunks_up: dict[str, bool] = field(default_factory=dict)  # as last told to supervisors

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.db.migrate()
        clock = self.clock = RealClock()
        self.world.bind(clock)
        self.world.carrier.set_listener(self._router)
        lines = self._agent_lines()
        if lines is not None:
            lines.set_line_listener(self._on_line)
        await self.world.carrier.start()
        if self.cfg.bootstrap_admin_token:
            async with self.db.engine.begin() as conn:
                await ensure_token(
                    conn,
                    "bootstrap-admin",
                    Role.ADMIN,
                    self.cfg.bootstrap_admin_token,
                    clock.wall(),
                )
        async with self.db.engine.connect() as conn:
            self.dnc = await dnc_repo.load_index(conn)
            self._dnc_seen = await _max_id(conn, DncEntry)
            self._cb_seen = await _max_id(conn, Callback)
        for cc in self.cfg.campaigns:
            await self._start_campaign(cc, clock)
        self._tasks.append(asyncio.create_task(self._stats_loop(), name="stats"))
        self._tasks.append(asyncio.create_task(self._control_loop(), name="control"))
        # Everything loaded so far lives as long as the process: keep it out of the
        # cyclic collector's full passes, which otherwise stall the loop for tens
        # of milliseconds under call load (bench/sip_load.py).
        gc.freeze()

    async def _start_campaign(self, cc: CampaignConfig, clock: Clock) -> None:
        settings = cc.settings()
        now = clock.wall()
        async with self.db.engine.begin() as conn:
            list_id = await repo.ensure_list(conn, cc.list, "US", now)
            if not await repo.list_has_contacts(conn, list_id):
                from dialer.contacts import ParsedContact

                batch = [
                    ParsedContact(i + 2, f"gen:{n}", [(n, "phone")], fields)
                    for i, (n, fields) in enumerate(self.world.fill_list(cc))
                ]
                for i in range(0, len(batch), 5000):
                    await repo.store_contacts(conn, list_id, batch[i : i + 5000], now)
            camp = await repo.get_campaign(conn, cc.name)
            if camp is None:
                campaign_id = await repo.create_campaign(conn, settings, list_id, now)
            else:
                campaign_id = camp.id
                settings.abandon_target = camp.abandon_target  # the supervisor's last word
            recovered = await repo.recover(conn, campaign_id, now)
            await repo.enroll_contacts(conn, campaign_id, list_id)
            counts = await repo.campaign_counts(conn, campaign_id)
            sessions = await repo.count_agent_sessions(conn, campaign_id)
            leads_rows = await repo.load_leads(conn, campaign_id)
        run_tag = f"r{sessions}a{counts.attempts}"
        leads = LeadQueue()
        mono = clock.monotonic()
        for lead, next_at in leads_rows:
            if next_at is not None:
                nat = next_at if next_at.tzinfo else next_at.replace(tzinfo=now.tzinfo)
                lead.not_before = mono + max(0.0, (nat - now).total_seconds())
            else:
                lead.not_before = mono
        leads.extend([lead for lead, _ in leads_rows], mono)
        recorder = StoreRecorder(self.db, clock, campaign_id, run_tag, durable_dials=True)
        agents: AgentPort
        if cc.agents == "desktop":
            desk = self.desks[cc.name] = DesktopAgents(
                clock,
                cc.name,
                cc.wrap_up_s,
                tuple(d for d in settings.dispositions if d != WRAP_TIMEOUT),
                callback_codes=frozenset(
                    name for name, d in settings.dispositions.items() if d.callback
                ),
            )
            self.hub.add_listener(desk.follow)
            agents = desk
        else:
            agents = self.world.agents_for(cc.name, clock)
        lines = self._agent_lines()
        if lines is not None:
            assert isinstance(self.cfg.carrier, SipCarrierConfig) and self.cfg.carrier.agents
            desk_now = self.desks.get(cc.name) if cc.agents == "desktop" else None
            agents = self.phones[cc.name] = PhoneAgents(
                agents,
                lines,
                self.cfg.carrier.agents.target_for,
                desk_now.line_state if desk_now is not None else None,
            )
        engine = Engine(
            clock=clock,
            carrier=self.world.carrier,
            agents=agents,
            recorder=recorder,
            gate=gate_for(settings, self.dnc),
            settings=settings,
            leads=leads,
            amd_factory=amd_factory_for(settings.amd_profile) if settings.amd_enabled else None,
            rng=np.random.default_rng(campaign_id),
            abandon_message=self.world.abandon_message(settings),
            run_tag=run_tag,
            initial_counts=(counts.abandoned, counts.live),
            speech=EspeakSpeech(settings.ivr.voice) if settings.ivr is not None else None,
            dnc=self.dnc,
        )
        engine.hub = self.hub
        engine.on_move = partial(self._moved, cc.name)
        agents.set_listener(engine)
        self._router.engines.append(engine)
        rt = CampaignRuntime(cc, campaign_id, engine, recorder, last_dial_change=mono)
        self.campaigns[cc.name] = rt
        self._tasks.append(asyncio.create_task(recorder.run_flusher(0.25), name=f"flush-{cc.name}"))
        if recovered:
            self._alert(
                cc.name, "recovered", f"{recovered} attempts left open by a crash were closed"
            )
        if cc.agents != "desktop":
            self.world.start_agents(cc.name)
        if cc.autostart:
            await self.resume(cc.name)

    def _agent_lines(self) -> AgentLines | None:
        """The carrier's agent lines when agents work on SIP phones, else None."""
        carrier_cfg = self.cfg.carrier
        if not isinstance(carrier_cfg, SipCarrierConfig) or carrier_cfg.agents is None:
            return None
        carrier = self.world.carrier
        if not isinstance(carrier, AgentLines):
            raise TypeError(f"carrier {carrier.name!r} cannot call agents' phones")
        return carrier

    def _on_line(self, ev: AgentLineEvent) -> None:
        for port in self.phones.values():
            if port.owns(ev.agent_id):
                port.on_line_event(ev)

    async def add_campaign(self, cc: CampaignConfig) -> None:
        """A campaign created while the engine runs (the API)."""
        if cc.name in self.campaigns:
            raise ValueError(f"campaign {cc.name!r} exists already")
        assert self.clock is not None
        async with self.db.engine.connect() as conn:
            known = {n for (n,) in await conn.execute(select(table_of(Campaign).c.name))} | set(
                self.campaigns
            )
        check_move_targets(cc, known, "body")
        self.cfg.campaigns.append(cc)
        await self._start_campaign(cc, self.clock)

    async def update_campaign(self, name: str, changes: dict[str, Any]) -> CampaignSettings:
        """Change settings of a running campaign; pacing uses them at its next tick."""
        rt = self.get(name)
        settings = rt.engine.settings
        for key, value in changes.items():
            setattr(settings, key, value)  # validated by pydantic (validate_assignment)
        await self._store_campaign(
            rt, settings=settings.model_dump(mode="json"), abandon_target=settings.abandon_target
        )
        return settings

    def _moved(self, source: str, lead: Lead, target: str) -> None:
        """A treatment moved a contact from ``source`` to ``target``.  If ``target``
        runs here it queues the contact once the move is committed (before that
        its store row may not exist yet); otherwise it finds the contact in the
        store when it starts."""
        rt = self.campaigns.get(target)
        if rt is None:
            return
        fresh = Lead(
            lead.contact_id, list(lead.numbers), 0, 0, lead.priority, lead.timezone, lead.fields
        )
        # the target counts its own attempts, but the post-abandon cool-down
        # protects the person whichever campaign calls
        fresh.last_abandon_at = lead.last_abandon_at

        def queue() -> None:
            assert self.clock is not None
            now = self.clock.monotonic()
            fresh.not_before = now
            if not rt.engine.has_contact(fresh.contact_id):
                rt.engine.leads.push(fresh, now)

        self.get(source).recorder.when_durable(queue)

    async def stop_campaign(self, name: str) -> None:
        rt = self.get(name)
        rt.engine.stop_dialing()
        rt.status = "stopped"
        await self._store_campaign(rt, status="stopped")

    def agents(self, name: str) -> list[dict[str, Any]]:
        rt = self.get(name)
        assert self.clock is not None
        now = self.clock.monotonic()
        return [
            {
                "agent": a,
                "state": r.state.value,
                "seconds_in_state": round(now - r.since, 1),
                "call_id": r.call_id,
            }
            for a, r in sorted(rt.engine.agents.items())
        ]

    async def stop(self) -> None:
        """No new dials; calls in progress finish (or are ended after the grace
        period); everything is flushed."""
        if self.stopping:
            return
        self.stopping = True
        for rt in self.campaigns.values():
            rt.engine.stop_dialing()
        grace = self.cfg.shutdown_grace_s
        assert self.clock is not None
        deadline = self.clock.monotonic() + grace
        while self.clock.monotonic() < deadline and any(
            _customer_calls(rt.engine) for rt in self.campaigns.values()
        ):
            await self.clock.sleep(0.05)
        for rt in self.campaigns.values():
            for call_id in list(rt.engine.calls):
                self.world.carrier.hangup(call_id)
        await self.clock.sleep(0.05)
        for rt in self.campaigns.values():
            rt.engine.close()
        # the flushers finish what they are writing and write the rest, uncancelled
        for rt in self.campaigns.values():
            rt.recorder.stop_flusher()
        flushers = [t for t in self._tasks if t.get_name().startswith("flush-")]
        if flushers:
            await asyncio.wait(flushers, timeout=max(30.0, grace))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for rt in self.campaigns.values():
            await rt.recorder.flush()
        await self.world.carrier.stop()
        async with self.db.engine.begin() as conn:
            for rt in self.campaigns.values():
                await conn.execute(
                    update(table_of(Campaign))
                    .where(table_of(Campaign).c.id == rt.campaign_id)
                    .values(status="stopped")
                )

    # ------------------------------------------------------------------ control
    def get(self, name: str) -> CampaignRuntime:
        rt = self.campaigns.get(name)
        if rt is None:
            raise UnknownCampaign(name)
        return rt

    async def set_abandon_target(self, name: str, fraction: float) -> None:
        rt = self.get(name)
        rt.engine.set_abandon_target(fraction)  # validates; takes effect next tick
        await self._store_campaign(rt, abandon_target=fraction)
        self._alert(name, "target_changed", f"abandon target set to {fraction:.2%}", info=True)

    async def pause(self, name: str) -> None:
        rt = self.get(name)
        rt.engine.stop_dialing()
        rt.status = "paused"
        await self._store_campaign(rt, status="paused")

    async def resume(self, name: str) -> None:
        rt = self.get(name)
        if self.stopping:
            return
        if not rt.engine.dialing_enabled:
            rt.engine.start()
        rt.status = "running"
        rt.engine.stopped = False
        assert self.clock is not None
        rt.last_dial_change = self.clock.monotonic()
        await self._store_campaign(rt, status="running")

    async def _store_campaign(self, rt: CampaignRuntime, **values: object) -> None:
        t = table_of(Campaign)
        async with self.db.engine.begin() as conn:
            await conn.execute(update(t).where(t.c.id == rt.campaign_id).values(**values))

    async def refresh_lists(self, list_name: str) -> int:
        """New contacts in a list join the running campaigns that dial it, at once
        (a contact inserted at the top of the list is dialled next)."""
        if self.clock is None:
            return 0
        queued = 0
        for rt in self.campaigns.values():
            if rt.config.list != list_name:
                continue
            async with self.db.engine.begin() as conn:
                list_id = await repo.ensure_list(conn, list_name, "US", self.clock.wall())
                ids = await repo.enroll_contacts(conn, rt.campaign_id, list_id)
                rows = await repo.load_leads(conn, rt.campaign_id, ids) if ids else []
            mono = self.clock.monotonic()
            for lead, _ in rows:
                lead.not_before = mono
                rt.engine.leads.push(lead, mono)
                queued += 1
        return queued

    async def _control_loop(self) -> None:
        """Changes made in the database by another process (`dialer campaign
        set-target`, `pause`) reach the engine within one pacing tick."""
        assert self.clock is not None
        t = table_of(Campaign)
        tick = min(c.engine.settings.tick_s for c in self.campaigns.values())
        while True:
            await self.clock.sleep(tick)
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(select(t.c.name, t.c.abandon_target, t.c.status))).all()
                await self._sync_dnc(conn)
                await self._sync_callbacks(conn)
            for name, target, st in rows:
                rt = self.campaigns.get(name)
                if rt is None:
                    continue
                if abs(rt.engine.settings.abandon_target - target) > 1e-12:
                    rt.engine.set_abandon_target(target)
                    self._alert(name, "target_changed", f"abandon target set to {target:.2%}", True)
                if st == "paused" and rt.status == "running":
                    rt.engine.stop_dialing()
                    rt.status = "paused"
                elif st == "running" and rt.status == "paused" and not self.stopping:
                    rt.engine.start()
                    rt.status = "running"

    async def _sync_dnc(self, conn: Any) -> None:
        """DNC entries added by another process (`dialer dnc add/import`, another
        API) bind the running gates within one tick.  (A removal waits for a
        restart: a number blocked a little longer is the safe side.)"""
        lt, et = table_of(DncListRow), table_of(DncEntry)
        rows = await conn.execute(
            select(et.c.id, et.c.value, et.c.expires_at, lt.c.name, lt.c.campaigns, lt.c.mandatory)
            .join(lt, lt.c.id == et.c.list_id)
            .where(et.c.id > self._dnc_seen)
            .order_by(et.c.id)
            # a bulk import is taken in slices, so a tick never stalls the engine
            .limit(DNC_SYNC_BATCH)
        )
        for eid, value, exp, name, camps, mandatory in rows:
            self._dnc_seen = max(self._dnc_seen, int(eid))
            lst = self.dnc.ensure_list(
                name, frozenset((camps or {}).get("names", [])), bool(mandatory)
            )
            try:
                lst.add(value, None if exp is None else _utc(exp))
            except ValueError:
                continue  # a malformed row written by hand: the store keeps it, the gate cannot

    async def _sync_callbacks(self, conn: Any) -> None:
        """Callbacks booked or cancelled by another process reach the running
        engine within one tick.  Each booking is applied once; one that reaches
        the engine twice (also booked through this process's API) is harmless,
        since the engine never serves the same callback twice."""
        cb, ct = table_of(Callback), table_of(Campaign)
        rows = (
            await conn.execute(
                select(cb.c.id, ct.c.name, cb.c.campaign_id, cb.c.contact_id, cb.c.due_at)
                .add_columns(cb.c.agent, cb.c.source)
                .join(ct, ct.c.id == cb.c.campaign_id)
                .where(and_(cb.c.id > self._cb_seen, cb.c.status == "scheduled"))
                .order_by(cb.c.id)
            )
        ).all()
        for cid, name, campaign_id, contact_id, due, agent, source in rows:
            self._cb_seen = max(self._cb_seen, int(cid))
            rt = self.campaigns.get(name)
            if rt is None or str(source).startswith("agent:"):
                continue  # not run here, or booked by this engine itself
            found = await repo.load_leads(conn, campaign_id, [contact_id], any_status=True)
            if found:
                rt.engine.schedule_callback(found[0][0], _utc(due), agent)
                self._cb_applied[int(cid)] = (name, int(contact_id), _utc(due))
        if not self._cb_applied:
            return
        ids = list(self._cb_applied)
        for cid, status in await conn.execute(
            select(cb.c.id, cb.c.status).where(cb.c.id.in_(ids[:900]))
        ):
            if status == "scheduled":
                continue
            name, contact_id, due = self._cb_applied.pop(int(cid))
            rt = self.campaigns.get(name)
            if status == "cancelled" and rt is not None:
                rt.engine.cancel_callback(contact_id, due)

    async def authorize_control(self, token: str) -> bool:
        """May this API token steer campaigns (MQTT control topic)?  Supervisors
        and admins may."""
        async with self.db.engine.connect() as conn:
            found = await token_lookup(conn, token)
        return found is not None and found[1].allows(Role.SUPERVISOR)

    # ------------------------------------------------------------------ figures
    def stats(self, name: str) -> dict[str, Any]:
        rt = self.get(name)
        s = rt.engine.stats()
        s["status"] = rt.status
        s["campaign"] = name
        return s

    def _alert(self, campaign: str, code: str, message: str, info: bool = False) -> None:
        assert self.clock is not None
        self.hub.publish(
            Event(
                "alert",
                campaign,
                self.clock.wall(),
                {"code": code, "message": message, "severity": "info" if info else "warning"},
            )
        )

    async def _stats_loop(self) -> None:
        assert self.clock is not None
        while True:
            await self.clock.sleep(self.cfg.stats_interval_s)
            now = self.clock.monotonic()
            for name, rt in self.campaigns.items():
                s = self.stats(name)
                self.hub.publish(Event("stats", name, self.clock.wall(), s))
                dials = rt.engine.counters.dials
                if dials != rt.last_dials:
                    rt.last_dials = dials
                    rt.last_dial_change = now
                    rt.alerted_idle = False
                ready = rt.engine._agent_since[AgentState.READY]
                if (
                    rt.engine.dialing_enabled
                    and ready
                    and now - rt.last_dial_change >= self.cfg.idle_alert_s
                    and not rt.alerted_idle
                ):
                    rt.alerted_idle = True
                    why = "; ".join(str(b["message"]) for b in s["blockers"]) or "unknown"
                    self._alert(
                        name,
                        "not_dialling",
                        f"no dial for {now - rt.last_dial_change:.0f} s while "
                        f"{len(ready)} agents wait: {why}",
                    )
            self._trunk_alerts()

    def _trunk_alerts(self) -> None:
        """Tell every campaign's supervisors when a SIP trunk stops or starts
        answering its OPTIONS probes (the trunks are shared by all campaigns)."""
        trunk_states = getattr(self.world.carrier, "trunk_states", None)
        if not callable(trunk_states):
            return
        states: dict[str, bool] = trunk_states()
        for trunk, up in states.items():
            if up == self._trunks_up.get(trunk, True):
                continue
            if up:
                code, text = "trunk_up", f"trunk {trunk} answers again: back in use"
            else:
                code = "trunk_down"
                text = f"trunk {trunk} does not answer OPTIONS: calls go to the other trunks first"
            for name in self.campaigns:
                self._alert(name, code, text, info=up)
        self._trunks_up = dict(states)


def _customer_calls(engine: Engine) -> bool:
    return bool(engine.calls)


def _utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


async def _max_id(conn: Any, model: Any) -> int:
    t = table_of(model)
    return int((await conn.execute(select(func.max(t.c.id)))).scalar() or 0)
