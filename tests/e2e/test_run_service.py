"""`dialer run CONFIG.toml` as a real process: it serves, and SIGTERM stops it
cleanly with nothing left open."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ADMIN, ANYTIME_CALLTIMES, FAST


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "fast.toml").write_text(FAST)
    port = free_port()
    cfg = tmp_path / "engine.toml"
    cfg.write_text(
        f'stats_interval_s = 0.3\nshutdown_grace_s = 5\nbootstrap_admin_token = "{ADMIN}"\n'
        f'[http]\nport = {port}\n[carrier]\nscenario = "fast.toml"\n'
        '[[campaigns]]\nname = "c1"\nlist = "l1"\nno_answer_timeout_s = 15\n'
        f'calltimes = "{ANYTIME_CALLTIMES}"\n'
    )
    db = tmp_path / "run.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialer.cli", "--db", f"sqlite+aiosqlite:///{db}", "run", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stats = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/campaigns/c1",
                    headers={"Authorization": f"Bearer {ADMIN}"},
                )
                stats = json.load(urllib.request.urlopen(req, timeout=2))
                if stats["dials"] >= 5:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert stats is not None and stats["dials"] >= 5, stats
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped cleanly" in out
    con = sqlite3.connect(db)
    open_states = (
        "queued",
        "dialing",
        "ringing",
        "early_media",
        "answered",
        "classifying",
        "waiting_agent",
        "connected",
        "ivr",
        "abandoned",
        "machine_handled",
        "wrap_up",
    )
    assert (
        con.execute(f"select count(*) from attempts where state in {open_states}").fetchone()[0]
        == 0
    )
    assert (
        con.execute("select count(*) from campaign_contacts where status='dialing'").fetchone()[0]
        == 0
    )
    assert (
        con.execute("select count(*) from agent_sessions where logout_at is null").fetchone()[0]
        == 0
    )
    assert con.execute("select count(*) from attempts").fetchone()[0] >= 5


def test_run_rejects_a_bad_config_by_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[campaigns]]\nname = "x"\nlist = "y"\nabandon_target_pct = 300\ncolor = 1\n')
    r = subprocess.run(
        [sys.executable, "-m", "dialer.cli", "run", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "campaigns.0.abandon_target_pct" in r.stderr
    assert "campaigns.0.color: unknown key" in r.stderr
