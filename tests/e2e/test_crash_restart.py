"""Kill the engine process in the middle of a simulated campaign, restart it on
the same database: no attempt stays open, no contact is lost or dialled twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

SCENARIO = """
name = "crashy"
seed = 4
shift_hours = 8.0
list_size = 20000
[agents]
count = 120
login_spread_s = 10
[called_party]
answer_rate = 0.35
machine_share = 0.3
[campaign]
max_attempts = 3
"""
OPEN = (
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


def dialer(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dialer.cli", "--db", f"sqlite+aiosqlite:///{db}", *args]


def q(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_kill_mid_campaign_then_resume(tmp_path: Path) -> None:
    sc = tmp_path / "crashy.toml"
    sc.write_text(SCENARIO)
    db = tmp_path / "crash.db"
    proc = subprocess.Popen(
        dialer(db, "sim", "run", str(sc), "--store", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    deadline = time.monotonic() + 120
    attempts = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if db.exists():
            try:
                attempts = q(db, "select count(*) from attempts")[0][0]
            except sqlite3.OperationalError:
                continue  # schema not created yet
            if attempts >= 3000:
                break
    assert proc.poll() is None, "the run finished before it could be killed; grow the scenario"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    open_before = q(db, f"select count(*) from attempts where state in {OPEN}")[0][0]
    assert open_before > 0, "a crash mid-campaign leaves calls in progress"
    contacts_before = q(db, "select count(*) from campaign_contacts")[0][0]
    assert contacts_before == 20000

    r = subprocess.run(
        dialer(db, "sim", "run", str(sc), "--store", "--json", "--hours", "0.25"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["recovered_attempts"] == open_before
    assert summary["dials"] > 0

    assert q(db, f"select count(*) from attempts where state in {OPEN}")[0][0] == 0
    interrupted = q(db, "select count(*) from attempts where result = 'interrupted'")[0][0]
    assert interrupted == open_before
    # every interrupted attempt has its closing event
    assert (
        q(db, "select count(*) from call_events where to_state = 'interrupted'")[0][0]
        == interrupted
    )
    # no contact lost: all still in the campaign, none stuck in 'dialing'
    statuses = dict(q(db, "select status, count(*) from campaign_contacts group by status"))
    assert sum(statuses.values()) == 20000
    assert "dialing" not in statuses
    # nobody dialled twice at once: a contact never has two attempts overlapping
    overlaps = q(
        db,
        "select count(*) from attempts a join attempts b on a.contact_id = b.contact_id "
        "and a.id < b.id and b.started_at < a.ended_at",
    )[0][0]
    assert overlaps == 0
    # attempt ids stay unique across the two runs
    assert q(db, "select count(distinct call_id) = count(*) from attempts")[0][0] == 1
    # the limit counts real attempts; interrupted ones are not charged
    worst = q(
        db,
        "select max(n) from (select contact_id, count(*) n from attempts "
        "where result != 'interrupted' group by contact_id)",
    )[0][0]
    assert worst <= 3
