"""SipCarrier calling baresip, a real softphone, which answers and sends audio."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from scipy.io import wavfile

from carriers.base import CallOutcome
from carriers.sip.carrier import Trunk
from tests.carriers.sip.peers import (
    LOOPBACK,
    DialRequest,
    free_udp_port,
    hang_up_after,
    make_carrier,
    peak_hz,
    tone,
)
from tests.conftest import need_tool

CONFIG = """\
poll_method\tepoll
sip_listen\t{host}:{port}
sip_transports\tudp
audio_source\taufile,{wav}
audio_alert\taufile,/dev/null
rtp_ports\t{rtp}-{rtp_end}
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\taufile.so
module_app\taccount.so
module_app\tmenu.so
"""


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[int]:
    """baresip answering every call on a free loopback port, its microphone a
    440 Hz WAV file; killed at teardown."""
    binary = need_tool("baresip")
    modules = Path("/usr/lib/baresip/modules")
    if not (modules / "aufile.so").exists():
        pytest.skip("baresip's aufile module is not installed")
    port = free_udp_port()
    wav = tmp_path / "tone.wav"
    wavfile.write(wav, 8000, tone(440, 5.0))
    rtp = free_udp_port(even=True)
    (tmp_path / "config").write_text(
        CONFIG.format(host=LOOPBACK, port=port, wav=wav, rtp=rtp, rtp_end=rtp + 20)
    )
    (tmp_path / "accounts").write_text(
        f"<sip:phone@{LOOPBACK}>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n"
    )
    (tmp_path / "contacts").write_text("")
    log = tmp_path / "baresip.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-4", "-n", LOOPBACK, "-f", str(tmp_path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for _ in range(100):
            if b"baresip is ready" in log.read_bytes() or proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail(f"baresip did not start:\n{log.read_text(errors='replace')[-2000:]}")
        yield port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


async def test_baresip_answers_and_its_audio_is_decoded(phone: int) -> None:
    carrier, events, clock = await make_carrier(Trunk("phone", LOOPBACK, phone))
    hang_up_after(carrier, clock, events, 1.5)
    try:
        carrier.dial(DialRequest("c1", "phone", timeout_s=10))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert events.kinds("c1")[-2:] == ["Answered", "Ended"]
    assert ended.outcome is CallOutcome.ANSWERED and not ended.by_remote
    audio = events.audio("c1")
    assert len(audio) >= 50 * 160  # most of the 1.5 s
    assert abs(peak_hz(audio) - 440) < 10
