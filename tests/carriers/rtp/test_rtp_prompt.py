from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from carriers.rtp import g711
from carriers.rtp.prompt import PromptError, load_wav


def sine(rate: int, secs: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * secs)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def dominant_freq(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x.astype(float)))
    return float(np.argmax(spec) * 8000 / len(x))


@pytest.mark.parametrize(
    ("rate", "dtype"),
    [
        (8000, np.int16),
        (16000, np.int16),
        (44100, np.int32),
        (48000, np.float32),
        (22050, np.uint8),
    ],
)
def test_formats_and_rates_become_8k_int16(tmp_path: Path, rate: int, dtype: type) -> None:
    x = sine(rate, 0.5)
    if dtype is np.uint8:
        data = np.round(x * 127 + 128).astype(np.uint8)
    elif dtype is np.float32:
        data = x.astype(np.float32)
    else:
        data = np.round(x * np.iinfo(dtype).max).astype(dtype)
    f = tmp_path / "p.wav"
    wavfile.write(f, rate, data)
    p = load_wav(f)
    assert p.samples.dtype == np.int16
    assert abs(p.duration_s - 0.5) < 0.021 and len(p.samples) % 160 == 0
    assert abs(dominant_freq(p.samples[:4000]) - 440) < 4
    assert 0.4 * 32767 < np.abs(p.samples).max() < 0.6 * 32767
    assert all(len(c) == 160 for c in p.pcmu + p.pcma)
    assert b"".join(p.payloads(0)) == g711.encode(p.samples, 0)
    assert b"".join(p.payloads(8)) == g711.encode(p.samples, 8)


def test_stereo_mixed_to_mono(tmp_path: Path) -> None:
    left = np.round(sine(8000, 0.1) * 32767).astype(np.int16)
    f = tmp_path / "s.wav"
    wavfile.write(f, 8000, np.stack([left, np.zeros_like(left)], axis=1))
    p = load_wav(f)
    assert np.abs(p.samples[: len(left)].astype(int) - left // 2).max() <= 1


def test_24bit_file(tmp_path: Path) -> None:
    # Hand-written 24-bit PCM WAV: scipy writes no 24-bit, but reads it.
    x = np.round(sine(8000, 0.1) * (2**23 - 1)).astype(np.int32)
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in x)
    hdr = b"RIFF" + (36 + len(raw)).to_bytes(4, "little") + b"WAVEfmt "
    hdr += (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    hdr += (8000).to_bytes(4, "little") + (24000).to_bytes(4, "little")
    hdr += (3).to_bytes(2, "little") + (24).to_bytes(2, "little")
    f = tmp_path / "b24.wav"
    f.write_bytes(hdr + b"data" + len(raw).to_bytes(4, "little") + raw)
    p = load_wav(f)
    expect = np.round(x / 2**23 * 32767).astype(np.int16)
    assert np.abs(p.samples[: len(x)].astype(int) - expect).max() <= 1


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match=r"missing\.wav: no such file"):
        load_wav(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not a wav file at all")
    with pytest.raises(PromptError, match=r"bad\.wav: not a readable WAV"):
        load_wav(bad)
    empty = tmp_path / "empty.wav"
    wavfile.write(empty, 8000, np.zeros(0, dtype=np.int16))
    with pytest.raises(PromptError, match=r"empty\.wav: contains no audio"):
        load_wav(empty)
