from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from carriers.base import AudioClip
from sim.corpus import evaluate, false_positive_rate, load_or_build, read_labels
from sim.corpus.g711 import round_trip, ulaw_decode, ulaw_encode
from sim.corpus.generate import generate


def test_mulaw_round_trip_is_close_and_idempotent() -> None:
    x = np.linspace(-32000, 32000, 5001).astype(np.int16)
    y = round_trip(x)
    rel = np.abs(y.astype(float) - x) / np.maximum(np.abs(x), 64)
    assert rel.max() < 0.07
    assert np.array_equal(round_trip(y), y)
    assert np.array_equal(ulaw_decode(ulaw_encode(y)), y)


def test_corpus_files_and_labels(small_corpus: Path) -> None:
    rows = read_labels(small_corpus / "labels.csv")
    assert len(rows) == 40
    labels = {lab for _, lab, _ in rows}
    assert labels == {"human", "machine", "fax", "silence"}
    for name, label, beep in rows:
        assert (small_corpus / name).exists()
        assert beep is None or label == "machine"
    with (small_corpus / "labels.csv").open() as f:
        assert next(csv.reader(f)) == ["file", "label", "beep_ms"]


def test_generation_is_deterministic_and_splits_differ(small_corpus: Path) -> None:
    a = generate(6, 11, "dev")
    b = generate(6, 11, "dev")
    assert all(np.array_equal(x.samples, y.samples) for x, y in zip(a, b, strict=True))
    h = generate(6, 11, "heldout")
    assert not all(
        np.array_equal(x.samples[:8000], y.samples[:8000]) for x, y in zip(a, h, strict=True)
    )


def test_load_or_build_gives_labelled_clips_and_caches(small_corpus: Path) -> None:
    clips = load_or_build(small_corpus, 40, 3, "dev")
    assert len(clips) == 40 and all(isinstance(c, AudioClip) for c in clips)
    assert all(c.label in ("human", "machine", "fax", "silence") for c in clips)
    assert clips[0].samples.dtype == np.int16
    mtime = (small_corpus / "labels.csv").stat().st_mtime_ns
    load_or_build(small_corpus, 40, 3, "dev")
    assert (small_corpus / "labels.csv").stat().st_mtime_ns == mtime


def test_detector_on_generated_clips_beats_the_baseline(small_corpus: Path) -> None:
    clips = load_or_build(small_corpus, 40, 3, "dev")
    rows = {n: b for n, _, b in read_labels(small_corpus / "labels.csv")}
    items = [(c.clip_id, c.samples, c.label, rows[c.clip_id.split("-")[-1]]) for c in clips]
    ours = evaluate(items, "balanced")
    base = evaluate(items, "asterisk")
    assert ours.accuracy >= 0.75
    assert ours.accuracy > base.accuracy
    assert ours.rate("fax", "fax") == 1.0 and ours.rate("silence", "silence") == 1.0
    assert ours.people_as_machines <= base.people_as_machines
    fp = false_positive_rate(clips, "balanced")
    assert fp == ours.people_as_machines


def test_people_clips_carry_the_end_of_their_first_utterance() -> None:
    clips = generate(24, 5, "heldout")
    people = [c for c in clips if c.label == "human"]
    assert people and all(c.first_speech_end_ms is not None for c in people)
    assert all(c.first_speech_end_ms is None for c in clips if c.label != "human")
    for c in people:
        assert c.first_speech_end_ms is not None
        end = c.first_speech_end_ms // 20  # in 20 ms frames
        x = c.samples[: len(c.samples) // 160 * 160].astype(float).reshape(-1, 160)
        rms = np.sqrt(np.mean(x**2, axis=1))
        # speech in the 300 ms up to that point, only line or room noise 20-300 ms after
        assert rms[end - 15 : end].max() > 2 * rms[end + 1 : end + 15].max(), (c.name, c.kind)
