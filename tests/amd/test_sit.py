from __future__ import annotations

import pytest
from signals import frames, pcm, silence, tone

from amd.sit import SitDetector


def _detect(x):
    det = SitDetector()
    hits = [r for f in frames(x) if (r := det.feed(f)) is not None]
    return hits


@pytest.mark.parametrize(
    ("f1", "f2", "d1", "d2", "d3"),
    [
        (913.8, 1370.6, 0.274, 0.274, 0.380),
        (985.2, 1428.5, 0.380, 0.274, 0.380),
        (913.8, 1428.5, 0.274, 0.380, 0.380),
    ],
)
def test_sit_sequences_are_detected(f1: float, f2: float, d1: float, d2: float, d3: float) -> None:
    x = pcm(silence(0.2), tone([f1], d1), tone([f2], d2), tone([1776.7], d3), silence(1.0))
    hits = _detect(x)
    assert len(hits) == 1
    got = hits[0].frequencies
    assert abs(got[0] - f1) < 15 and abs(got[1] - f2) < 15 and abs(got[2] - 1776.7) < 15


def test_beep_and_ringback_are_not_sit() -> None:
    assert _detect(pcm(tone([1000.0], 0.5), silence(1.0))) == []
    ring = tone([440.0, 480.0], 2.0)
    assert _detect(pcm(ring, silence(4.0), ring)) == []
    # the right tones in the wrong order
    assert _detect(pcm(tone([1776.7], 0.3), tone([1370.6], 0.3), tone([913.8], 0.3))) == []
