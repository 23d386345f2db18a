"""Scenario generator: people answering, voicemail greetings, fax, dead air.

Deterministic by seed.  The held-out split uses different espeak-ng voices,
different texts, different Asterisk prompts and shifted parameter ranges from the
development split, so a detector tuned on one is measured on the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.corpus.g711 import round_trip
from sim.corpus.sources import RATE, Audio, prompt, sox_effect, speak


@dataclass(frozen=True)
class SplitStyle:
    voices: tuple[str, ...]
    speeds: tuple[int, int]
    pitches: tuple[int, int]
    hellos: tuple[str, ...]
    intros: tuple[str, ...]
    business: tuple[str, ...]
    personal: tuple[str, ...]
    short_vm: tuple[str, ...]
    carrier_prompts: tuple[tuple[str, ...], ...]
    beep_hz: tuple[float, float]


DEV = SplitStyle(
    voices=("en-us", "en-us+f3", "en-gb+m3", "en-us+f2", "en-gb-x-rp+m1", "en-us+m4"),
    speeds=(140, 190),
    pitches=(30, 70),
    hellos=("Hello?", "Hello", "Hi.", "Yeah?", "Hello, yes?", "Hey."),
    intros=("Hi, this is Mark.", "Hello, Anna speaking.", "Yes, hello?", "Hi, who is it?"),
    business=(
        "Good afternoon, Smith and Company, how can I help?",
        "Acme plumbing, this is Dave.",
    ),
    personal=(
        "Hi, you have reached John. I can't take your call right now. Please leave a message "
        "after the tone and I will get back to you.",
        "Hey, it's Sarah. Leave me a message.",
        "You have reached the Miller family. We are not home right now. Please leave your name, "
        "number and a short message, and we will call you back as soon as we can. Thanks!",
        "Hello, this is Doctor Patel's office. Our office is closed. If this is an emergency, "
        "please hang up and dial nine one one.",
        "Hi there! Sorry I missed you. Leave a message.",
    ),
    short_vm=("Leave a message.", "Please leave a message."),
    carrier_prompts=(
        ("vm-theperson", "vm-isunavail"),
        ("vm-nobodyavail",),
        ("vm-theperson", "vm-isonphone"),
        ("vm-intro",),
    ),
    beep_hz=(400.0, 2000.0),
)

HELDOUT = SplitStyle(
    voices=("en-gb-scotland+f4", "en-029+m2", "en-gb-x-gbclan+f1", "en+m7", "en-us+klatt"),
    speeds=(130, 200),
    pitches=(25, 75),
    hellos=("Hello?", "Yes?", "Hullo.", "Speaking.", "Hi there?"),
    intros=("Hello, this is Peter.", "Yep, Jane here.", "Hello? Who's calling?"),
    business=(
        "Thanks for calling Baker's, Tom speaking.",
        "Hello, reception, how may I help you?",
    ),
    personal=(
        "Hello, you've reached Emma and Paul. We can't come to the phone, so leave a message "
        "and we'll ring you back.",
        "This is Greg. Not here. Message after the beep.",
        "Hi, you have called Linda at Northside Realty. I am away from my desk or on another "
        "call. Please leave your details and I will return your call today.",
        "Welcome to the voicemail of Ahmed. Please leave a message.",
    ),
    short_vm=("Leave a message.", "Message please.", "Talk after the beep."),
    carrier_prompts=(
        ("vm-nobodyavail", "vm-tocallback"),
        ("vm-theperson", "vm-rec-busy"),
        ("vm-intro", "vm-star-cancel"),
    ),
    beep_hz=(420.0, 1950.0),
)

SPLITS = {"dev": DEV, "heldout": HELDOUT}

# Share of clips per scenario: (kind, label, weight).
SCENARIOS: tuple[tuple[str, str, float], ...] = (
    ("hello", "human", 0.18),
    ("intro", "human", 0.08),
    ("business", "human", 0.06),
    ("two_hellos", "human", 0.05),
    ("late_pickup", "human", 0.04),
    ("noisy_room", "human", 0.05),
    ("personal_vm", "machine", 0.17),
    ("carrier_vm", "machine", 0.10),
    ("short_vm", "machine", 0.06),
    ("fake_hello", "machine", 0.03),
    ("music_bed", "machine", 0.05),
    ("fax", "fax", 0.06),
    ("dead_air", "silence", 0.07),
)


@dataclass(frozen=True)
class Clip:
    name: str
    kind: str
    label: str
    samples: npt.NDArray[np.int16]
    beep_ms: int | None
    # people only: when the first thing they say ends (ms after answer), from the
    # generator itself.  A detector that waits for the end of that utterance cannot
    # call the person sooner, so its distribution bounds the people decision latency.
    first_speech_end_ms: int | None = None


def _sil(seconds: float) -> Audio:
    return np.zeros(int(seconds * RATE))


def _tone(freqs: Sequence[float], seconds: float, level: float = 0.3) -> Audio:
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs) * (level / len(freqs))
    ramp = min(len(t), 40)
    env = np.ones(len(t))
    env[:ramp] = np.linspace(0, 1, ramp)
    env[-ramp:] = np.linspace(1, 0, ramp)
    return np.asarray(x * env, dtype=np.float64)


class _Maker:
    def __init__(self, style: SplitStyle, rng: np.random.Generator) -> None:
        self.s = style
        self.rng = rng

    def pick(self, seq: tuple[str, ...]) -> str:
        return seq[int(self.rng.integers(len(seq)))]

    def voice(self, text: str) -> Audio:
        s = self.s
        x = speak(
            text,
            self.pick(s.voices),
            int(self.rng.integers(*s.speeds)),
            int(self.rng.integers(*s.pitches)),
        )
        return x * (0.5 / max(float(np.abs(x).max()), 1e-6))

    def beep(self) -> tuple[Audio, float]:
        lo, hi = self.s.beep_hz
        n = int(self.rng.choice([1, 1, 1, 2, 3]))
        dur = float(self.rng.uniform(0.2, 1.0))
        if n == 2 and self.rng.random() < 0.5:  # dual tone played together
            return _tone([self.rng.uniform(lo, hi), self.rng.uniform(lo, hi)], dur), dur
        parts = [_tone([self.rng.uniform(lo, hi)], dur / n) for _ in range(n)]
        x = np.concatenate(parts)
        return x, len(x) / RATE

    def music(self, seconds: float) -> Audio:
        notes: list[Audio] = []
        total = 0
        while total < seconds * RATE:
            base = 220.0 * 2 ** (float(self.rng.integers(0, 12)) / 12)
            chord = [base, base * 1.26, base * 1.5]
            notes.append(_tone(chord, float(self.rng.uniform(0.3, 0.8)), 0.15))
            total += len(notes[-1])
        x = np.concatenate(notes)
        return np.pad(x, (0, max(0, int(seconds * RATE) + 1 - len(x))))

    def human(self, kind: str) -> tuple[Audio, float]:
        """A person answering, and when their first utterance ends (s after answer)."""
        r = self.rng
        lead = r.uniform(0.1, 0.6)
        if kind == "late_pickup":
            lead = r.uniform(1.2, 3.0)
        text = {
            "hello": self.pick(self.s.hellos),
            "intro": self.pick(self.s.intros),
            "business": self.pick(self.s.business),
        }.get(kind, self.pick(self.s.hellos))
        parts = [_sil(lead), self.voice(text)]
        first_end = (len(parts[0]) + len(parts[1])) / RATE
        if kind == "two_hellos":
            parts += [_sil(r.uniform(0.9, 1.6)), self.voice(self.pick(self.s.hellos))]
        parts.append(_sil(r.uniform(2.0, 3.0)))
        if r.random() < 0.5:
            parts += [self.voice(self.pick(self.s.hellos)), _sil(1.0)]
        x = np.concatenate(parts)
        if kind == "noisy_room":
            noise = r.normal(0, 1, len(x))
            babble = sox_effect(noise, ["lowpass", "800"])
            gain = 10 ** (r.uniform(-30, -20) / 20)
            x = x + babble * gain / max(float(np.std(babble)), 1e-9) * 0.5
        return x, first_end

    def machine(self, kind: str) -> tuple[Audio, float | None]:
        r = self.rng
        parts = [_sil(r.uniform(0.1, 0.9))]
        if kind == "carrier_vm":
            for name in self.s.carrier_prompts[int(r.integers(len(self.s.carrier_prompts)))]:
                parts += [prompt(name) * 0.8, _sil(r.uniform(0.2, 0.5))]
        elif kind == "short_vm":
            parts.append(self.voice(self.pick(self.s.short_vm)))
        elif kind == "fake_hello":
            parts += [
                self.voice(self.pick(self.s.hellos)),
                _sil(r.uniform(1.5, 2.5)),
                self.voice("Just kidding, I'm not here. Leave a message."),
            ]
        else:
            parts.append(self.voice(self.pick(self.s.personal)))
        greeting = np.concatenate(parts)
        if kind == "music_bed":
            greeting = greeting + self.music(len(greeting) / RATE)[: len(greeting)]
        with_beep = kind in ("short_vm", "fake_hello") or r.random() < 0.8
        tail = [greeting, _sil(r.uniform(0.1, 0.7))]
        beep_end: float | None = None
        if with_beep:
            b, _ = self.beep()
            tail.append(b)
            beep_end = sum(len(p) for p in tail) / RATE
        tail.append(_sil(r.uniform(2.0, 3.0)))
        return np.concatenate(tail), beep_end

    def fax(self) -> Audio:
        r = self.rng
        if r.random() < 0.5:  # calling fax: CNG 0.5 s on, 3 s off
            parts = [_sil(r.uniform(0.2, 1.0))]
            for _ in range(3):
                parts += [_tone([1100.0], 0.5), _sil(3.0)]
            return np.concatenate(parts)
        # answering fax: CED 2100 Hz with phase reversals every 450 ms, then V.21 flags
        t = np.arange(int(r.uniform(2.6, 3.5) * RATE)) / RATE
        phase = np.pi * (np.floor(t / 0.45) % 2) if r.random() < 0.5 else 0.0
        ced = 0.3 * np.sin(2 * np.pi * 2100.0 * t + phase)
        bits = r.integers(0, 2, int(2.0 * 300))
        f = np.repeat(np.where(bits == 1, 1650.0, 1850.0), RATE // 300)
        fsk = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / RATE)
        return np.concatenate([_sil(r.uniform(0.2, 1.0)), ced, _sil(0.075), fsk, _sil(1.0)])

    def line(self, x: Audio) -> npt.NDArray[np.int16]:
        """Phone line: band limit, gain changes, line noise, hum, G.711 round trip."""
        r = self.rng
        x = sox_effect(x, ["highpass", "300", "lowpass", "3400"])
        gain = 10 ** (r.uniform(-14, 2) / 20)
        env = np.full(len(x), gain)
        if r.random() < 0.3:  # a gain step part-way through (AGC, handset moved)
            env[int(r.integers(len(x))) :] *= 10 ** (r.uniform(-6, 6) / 20)
        x = x * env + r.normal(0, 10 ** (r.uniform(-66, -50) / 20), len(x))
        if r.random() < 0.2:
            t = np.arange(len(x)) / RATE
            x = x + 10 ** (r.uniform(-55, -45) / 20) * np.sin(2 * np.pi * 60.0 * t)
        pcm = np.clip(x * 32767.0, -32768, 32767).astype(np.int16)
        return round_trip(pcm)


def generate(n: int, seed: int, split: str = "dev") -> list[Clip]:
    """``n`` clips of the named split (``dev`` or ``heldout``), deterministic by seed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    rng = np.random.default_rng([seed, 0 if split == "dev" else 1])
    maker = _Maker(SPLITS[split], rng)
    weights = np.array([w for _, _, w in SCENARIOS])
    counts = np.floor(weights / weights.sum() * n).astype(int)
    for i in np.argsort(-weights)[: n - int(counts.sum())]:
        counts[i] += 1
    kinds = [(k, lab) for (k, lab, _), c in zip(SCENARIOS, counts, strict=True) for _ in range(c)]
    order = rng.permutation(len(kinds))
    clips = []
    for idx, j in enumerate(order):
        kind, label = kinds[j]
        beep: float | None = None
        first_end: float | None = None
        if label == "human":
            audio, first_end = maker.human(kind)
        elif label == "machine":
            audio, beep = maker.machine(kind)
        elif label == "fax":
            audio = maker.fax()
        else:
            audio = _sil(rng.uniform(6.0, 9.0))
        clips.append(
            Clip(
                name=f"{split}_{idx:04d}.wav",
                kind=kind,
                label=label,
                samples=maker.line(audio),
                beep_ms=None if beep is None else round(beep * 1000),
                first_speech_end_ms=None if first_end is None else round(first_end * 1000),
            )
        )
    return clips
