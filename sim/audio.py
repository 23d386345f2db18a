"""Synthetic greetings for the simulated called parties.

Speech-like bursts (harmonic voiced sounds with syllable envelopes), a live
"Hello?" pattern and machine greetings ending in a beep, passed through G.711
mu-law with line noise, so detectors hear telephone audio rather than labels.
The realistic corpus in ``sim.corpus`` (espeak-ng voices, recorded prompts)
replaces these where it is available.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from carriers.base import SAMPLE_RATE, AudioClip


def _voiced(rng: np.random.Generator, seconds: float) -> npt.NDArray[np.float64]:
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(100, 230) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    sig = np.zeros(n)
    for k in range(1, 14):
        amp = 1.0 / k * (1.5 if 500 < k * 160 < 1500 else 1.0)
        sig += amp * np.sin(k * phase)
    syll = rng.uniform(3.0, 5.5)  # syllables per second
    env = np.clip(np.sin(np.pi * syll * t + rng.uniform(0, np.pi)) ** 2, 0, 1)
    return np.asarray(sig * env, dtype=np.float64)


def _speech(rng: np.random.Generator, seconds: float, pauses: int) -> np.ndarray:
    """Words separated by short pauses."""
    parts: list[np.ndarray] = []
    remaining = seconds
    for i in range(pauses + 1):
        dur = remaining / (pauses + 1 - i)
        parts.append(_voiced(rng, dur))
        remaining -= dur
        if i < pauses:
            parts.append(np.zeros(int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)))
    return np.concatenate(parts)


def sine(freq: float, seconds: float, level: float) -> npt.NDArray[np.int16]:
    """A steady tone at ``level`` (int16 peak): what simulated phones and people say
    when a test needs to find their audio at the other end."""
    return (level * _tone(freq, seconds)).astype(np.int16)


def _tone(freq: float, seconds: float) -> npt.NDArray[np.float64]:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.asarray(np.sin(2 * np.pi * freq * t), dtype=np.float64)


def _mulaw_roundtrip(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    mu = 255.0
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round(y * 127) / 127
    return np.asarray(np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu, dtype=np.float64)


def _finish(rng: np.random.Generator, x: np.ndarray, level: float) -> np.ndarray:
    x = x / (np.max(np.abs(x)) + 1e-9) * level
    x = x + rng.normal(0, 0.002, len(x))  # line noise
    x = _mulaw_roundtrip(np.clip(x, -1, 1))
    return np.asarray(np.clip(x * 32767, -32768, 32767), dtype=np.int16)


def peak_hz(samples: npt.NDArray[np.int16] | npt.NDArray[np.float64]) -> float:
    """The strongest frequency in a stretch of 8 kHz audio (8 Hz resolution or
    better): what tests and the simulator use to tell one tone from another."""
    x = np.asarray(samples, dtype=np.float64)
    size = max(1024, len(x))
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), size))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum)) * 8000 / size


def quiet_before_s(samples: npt.NDArray[np.int16], t: float, loud_rms: float = 300.0) -> float:
    """How long the audio had been quiet at ``t`` seconds: ``t`` minus the end of
    the last 20 ms frame louder than ``loud_rms`` before it (0 while speech goes
    on at ``t``; ``t`` when nothing was said).  For a person waiting for an agent,
    the silence they sat through after their last words."""
    n = min(len(samples) // 160, int(t * 50))
    if n <= 0:
        return max(0.0, t)
    frames = samples[: n * 160].astype(np.float64).reshape(n, 160)
    loud = np.flatnonzero(np.sqrt(np.mean(frames * frames, axis=1)) >= loud_rms)
    if len(loud) == 0:
        return t
    return max(0.0, t - (int(loud[-1]) + 1) * 160 / 8000)


def speech_end_s(samples: npt.NDArray[np.int16], loud_rms: float = 300.0) -> float:
    """Where the speech in a clip stops: the end of its last 20 ms frame louder than
    ``loud_rms`` (0 when nothing is)."""
    whole = (len(samples) // 160) * 160 / SAMPLE_RATE
    return whole - quiet_before_s(samples, whole, loud_rms)


def human_clip(rng: np.random.Generator, idx: int) -> AudioClip:
    lead = rng.uniform(0.15, 0.9)
    words = rng.uniform(0.35, 1.1)
    x = np.concatenate(
        [
            np.zeros(int(lead * SAMPLE_RATE)),
            _speech(rng, words, int(rng.integers(0, 2))),
            np.zeros(int(3.0 * SAMPLE_RATE)),
        ]
    )
    return AudioClip(f"synth-human-{idx}", _finish(rng, x, rng.uniform(0.2, 0.6)), "human")


def machine_clip(rng: np.random.Generator, idx: int) -> AudioClip:
    lead = rng.uniform(0.2, 1.0)
    greeting = rng.uniform(2.5, 9.0)
    beep = rng.uniform(0.25, 0.8)
    x = np.concatenate(
        [
            np.zeros(int(lead * SAMPLE_RATE)),
            _speech(rng, greeting, int(greeting * rng.uniform(1.0, 2.0))),
            np.zeros(int(rng.uniform(0.2, 0.6) * SAMPLE_RATE)),
            0.5 * _tone(rng.uniform(440, 1800), beep),
            np.zeros(int(1.0 * SAMPLE_RATE)),
        ]
    )
    return AudioClip(f"synth-machine-{idx}", _finish(rng, x, rng.uniform(0.2, 0.6)), "machine")


def fax_clip(rng: np.random.Generator, idx: int) -> AudioClip:
    x = np.concatenate([np.zeros(int(0.3 * SAMPLE_RATE)), 0.5 * _tone(2100.0, 3.2)])
    return AudioClip(f"synth-fax-{idx}", _finish(rng, x, 0.5), "fax")


def message_clip(seconds: float, name: str) -> AudioClip:
    """A prompt of the given length (the abandon message, a voicemail drop)."""
    rng = np.random.default_rng(0)
    return AudioClip(name, _finish(rng, _speech(rng, seconds, int(seconds * 2)), 0.4), "prompt")


class ClipBank:
    """A fixed set of greetings per kind; called parties draw from it."""

    def __init__(
        self, rng: np.random.Generator, per_kind: int, clips: list[AudioClip] | None = None
    ) -> None:
        self.source = "synthetic"
        if clips:
            self.source = "corpus"
            self.human = [c for c in clips if c.label == "human"]
            self.machine = [c for c in clips if c.label == "machine"]
            self.fax = [c for c in clips if c.label == "fax"]
        if not clips or not (self.human and self.machine and self.fax):
            self.source = "synthetic"
            self.human = [human_clip(rng, i) for i in range(per_kind)]
            self.machine = [machine_clip(rng, i) for i in range(per_kind)]
            self.fax = [fax_clip(rng, i) for i in range(max(1, per_kind // 8))]

    def pick(self, kind: str, rng: np.random.Generator) -> AudioClip:
        pool = {"human": self.human, "machine": self.machine, "fax": self.fax}[kind]
        return pool[int(rng.integers(len(pool)))]


def corpus_clips(n: int, seed: int) -> tuple[list[AudioClip], str]:
    """Held-out corpus clips (cached under $DIALER_CACHE or ./.cache), or an empty
    list and the reason when the tools that make them are missing."""
    import os
    from pathlib import Path

    from sim.corpus import MissingTool, check_tools, load_or_build

    try:
        check_tools()
    except MissingTool as exc:
        return [], f"{exc}; using synthetic greetings instead"
    cache = Path(os.environ.get("DIALER_CACHE", ".cache")) / f"corpus-heldout-{n}-{seed}"
    try:
        return load_or_build(cache, n, seed, "heldout"), ""
    except (MissingTool, OSError) as exc:
        return [], f"corpus audio unavailable ({exc}); using synthetic greetings"
