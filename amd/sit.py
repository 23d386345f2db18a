"""Special Information Tone detector for early media (SIT there means a bad number).

SIT is three tones in sequence, about 913.8 or 985.2 Hz, then 1370.6 or 1428.5 Hz,
then 1776.7 Hz, each 274 or 380 ms.  Fed 20 ms frames like the AMD detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from amd.tones import analyse
from amd.types import FRAME_MS, FRAME_SAMPLES

_BANDS = ((913.8, 985.2), (1370.6, 1428.5), (1776.7,))


@dataclass(frozen=True, slots=True)
class SitParams:
    tolerance_hz: float = 30.0
    min_tone_ms: int = 200  # each tone (nominal 274 or 380 ms)
    max_tone_ms: int = 460
    max_gap_ms: int = 60
    purity: float = 0.8


@dataclass(frozen=True, slots=True)
class SitTone:
    detected_ms: int  # media time when the third tone was confirmed
    frequencies: tuple[float, float, float]


class SitDetector:
    """``feed(frame) -> SitTone | None``; reports once."""

    def __init__(self, params: SitParams | None = None) -> None:
        self.p = params or SitParams()
        self._t = 0
        self._stage = 0  # how many of the three tones have been heard
        self._seg_band = -1
        self._seg_ms = 0
        self._seg_freqs: list[float] = []
        self._gap = 0
        self._found: list[float] = []
        self._done = False

    def _band(self, f: float) -> int:
        for i, band in enumerate(_BANDS):
            if any(abs(f - c) <= self.p.tolerance_hz for c in band):
                return i
        return -1

    def _close_segment(self) -> None:
        p = self.p
        ok = p.min_tone_ms <= self._seg_ms <= p.max_tone_ms
        if ok and self._seg_band == self._stage:
            self._found.append(float(np.mean(self._seg_freqs)))
            self._stage += 1
        elif ok and self._seg_band == 0:
            self._found = [float(np.mean(self._seg_freqs))]
            self._stage = 1
        else:
            self._found, self._stage = [], 0
        self._seg_band, self._seg_ms, self._seg_freqs = -1, 0, []

    def feed(self, frame: npt.NDArray[np.int16]) -> SitTone | None:
        if len(frame) != FRAME_SAMPLES:
            raise ValueError(f"frame must hold {FRAME_SAMPLES} samples, got {len(frame)}")
        if self._done:
            return None
        self._t += FRAME_MS
        x = frame.astype(np.float64)
        tone = analyse(x, self.p.purity) if float(np.dot(x, x)) > 1e4 * FRAME_SAMPLES else None
        band = -1 if tone is None or tone.f2 else self._band(tone.f1)
        if band >= 0 and band == self._seg_band:
            self._seg_ms += FRAME_MS
            self._seg_freqs.append(tone.f1 if tone else 0.0)
            self._gap = 0
        elif band >= 0:
            if self._seg_band >= 0:
                self._close_segment()
            self._seg_band, self._seg_ms = band, FRAME_MS
            self._seg_freqs = [tone.f1 if tone else 0.0]
            self._gap = 0
        else:
            self._gap += FRAME_MS
            if self._seg_band >= 0 and self._gap > self.p.max_gap_ms:
                self._close_segment()
            elif self._seg_band < 0 and self._gap > self.p.max_gap_ms and self._stage:
                self._found, self._stage = [], 0
        if self._stage == 2 and self._seg_band == 2 and self._seg_ms >= self.p.min_tone_ms:
            self._done = True
            f1, f2 = self._found
            return SitTone(self._t, (f1, f2, float(np.mean(self._seg_freqs))))
        return None
