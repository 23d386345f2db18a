"""The baseline's documented causes, on hand-made energy patterns.

A frame of constant amplitude A has mean absolute amplitude A: loud frames
(1000) are voice, quiet ones (10) silence against the default threshold 256.
"""

from __future__ import annotations

import numpy as np

from amd.asterisk import AsteriskDetector, AsteriskParams
from amd.types import Label


def _pattern(*spans: tuple[str, int]) -> list[np.ndarray]:
    out = []
    for kind, ms in spans:
        level = 1000 if kind == "v" else 10
        out += [np.full(160, level, dtype=np.int16)] * (ms // 20)
    return out


def _run(frames: list[np.ndarray], params: AsteriskParams | None = None):
    det = AsteriskDetector(params)
    for f in frames:
        v = det.feed(f)
        if v is not None:
            return v
    return det.finish()


def test_initial_silence() -> None:
    v = _run(_pattern(("s", 3000)))
    assert (v.label, v.cause, v.decision_ms) == (Label.MACHINE, "INITIALSILENCE-2500-2500", 2500)


def test_human_short_greeting_then_silence() -> None:
    v = _run(_pattern(("s", 400), ("v", 400), ("s", 1000)))
    assert (v.label, v.cause) == (Label.HUMAN, "HUMAN-800-800")
    assert v.decision_ms == 400 + 400 + 800


def test_long_greeting() -> None:
    v = _run(_pattern(("s", 200), ("v", 2000)))
    assert (v.label, v.cause) == (Label.MACHINE, "LONGGREETING-1500-1500")


def test_maxwords_needs_more_than_the_maximum() -> None:
    words = [("v", 200), ("s", 100)] * 3
    v = _run(_pattern(("s", 200), *words, ("s", 2000)))
    assert (v.label, v.cause) == (Label.MACHINE, "MAXWORDS-3-2")
    two = _run(_pattern(("s", 200), ("v", 200), ("s", 100), ("v", 200), ("s", 1000)))
    assert two.label is Label.HUMAN


def test_short_blips_are_not_words() -> None:
    blips = [("v", 60), ("s", 100)] * 6  # shorter than minimum_word_length
    v = _run(_pattern(("s", 100), *blips, ("s", 3000)))
    assert v.label is Label.MACHINE and v.cause.startswith("INITIALSILENCE")


def test_maxwordlength() -> None:
    p = AsteriskParams(greeting=10000, maximum_word_length=3000, total_analysis_time=8000)
    v = _run(_pattern(("s", 100), ("v", 4000)), p)
    assert (v.label, v.cause) == (Label.MACHINE, "MAXWORDLENGTH-3000")


def test_toolong_and_hangup() -> None:
    p = AsteriskParams(initial_silence=9000)
    v = _run(_pattern(("s", 6000)), p)
    assert (v.label, v.cause) == (Label.NOTSURE, "TOOLONG-5000")
    v = _run(_pattern(("s", 300), ("v", 200)))
    assert (v.label, v.cause) == (Label.NOTSURE, "HANGUP")
