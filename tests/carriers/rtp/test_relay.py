"""MediaSession.relay_packet: a bridged leg's packets re-sent as ours."""

from __future__ import annotations

import numpy as np

from carriers.rtp import g711
from carriers.rtp.packet import RtpPacket
from carriers.rtp.session import MediaSession


def _pkt(
    pt: int, seq: int, ts: int, payload: bytes, ssrc: int = 0x1234, marker: bool = False
) -> RtpPacket:
    return RtpPacket(pt, seq, ts, ssrc, payload, marker=marker)


def test_same_codec_keeps_payload_spacing_and_marker() -> None:
    out = MediaSession(g711.PT_PCMU, 101, rng=1, local_ssrc=77)
    audio = bytes(range(160))
    first = RtpPacket.parse(
        out.relay_packet(_pkt(0, 500, 1000, audio, marker=True), 101, 0.0) or b""
    )
    # a packet lost at the source (ts 1160 missing): the gap is kept on our timeline
    third = RtpPacket.parse(out.relay_packet(_pkt(0, 502, 1320, audio), 101, 0.04) or b"")
    assert first.ssrc == third.ssrc == 77 and first.marker and not third.marker
    assert third.sequence == (first.sequence + 1) & 0xFFFF  # our own numbering
    assert (third.timestamp - first.timestamp) & 0xFFFFFFFF == 320
    assert first.payload == audio and third.payload_type == 0


def test_pcmu_to_pcma_is_g711_through_linear() -> None:
    out = MediaSession(g711.PT_PCMA, None, rng=2)
    codes = bytes(range(256))
    data = out.relay_packet(_pkt(0, 1, 0, codes), None, 0.0)
    assert data is not None
    sent = RtpPacket.parse(data)
    want = g711.encode(g711.decode(codes, g711.PT_PCMU), g711.PT_PCMA)
    assert sent.payload_type == 8 and sent.payload == want
    # what the PCMA side hears is the PCMU value to within A-law's step at that level
    back = g711.decode(sent.payload, g711.PT_PCMA).astype(int)
    orig = g711.decode(codes, g711.PT_PCMU).astype(int)
    assert np.all(np.abs(back - orig) <= np.maximum(16, 0.07 * np.abs(orig)))


def test_events_take_our_event_type_or_are_dropped() -> None:
    event = bytes([5, 0x8A, 0x03, 0x20])  # key 5, end bit, volume 10, 800 samples
    with_te = MediaSession(g711.PT_PCMU, 110, rng=3)
    data = with_te.relay_packet(_pkt(101, 9, 4000, event), 101, 0.0)
    assert data is not None and RtpPacket.parse(data).payload_type == 110
    assert RtpPacket.parse(data).payload == event
    without = MediaSession(g711.PT_PCMU, None, rng=4)
    assert without.relay_packet(_pkt(101, 9, 4000, event), 101, 0.0) is None
    # a payload type neither G.711 nor the source's events: not ours to carry
    assert with_te.relay_packet(_pkt(18, 10, 4160, b"\x00" * 20), 101, 0.0) is None


def test_our_own_audio_in_between_reanchors_the_timeline() -> None:
    out = MediaSession(g711.PT_PCMU, None, rng=5)
    a = RtpPacket.parse(out.relay_packet(_pkt(0, 1, 10_000, b"\xff" * 160), None, 0.0) or b"")
    out.play(np.zeros(160, dtype=np.int16))  # a tone of ours, one frame
    out.handle_timer(0.02)
    ours = RtpPacket.parse(out.datagrams_to_send()[0])
    b = RtpPacket.parse(out.relay_packet(_pkt(0, 2, 10_160, b"\xff" * 160), None, 0.04) or b"")
    # monotonic on our side even though the source's next timestamp is 160 on
    assert (ours.timestamp - a.timestamp) & 0xFFFFFFFF >= 160
    assert (b.timestamp - ours.timestamp) & 0xFFFFFFFF >= 160
    assert len({a.sequence, ours.sequence, b.sequence}) == 3
