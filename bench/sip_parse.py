"""SIP parse / serialise throughput: messages per second on typical trunk traffic.

Run: .venv/bin/python bench/sip_parse.py
Baseline in the same process: a bare split of the head into lines and a dict of
header fields (what any parser must at least do), so the ratio shows the cost of
validation and the structured model.
"""

from __future__ import annotations

import time

from carriers.sip import parse_message
from carriers.sip.sdp import build_offer, parse_sdp

SDP = build_offer("192.0.2.10", 40000, 42).serialise()
INVITE = (
    b"INVITE sip:+15551234567@trunk.example.com;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-74bf9;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Dialer" <sip:dialer@192.0.2.10>;tag=9fxced76sl\r\n'
    b"To: <sip:+15551234567@trunk.example.com>\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:dialer@192.0.2.10:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    b"User-Agent: dialer\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-74bf9;rport=5060;received=192.0.2.10\r\n"
    b"Record-Route: <sip:proxy.trunk.example.com;lr>\r\n"
    b'From: "Dialer" <sip:dialer@192.0.2.10>;tag=9fxced76sl\r\n'
    b"To: <sip:+15551234567@trunk.example.com>;tag=8321234356\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:gw@198.51.100.7:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def baseline(data: bytes) -> dict[str, str]:
    head, _, _ = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return dict(line.split(":", 1) for line in lines[1:])


def rate(fn: object, arg: object, seconds: float = 1.0) -> float:
    f = fn  # type: ignore[assignment]
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            f(arg)  # type: ignore[operator]
        n += 200
    return n / elapsed


def main() -> None:
    rows = []
    for name, data in (("INVITE with SDP", INVITE), ("200 OK with SDP", OK)):
        msg = parse_message(data)
        base = rate(baseline, data)
        parsed = rate(parse_message, data)
        serialised = rate(type(msg).serialise, msg)
        rows.append((name, len(data), parsed, serialised, base))
    sdp_rate = rate(parse_sdp, SDP)
    print(f"{'message':18} {'bytes':>5} {'parse/s':>9} {'serialise/s':>12} {'split/s':>9} ratio")
    for name, size, parsed, serialised, base in rows:
        print(
            f"{name:18} {size:5d} {parsed:9.0f} {serialised:12.0f} {base:9.0f} "
            f"{base / parsed:5.1f}x"
        )
    print(f"SDP parse/s: {sdp_rate:.0f}")


if __name__ == "__main__":
    main()
