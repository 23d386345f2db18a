"""Hand-made test signals at 8 kHz int16."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

RATE = 8000


def silence(s: float) -> np.ndarray:
    return np.zeros(int(s * RATE), dtype=np.float64)


def tone(freqs: list[float], s: float, level: float = 0.3, phase_flip_s: float = 0.0) -> np.ndarray:
    t = np.arange(int(s * RATE)) / RATE
    phase = np.pi * (np.floor(t / phase_flip_s) % 2) if phase_flip_s else 0.0
    return sum(np.sin(2 * np.pi * f * t + phase) for f in freqs) * level / len(freqs)


def voice(s: float, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Speech-like: a glottal pulse train with gliding pitch through two formants,
    amplitude-modulated at a syllable rate."""
    rng = np.random.default_rng(seed)
    n = int(s * RATE)
    t = np.arange(n) / RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = np.cumsum(f0 / RATE)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    x = pulses + 0.05 * rng.normal(size=n)
    for fc, bw in ((700.0, 130.0), (1200.0, 200.0)):
        r = np.exp(-np.pi * bw / RATE)
        x = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / RATE), r * r], x)
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    x = x * env
    return x / np.abs(x).max() * level


def pcm(*parts: np.ndarray, noise_db: float = -60.0, seed: int = 1) -> np.ndarray:
    x = np.concatenate(parts)
    x = x + np.random.default_rng(seed).normal(0, 10 ** (noise_db / 20), len(x))
    return np.clip(x * 32767, -32768, 32767).astype(np.int16)


def frames(x: np.ndarray):
    for i in range(len(x) // 160):
        yield x[i * 160 : (i + 1) * 160]


def run(det, x: np.ndarray) -> list:
    """All verdicts a detector gives for a clip, then finish()."""
    out = []
    for f in frames(x):
        v = det.feed(f)
        if v is not None:
            out.append(v)
    out.append(det.finish())
    return out
