"""The simulated PBX called by SIPp, an independent SIP implementation, as UAC."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from carriers.rtp import g711
from carriers.simulated import PartyKind
from sim.sip_pbx import SipPbxParams
from tests.conftest import need_tool
from tests.sim.uac import FAST, Pbx, RtpSink, free_udp_port_pair, scenario, start_pbx

SCENARIOS = Path(__file__).parent / "sipp"


@pytest.fixture
async def sink() -> AsyncIterator[RtpSink]:
    s = await RtpSink().open()
    yield s
    s.close()


async def sipp(tmp_path: Path, xml: str, pbx: Pbx, *args: str, calls: int = 1) -> tuple[int, str]:
    """Run one SIPp scenario against the PBX; (exit code, what it printed)."""
    exe = need_tool("sipp")
    # SIPp writes its logs next to the scenario file: keep them out of the tree.
    sf = tmp_path / xml
    shutil.copy(SCENARIOS / xml, sf)
    host, port = pbx.addr
    cmd = [
        exe, f"{host}:{port}", "-sf", str(sf), "-i", "127.0.0.1", "-s", "+15550001111",
        "-m", str(calls), "-l", str(calls), "-r", "20", "-mp", str(free_udp_port_pair()),
        "-timeout", "15", "-timeout_error", "-trace_err", "-nostdin", *args,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*errors.log"))
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")[-3000:] + errors[-3000:]


async def test_sipp_answered_call_gets_the_greeting_over_rtp(tmp_path: Path, sink: RtpSink) -> None:
    pbx = await start_pbx(scenario())
    try:
        rc, log = await sipp(
            tmp_path, "uac_answer.xml", pbx, "-set", "rtpport", str(sink.port), "-d", "1200"
        )
        assert rc == 0, log
        ended = await pbx.wait_ended()
        assert (ended.status, ended.hung_up_by, ended.kind) == (200, "caller", PartyKind.PERSON)
        truth = pbx.server.pbx.truth[ended.call_id]
        assert truth.clip is not None
        got = sink.audio()
        # ~1.2 s of 20 ms packets; wide bounds: SIPp's pause stretches on a busy machine
        assert 30 * 160 <= len(got) <= 200 * 160, len(got) / 160
        assert 35 <= sink.rate() <= 65, sink.rate()
        assert {p.payload_type for _, p, _ in sink.packets} == {0}
        np.testing.assert_array_equal(
            got, g711.decode(g711.encode(truth.clip.samples[: len(got)], 0), 0)
        )
        assert pbx.server.errors == 0
    finally:
        await pbx.server.stop()


async def test_sipp_many_calls_at_once(tmp_path: Path, sink: RtpSink) -> None:
    pbx = await start_pbx(scenario(machine_share="0.5"))
    try:
        rc, log = await sipp(
            tmp_path, "uac_answer.xml", pbx, "-set", "rtpport", str(sink.port), "-d", "500",
            calls=10,
        )  # fmt: skip
        assert rc == 0, log
        kinds = {pbx.server.pbx.truth[e.call_id].kind for e in pbx.ended}
        assert len(pbx.ended) == 10 and kinds == {PartyKind.PERSON, PartyKind.MACHINE}
        assert len({p.ssrc for _, p, _ in sink.packets}) == 10  # one RTP stream per call
    finally:
        await pbx.server.stop()


@pytest.mark.parametrize(
    ("xml", "called_party", "params"),
    [
        ("uac_reject_486.xml", {"answer_rate": "0.0", "busy_rate": "1.0"}, FAST),
        ("uac_reject_404.xml", {"answer_rate": "0.0", "bad_number_rate": "1.0"}, FAST),
        ("uac_reject_503.xml", {}, SipPbxParams(unavailable_rate=1.0)),
    ],
)
async def test_sipp_refused_calls(
    tmp_path: Path, xml: str, called_party: dict[str, str], params: SipPbxParams
) -> None:
    pbx = await start_pbx(scenario(**called_party), params)
    try:
        rc, log = await sipp(tmp_path, xml, pbx)
        assert rc == 0, log
        status = int(xml.removesuffix(".xml").rsplit("_", 1)[1])
        assert (await pbx.wait_ended()).status == status
        assert pbx.server.pbx.legs == {}
    finally:
        await pbx.server.stop()


async def test_sipp_cancel_gets_487(tmp_path: Path) -> None:
    pbx = await start_pbx(scenario(answer_rate="0.0"))
    try:
        rc, log = await sipp(tmp_path, "uac_cancel.xml", pbx, "-d", "400")
        assert rc == 0, log
        ended = await pbx.wait_ended()
        assert (ended.status, ended.kind) == (487, PartyKind.NO_ANSWER)
    finally:
        await pbx.server.stop()


async def test_sipp_far_end_hangs_up(tmp_path: Path) -> None:
    pbx = await start_pbx(scenario(patience='{ kind = "fixed", mean = 0.5 }'))
    try:
        rc, log = await sipp(tmp_path, "uac_remote_bye.xml", pbx)
        assert rc == 0, log
        ended = await pbx.wait_ended()
        assert (ended.status, ended.hung_up_by) == (200, "pbx")
        assert ended.rtp_sent > 0
    finally:
        await pbx.server.stop()
