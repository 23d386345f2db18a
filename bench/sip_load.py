"""SIP/RTP load: the engine's SipCarrier against a SIPp UAS on loopback.

Run: .venv/bin/python bench/sip_load.py [--quick] [--levels 100:20,250:50,500:50]

Each level N:R dials R calls per second; every call is answered by SIPp, which
streams PCMU audio (a synthetic greeting, looped) until we hang up N/R seconds
after the answer, so N calls are up at once in steady state (Little's law).  As
the engine does, every call's RTP is received and decoded by its MediaSession,
and its frames are fed to a fresh AMD detector (profile "balanced") until the
detector decides.  Measured over a steady-state window:

* concurrent answered calls (min / mean),
* set-ups per second (answers in the window / window) and dial-to-answer p50/p99,
* per call, RTP packets received by its session, sequence numbers lost, 20 ms
  frames delivered (``media_ok``: every received packet decoded and delivered,
  <= 1 % lost, first audio within 500 ms of the answer), and frames against what
  the far end's talk time implies (``frames_ratio_min``: SIPp starting late or
  sending less shows here), AMD verdicts reached,
* event-loop lag (a 10 ms timer's lateness) p50 / p99 / max, and the part of it
  the process can have caused itself (``own_lag``: lateness capped by the CPU
  time the process used since the previous sample; the rest is the OS running
  other programs on a shared machine),
* CPU of this process (one core: the engine is one asyncio loop) per
  concurrent call, and as a share of one core.

A level is sustained when every call was answered, >= 99 % of calls got their
audio and every answered call reached an AMD verdict; its lag bar is p99 < 20 ms.
The loop's lag with nothing to do is measured first in the same process: on a
shared machine it is the floor the figures stand on.  Levels run in order and
stop at the first that is not sustained.
SIPp runs in its own process (on the other core when there is one).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amd.registry import create as create_detector  # noqa: E402
from amd.types import FRAME_SAMPLES, Detector  # noqa: E402
from carriers.base import (  # noqa: E402
    Answered,
    CallOutcome,
    CarrierEvent,
    DialRequest,
    Ended,
    MediaFrames,
)
from carriers.rtp import g711  # noqa: E402
from carriers.sip.carrier import SipCarrier, SipCarrierParams, Trunk  # noqa: E402
from dialer.clock import RealClock  # noqa: E402
from sim.audio import human_clip  # noqa: E402

SCENARIO = ROOT / "bench" / "sipp" / "uas_load.xml"


@dataclass
class CallStat:
    t_dial: float
    t_answer: float | None = None
    t_end: float | None = None
    frames: int = 0
    t_first: float | None = None  # first audio after the answer
    packets: int = 0  # RTP packets the session received (from Ended.extra)
    lost: int = 0  # sequence numbers never seen
    amd_frames: int = 0
    verdict: str | None = None
    outcome: str | None = None
    detector: Detector | None = None


@dataclass
class Level:
    concurrent: int
    cps: float
    window_s: float

    @property
    def hold_s(self) -> float:
        return self.concurrent / self.cps


@dataclass
class Load:
    """The engine side: dials, listens, runs AMD, hangs up after the hold."""

    carrier: SipCarrier
    clock: RealClock
    hold_s: float = 5.0
    amd: bool = True
    calls: dict[str, CallStat] = field(default_factory=dict)
    active: int = 0

    def on_carrier_event(self, ev: CarrierEvent) -> None:
        st = self.calls.get(ev.call_id)
        if st is None:
            return
        if isinstance(ev, MediaFrames):
            n = len(ev.samples) // FRAME_SAMPLES
            st.frames += n
            if st.t_first is None:
                st.t_first = ev.at
            det = st.detector
            if det is not None:
                s = ev.samples
                for i in range(n):
                    st.amd_frames += 1
                    v = det.feed(s[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
                    if v is not None:
                        st.verdict, st.detector = v.label.value, None
                        break
        elif isinstance(ev, Answered):
            st.t_answer = ev.at
            st.detector = create_detector("balanced") if self.amd else None
            self.active += 1
            cid = ev.call_id
            self.clock.call_at(ev.at + self.hold_s, lambda: self.carrier.hangup(cid))
        elif isinstance(ev, Ended):
            st.t_end, st.outcome = ev.at, ev.outcome.value
            st.packets = int(ev.extra.get("rtp_packets", "0"))
            st.lost = int(ev.extra.get("rtp_lost", "0"))
            if st.t_answer is not None:
                self.active -= 1
                if st.verdict is None and st.detector is not None:
                    st.verdict = st.detector.finish().label.value + "(finish)"
                st.detector = None


def free_port(even: bool = False) -> int:
    rng = np.random.default_rng()
    for _ in range(200):
        port = int(rng.integers(10_000, 30_000))
        port -= port % 2 if even else 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def start_sipp(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is not installed (Debian package sip-tester)")
    samples = human_clip(np.random.default_rng(3), 3).samples
    (workdir / "load.ulaw").write_bytes(g711.encode(samples, g711.PT_PCMU))
    port, mport = free_port(), free_port(even=True)
    cmd = [sipp, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(port)]
    cmd += ["-mi", "127.0.0.1", "-mp", str(mport), "-l", "5000", "-nostdin"]
    cmd += ["-buff_size", str(4 << 20), "-trace_err"]
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.5)
    if proc.poll() is not None:
        raise SystemExit(f"SIPp exited at start ({proc.returncode})")
    return proc, port


class GcPauses:
    """Durations of the cyclic garbage collector's runs (a source of loop lag)."""

    def __init__(self) -> None:
        self.ms: list[float] = []
        self._t = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.ms.append(1000 * (time.perf_counter() - self._t))

    def take(self) -> list[float]:
        out, self.ms = self.ms, []
        return out


