import numpy as np

from carriers.rtp import g711
from carriers.rtp.jitter import Concealment, JitterBuffer, JitterParams
from carriers.rtp.packet import RtpPacket


def pkt(seq: int, ts: int, level: int = 1000) -> RtpPacket:
    samples = np.full(160, level, dtype=np.int16)
    return RtpPacket(0, seq & 0xFFFF, ts & 0xFFFFFFFF, 1, g711.encode(samples, 0))


def level(frame_samples: np.ndarray) -> int:
    return int(frame_samples[0])


def test_in_order_released_immediately_with_media_time() -> None:
    jb = JitterBuffer()
    for i in range(3):
        jb.push(pkt(10 + i, 5000 + 160 * i), now=0.02 * i)
    frames = jb.pop_ready(0.05)
    assert [f.media_time for f in frames] == [0.0, 0.02, 0.04]
    assert not any(f.concealed for f in frames)
    assert jb.get_timer() is None


def test_reorders() -> None:
    jb = JitterBuffer()
    jb.push(pkt(0, 0, 100), 0.0)
    jb.push(pkt(2, 320, 300), 0.04)
    assert [f.media_time for f in jb.pop_ready(0.04)] == [0.0]
    assert jb.get_timer() == 0.02 + 0.06
    jb.push(pkt(1, 160, 200), 0.05)
    frames = jb.pop_ready(0.05)
    assert [f.media_time for f in frames] == [0.02, 0.04]
    assert jb.stats.lost == 0


def test_gap_filled_with_silence_once_overdue() -> None:
    jb = JitterBuffer()
    jb.push(pkt(0, 0), 0.0)
    jb.push(pkt(2, 320), 0.04)
    jb.pop_ready(0.04)
    assert jb.pop_ready(0.079) == []
    frames = jb.pop_ready(0.08)
    assert [(f.media_time, f.concealed) for f in frames] == [(0.02, True), (0.04, False)]
    assert not frames[0].samples.any()
    assert jb.stats.lost == 1
    # The missing packet arriving now is late, not played.
    jb.push(pkt(1, 160), 0.09)
    assert jb.pop_ready(0.09) == [] and jb.stats.late == 1


def test_repeat_concealment() -> None:
    jb = JitterBuffer(JitterParams(concealment=Concealment.REPEAT))
    jb.push(pkt(0, 0, 2000), 0.0)
    jb.push(pkt(2, 320, 50), 0.04)
    frames = jb.pop_ready(1.0)
    assert frames[1].concealed and np.array_equal(frames[1].samples, frames[0].samples)


def test_no_concealment_without_later_packet() -> None:
    jb = JitterBuffer()
    jb.push(pkt(0, 0), 0.0)
    jb.pop_ready(0.0)
    assert jb.pop_ready(5.0) == [] and jb.get_timer() is None and jb.stats.lost == 0


def test_duplicates_dropped() -> None:
    jb = JitterBuffer()
    jb.push(pkt(0, 0), 0.0)
    jb.push(pkt(1, 160), 0.02)
    jb.push(pkt(1, 160), 0.021)
    jb.pop_ready(0.03)
    jb.push(pkt(0, 0), 0.04)
    assert jb.stats.duplicates == 2 and jb.stats.received == 4


def test_sequence_and_timestamp_wrap() -> None:
    jb = JitterBuffer()
    seqs = [65534, 65535, 0, 1]
    tss = [2**32 - 320, 2**32 - 160, 0, 160]
    for i, (s, t) in enumerate(zip(seqs, tss, strict=True)):
        jb.push(pkt(s, t, 100 * (i + 1)), 0.02 * i)
    frames = jb.pop_ready(0.1)
    assert [round(f.media_time, 3) for f in frames] == [0.0, 0.02, 0.04, 0.06]
    assert [level(f.samples) for f in frames] == [
        level(g711.decode(g711.encode(np.full(1, 100 * (i + 1), np.int16), 0), 0)) for i in range(4)
    ]


def test_bounded_size_forces_gap_closed() -> None:
    jb = JitterBuffer(JitterParams(max_packets=5))
    jb.push(pkt(0, 0), 0.0)
    jb.pop_ready(0.0)
    for s in range(2, 8):  # packet 1 never comes
        jb.push(pkt(s, 160 * s), 0.0)
    assert len(jb) <= 5
    frames = jb.pop_ready(0.0)
    assert frames[0].media_time == 0.04 and len(frames) == 6
    assert jb.stats.lost == 1


def test_large_jump_resyncs_without_mass_concealment() -> None:
    jb = JitterBuffer()
    jb.push(pkt(0, 0), 0.0)
    jb.pop_ready(0.0)
    jb.push(pkt(30000, 160 * 30000), 0.02)
    frames = jb.pop_ready(0.02)
    assert len(frames) == 1 and not frames[0].concealed and jb.stats.resyncs == 1


def test_backward_restart_resyncs_instead_of_dropping_everything_as_late() -> None:
    jb = JitterBuffer()
    for i in range(3):
        jb.push(pkt(5000 + i, 160 * i), 0.02 * i)
    jb.pop_ready(0.06)
    for i in range(3):
        jb.push(pkt(10 + i, 480 + 160 * i), 0.06 + 0.02 * i)
    frames = jb.pop_ready(0.12)
    assert len(frames) == 3 and jb.stats.late == 0 and jb.stats.resyncs == 1
