"""`dialer call NUMBER --trunk NAME`: one call through a SIPp trunk, AMD on its audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dialer.cli import app
from sim.audio import human_clip, machine_clip
from tests.carriers.sip.peers import StartUas, write_ulaw

runner = CliRunner()


def _config(tmp_path: Path, port: int, extra: str = "") -> Path:
    path = tmp_path / "engine.toml"
    path.write_text(
        f"""
[carrier]
kind = "sip"
bind_port = 0
rtp_port_min = 0
rtp_port_max = 0
[[carrier.trunks]]
name = "test"
host = "127.0.0.1"
port = {port}
caller_id = "+12125550100"
{extra}
[[campaigns]]
name = "c"
list = "l"
"""
    )
    return path


def _call(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["call", "+15551234567", "--trunk", "test", "--config", str(config), *args]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("make", "result", "label"),
    [(human_clip, "answered_human", "HUMAN"), (machine_clip, "answered_machine", "MACHINE")],
)
def test_call_runs_amd_on_the_answer(
    uas: StartUas, tmp_path: Path, make: object, result: str, label: str
) -> None:
    clip = make(np.random.default_rng(3), 3)  # type: ignore[operator]
    write_ulaw(tmp_path / "audio.ulaw", clip.samples)  # what SIPp streams on answer
    peer = uas("uas_answer_audio.xml")  # (it reads the file at start)
    code, output = _call(_config(tmp_path, peer.port), "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["result"] == result
    assert report["sip_status"] == 200
    assert report["amd"]["label"] == label
    assert 500 < report["amd"]["decision_ms"] < 6000
    assert report["setup_ms"] >= 150  # the scenario rings 200 ms before answering
    assert report["rtp_frames"] > 0


def test_call_busy(uas: StartUas, tmp_path: Path) -> None:
    peer = uas("uas_486.xml")
    code, output = _call(_config(tmp_path, peer.port))
    assert code == 0, output
    assert "result     busy" in output and "sip_status 486" in output


def test_unknown_trunk_is_a_clear_error(tmp_path: Path) -> None:
    config = _config(tmp_path, 5060)
    result = runner.invoke(
        app, ["call", "+15551234567", "--trunk", "nope", "--config", str(config)]
    )
    assert result.exit_code == 2
    assert "no trunk named 'nope' (configured: test)" in result.output


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    config = _config(tmp_path, 5060, extra="max_cps = -1")
    code, output = _call(config)
    assert code == 2
    assert "carrier.trunks.0.max_cps" in output


def test_simulated_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text('[carrier]\nkind = "simulated"\n[[campaigns]]\nname = "c"\nlist = "l"\n')
    code, output = _call(path)
    assert code == 2 and 'needs "sip"' in output


def test_bad_number_is_refused_before_dialling(tmp_path: Path) -> None:
    config = _config(tmp_path, 5060)
    result = runner.invoke(app, ["call", "call-me", "--trunk", "test", "--config", str(config)])
    assert result.exit_code == 2 and "not a dialable number" in result.output
