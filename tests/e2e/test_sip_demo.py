"""`make demo SIP=1` and an agentless campaign over real SIP/RTP on loopback:
the engine dials the project's SIP simulated PBX, AMD hears RTP, and a key
pressed over RFC 4733 lands the number on the opt-out list."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from sim.sip_demo import run_sip_demo
from tests.conftest import ROOT

AGENTLESS = """
name = "ivr-over-sip"
seed = 4
shift_hours = 1.0
list_size = 30
audio = "synthetic"
[agents]
count = 1
[called_party]
answer_rate = 1.0
machine_share = 0.0
busy_rate = 0.0
bad_number_rate = 0.0
ring = { kind = "uniform", mean = 1.0, sd = 0.3, min = 0.5, max = 1.5 }
talk = { kind = "fixed", mean = 10.0 }
patience = { kind = "fixed", mean = 8.0 }
[called_party.ivr]
keys = { "9" = 1.0 }
press = { kind = "uniform", mean = 1.5, sd = 0.5, min = 1.0, max = 2.0 }
[campaign]
mode = "progressive"
amd_enabled = false
[campaign.ivr]
message = "Hello {{ name }}, this is a reminder. Press 9 to stop these calls."
lines = 4
"""


def test_make_demo_sip_dials_over_loopback(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialer.cli",
            "--db",
            f"sqlite+aiosqlite:///{db}",
            "sim",
            "demo",
            "--sip",
            "--seconds",
            "8",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "over SIP/RTP" in r.stdout and "attempts stored" in r.stdout
    assert "bridged to agents' SIP phones" in r.stdout
    with sqlite3.connect(db) as conn:
        attempts = conn.execute("select count(*) from attempts").fetchone()[0]
        still_open = conn.execute(
            "select count(*) from attempts where ended_at is null"
        ).fetchone()[0]
        answered = conn.execute(
            "select count(*) from attempts where result in ('connected', 'machine', 'hangup')"
        ).fetchone()[0]
    assert attempts > 0 and still_open == 0
    assert answered > 0  # answered over SIP, classified from the RTP


async def test_press_9_over_rfc4733_opts_out(tmp_path: Path) -> None:
    scenario = tmp_path / "ivr.toml"
    scenario.write_text(AGENTLESS)
    db = tmp_path / "ivr.db"
    res = await run_sip_demo(scenario, f"sqlite+aiosqlite:///{db}", seconds=9)
    assert res.stats["dials"] > 0
    with sqlite3.connect(db) as conn:
        opted = conn.execute(
            "select e.value, e.source from dnc_entries e join dnc_lists l on l.id = e.list_id "
            "where l.name = 'optouts'"
        ).fetchall()
        dispositions = conn.execute(
            "select count(*) from attempts where disposition = 'ivr:opt_out'"
        ).fetchone()[0]
    assert opted and all(src == "ivr" for _, src in opted)
    assert dispositions == len(opted)


def test_sip_demo_names_what_is_wrong_in_a_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(AGENTLESS.replace('keys = { "9" = 1.0 }', 'keys = { "12" = 0.5 }'))
    db = tmp_path / "never.db"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialer.cli",
            "--db",
            f"sqlite+aiosqlite:///{db}",
            "sim",
            "demo",
            str(bad),
            "--sip",
            "--seconds",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "called_party.ivr: keys must be single DTMF digits, got ['12']" in r.stderr
    assert not db.exists()  # refused before anything was dialled or stored


async def test_sip_demo_bridges_customers_to_agents_phones(tmp_path: Path) -> None:
    """The demo's agents work on SIP phones registered with the engine: live
    answers are bridged to them and audio crosses each bridge both ways."""
    db = tmp_path / "bridge.db"
    res = await run_sip_demo(
        ROOT / "config" / "scenarios" / "demo-sip.toml", f"sqlite+aiosqlite:///{db}", seconds=12
    )
    connected = res.counts.results.get("connected", 0)
    assert connected > 0 and res.bridges >= connected, (res.bridges, res.counts.results)
    # the PBX people heard the agents' phones (700 Hz) and the phones heard them back
    assert res.heard_agent > 0 and res.agents_heard_customers > 0, res
    with sqlite3.connect(db) as conn:
        delays = [
            r[0]
            for r in conn.execute(
                "select connect_delay_s from attempts where result = 'connected'"
            ).fetchall()
        ]
    assert delays and all(d is not None and d >= 0 for d in delays), delays
