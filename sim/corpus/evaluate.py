"""Run detectors over labelled clips and measure them (used by the CLI and bench)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from amd.detector import StreamingDetector
from amd.registry import Params, create, resolve
from amd.types import FRAME_SAMPLES, Label, Verdict

LABELS = ("human", "machine", "fax", "silence", "notsure")


@dataclass(frozen=True)
class Outcome:
    label: str  # lower-case Label
    decision_ms: int
    cause: str
    beep_ms: int | None


def classify(samples: npt.NDArray[np.int16], profile: str | Params = "balanced") -> Outcome:
    """Stream a whole clip through a fresh detector (waiting for the beep when it can)."""
    det = create(profile)
    if isinstance(det, StreamingDetector):
        det.wait_for_beep()
    first: Verdict | None = None
    last: Verdict | None = None
    n = len(samples) // FRAME_SAMPLES
    for i in range(n):
        v = det.feed(samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        if v is not None:
            first = first or v
            last = v
            if isinstance(det, StreamingDetector) and det.verdict is not None:
                if v.beep_ms is not None or v.label is not Label.MACHINE:
                    break
                if v.cause.startswith("machine_end"):
                    break
            elif not isinstance(det, StreamingDetector):
                break
    end = det.finish()
    first = first or end
    last = end if last is None or end.beep_ms is not None else last
    return Outcome(first.label.value.lower(), first.decision_ms, first.cause, last.beep_ms)


@dataclass
class Report:
    profile: str
    n: int = 0
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    latency: dict[str, list[int]] = field(default_factory=dict)
    beep_errors: list[int] = field(default_factory=list)
    beeps_expected: int = 0
    misses: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def correct(self) -> int:
        return sum(v for (t, p), v in self.confusion.items() if t == p)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def rate(self, truth: str, predicted: str) -> float:
        total = sum(v for (t, _), v in self.confusion.items() if t == truth)
        return self.confusion.get((truth, predicted), 0) / total if total else 0.0

    @property
    def people_as_machines(self) -> float:
        return self.rate("human", "machine")

    @property
    def machines_as_people(self) -> float:
        return self.rate("machine", "human")

    def latency_stats(self, truth: str) -> tuple[float, float]:
        xs = self.latency.get(truth, [])
        if not xs:
            return (float("nan"), float("nan"))
        return (float(np.median(xs)), float(np.percentile(xs, 95)))

    @property
    def beep_within_100ms(self) -> float:
        if not self.beeps_expected:
            return float("nan")
        return sum(1 for e in self.beep_errors if abs(e) <= 100) / self.beeps_expected

    def summary(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "n": self.n,
            "accuracy": self.accuracy,
            "people_as_machines": self.people_as_machines,
            "machines_as_people": self.machines_as_people,
            "human_latency_median_p95": self.latency_stats("human"),
            "machine_latency_median_p95": self.latency_stats("machine"),
            "beep_within_100ms": self.beep_within_100ms,
        }


def evaluate(
    items: Iterable[tuple[str, npt.NDArray[np.int16], str, int | None]],
    profile: str | Params,
    progress: Callable[[], None] | None = None,
) -> Report:
    """``items`` are (name, samples, true label, true beep end ms)."""
    rep = Report(profile if isinstance(profile, str) else type(profile).__name__)
    params = resolve(profile)
    for name, samples, truth, beep in items:
        out = classify(samples, params)
        rep.n += 1
        key = (truth, out.label)
        rep.confusion[key] = rep.confusion.get(key, 0) + 1
        if out.label == truth:
            rep.latency.setdefault(truth, []).append(out.decision_ms)
        else:
            rep.misses.append((name, truth, out.label, out.cause))
        if beep is not None:
            rep.beeps_expected += 1
            if out.beep_ms is not None:
                rep.beep_errors.append(out.beep_ms - beep)
        if progress is not None:
            progress()
    return rep


def false_positive_rate(clips: Iterable[Any], profile: str | Params = "balanced") -> float:
    """Share of people (clips labelled ``human``) the profile calls MACHINE.

    ``clips`` are carriers.base.AudioClip values with ``label`` set (as
    :func:`sim.corpus.load_or_build` returns); the engine uses this figure in its
    abandonment accounting.
    """
    people = [c for c in clips if c.label == "human"]
    if not people:
        return 0.0
    params = resolve(profile)
    wrong = sum(1 for c in people if classify(c.samples, params).label == "machine")
    return wrong / len(people)
