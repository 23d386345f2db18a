"""The engine as `dialer run` builds it, dialling a SIPp trunk: contacts are
called over SIP, the answer's RTP goes through AMD, and the outcome is stored."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import numpy as np

from carriers.sip.carrier import SipCarrier
from dialer.cli.run import make_world
from dialer.config import SipCarrierConfig, parse_config
from dialer.runtime import Runtime
from dialer.store.db import Database
from sim.audio import human_clip
from sim.sip_world import SipWorld
from tests.carriers.sip.peers import StartUas, write_ulaw
from tests.conftest import ANYTIME_CALLTIMES, FAST
from tests.sim.uac import FAST as UAC_FAST
from tests.sim.uac import scenario as uac_scenario
from tests.sim.uac import start_pbx

NUMBERS = ["+12125550101", "+12125550102"]


class _TwoContacts(SipWorld):
    """The real SIP world, with a list to dial (a real one is imported)."""

    def fill_list(self, campaign: object) -> list[tuple[str, dict[str, str]]]:
        return [(n, {"name": f"Customer {i}"}) for i, n in enumerate(NUMBERS)]


def _runtime(
    tmp_path: Path, carrier: str, trunks: list[tuple[str, int]]
) -> tuple[Runtime, Database]:
    """The runtime `dialer run` builds for a SIP carrier with ``carrier`` extra keys
    and these (name, port) trunks on 127.0.0.1, in that order of priority; one
    progressive campaign over the two contacts."""
    scenario = tmp_path / "fast.toml"
    scenario.write_text(FAST)  # its agents log in at once
    trunk_text = "".join(
        f'[[carrier.trunks]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\npriority = {i}\n'
        for i, (name, port) in enumerate(trunks)
    )
    cfg = parse_config(
        f"""
stats_interval_s = 0.2
shutdown_grace_s = 2
[carrier]
kind = "sip"
bind_port = 0
rtp_port_min = 0
rtp_port_max = 0
scenario = "{scenario}"
{carrier}
{trunk_text}
[[campaigns]]
name = "c1"
list = "l1"
mode = "progressive"
no_answer_timeout_s = 15
calltimes = "{ANYTIME_CALLTIMES}"
"""
    )
    assert isinstance(cfg.carrier, SipCarrierConfig)
    world = make_world(cfg)
    assert isinstance(world, SipWorld)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'sip.db'}")
    return Runtime(cfg, db, _TwoContacts(world.scenario, 1, cfg.carrier.params())), db


async def _both_dialled(rt: Runtime) -> dict[str, Any]:
    for _ in range(200):
        s = rt.stats("c1")
        if s["dials"] == 2 and s["calls_in_progress"] == 0:
            break
        await asyncio.sleep(0.1)
    return s


async def test_runtime_dials_contacts_over_sip(uas: StartUas, tmp_path: Path) -> None:
    write_ulaw(tmp_path / "audio.ulaw", human_clip(np.random.default_rng(3), 3).samples)
    peer = uas("uas_answer_audio.xml", calls=2)
    rt, db = _runtime(tmp_path, "", [("sipp", peer.port)])
    await rt.start()
    try:
        s = await _both_dialled(rt)
    finally:
        await rt.stop()
        await db.close()
    assert s["dials"] == 2
    # both answered by SIPp; AMD heard a person in the RTP (the human clip)
    assert s["live_answers"] == 2, s
    assert s["machine_answers"] == 0
    rc = await peer.finished()
    assert rc == 0, peer.errors()


async def test_a_dead_trunk_is_tried_last_and_supervisors_are_told(tmp_path: Path) -> None:
    """Two trunks: the first a socket that never answers, the second the SIP
    simulated PBX (which answers OPTIONS).  The probes mark the first down, an
    alert tells the campaign's supervisors, and the calls still go out."""
    pbx = await start_pbx(uac_scenario(ring='{ kind = "fixed", mean = 0.2 }'), UAC_FAST)
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    probes = (
        "match_port = true\nsetup_timeout_s = 0.3\noptions_interval_s = 0.2\noptions_failures = 2"
    )
    rt, db = _runtime(tmp_path, probes, [("dead", dead.getsockname()[1]), ("pbx", pbx.addr[1])])
    alerts = rt.hub.subscribe(kinds={"alert"})
    await rt.start()
    try:
        got = await asyncio.wait_for(alerts.get(), 10.0)
        carrier = rt.world.carrier
        assert isinstance(carrier, SipCarrier)
        assert carrier.trunk_states() == {"dead": False, "pbx": True}
        s = await _both_dialled(rt)
    finally:
        await rt.stop()
        await db.close()
        dead.close()
        await pbx.server.stop()
    assert got.payload["code"] == "trunk_down" and "dead" in got.payload["message"], got
    assert got.campaign == "c1" and got.payload["severity"] == "warning"
    # both contacts were called, and answered, through the PBX
    assert s["dials"] == 2 and s["live_answers"] + s["machine_answers"] == 2, s
