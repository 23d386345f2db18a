"""RTP media throughput on one core: parse+decode rate and concurrent 50 pkt/s streams.

Run: .venv/bin/python bench/rtp_media.py [--seconds 2]
Compares against a naive pure-Python pipeline (struct parse, per-sample mu-law
decode loop, dict reorder buffer) run in the same process.
"""

from __future__ import annotations

import argparse
import struct
import time

import numpy as np

from carriers.rtp import g711
from carriers.rtp.g711 import _mulaw_decode_one
from carriers.rtp.packet import RtpPacket
from carriers.rtp.session import MediaSession


def make_stream(n: int, ssrc: int, rng: np.random.Generator) -> list[bytes]:
    audio = (rng.normal(0, 3000, 160 * n)).clip(-32768, 32767).astype(np.int16)
    payload = g711.encode(audio, 0)
    return [
        RtpPacket(
            0, i & 0xFFFF, (160 * i) & 0xFFFFFFFF, ssrc, payload[160 * i : 160 * i + 160]
        ).to_bytes()
        for i in range(n)
    ]


def rate(fn, items: int, seconds: float) -> float:
    """Items per second of fn() (which processes `items` items), repeated for ~seconds."""
    fn()  # warm up
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        done += items
    return done / elapsed


def naive_parse_decode(data: bytes) -> list[int]:
    _b0, _b1, _seq, _ts, _ssrc = struct.unpack_from("!BBHII", data)
    payload = data[12 + 4 * (_b0 & 0x0F) :]
    return [_mulaw_decode_one(c) for c in payload]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    packets = make_stream(2000, 1, rng)

    def fast() -> None:
        for d in packets:
            p = RtpPacket.parse(d)
            g711.decode(p.payload, p.payload_type)

    def naive() -> None:
        for d in packets:
            naive_parse_decode(d)

    fast_rate = rate(fast, len(packets), args.seconds)
    naive_rate = rate(naive, len(packets), args.seconds)

    # Full receive path: 50 streams interleaved as a real server sees them,
    # each through MediaSession (parse, stats, jitter buffer, decode, 20 ms frames).
    n_streams, per_stream = 50, 200
    streams = [make_stream(per_stream, 1000 + s, rng) for s in range(n_streams)]
    schedule = [(i * 0.02, s, streams[s][i]) for i in range(per_stream) for s in range(n_streams)]

    def sessions_run() -> None:
        sessions = [MediaSession(rng=s) for s in range(n_streams)]
        for now, s, d in schedule:
            sess = sessions[s]
            sess.receive_datagram(d, now)
            sess.frames()

    def naive_sessions_run() -> None:
        buffers: list[dict[int, list[int]]] = [{} for _ in range(n_streams)]
        nexts = [0] * n_streams
        for _now, s, d in schedule:
            seq = struct.unpack_from("!H", d, 2)[0]
            buffers[s][seq] = naive_parse_decode(d)
            while nexts[s] in buffers[s]:
                buffers[s].pop(nexts[s])
                nexts[s] += 1

    sess_rate = rate(sessions_run, len(schedule), args.seconds)
    naive_sess_rate = rate(naive_sessions_run, len(schedule), args.seconds)

    print(
        f"parse+decode: {fast_rate:,.0f} pkt/s  (naive {naive_rate:,.0f} pkt/s, "
        f"x{fast_rate / naive_rate:.1f})"
    )
    print(
        f"MediaSession receive path: {sess_rate:,.0f} pkt/s = {sess_rate / 50:,.0f} "
        f"concurrent 50 pkt/s streams per core  (naive {naive_sess_rate:,.0f} pkt/s = "
        f"{naive_sess_rate / 50:,.0f} streams, x{sess_rate / naive_sess_rate:.1f})"
    )


if __name__ == "__main__":
    main()
