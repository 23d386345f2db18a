"""The OpenAPI schema, tested by schemathesis against a real `dialer run`: no
server errors, every status code and content type documented, responses match
their schemas, and requests the schema forbids are refused."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ADMIN, ANYTIME_CALLTIMES, FAST


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_openapi_schema_holds_under_schemathesis(tmp_path: Path) -> None:
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.fail("schemathesis is a dev dependency (pip install -e '.[dev]')")
    (tmp_path / "fast.toml").write_text(FAST)
    port = _free_port()
    cfg = tmp_path / "engine.toml"
    cfg.write_text(
        f'stats_interval_s = 0.5\nshutdown_grace_s = 2\nbootstrap_admin_token = "{ADMIN}"\n'
        f'[http]\nport = {port}\n[carrier]\nscenario = "fast.toml"\n'
        '[[campaigns]]\nname = "c1"\nlist = "l1"\nno_answer_timeout_s = 15\n'
        f'calltimes = "{ANYTIME_CALLTIMES}"\n'
    )
    db = f"sqlite+aiosqlite:///{tmp_path / 'st.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialer.cli", "--db", db, "run", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        r = subprocess.run(
            [
                st,
                "run",
                f"{base}/openapi.json",
                "-H",
                f"Authorization: Bearer {ADMIN}",
                "--max-examples",
                "8",
                "--seed",
                "1",
                "--checks",
                "all",
                # semantic validation (a real phone number, a CSV with a header)
                # rejects some schema-valid input by design
                "--exclude-checks",
                "positive_data_acceptance",
                # an endless stream; covered by the dashboard's browser test
                "--exclude-path",
                "/api/campaigns/{name}/events",
                "--phases",
                "examples,coverage,fuzzing",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
        tested = re.search(r"Tested: (\d+)", r.stdout)
        assert tested is not None and int(tested.group(1)) >= 19, r.stdout[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, server_err = proc.communicate(timeout=30)
    assert proc.returncode == 0, server_err[-4000:]
