"""`make demo SIP=1`: the whole engine in real time over real SIP and RTP on
loopback.  The project's SIP simulated PBX plays the called parties; the engine
dials it through a SIP trunk, runs AMD on the RTP it receives and stores every
attempt, exactly as `dialer run` would against a carrier's trunk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from carriers.base import AudioClip, Carrier, CarrierListener, DialRequest
from dialer.campaign import AmdAction, DialMode
from dialer.clock import Clock, perf_counter
from dialer.config import CampaignConfig, EngineConfig, SipCarrierConfig, TrunkConfig
from dialer.runtime import Runtime
from dialer.store import repo
from dialer.store.db import Database
from sim.audio import human_clip
from sim.scenario import Scenario, load_scenario
from sim.sip_pbx_server import SipPbxServer
from sim.sip_world import SipWorld
from sim.world import SimWorld

ROOT = Path(__file__).resolve().parent.parent
# the demo's calls reach only our own PBX on 127.0.0.1, so any hour will do
LOOPBACK_CALLTIMES = ROOT / "config" / "demo" / "loopback-calltimes.toml"


class _SimulatedAgentLegs:
    """The SIP carrier, with the demo's simulated agents answering a bridge.

    SIP agent legs come with the agents issue; until then the carrier refuses a
    bridge (it hangs up rather than leave a real customer in silence).  In the
    demo the customer is our own simulated PBX, so a bridged call instead hears
    an agent speak (a synthetic voice clip, repeated): the simulated person then
    talks for their sampled time and hangs up, as they would with an agent."""

    def __init__(self, inner: Carrier, voice: AudioClip) -> None:
        self._inner = inner
        self._voice = voice
        self._bridged: set[str] = set()
        self.name = inner.name

    def set_listener(self, listener: CarrierListener) -> None:
        self._inner.set_listener(listener)

    def free_channels(self) -> int:
        return self._inner.free_channels()

    def dial(self, request: DialRequest) -> None:
        self._inner.dial(request)

    def hangup(self, call_id: str) -> None:
        self._bridged.discard(call_id)
        self._inner.hangup(call_id)

    def play(self, call_id: str, clip: AudioClip, on_done: Callable[[], None]) -> None:
        self._inner.play(call_id, clip, on_done)

    def bridge(self, call_id: str, agent_id: str) -> None:
        self._bridged.add(call_id)
        self._speak(call_id)

    def _speak(self, call_id: str) -> None:
        if call_id in self._bridged:
            self._inner.play(call_id, self._voice, lambda: self._speak(call_id))

    def unbridge(self, call_id: str) -> None:
        self._bridged.discard(call_id)

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()


class _DemoWorld(SipWorld):
    """SIP trunks, simulated agents, and a generated list (a real world imports one)."""

    def bind(self, clock: Clock) -> None:
        super().bind(clock)
        self._legs = _SimulatedAgentLegs(super().carrier, human_clip(np.random.default_rng(9), 1))

    @property
    def carrier(self) -> Carrier:
        return self._legs

    def fill_list(self, campaign: CampaignConfig) -> list[tuple[str, dict[str, str]]]:
        # SipWorld leaves a real list empty; the demo generates one as SimWorld does
        return SimWorld.fill_list(self, campaign)


@dataclass
class SipDemoResult:
    stats: dict[str, Any]
    counts: repo.CampaignCounts
    pbx: dict[str, int]
    where: str
    seconds: float


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
    server = SipPbxServer.from_scenario(sc, host="127.0.0.1", port=0)
    _, port = await server.start()
    db = Database(db_url)
    rt: Runtime | None = None
    try:
        cfg = demo_config(sc, scenario_path, port)
        assert isinstance(cfg.carrier, SipCarrierConfig)
        rt = Runtime(cfg, db, _DemoWorld(sc, sc.seed, cfg.carrier.params()))
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
        return SipDemoResult(stats, counts, dict(server.pbx.counts), db.describe(), seconds)
    finally:
        if rt is not None:
            await rt.stop()
        await server.stop()
        await db.close()
