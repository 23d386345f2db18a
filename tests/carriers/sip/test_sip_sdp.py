"""SDP parse/serialise and G.711 offer/answer."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.sip.sdp import (
    PCMA,
    PCMU,
    Codec,
    SdpError,
    SdpNegotiationError,
    build_answer,
    build_offer,
    parse_sdp,
    remote_media,
)

# RFC 4566 §5 example, plus a telephone-event offer like a carrier sends.
RFC_EXAMPLE = (
    b"v=0\r\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\ns=SDP Seminar\r\n"
    b"i=A Seminar on the session description protocol\r\n"
    b"u=http://www.example.com/seminars/sdp.pdf\r\ne=j.doe@example.com (Jane Doe)\r\n"
    b"c=IN IP4 224.2.17.12/127\r\nt=2873397496 2873404696\r\na=recvonly\r\n"
    b"m=audio 49170 RTP/AVP 0\r\nm=video 51372 RTP/AVP 99\r\na=rtpmap:99 h263-1998/90000\r\n"
)
CARRIER_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 18 8 0 96\r\na=rtpmap:18 G729/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:30\r\na=sendrecv\r\n"
    b"m=video 30002 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n"
)


def test_parse_rfc_example_and_round_trip() -> None:
    sdp = parse_sdp(RFC_EXAMPLE)
    assert sdp.origin.username == "jdoe" and sdp.origin.address == "10.47.16.5"
    assert sdp.connection is not None and sdp.connection.address == "224.2.17.12/127"
    assert [m.media for m in sdp.media] == ["audio", "video"]
    assert sdp.media[1].attribute("rtpmap") == "99 h263-1998/90000"
    assert sdp.attributes == (("recvonly", None),)
    assert parse_sdp(sdp.serialise()) == sdp


def test_answer_picks_first_common_codec_and_declines_video() -> None:
    offer = parse_sdp(CARRIER_OFFER)
    answer, remote = build_answer(offer, "192.0.2.10", 40000, 7)
    assert remote.codec == PCMA and remote.port == 30000 and remote.address == "198.51.100.7"
    assert remote.ptime == 30 and remote.telephone_event_pt == 96
    audio, video = answer.media
    assert audio.port == 40000 and audio.formats == ("8", "96")
    assert video.port == 0  # RFC 3264 §6: same number of m= lines, rejected ones at port 0
    assert parse_sdp(answer.serialise()) == answer
    assert remote_media(answer).codec == PCMA


def test_offer_and_remote_media_from_answer() -> None:
    offer = build_offer("192.0.2.10", 40000, 42)
    assert offer.media[0].formats == ("0", "8", "101")
    parsed = parse_sdp(offer.serialise())
    assert parsed == offer
    answer, _ = build_answer(parsed, "203.0.113.5", 50000, 1, codecs=(PCMA, PCMU))
    remote = remote_media(answer)
    assert (remote.address, remote.port, remote.codec, remote.telephone_event_pt) == (
        "203.0.113.5",
        50000,
        PCMU,  # the offerer's preference order wins
        101,
    )


def test_hold_offer_is_answered_recvonly() -> None:
    offer = build_offer("192.0.2.10", 40000, 1, direction="sendonly")
    answer, remote = build_answer(offer, "192.0.2.20", 41000, 2)
    assert remote.direction == "sendonly" and remote.on_hold
    assert answer.media[0].attribute("recvonly") == ""


def test_unusable_offer_raises_488() -> None:
    offer = parse_sdp(CARRIER_OFFER.replace(b"18 8 0 96", b"18").replace(b"a=rtpmap:8 ", b"a=x:"))
    with pytest.raises(SdpNegotiationError) as info:
        build_answer(offer, "192.0.2.10", 40000, 1)
    assert info.value.status == 488
    g729 = build_offer("192.0.2.1", 4000, 1, codecs=(Codec(18, "G729"),), telephone_event_pt=None)
    with pytest.raises(SdpNegotiationError, match="PCMU or PCMA"):
        build_answer(g729, "192.0.2.10", 40000, 1)


@pytest.mark.parametrize(
    "bad,where",
    [
        (b"v=1\r\n", "line 1"),
        (b"v=0\r\no=x\r\ns=-\r\n", "line 2"),
        (b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nm=audio x RTP/AVP 0\r\n", "line 4"),
        (b"v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nnonsense\r\n", "line 4"),
        (b"v=0\r\ns=-\r\n", "o= and s="),
    ],
)
def test_bad_sdp_names_the_line(bad: bytes, where: str) -> None:
    with pytest.raises(SdpError, match=where):
        parse_sdp(bad)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=600))
def test_sdp_fuzz_only_sdp_errors(data: bytes) -> None:
    seed = CARRIER_OFFER[: len(data) % len(CARRIER_OFFER)] + data
    try:
        sdp = parse_sdp(seed)
    except SdpError:
        return
    with contextlib.suppress(SdpNegotiationError):
        build_answer(sdp, "192.0.2.1", 4000, 1)
