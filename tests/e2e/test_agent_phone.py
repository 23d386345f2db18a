"""`dialer agent-phone` (pyVoIP) against a SIP server made of the repo's own pieces.

The server side is a UdpSocket + Endpoint + Registrar on 127.0.0.1 and an RtpStream
playing a 500 Hz tone; the phone runs as a real subprocess with --tone 1200 and
--record.  The test waits for the phone's binding, calls it, checks that it answers
by itself, and finds each tone in the other side's audio by its spectrum.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from carriers.rtp.jitter import Frame
from carriers.rtp.session import MediaSession
from carriers.rtp.udp import RtpPortPool, RtpStream
from carriers.sip.endpoint import (
    Call,
    CallAnswered,
    CallEnded,
    CallFailed,
    Endpoint,
    EndpointConfig,
    EndpointEvent,
    IncomingRequest,
)
from carriers.sip.registrar import BindingAdded, BindingEvent, BindingRemoved, Registrar
from carriers.sip.sdp import PCMA, PCMU, Codec, build_offer, parse_sdp, remote_media
from carriers.udp import Addr, UdpSocket
from dialer.clock import RealClock

pytest.importorskip("pyVoIP.VoIP", reason="pyVoIP is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "bob", "agent-secret"
T = TypeVar("T")
Event = EndpointEvent | BindingEvent


class TestPbx:
    """Answers REGISTER with the Registrar; records every event and SIP message."""

    __test__ = False

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.registrar = Registrar("dialer.test", {USER: PASSWORD}, min_expires=30)
        self.sock = UdpSocket.bind(loop, "127.0.0.1", 0, self._datagram)
        self.addr = self.sock.local_addr
        self.ep = Endpoint(EndpointConfig(host="127.0.0.1", port=self.addr[1]))
        self.events: list[Event] = []
        self.log: list[str] = []
        self._changed = asyncio.Event()
        self._tick_handle = loop.call_later(0.02, self._tick)

    def _datagram(self, data: bytes, addr: Addr) -> None:
        self.log.append(f"<<< from {addr}\n{data.decode(errors='replace')}")
        now = self.loop.time()
        self.ep.receive_datagram(data, addr, now)
        self._drain(now)

    def _tick(self) -> None:
        now = self.loop.time()
        self.ep.handle_timer(now)
        self.registrar.handle_timer(now)
        self._drain(now)
        self._tick_handle = self.loop.call_later(0.02, self._tick)

    def _drain(self, now: float) -> None:
        while (ev := self.ep.next_event()) is not None:
            if isinstance(ev, IncomingRequest):
                resp = self.registrar.handle(ev.request, ev.addr, now)
                self.ep.respond(ev.request, resp, now)
            else:
                self.events.append(ev)
        while (bev := self.registrar.next_event()) is not None:
            self.events.append(bev)
        self.flush()
        self._changed.set()

    def flush(self) -> None:
        for data, addr in self.ep.datagrams_to_send():
            self.log.append(f">>> to {addr}\n{data.decode(errors='replace')}")
            self.sock.sendto(data, addr)

    async def wait_for(self, pick: Callable[[list[Event]], T | None], timeout: float) -> T:
        async with asyncio.timeout(timeout):
            while True:
                found = pick(self.events)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()

    def close(self) -> None:
        self._tick_handle.cancel()
        self.sock.close()


def first(kind: type[T], test: Callable[[T], bool] = lambda e: True) -> Callable[..., T | None]:
    return lambda events: next((e for e in events if isinstance(e, kind) and test(e)), None)


def tone(hz: float, seconds: float, level: float = 0.3) -> npt.NDArray[np.int16]:
    t = np.arange(int(8000 * seconds)) / 8000
    return np.round(level * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def tone_ratio(samples: npt.NDArray[np.int16], hz: float) -> float:
    """Spectral peak near ``hz`` over the strongest peak elsewhere in 100-3900 Hz
    (harmonics included), Hann-windowed."""
    x = samples.astype(np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    near = np.abs(freqs - hz) <= 20
    elsewhere = (np.abs(freqs - hz) > 100) & (freqs >= 100) & (freqs <= 3900)
    return float(spec[near].max() / max(spec[elsewhere].max(), 1e-9))


def read_wav(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def phone_cmd(server: Addr, record: Path, seconds: float) -> list[str]:
    return [
        sys.executable, "-m", "dialer.cli", "agent-phone", "--user", USER,
        "--password", PASSWORD, "--server", f"{server[0]}:{server[1]}",
        "--tone", "1200", "--record", str(record), "--seconds", str(seconds),
    ]  # fmt: skip


def reinvite(pbx: TestPbx, call: Call, sdp: bytes, to: Addr) -> None:
    """A session refresh in the call's dialog (the Endpoint has no API for one)."""
    d = call.dialog
    assert d is not None
    head = (
        f"INVITE {d.remote_target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{pbx.addr[1]};branch=z9hG4bKrefresh{d.local_tag};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {d.local_uri};tag={d.local_tag}\r\n"
        f"To: {d.remote_uri};tag={d.remote_tag}\r\nCall-ID: {call.call_id}\r\n"
        f"CSeq: {d.local_seq + 1} INVITE\r\nContact: <sip:dialer@127.0.0.1:{pbx.addr[1]}>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
    )
    pbx.log.append(">>> re-INVITE\n" + head)
    pbx.sock.sendto(head.encode() + sdp, to)