GC = GcPauses()


async def idle_lag(seconds: float) -> list[float]:
    """The loop's lag with nothing to do: what the machine's load alone costs."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    end = loop.time() + seconds

    def sample(due: float) -> None:
        now = loop.time()
        lags.append(1000 * (now - due))
        if due < end:
            loop.call_at(now + 0.01, sample, now + 0.01)

    loop.call_at(loop.time(), sample, loop.time())
    await asyncio.sleep(seconds + 0.05)
    return lags


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def run_level(load: Load, level: Level, tag: str) -> dict[str, object]:
    clock, carrier = load.clock, load.carrier
    loop = asyncio.get_running_loop()
    load.hold_s = level.hold_s
    start = clock.monotonic() + 0.05
    w0, w1 = start + level.hold_s + 1.0, start + level.hold_s + 1.0 + level.window_s
    n_calls = int(level.cps * (w1 - start))
    ids = [f"{tag}-{i}" for i in range(n_calls)]
    lags: list[float] = []
    actives: list[int] = []
    cpu: dict[str, float] = {}

    def dial(i: int) -> None:
        cid = ids[i]
        load.calls[cid] = CallStat(clock.monotonic())
        carrier.dial(DialRequest(cid, f"+1555{i:07d}", timeout_s=20.0))

    for i in range(n_calls):
        loop.call_at(start + i / level.cps, dial, i)

    own: list[float] = []
    last_cpu = [time.process_time()]

    def sample(due: float) -> None:
        now = clock.monotonic()
        cpu_now = time.process_time()
        if w0 <= now <= w1:
            lags.append(now - due)
            # lateness the process could have caused itself: no more than the CPU
            # it used since the last sample (the rest is time the OS gave others)
            own.append(min(now - due, cpu_now - last_cpu[0]))
            actives.append(load.active)
        last_cpu[0] = cpu_now
        if now < w1:
            loop.call_at(now + 0.01, sample, now + 0.01)

    loop.call_at(start, sample, start)

    def mark(name: str) -> None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        cpu[name] = r.ru_utime + r.ru_stime
        cpu[name + "_wall"] = time.perf_counter()

    loop.call_at(w0, lambda: GC.take())
    loop.call_at(w0, mark, "w0")
    loop.call_at(w1, mark, "w1")
    # dials end at w1; the last calls end a hold later
    deadline = w1 + level.hold_s + 15.0
    while clock.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if clock.monotonic() > w1 and all(load.calls[c].t_end is not None for c in ids):
            break
    stats = [load.calls[c] for c in ids]
    answered = [s for s in stats if s.t_answer is not None]
    in_window = [s for s in answered if s.t_answer is not None and w0 <= s.t_answer <= w1]
    ratios = []  # frames delivered / frames the far end's talk time implies
    media_ok = 0
    starts = []
    for s in answered:
        if s.t_end is None or s.t_answer is None:
            continue
        talk = s.t_end - s.t_answer
        expected = max(1.0, (talk - 0.1) * 50)  # SIPp starts streaming on our ACK
        ratios.append(s.frames / expected)
        if s.t_first is not None:
            starts.append(1000 * (s.t_first - s.t_answer))
        # ours to get right: every packet that arrived decoded and delivered, none
        # lost on the way, audio from the first half second
        delivered = s.packets > 0 and s.frames >= s.packets - 2
        if delivered and s.lost <= 0.01 * s.packets and starts and starts[-1] < 500:
            media_ok += 1
    setups = [1000 * (s.t_answer - s.t_dial) for s in answered if s.t_answer is not None]
    lag_ms = [1000 * x for x in lags]
    own_ms = [1000 * x for x in own]
    gc_ms = GC.take()
    cpu_s = cpu.get("w1", 0.0) - cpu.get("w0", 0.0)
    wall = cpu.get("w1_wall", 1.0) - cpu.get("w0_wall", 0.0)
    mean_active = float(np.mean(actives)) if actives else 0.0
    outcomes: dict[str, int] = {}
    for s in stats:
        outcomes[s.outcome or "open"] = outcomes.get(s.outcome or "open", 0) + 1
    verdicts = sum(s.verdict is not None for s in answered)
    result = {
        "level": f"{level.concurrent}@{level.cps:g}cps",
        "calls": n_calls,
        "answered": len(answered),
        "outcomes": outcomes,
        "concurrent_min": min(actives) if actives else 0,
        "concurrent_mean": round(mean_active, 1),
        "setups_per_s": round(len(in_window) / level.window_s, 1),
        "setup_ms_p50": round(pct(setups, 50), 1),
        "setup_ms_p99": round(pct(setups, 99), 1),
        "media_ok": f"{media_ok}/{len(ratios)}",
        "frames_ratio_min": round(min(ratios), 3) if ratios else 0.0,
        "rtp_packets": sum(s.packets for s in answered),
        "rtp_lost": sum(s.lost for s in answered),
        "first_audio_ms_p99": round(pct(starts, 99), 1),
        "amd_verdicts": f"{verdicts}/{len(answered)}",
        "amd_frames": sum(s.amd_frames for s in answered),
        "lag_ms_p50": round(pct(lag_ms, 50), 2),
        "lag_ms_p99": round(pct(lag_ms, 99), 2),
        "lag_ms_max": round(max(lag_ms), 2) if lag_ms else 0.0,
        "own_lag_ms_p99": round(pct(own_ms, 99), 2),
        "gc_runs": len(gc_ms),
        "gc_ms_max": round(max(gc_ms), 2) if gc_ms else 0.0,
        "cpu_core_share": round(cpu_s / wall, 3) if wall > 0 else 0.0,
        "cpu_ms_per_call_s": round(1000 * cpu_s / wall / mean_active, 3) if mean_active else 0.0,
        "transport": str(carrier.transport_stats),
        "rtp_queue_peak": carrier._rtp_queue.peak if carrier._rtp_queue else 0,
    }
    result["media_pass"] = bool(
        len(answered) == n_calls
        and outcomes.get(CallOutcome.ANSWERED.value, 0) == n_calls
        and ratios
        and media_ok >= 0.99 * len(ratios)
        and (verdicts == len(answered) or not load.amd)
        and mean_active >= 0.9 * level.concurrent
    )
    result["lag_pass"] = pct(lag_ms, 99) < 20.0
    return result


async def main_async(levels: list[Level], as_json: bool, amd: bool) -> list[dict[str, object]]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="sip_load_"))
    proc, port = start_sipp(workdir)
    clock = RealClock()
    top = max(lv.concurrent for lv in levels)
    params = SipCarrierParams(
        trunks=(Trunk("sipp", "127.0.0.1", port, max_concurrent=top * 2, max_cps=1000.0),),
        bind_host="127.0.0.1",
        bind_port=0,
        rtp_port_min=0,
        rtp_port_max=0,
    )
    carrier = SipCarrier(clock, params, np.random.default_rng(1))
    load = Load(carrier, clock, amd=amd)
    carrier.set_listener(load)
    await carrier.start()
    gc.freeze()  # as dialer.runtime.Runtime.start does once everything is loaded
    results: list[dict[str, object]] = []
    idle = await idle_lag(3.0)
    base = {"level": "idle", "lag_ms_p50": round(pct(idle, 50), 2)}
    base |= {"lag_ms_p99": round(pct(idle, 99), 2), "lag_ms_max": round(max(idle), 2)}
    results.append(base)
    if not as_json:
        print(json.dumps(base), flush=True)
    try:
        for n, level in enumerate(levels):
            res = await run_level(load, level, f"L{n}")
            results.append(res)
            if not as_json:
                print(json.dumps(res), flush=True)
            if not res["media_pass"]:
                break
            await asyncio.sleep(1.0)
    finally:
        await carrier.stop()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one small level (100 calls at 20/s)")
    ap.add_argument("--levels", default="100:20,250:50,500:50,750:50", help="N:cps,... in order")
    ap.add_argument("--window", type=float, default=8.0, help="steady-state window, s")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-amd", action="store_true", help="receive and decode only (diagnosis)")
    args = ap.parse_args()
    if args.quick:
        levels = [Level(100, 20.0, 5.0)]
    else:
        levels = []
        for item in args.levels.split(","):
            n, cps = item.split(":")
            levels.append(Level(int(n), float(cps), args.window))
    t0 = time.perf_counter()
    results = asyncio.run(main_async(levels, args.json, not args.no_amd))

    def top(key: str) -> int:
        ok = [r for r in results if r.get("media_pass") and (key == "media" or r.get("lag_pass"))]
        return max((int(str(r["level"]).split("@")[0]) for r in ok), default=0)

    summary = {
        "sustained_concurrent": top("media"),
        "sustained_with_lag_p99_under_20ms": top("lag"),
        "levels": results,
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"sustained: {summary['sustained_concurrent']} concurrent calls with all RTP "
            f"decoded and fed to AMD; {summary['sustained_with_lag_p99_under_20ms']} of them "
            f"also with lag p99 < 20 ms (wall {summary['wall_s']} s, "
            f"load avg {summary['load_avg']})"
        )


if __name__ == "__main__":
    main()
