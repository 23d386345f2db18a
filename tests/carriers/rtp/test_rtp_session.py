import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.rtp import g711
from carriers.rtp.dtmf import DigitEvent, TelephoneEvent, digit_payloads
from carriers.rtp.jitter import Frame
from carriers.rtp.packet import RtpPacket
from carriers.rtp.session import MediaSession, relay


def tone(n: int, amp: int = 3000) -> np.ndarray:
    t = np.arange(n)
    return (amp * np.sin(2 * np.pi * 440 * t / 8000)).astype(np.int16)


def run_sender(s: MediaSession, start: float, until: float) -> list[tuple[float, bytes]]:
    out = []
    now = start
    s.handle_timer(now)
    out += [(now, d) for d in s.datagrams_to_send()]
    while (t := s.get_timer()) is not None and t <= until:
        now = max(now, t)
        s.handle_timer(now)
        out += [(now, d) for d in s.datagrams_to_send()]
    return out


def test_seeded_randomness_is_reproducible() -> None:
    a, b = MediaSession(rng=7), MediaSession(rng=np.random.default_rng(7))
    assert a.local_ssrc == b.local_ssrc
    c = MediaSession(rng=8, local_ssrc=1234)
    assert c.local_ssrc == 1234


def test_play_paces_one_packet_per_20ms_with_marker_and_timestamps() -> None:
    s = MediaSession(payload_type=8, rng=1, local_ssrc=42)
    s.play(tone(800))
    sent = run_sender(s, 10.0, 20.0)
    assert [round(t - 10.0, 3) for t, _ in sent] == [0.0, 0.02, 0.04, 0.06, 0.08]
    pkts = [RtpPacket.parse(d) for _, d in sent]
    assert [p.marker for p in pkts] == [True, False, False, False, False]
    assert all(p.payload_type == 8 and p.ssrc == 42 and len(p.payload) == 160 for p in pkts)
    assert [(p.sequence - pkts[0].sequence) % 65536 for p in pkts] == [0, 1, 2, 3, 4]
    assert [(p.timestamp - pkts[0].timestamp) % 2**32 for p in pkts] == [0, 160, 320, 480, 640]
    assert s.queued_frames == 0 and s.get_timer() is None
    # After a pause, the timestamp reflects elapsed time and a new talkspurt is marked.
    s.play(tone(160))
    (later,) = [RtpPacket.parse(d) for _, d in run_sender(s, 11.0, 20.0)]
    assert later.marker
    assert (later.timestamp - pkts[0].timestamp) % 2**32 == 8000


def test_loopback_decodes_frames_with_media_time() -> None:
    tx = MediaSession(payload_type=0, rng=2)
    rx = MediaSession(payload_type=0, rng=3)
    audio = tone(1600)
    tx.play(audio)
    for t, d in run_sender(tx, 0.0, 1.0):
        rx.receive_datagram(d, t + 0.03)
    frames = rx.frames()
    assert [round(f.media_time, 3) for f in frames] == [round(0.02 * i, 3) for i in range(10)]
    got = np.concatenate([f.samples for f in frames])
    assert np.array_equal(got, g711.decode(g711.encode(audio, 0), 0))
    assert rx.stats.received == 10 and rx.stats.lost == 0 and rx.stats.jitter_s < 1e-9


def test_loss_reorder_duplicates_and_jitter_stats() -> None:
    tx = MediaSession(rng=4)
    rx = MediaSession(rng=5)
    tx.play(tone(160 * 10))
    sent = run_sender(tx, 0.0, 1.0)
    order = [0, 1, 3, 2, 4, 4, 6, 7, 8, 9]  # 5 lost, 2/3 swapped, 4 duplicated
    for i, k in enumerate(order):
        rx.receive_datagram(sent[k][1], 0.02 * i + (0.005 if k == 2 else 0.0))
    while (t := rx.get_timer()) is not None:
        rx.handle_timer(t)
    frames = rx.frames()
    assert len(frames) == 10
    assert [f.concealed for f in frames] == [False] * 5 + [True] + [False] * 4
    assert rx.stats.lost == 1 and rx.stats.duplicates == 1
    assert rx.stats.jitter_samples > 0


def test_foreign_ssrc_ignored_then_legitimate_change_accepted() -> None:
    rx = MediaSession(rng=6)
    payload = g711.encode(tone(160), 0)
    rx.receive_datagram(RtpPacket(0, 1, 0, 111, payload).to_bytes(), 0.0)
    rx.receive_datagram(RtpPacket(0, 50, 999, 222, payload).to_bytes(), 0.02)
    assert rx.stats.foreign == 1 and rx.remote_ssrc == 111
    rx.receive_datagram(RtpPacket(0, 51, 1159, 222, payload).to_bytes(), 1.0)
    assert rx.remote_ssrc == 222 and rx.stats.ssrc_changes == 1
    frames = rx.frames()
    assert [round(f.media_time, 2) for f in frames] == [0.0, 1.0]


def test_malformed_and_unknown_payload_type_counted() -> None:
    rx = MediaSession(rng=0)
    rx.receive_datagram(b"\x00garbage", 0.0)
    rx.receive_datagram(RtpPacket(18, 1, 0, 1, b"x").to_bytes(), 0.0)
    assert rx.stats.malformed == 1 and rx.stats.foreign == 1 and rx.next_event() is None