async def _call_the_phone(
    tmp_path: Path, codec: Codec, *, ender: str, refresh: bool = False
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], str, TestPbx]:
    """Call the phone and play 500 Hz to it until ``ender`` ends the call: "seconds"
    (the phone's --seconds), "bye" (we hang up) or "sigterm" (the phone is told to
    stop).  Returns what we received, what the phone recorded, its output."""
    loop = asyncio.get_running_loop()
    clock = RealClock(loop)
    pbx = TestPbx(loop)
    received: list[npt.NDArray[np.int16]] = []

    def on_frames(frames: list[Frame], now: float) -> None:
        received.extend(f.samples for f in frames)

    stream = RtpStream(clock, RtpPortPool("127.0.0.1"), loop, on_frames)
    record = tmp_path / "phone.wav"
    cmd = phone_cmd(pbx.addr, record, 7.0 if ender == "seconds" else 9.0)
    if ender == "sigterm":
        cmd = cmd[: cmd.index("--seconds")]  # until told to stop
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    output = ""
    try:
        added = await pbx.wait_for(first(BindingAdded), 30.0)
        binding = added.binding
        assert binding.user == USER and binding.addr[0] == "127.0.0.1"
        offer = build_offer("127.0.0.1", stream.local_addr[1], 4242, codecs=(codec,))
        call = pbx.ep.invite(
            f"sip:{USER}@{binding.addr[0]}:{binding.addr[1]}",
            offer.serialise(),
            binding.addr,
            loop.time(),
        )
        pbx.flush()
        answered = await pbx.wait_for(
            lambda evs: next(
                (e for e in evs if isinstance(e, CallAnswered | CallFailed) and e.call is call),
                None,
            ),
            10.0,
        )
        assert isinstance(answered, CallAnswered), f"the phone did not answer: {answered}"
        assert answered.sdp is not None
        media = remote_media(parse_sdp(answered.sdp))
        assert media.codec.name == codec.name, f"phone answered {media.codec}"
        session = MediaSession(payload_type=codec.payload_type, telephone_event_pt=None)
        stream.start(session, (media.address, media.port))
        stream.play_samples(tone(500, 15.0), lambda: None)
        if refresh:
            await asyncio.sleep(1.0)
            reinvite(pbx, call, offer.serialise(), binding.addr)
            await pbx.wait_for(
                lambda _: next(
                    (m for m in pbx.log if m.startswith("<<<") and "2 INVITE" in m), None
                ),
                10.0,
            )
        if ender == "bye":
            await asyncio.sleep(4.0)
            pbx.ep.bye(call, loop.time())
            pbx.flush()
        else:
            if ender == "sigterm":
                await asyncio.sleep(4.0)
                proc.terminate()
            ended = await pbx.wait_for(first(CallEnded, lambda e: e.call is call), 20.0)
            assert ended.by_remote, f"the phone should have sent BYE ({ender})"
        removed = await pbx.wait_for(first(BindingRemoved), 20.0)
        assert removed.reason == "unregistered", removed
        output, _ = await loop.run_in_executor(None, lambda: proc.communicate(timeout=30))
        output = output.decode(errors="replace")
        assert proc.returncode == 0, output
    except BaseException:
        proc.kill()
        rest = proc.communicate()[0].decode(errors="replace")
        print("phone output:\n" + output + rest)
        print("\n".join(pbx.log))
        raise
    finally:
        stream.close()
        pbx.close()
    assert isinstance(call, Call)
    ours = np.concatenate(received) if received else np.zeros(0, dtype=np.int16)
    return ours, read_wav(record), output, pbx


