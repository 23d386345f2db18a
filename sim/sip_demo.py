"""`make demo SIP=1`: the whole engine in real time over real SIP and RTP on
loopback.  The project's SIP simulated PBX plays the called parties; the engine
dials it through a SIP trunk, runs AMD on the RTP it receives and stores every
attempt, exactly as `dialer run` would against a carrier's trunk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carriers.simulated import PartyKind
from carriers.sip.carrier import SipCarrierParams
from dialer.campaign import AmdAction, DialMode
from dialer.clock import perf_counter
from dialer.config import (
    AgentPhonesConfig,
    CampaignConfig,
    EngineConfig,
    SipCarrierConfig,
    TrunkConfig,
)
from dialer.runtime import Runtime
from dialer.store import repo
from dialer.store.db import Database
from sim.audio import quiet_before_s, speech_end_s
from sim.scenario import Scenario, load_scenario
from sim.sip_pbx import LegEnded, LegStarted, SipPbxParams
from sim.sip_pbx_server import SipPbxServer
from sim.sip_phones import SipPhone, start_phones
from sim.sip_world import SipWorld
from sim.world import SimWorld, agent_ids

ROOT = Path(__file__).resolve().parent.parent
# the demo's calls reach only our own PBX on 127.0.0.1, so any hour will do
LOOPBACK_CALLTIMES = ROOT / "config" / "demo" / "loopback-calltimes.toml"
AGENT_TONE_HZ = 700.0  # what the agents' phones "say"
CUSTOMER_TONE_HZ = 1000.0  # what a PBX person says back once they hear an agent


class _DemoWorld(SipWorld):
    """SIP trunks, the scenario's simulated agents on real SIP phones (each
    registers with the engine and takes its login call), and a generated list."""

    def __init__(self, scenario: Scenario, seed: int, params: SipCarrierParams) -> None:
        super().__init__(scenario, seed, params)
        self.passwords = dict(params.agent_users)
        self.phones: list[SipPhone] = []
        self._tasks: list[asyncio.Task[None]] = []

    def fill_list(self, campaign: CampaignConfig) -> list[tuple[str, dict[str, str]]]:
        # SipWorld leaves a real list empty; the demo generates one as SimWorld does
        return SimWorld.fill_list(self, campaign)

    def start_agents(self, campaign: str) -> None:
        # phones register before their agents log in: a login calls the phone
        self._tasks.append(asyncio.create_task(self._phones_then_login(campaign)))

    async def _phones_then_login(self, campaign: str) -> None:
        assert self._clock is not None and self._sip is not None
        team = self.agents[campaign]
        self.phones += await start_phones(
            self._clock,
            self._sip.local_addr,
            team.ids,
            passwords={a: self.passwords[a] for a in team.ids},
            tone_hz=AGENT_TONE_HZ,
        )
        team.login_all()

    async def stop_phones(self) -> None:
        for task in self._tasks:
            task.cancel()
        for phone in self.phones:
            await phone.stop(unregister=False)  # the engine has stopped already


@dataclass
class SipDemoResult:
    stats: dict[str, Any]
    counts: repo.CampaignCounts
    pbx: dict[str, int]
    where: str
    seconds: float
    bridges: int = 0  # customers bridged to an agent's phone by the SIP carrier
    heard_agent: int = 0  # PBX people who heard the agent's tone through the bridge
    agents_heard_customers: int = 0  # phones that heard a customer's reply tone
    # per bridged person, measured at the PBX when the first agent audio reached
    # them: how long they had been silent since their last words (the 2-second
    # rule as the person lives it; 0 when the agent came in while they spoke),
    # and, for reference, that time against the end of all their greeting's speech
    heard_delays: list[float] = field(default_factory=list)
    heard_delays_all: list[float] = field(default_factory=list)
    bridge_to_audio: list[float] = field(default_factory=list)  # carrier: bridge -> tone


def demo_config(sc: Scenario, scenario_path: Path, pbx_port: int) -> EngineConfig:
    c = sc.campaign
    return EngineConfig(
        carrier=SipCarrierConfig(
            kind="sip",
            trunks=[
                TrunkConfig(
                    name="sim-pbx", host="127.0.0.1", port=pbx_port, max_concurrent=200, max_cps=30
                )
            ],
            bind_port=0,
            rtp_port_min=0,
            rtp_port_max=0,
            scenario=scenario_path,
            seed=sc.seed,
            # every simulated agent on a SIP phone that registers with the engine
            agents=AgentPhonesConfig(
                users={a: f"pw-{a}" for a in agent_ids(sc.name, sc.agents.count)}
            ),
        ),
        campaigns=[
            CampaignConfig(
                name=sc.name,
                list=sc.name,
                mode=DialMode(c.mode),
                policy=c.policy,
                abandon_target_pct=c.abandon_target_pct,
                no_answer_timeout_s=c.no_answer_timeout_s,
                max_attempts=c.max_attempts,
                amd_enabled=c.amd_enabled,
                amd_profile=c.amd_profile,
                amd_action=AmdAction(c.amd_action),
                calltimes=str(LOOPBACK_CALLTIMES),
                ivr=c.ivr,
            )
        ],
        stats_interval_s=1.0,
        shutdown_grace_s=5.0,
    )


async def run_sip_demo(
    scenario_path: Path,
    db_url: str,
    seconds: float,
    progress: Callable[[float], None] | None = None,
) -> SipDemoResult:
    sc = load_scenario(scenario_path)
    heard: list[float] = []
    delays: list[float] = []
    delays_all: list[float] = []

    def on_leg(ev: LegStarted | LegEnded) -> None:
        if not isinstance(ev, LegEnded) or ev.heard_at is None or ev.answered_at is None:
            return
        heard.append(ev.heard_hz)
        truth = server.pbx.truth.get(ev.call_id)
        if truth is not None and truth.kind is PartyKind.PERSON and truth.clip is not None:
            t = ev.heard_at - ev.answered_at
            delays.append(quiet_before_s(truth.clip.samples, t))
            delays_all.append(t - speech_end_s(truth.clip.samples))

    server = SipPbxServer.from_scenario(
        sc,
        host="127.0.0.1",
        port=0,
        params=SipPbxParams(reply_tone_hz=CUSTOMER_TONE_HZ),
        on_event=on_leg,
    )
    _, port = await server.start()
    db = Database(db_url)
    rt: Runtime | None = None
    world: _DemoWorld | None = None
    try:
        cfg = demo_config(sc, scenario_path, port)
        assert isinstance(cfg.carrier, SipCarrierConfig)
        world = _DemoWorld(sc, sc.seed, cfg.carrier.params())
        rt = Runtime(cfg, db, world)
        await rt.start()
        assert rt.clock is not None
        t0 = perf_counter()
        while (elapsed := perf_counter() - t0) < seconds:
            if progress is not None:
                progress(elapsed / seconds)
            await rt.clock.sleep(0.25)
        stats = rt.stats(sc.name)
        await rt.stop()
        rt_done = rt
        rt = None
        async with db.engine.connect() as conn:
            counts = await repo.campaign_counts(conn, rt_done.get(sc.name).campaign_id)
        sip = world._sip
        return SipDemoResult(
            stats,
            counts,
            dict(server.pbx.counts),
            db.describe(),
            seconds,
            bridges=sip.stats.bridges if sip is not None else 0,
            heard_agent=sum(1 for hz in heard if abs(hz - AGENT_TONE_HZ) < 25),
            agents_heard_customers=sum(p.heard_tone(CUSTOMER_TONE_HZ) for p in world.phones),
            heard_delays=delays,
            heard_delays_all=delays_all,
            bridge_to_audio=list(sip.stats.bridge_to_audio) if sip is not None else [],
        )
    finally:
        if rt is not None:
            await rt.stop()
        if world is not None:
            await world.stop_phones()
        await server.stop()
        await db.close()
