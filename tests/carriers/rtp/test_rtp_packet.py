import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.rtp.packet import RtpExtension, RtpPacket, RtpParseError, seq_delta, ts_delta

# Version 2, marker set, PT 0, seq 0x1234, ts 0xDEADBEEF, ssrc 0x01020304, 4-byte payload.
GOLDEN = bytes.fromhex("80 80 1234 DEADBEEF 01020304 FF7F0080".replace(" ", ""))


def test_golden_parse() -> None:
    p = RtpPacket.parse(GOLDEN)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc) == (0, 0x1234, 0xDEADBEEF, 0x01020304)
    assert p.marker and p.payload == bytes.fromhex("FF7F0080")
    assert p.csrcs == () and p.extension is None and p.padding == 0


def test_golden_build() -> None:
    p = RtpPacket(0, 0x1234, 0xDEADBEEF, 0x01020304, bytes.fromhex("FF7F0080"), marker=True)
    assert p.to_bytes() == GOLDEN


def test_full_featured_packet_golden() -> None:
    # P, X, CC=2; PT 8; ext profile 0xBEDE with one word; 3 bytes payload; 4 bytes padding.
    data = bytes.fromhex(
        "B2 08 0001 00000010 0000AAAA 00000001 00000002 BEDE0001 11223344 616263 00000004".replace(
            " ", ""
        )
    )
    p = RtpPacket.parse(data)
    assert p.csrcs == (1, 2)
    assert p.extension == RtpExtension(0xBEDE, bytes.fromhex("11223344"))
    assert p.payload == b"abc" and p.padding == 4 and p.payload_type == 8 and not p.marker
    assert p.to_bytes() == data
    skipped = RtpPacket.parse(data, keep_extension=False)
    assert skipped.extension is None and skipped.payload == b"abc" and skipped.csrcs == (1, 2)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00", "shorter than the 12-byte"),
        (bytes.fromhex("4000000100000000000000"), "shorter"),
        (bytes.fromhex("400000010000000000000001"), "version is 1"),
        (bytes.fromhex("810000010000000000000001"), "CSRC count 1"),
        (bytes.fromhex("900000010000000000000001"), "extension header"),
        (bytes.fromhex("90000001000000000000000100000002"), "extension of 2 words"),
        (bytes.fromhex("A00000010000000000000001"), "no padding count"),
        (bytes.fromhex("A0000001000000000000000100"), "padding count is 0"),
        (bytes.fromhex("A0000001000000000000000105"), "padding count 5 exceeds"),
    ],
)
def test_parse_errors_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        RtpPacket.parse(data)


def test_parse_error_is_value_error() -> None:
    assert issubclass(RtpParseError, ValueError)


def test_field_ranges_checked() -> None:
    with pytest.raises(ValueError, match="payload type"):
        RtpPacket(128, 0, 0, 0)
    with pytest.raises(ValueError, match="sequence"):
        RtpPacket(0, 65536, 0, 0)
    with pytest.raises(ValueError, match="CSRC"):
        RtpPacket(0, 0, 0, 0, csrcs=tuple(range(16)))
    with pytest.raises(ValueError, match="multiple of 4"):
        RtpExtension(1, b"abc")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_clear_error(data: bytes) -> None:
    try:
        p = RtpPacket.parse(data)
    except RtpParseError as exc:
        assert str(exc)
    else:
        assert p.to_bytes() == data


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        RtpExtension,
        profile=st.integers(0, 0xFFFF),
        data=st.binary(max_size=16).map(lambda b: b[: len(b) - len(b) % 4]),
    ),
    padding=st.integers(0, 255),
)


@settings(max_examples=300, deadline=None)
@given(packets)
def test_build_parse_round_trip(p: RtpPacket) -> None:
    assert RtpPacket.parse(p.to_bytes()) == p


def test_sequence_and_timestamp_deltas_wrap() -> None:
    assert seq_delta(2, 65534) == 4
    assert seq_delta(65534, 2) == -4
    assert seq_delta(100, 100) == 0
    assert ts_delta(80, 0xFFFFFFF0) == 96
    assert ts_delta(0xFFFFFFF0, 80) == -96
