import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.rtp.dtmf import (
    DigitEvent,
    DtmfParseError,
    DtmfReceiver,
    TelephoneEvent,
    digit_payloads,
    event_code,
)
from carriers.rtp.packet import RtpPacket


def test_golden_payload() -> None:
    # Digit 5, end bit, volume 10, duration 800 samples.
    assert TelephoneEvent(5, True, 10, 800).to_bytes() == bytes.fromhex("058a0320")
    ev = TelephoneEvent.parse(bytes.fromhex("0b4a00a0"))  # '#', reserved bit set, ignored
    assert (ev.digit, ev.end, ev.volume, ev.duration) == ("#", False, 10, 160)


def test_parse_short_payload_errors() -> None:
    with pytest.raises(DtmfParseError, match="3 bytes"):
        TelephoneEvent.parse(b"\x01\x02\x03")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=4, max_size=4))
def test_parse_any_four_bytes(data: bytes) -> None:
    ev = TelephoneEvent.parse(data)
    assert TelephoneEvent.parse(ev.to_bytes()) == ev


def test_event_codes() -> None:
    assert [event_code(d) for d in "09*#AD"] == [0, 9, 10, 11, 12, 15]
    assert event_code("a") == 12
    with pytest.raises(ValueError, match="not a DTMF digit"):
        event_code("X")


def test_sender_sequence_is_rfc_conformant() -> None:
    seq = digit_payloads("7", duration_s=0.1)
    events = [TelephoneEvent.parse(p) for p, _ in seq]
    assert [m for _, m in seq] == [True] + [False] * (len(seq) - 1)
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert all(e.event == 7 for e in events)


def packets(seq: list[tuple[bytes, bool]], ts: int, seq0: int = 0) -> list[RtpPacket]:
    return [RtpPacket(101, seq0 + i, ts, 9, p, marker=m) for i, (p, m) in enumerate(seq)]


def test_receiver_one_event_per_digit() -> None:
    rx = DtmfReceiver()
    got: list[DigitEvent] = []
    for p in packets(digit_payloads("3", 0.12), ts=1000) + packets(
        digit_payloads("#", 0.06), ts=3000, seq0=10
    ):
        got.extend(rx.receive(p))
    assert got == [DigitEvent("3", 0.12, 1000), DigitEvent("#", 0.06, 3000)]


def test_receiver_survives_lost_end_packets() -> None:
    rx = DtmfReceiver()
    first = packets(digit_payloads("1", 0.1), ts=0)[:3]  # ends lost
    got = [e for p in first for e in rx.receive(p)]
    assert got == []
    got = [e for p in packets(digit_payloads("2", 0.04), ts=4000, seq0=10) for e in rx.receive(p)]
    assert got == [DigitEvent("1", 0.06, 0, ended=False), DigitEvent("2", 0.04, 4000)]


def test_receiver_only_one_end_needed_and_flush() -> None:
    rx = DtmfReceiver()
    seq = packets(digit_payloads("9", 0.1), ts=500)
    assert rx.receive(seq[-1]) == [DigitEvent("9", 0.1, 500)]
    assert rx.receive(seq[-2]) == []
    rx.receive(packets(digit_payloads("0", 0.1), ts=9000)[0])
    assert rx.flush() == [DigitEvent("0", 0.02, 9000, ended=False)]
    assert rx.flush() == []
