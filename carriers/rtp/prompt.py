"""Prompts: a WAV file converted once, at load time, to what the wire needs.

Any sample rate, 8/16/24/32-bit integer or float, mono or multi-channel is
read with scipy, mixed down to mono, resampled to 8 kHz with a polyphase filter
and pre-encoded into 160-sample PCMU and PCMA payloads, so playing a prompt on
many calls costs no conversion work.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.io import wavfile
from scipy.signal import resample_poly

from carriers.rtp import g711
from carriers.rtp.jitter import FRAME_SAMPLES, SAMPLE_RATE


class PromptError(ValueError):
    """A prompt file that cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    samples: npt.NDArray[np.int16]  # 8 kHz mono, padded to whole 20 ms frames
    pcmu: tuple[bytes, ...]
    pcma: tuple[bytes, ...]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def payloads(self, payload_type: int) -> tuple[bytes, ...]:
        if payload_type == g711.PT_PCMU:
            return self.pcmu
        if payload_type == g711.PT_PCMA:
            return self.pcma
        raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)")


def to_float(data: npt.NDArray[np.generic], where: str) -> npt.NDArray[np.float64]:
    """Samples of any WAV dtype as float64 in [-1, 1]."""
    kind, size = data.dtype.kind, data.dtype.itemsize
    if kind == "f":
        return data.astype(np.float64)
    if kind == "u" and size == 1:  # 8-bit WAV is unsigned with a 128 offset
        return (data.astype(np.float64) - 128.0) / 128.0
    if kind == "i":
        # scipy returns 24-bit audio left-justified in int32, so int32 scale fits it too.
        return data.astype(np.float64) / float(2 ** (8 * size - 1))
    raise PromptError(f"{where}: unsupported sample format {data.dtype}")


def convert(
    data: npt.NDArray[np.generic], rate: int, where: str = "audio"
) -> npt.NDArray[np.int16]:
    """Any-rate, any-format, any-channel audio to 8 kHz mono int16."""
    if rate <= 0:
        raise PromptError(f"{where}: sample rate {rate} is not positive")
    x = to_float(data, where)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise PromptError(f"{where}: unexpected array shape {data.shape}")
    if rate != SAMPLE_RATE and len(x):
        ratio = Fraction(SAMPLE_RATE, rate)
        x = resample_poly(x, ratio.numerator, ratio.denominator)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def from_samples(name: str, samples: npt.NDArray[np.int16]) -> Prompt:
    """Pre-encode 8 kHz int16 samples (padded with silence to whole frames)."""
    rem = len(samples) % FRAME_SAMPLES
    if rem:
        samples = np.concatenate([samples, np.zeros(FRAME_SAMPLES - rem, dtype=np.int16)])
    samples = samples.copy()
    samples.flags.writeable = False

    def chunks(pt: int) -> tuple[bytes, ...]:
        data = g711.encode(samples, pt)
        return tuple(data[i : i + FRAME_SAMPLES] for i in range(0, len(data), FRAME_SAMPLES))

    return Prompt(name, samples, chunks(g711.PT_PCMU), chunks(g711.PT_PCMA))


def load_wav(path: str | Path) -> Prompt:
    """Read a WAV file into a :class:`Prompt`; :class:`PromptError` names the file."""
    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(p)
    except FileNotFoundError:
        raise PromptError(f"{p}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise PromptError(f"{p}: not a readable WAV file ({exc})") from exc
    samples = convert(np.asarray(data), int(rate), str(p))
    if not len(samples):
        raise PromptError(f"{p}: contains no audio")
    return from_samples(p.stem, samples)