def test_dtmf_send_and_receive() -> None:
    tx = MediaSession(rng=9, telephone_event_pt=101)
    rx = MediaSession(rng=10, telephone_event_pt=101)
    tx.send_dtmf("5", 0.08)
    sent = [RtpPacket.parse(d) for _, d in run_sender(tx, 0.0, 1.0)]
    assert len(sent) == len(digit_payloads("5", 0.08))
    assert len({p.timestamp for p in sent}) == 1 and sent[0].marker
    assert all(p.payload_type == 101 for p in sent)
    assert [TelephoneEvent.parse(p.payload).end for p in sent][-3:] == [True] * 3
    for i, p in enumerate(sent):
        rx.receive_datagram(p.to_bytes(), 0.02 * i)
    events = rx.events()
    assert len(events) == 1
    ev = events[0]
    assert isinstance(ev, DigitEvent) and ev.digit == "5" and ev.duration_s == 0.08


def test_relay_transcodes_and_passes_dtmf() -> None:
    a_far = MediaSession(payload_type=0, rng=11)
    a = MediaSession(payload_type=0, rng=12)
    b = MediaSession(payload_type=8, rng=13)
    audio = tone(480, 8000)
    a_far.play(audio)
    a_far.send_dtmf("#", 0.04)
    for t, d in run_sender(a_far, 0.0, 1.0):
        a.receive_datagram(d, t)
    assert relay(a, b) == 4
    out = [RtpPacket.parse(d) for _, d in run_sender(b, 2.0, 3.0)]
    audio_pkts = [p for p in out if p.payload_type == 8]
    dtmf_pkts = [p for p in out if p.payload_type == 101]
    got = np.concatenate([g711.decode(p.payload, 8) for p in audio_pkts])
    assert np.array_equal(got, g711.decode(g711.transcode(g711.encode(audio, 0), 0, 8), 8))
    assert {TelephoneEvent.parse(p.payload).digit for p in dtmf_pkts} == {"#"}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="not G"):
        MediaSession(payload_type=3)
    s = MediaSession(rng=1)
    with pytest.raises(TypeError, match="int16"):
        s.play(np.zeros(10, dtype=np.float64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a DTMF digit"):
        s.send_dtmf("Z")


def test_frames_are_frame_objects() -> None:
    rx = MediaSession(rng=1)
    rx.receive_datagram(RtpPacket(0, 1, 0, 5, g711.encode(tone(320), 0)).to_bytes(), 0.0)
    frames = rx.frames()
    # A 40 ms packet is re-cut into two 20 ms frames.
    assert [type(f) for f in frames] == [Frame, Frame]
    assert [len(f.samples) for f in frames] == [160, 160]
    assert [f.media_time for f in frames] == [0.0, 0.02]


def test_dtmf_in_sequence_space_is_not_counted_as_lost_audio() -> None:
    tx = MediaSession(rng=20)
    rx = MediaSession(rng=21)
    tx.play(tone(320))
    sent = run_sender(tx, 0.0, 1.0)
    tx.send_dtmf("1", 0.04)
    sent += run_sender(tx, 0.04, 1.0)
    tx.play(tone(320))
    sent += run_sender(tx, sent[-1][0] + 0.02, 2.0)
    for t, d in sent:
        rx.receive_datagram(d, t)
    events = rx.events()
    frames = [e for e in events if isinstance(e, Frame)]
    digits = [e for e in events if isinstance(e, DigitEvent)]
    assert len(frames) == 4 and not any(f.concealed for f in frames)
    assert [d.digit for d in digits] == ["1"]
    assert rx.stats.lost == 0 and rx.get_timer() is None
    assert frames[2].media_time > frames[1].media_time + 0.04


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.builds(
                lambda pt, seq, ts, ssrc, pl, m: RtpPacket(pt, seq, ts, ssrc, pl, m).to_bytes(),
                st.sampled_from([0, 8, 101, 13]),
                st.integers(0, 0xFFFF),
                st.integers(0, 0xFFFFFFFF),
                st.sampled_from([1, 2]),
                st.binary(max_size=200),
                st.booleans(),
            ),
        ),
        max_size=30,
    )
)
def test_session_survives_any_datagram_stream(datagrams: list[bytes]) -> None:
    rx = MediaSession(rng=0)
    now = 0.0
    for d in datagrams:
        rx.receive_datagram(d, now)
        now += 0.013
        if (t := rx.get_timer()) is not None and t <= now:
            rx.handle_timer(now)
    rx.handle_timer(now + 100.0)
    for ev in rx.events():
        if isinstance(ev, Frame):
            assert ev.samples.dtype == np.int16 and len(ev.samples) == 160
        else:
            assert isinstance(ev, DigitEvent) and ev.digit


def test_partial_frame_padded_when_stream_changes() -> None:
    rx = MediaSession(rng=1)
    rx.receive_datagram(RtpPacket(0, 1, 0, 5, g711.encode(tone(240), 0)).to_bytes(), 0.0)
    rx.receive_datagram(RtpPacket(0, 9, 0, 6, g711.encode(tone(160), 0)).to_bytes(), 1.0)
    frames = rx.frames()
    assert [len(f.samples) for f in frames] == [160, 160, 160]
    assert not frames[1].samples[80:].any() and frames[1].samples[:80].any()


def test_timer_is_due_at_once_after_play_on_idle_leg() -> None:
    s = MediaSession(rng=3)
    assert s.get_timer() is None
    s.play(tone(320))
    t = s.get_timer()
    assert t is not None and t <= 100.0
    s.handle_timer(100.0)
    assert len(s.datagrams_to_send()) == 1 and s.get_timer() == 100.02
    s.handle_timer(100.02)
    assert len(s.datagrams_to_send()) == 1 and s.get_timer() is None and s.queued_frames == 0
