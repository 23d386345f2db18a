"""`dialer agent-phone` (pyVoIP) on one long nailed-up call: does it stay faithful?

Calls the phone from the test PBX (Endpoint + Registrar + RtpStream, as in
tests/e2e/test_agent_phone.py), plays 500 Hz to it for the whole call while the
phone sends 1200 Hz, and prints: answer delay, pyVoIP's packet rate (its
transmitter drifts), the tone's purity per 10 s window in both directions (across
the phone's re-registration at 115 s and its buffer trims), the phone's memory
growth and its own pump counters.

    .venv/bin/python bench/agent_phone.py [--seconds 150] [--codec PCMU|PCMA]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.e2e

from carriers.rtp.jitter import Frame
from carriers.rtp.session import MediaSession
from carriers.rtp.udp import RtpPortPool, RtpStream
from carriers.sip.endpoint import CallAnswered, CallEnded
from carriers.sip.registrar import BindingAdded
from carriers.sip.sdp import PCMA, PCMU, build_offer, parse_sdp, remote_media
from dialer.clock import RealClock
from tests.e2e.test_agent_phone import (
    ROOT,
    TestPbx,
    first,
    phone_cmd,
    read_wav,
    tone,
    tone_ratio,
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def windows(x: npt.NDArray[np.int16], hz: float, seconds: float = 10.0) -> list[float]:
    n = int(8000 * seconds)
    return [tone_ratio(x[i : i + n], hz) for i in range(8000, len(x) - n + 1, n)]


async def run(seconds: float, codec_name: str) -> None:
    codec = {"PCMU": PCMU, "PCMA": PCMA}[codec_name]
    loop = asyncio.get_running_loop()
    clock = RealClock(loop)
    pbx = TestPbx(loop)
    received: list[npt.NDArray[np.int16]] = []

    def on_frames(frames: list[Frame], now: float) -> None:
        received.extend(f.samples for f in frames)

    stream = RtpStream(clock, RtpPortPool("127.0.0.1"), loop, on_frames)
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "phone.wav"
        proc = subprocess.Popen(
            phone_cmd(pbx.addr, record, seconds + 3.0),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        added = await pbx.wait_for(first(BindingAdded), 30.0)
        addr = added.binding.addr
        offer = build_offer("127.0.0.1", stream.local_addr[1], 1, codecs=(codec,))
        t_invite = loop.time()
        call = pbx.ep.invite(f"sip:bob@{addr[0]}:{addr[1]}", offer.serialise(), addr, t_invite)
        pbx.flush()
        answered = await pbx.wait_for(first(CallAnswered), 15.0)
        t_answer = loop.time()
        assert answered.sdp is not None
        media = remote_media(parse_sdp(answered.sdp))
        session = MediaSession(payload_type=codec.payload_type, telephone_event_pt=None)
        stream.start(session, (media.address, media.port))
        stream.play_samples(tone(500, seconds + 10), lambda: None)
        await asyncio.sleep(10.0)
        rss_10 = rss_kib(proc.pid)
        samples = []
        while loop.time() - t_answer < seconds:
            await asyncio.sleep(min(30.0, seconds - (loop.time() - t_answer)))
            samples.append((loop.time() - t_answer, rss_kib(proc.pid)))
        rss_end = samples[-1][1]
        duration = loop.time() - t_answer
        got = session.stats.received
        pbx.ep.bye(call, loop.time())
        pbx.flush()
        await pbx.wait_for(first(CallEnded), 10.0)
        output, _ = await loop.run_in_executor(None, lambda: proc.communicate(timeout=60))
        theirs = read_wav(record)
    stream.close()
    pbx.close()
    ours = np.concatenate(received)
    registers = sum(1 for m in pbx.log if m.split("\n", 2)[1].startswith("REGISTER"))
    print(f"codec {codec_name}, call {duration:.1f} s, phone exit code {proc.returncode}")
    print(f"answer delay (INVITE -> 200 OK): {t_answer - t_invite:.2f} s")
    print(
        f"pyVoIP -> us: {got} packets = {got / duration:.2f}/s "
        f"(real time is 50/s: drift {100 * (got / duration / 50 - 1):+.2f} %)"
    )
    print(f"phone recording: {len(theirs) / 8000:.2f} s for a {duration:.2f} s call")
    ro, rt = windows(ours, 1200), windows(theirs, 500)
    for name, r in (("1200 Hz at our side", ro), ("500 Hz in the phone's WAV", rt)):
        print(f"{name}, per 10 s window: min {min(r):.0f}x, median {np.median(r):.0f}x")
    print(f"REGISTER requests seen (incl. 401 rounds and the final unregister): {registers}")
    print(
        f"phone RSS: {rss_10 / 1024:.1f} MiB at 10 s, {rss_end / 1024:.1f} MiB at {seconds:.0f} s "
        f"({(rss_end - rss_10) / max(seconds - 10, 1):.1f} KiB/s)"
    )
    print("phone RSS over the call: " + ", ".join(f"{t:.0f} s {r / 1024:.1f}" for t, r in samples))
    for line in output.decode(errors="replace").splitlines():
        if "received" in line or "thread" in line:
            print("phone:", line.split("] ", 1)[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--codec", choices=["PCMU", "PCMA"], default="PCMU")
    args = ap.parse_args()
    asyncio.run(run(args.seconds, args.codec))


if __name__ == "__main__":
    main()