@pytest.mark.parametrize(
    ("codec", "ender"),
    [(PCMU, "seconds"), (PCMA, "bye"), (PCMU, "sigterm")],
    ids=["PCMU-phone-hangs-up", "PCMA-we-hang-up", "PCMU-sigterm"],
)
async def test_agent_phone_auto_answers_and_audio_flows_both_ways(
    tmp_path: Path, codec: Codec, ender: str
) -> None:
    ours, theirs, output, _pbx = await _call_the_phone(tmp_path, codec, ender=ender)
    print(output)
    assert "registration: registered" in output and f"call: answered ({codec.name})" in output
    # what our RTP side got from the phone: its 1200 Hz tone
    assert len(ours) >= 8000 * 2, f"only {len(ours)} samples from the phone"
    ratio_ours = tone_ratio(ours[4000:], 1200)
    # what the phone recorded from us: our 500 Hz tone
    assert len(theirs) >= 8000 * 2, f"the phone recorded only {len(theirs)} samples"
    ratio_theirs = tone_ratio(theirs[4000:], 500)
    print(
        f"{codec.name}: 1200 Hz at our side {ratio_ours:.0f}x the next peak; 500 Hz in the "
        f"phone's WAV {ratio_theirs:.0f}x; samples {len(ours)} / {len(theirs)}"
    )
    assert ratio_ours > 30, ratio_ours
    assert ratio_theirs > 30, ratio_theirs
    # the recording runs on the wall clock: its length is the call's (not a multiple)
    assert abs(len(theirs) - len(ours)) < 8000 * 1.5, (len(theirs), len(ours))


def test_without_audio_device_or_pyaudio_it_says_how_to_fix_it() -> None:
    # no --tone/--play/--record: a microphone and speaker are needed; this machine
    # has no sound card (and usually no PyAudio) so it must say so and exit 2
    proc = subprocess.run(
        [sys.executable, "-m", "dialer.cli", "agent-phone", "--user", USER,
         "--password", "x", "--server", "127.0.0.1:9"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    text = " ".join(proc.stderr.split())
    assert "--tone" in text and "--record" in text
    assert ("pip install" in text and "portaudio19-dev" in text) or "no usable" in text


def test_bad_wav_for_play_is_refused_naming_the_format(tmp_path: Path) -> None:
    wav = tmp_path / "cd.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(bytes(400))
    proc = subprocess.run(
        [sys.executable, "-m", "dialer.cli", "agent-phone", "--user", USER, "--password", "x",
         "--server", "127.0.0.1:9", "--play", str(wav), "--record", str(tmp_path / "o.wav")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 2
    text = " ".join(proc.stderr.split())
    assert "8000 Hz mono 16-bit" in text and "44100 Hz" in text


def test_wrong_password_fails_registration_with_exit_1(tmp_path: Path) -> None:
    async def go() -> tuple[int, str]:
        pbx = TestPbx(asyncio.get_running_loop())
        try:
            cmd = phone_cmd(pbx.addr, tmp_path / "x.wav", 5)
            cmd[cmd.index("--password") + 1] = "wrong"
            proc = await asyncio.create_subprocess_exec(
                *cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode is not None
            return proc.returncode, out.decode(errors="replace")
        finally:
            pbx.close()

    code, output = asyncio.run(go())
    assert code == 1, output
    assert "registration: failed" in output


async def test_a_reinvite_is_answered_and_does_not_double_the_phones_stream(tmp_path: Path) -> None:
    # pyVoIP restarts its RTP threads on a re-INVITE; the phone prevents it.  The
    # phone's own counters tell: frames its transmitter took vs 20 ms ticks it ran.
    ours, _theirs, output, _pbx = await _call_the_phone(
        tmp_path, PCMU, ender="seconds", refresh=True
    )
    m = re.search(r"received (\d+) frames \((\d+) silent ticks, \d+ dropped\), sent (\d+)", output)
    assert m is not None, output
    ticks, sent = int(m[1]) + int(m[2]), int(m[3])
    assert sent < 1.2 * ticks + 10, (sent, ticks)
    assert tone_ratio(ours[4000:], 1200) > 30
