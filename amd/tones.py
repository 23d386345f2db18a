"""Per-frame tone analysis: is a 20 ms frame one or two stable, narrow peaks?

A 160-point windowed real FFT (50 Hz bins) with parabolic interpolation of the
peak gives the frequency within a few Hz; "purity" is the share of the frame's
energy in the strongest peak (or two peaks, for dual-tone beeps).  Speech and
noise spread their energy over many bins; tones do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from amd.types import FRAME_SAMPLES, SAMPLE_RATE

_WINDOW = np.hanning(FRAME_SAMPLES).astype(np.float64)
_BIN_HZ = SAMPLE_RATE / FRAME_SAMPLES
_LO_BIN = 5  # 250 Hz
_HI_BIN = 64  # 3200 Hz


@dataclass(frozen=True, slots=True)
class ToneFrame:
    f1: float  # strongest peak, Hz
    f2: float  # second peak, Hz (0.0 when the frame is a single tone)
    purity: float


def _interp(power: npt.NDArray[np.float64], k: int) -> float:
    # parabolic interpolation on log power: only the three bins around the peak
    a = math.log(float(power[k - 1]) + 1e-9)
    b = math.log(float(power[k]) + 1e-9)
    c = math.log(float(power[k + 1]) + 1e-9)
    den = a - 2.0 * b + c
    shift = 0.5 * (a - c) / den if den != 0.0 else 0.0
    return float((k + shift) * _BIN_HZ)


def _peak(power: npt.NDArray[np.float64], k: int) -> float:
    return float(power[k - 1]) + float(power[k]) + float(power[k + 1])


def analyse(frame: npt.NDArray[np.float64], purity: float) -> ToneFrame | None:
    """The frame's tone(s), or None when it is not tonal enough."""
    # This runs on every loud frame, so it sticks to a few whole-array numpy calls.
    spec = np.fft.rfft(frame * _WINDOW)
    power = spec.real * spec.real + spec.imag * spec.imag
    total = float(power.sum()) - float(power[0])
    if total <= 0.0:
        return None
    band = power[_LO_BIN:_HI_BIN]
    k1 = int(band.argmax()) + _LO_BIN
    p1 = _peak(power, k1)
    if p1 >= purity * total:
        return ToneFrame(_interp(power, k1), 0.0, p1 / total)
    if p1 < 0.5 * purity * total:
        return None  # a second peak about as strong as the first could not reach it
    f1 = _interp(power, k1)
    masked = band.copy()
    masked[max(0, k1 - 2 - _LO_BIN) : k1 + 3 - _LO_BIN] = 0.0
    k2 = int(masked.argmax()) + _LO_BIN
    p2 = _peak(power, k2)
    if p1 + p2 >= purity * total and p2 >= 0.1 * p1:
        return ToneFrame(f1, _interp(power, k2), (p1 + p2) / total)
    return None
