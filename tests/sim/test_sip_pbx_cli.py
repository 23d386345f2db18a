"""`dialer sim pbx`: the simulated PBX as a foreground process a trunk can call."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from typer.testing import CliRunner

from carriers.sip.endpoint import CallFailed, CallProgress
from dialer.cli import app
from tests.sim.uac import RtpSink, Uac

SCENARIO = """
name = "cli-pbx"
shift_hours = 1
list_size = 1
audio = "synthetic"
audio_clips = 2
[agents]
count = 1
[called_party]
answer_rate = 0.0
busy_rate = 0.0
bad_number_rate = 0.0
"""


async def test_cli_runs_the_pbx_until_interrupted(tmp_path: Path) -> None:
    sc = tmp_path / "pbx.toml"
    sc.write_text(SCENARIO)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer.cli", "sim", "pbx", "--scenario", str(sc), "--port", "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "listening on udp:127.0.0.1:" in first, first
        port = int(first.split("udp:127.0.0.1:")[1].split()[0])
        uac, sink = await Uac().open(), await RtpSink().open()
        try:
            # Nobody answers in this scenario: 180, then our CANCEL gets 487.
            call = uac.endpoint.invite(
                "sip:+15557654321@127.0.0.1", sink.offer(), ("127.0.0.1", port), uac.now()
            )
            uac.pump()
            assert (await uac.next(CallProgress, timeout=5)).status == 180
            uac.endpoint.cancel(call, uac.now())
            uac.pump()
            assert (await uac.next(CallFailed)).status == 487
            line = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
            assert line.startswith("+15557654321: no_answer, 487"), line
        finally:
            uac.close()
            sink.close()
        proc.send_signal(signal.SIGINT)
        rest, errs = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, errs.decode()
        assert "stopped; calls: 487 1" in rest.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_cli_rejects_bad_input_with_exit_2(tmp_path: Path) -> None:
    sc = tmp_path / "bad.toml"
    sc.write_text(SCENARIO.replace("answer_rate = 0.0", "answer_rate = 7"))
    r = CliRunner().invoke(app, ["sim", "pbx", "--scenario", str(sc), "--port", "0"])
    assert r.exit_code == 2 and "called_party.answer_rate" in r.stderr
    sc.write_text(SCENARIO)
    r = CliRunner().invoke(app, ["sim", "pbx", "--scenario", str(sc), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "--host" in r.stderr and "concrete address" in r.stderr
    r = CliRunner().invoke(app, ["sim", "pbx", "--scenario", str(sc), "--unavailable-rate", "2"])
    assert r.exit_code == 2 and "--unavailable-rate" in r.stderr
