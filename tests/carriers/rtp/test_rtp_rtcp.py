import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.rtp.rtcp import (
    ReceiverReport,
    ReportBlock,
    RtcpParseError,
    SenderReport,
    parse_compound,
)

BLOCK = ReportBlock(0x11111111, 25, -3, 70000, 42, 0xAABBCCDD, 65536)


def test_receiver_report_golden() -> None:
    data = ReceiverReport(0x01020304, (BLOCK,)).to_bytes()
    assert data[:8] == bytes.fromhex("81c9000701020304")
    assert data[8:16] == bytes.fromhex("1111111119fffffd")
    assert parse_compound(data) == [ReceiverReport(0x01020304, (BLOCK,))]


def test_sender_report_round_trip_in_compound_with_sdes_skipped() -> None:
    sr = SenderReport(7, (0xE1234567 << 32) | 0x89ABCDEF, 1600, 10, 1600, (BLOCK,))
    sdes = bytes.fromhex("81ca0002 00000007 01000000".replace(" ", ""))
    data = sr.to_bytes() + sdes
    assert len(sr.to_bytes()) == 52 and sr.to_bytes()[1] == 200
    assert parse_compound(data) == [sr]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80", "shorter than a header"),
        (bytes.fromhex("40c9000100000001"), "version 1"),
        (bytes.fromhex("80c9000500000001"), "claims 24 bytes"),
        (bytes.fromhex("81c9000100000001"), "too short for 1 blocks"),
        (bytes.fromhex("80c900010000000180"), "truncated RTCP header"),
    ],
)
def test_parse_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpParseError, match=reason):
        parse_compound(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_parse_or_clear_error(data: bytes) -> None:
    try:
        reports = parse_compound(data)
    except RtcpParseError as exc:
        assert str(exc)
    else:
        assert all(isinstance(r, SenderReport | ReceiverReport) for r in reports)
