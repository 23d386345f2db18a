"""The softphone's audio helpers, and its handling of pyVoIP's own buffer class."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from dialer.agentphone import (
    FRAME,
    TRIM_AFTER,
    TRIM_KEEP,
    AgentPhoneError,
    ToneSource,
    WavSink,
    WavSource,
    _pending,
    _trim,
    from_u8,
    read_wav,
    to_u8,
)


def test_u8_conversion_round_trips_within_one_8_bit_step() -> None:
    s = np.array([-32768, -256, -129, -1, 0, 127, 128, 255, 256, 32767], dtype=np.int16)
    u = to_u8(s)
    assert u[0] == 0 and u[4] == 128 and u[-1] == 255  # pyVoIP's 0x80 is silence
    back = from_u8(u)
    assert np.all(np.abs(back[:-1].astype(np.int32) - s[:-1]) <= 128)
    assert back[-1] == 127 * 256  # 8 bits top out one step below int16's maximum
    assert from_u8(b"\x80\x80").tolist() == [0, 0]


def test_tone_source_is_continuous_and_at_its_frequency() -> None:
    src = ToneSource(1200)
    x = np.concatenate([src.read() for _ in range(50)])  # 1 s
    spec = np.abs(np.fft.rfft(x))
    assert np.argmax(spec) == 1200  # 1 Hz bins over one second
    assert 0.29 * 32767 < np.abs(x).max() <= 0.3 * 32767 + 1


def _write_wav(path: Path, rate: int, channels: int, width: int, frames: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)


def test_read_wav_accepts_8k_mono_16_bit_and_names_what_is_wrong_otherwise(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.wav"
    _write_wav(good, 8000, 1, 2, np.arange(10, dtype="<i2").tobytes())
    assert read_wav(good).tolist() == list(range(10))
    bad = tmp_path / "bad.wav"
    _write_wav(bad, 16000, 1, 1, bytes(10))
    with pytest.raises(AgentPhoneError, match=r"16000 Hz, 1 channel\(s\), 8-bit"):
        read_wav(bad)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav")
    with pytest.raises(AgentPhoneError, match="not a readable WAV"):
        read_wav(junk)


def test_wav_source_pads_and_goes_silent_and_sink_writes_8k_int16(tmp_path: Path) -> None:
    src = WavSource(np.ones(FRAME + 10, dtype=np.int16))
    assert src.read().sum() == FRAME and src.read().sum() == 10 and src.read().sum() == 0
    sink = WavSink(tmp_path / "o.wav")
    sink.write(np.arange(FRAME, dtype=np.int16))
    sink.close()
    sink.close()
    assert read_wav(tmp_path / "o.wav").tolist() == list(range(FRAME))


def test_trim_keeps_pyvoip_packet_manager_reading_the_same_stream() -> None:
    pytest.importorskip("pyVoIP.VoIP", reason="pyVoIP is not installed")
    from pyVoIP.RTP import RTPPacketManager

    pm = RTPPacketManager()
    stream = (np.arange(TRIM_AFTER + 4 * 8000) % 251).astype(np.uint8).tobytes()
    ts0 = 123456
    for i in range(0, len(stream), FRAME):  # as its RTP receiver does: by timestamp
        pm.write(ts0 + i, stream[i : i + FRAME])
    got = b"".join(pm.read(FRAME) for _ in range(TRIM_AFTER // FRAME + 5))
    pending = _pending(pm)
    _trim(pm)
    assert len(pm.buffer.getvalue()) == TRIM_KEEP + pending  # memory let go
    assert min(pm.log) >= pm.offset and _pending(pm) == pending
    n = len(got)
    more = (np.arange(n, n + 3 * 8000) % 7).astype(np.uint8).tobytes()
    for i in range(0, len(more), FRAME):
        pm.write(ts0 + len(stream) + i, more[i : i + FRAME])
    while _pending(pm):
        got += pm.read(FRAME)
    assert got == stream + more
