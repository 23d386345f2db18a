"""Corpus on disk: WAV files plus labels.csv (file,label,beep_ms) and kinds.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from scipy.io import wavfile

from carriers.base import AudioClip
from sim.corpus.generate import Clip, generate
from sim.corpus.sources import RATE, check_tools, read_pcm16

GENERATOR_VERSION = 1


def write(clips: list[Clip], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for c in clips:
        wavfile.write(out / c.name, RATE, c.samples)
    with (out / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "beep_ms"])
        for c in clips:
            w.writerow([c.name, c.label, "" if c.beep_ms is None else c.beep_ms])
    with (out / "kinds.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "kind"])
        for c in clips:
            w.writerow([c.name, c.kind])


def build(out: Path, n: int, seed: int, split: str = "dev") -> list[Clip]:
    """Generate and write a corpus (raises MissingTool when espeak-ng/sox are absent)."""
    check_tools()
    clips = generate(n, seed, split)
    write(clips, out)
    manifest = {"n": n, "seed": seed, "split": split, "version": GENERATOR_VERSION}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return clips


def read_labels(path: Path) -> list[tuple[str, str, int | None]]:
    """Rows of a labels.csv; a bad row raises ValueError naming the file and line."""
    rows = []
    with path.open(newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                label = row["label"].strip().lower()
                if label not in ("human", "machine", "fax", "silence"):
                    raise ValueError(f"unknown label {label!r}")
                beep = row.get("beep_ms") or ""
                rows.append((row["file"], label, int(beep) if beep.strip() else None))
            except (KeyError, ValueError, AttributeError) as e:
                raise ValueError(f"{path}:{i}: bad row {row}: {e}") from e
    return rows


def load_or_build(
    directory: Path | str, n: int = 200, seed: int = 1, split: str = "dev"
) -> list[AudioClip]:
    """The simulator's hook: cached corpus clips as AudioClips with ``label`` set."""
    out = Path(directory)
    manifest = {"n": n, "seed": seed, "split": split, "version": GENERATOR_VERSION}
    mpath = out / "manifest.json"
    if not (mpath.exists() and json.loads(mpath.read_text()) == manifest):
        build(out, n, seed, split)
    clips = []
    for name, label, _ in read_labels(out / "labels.csv"):
        samples = read_pcm16(out / name)
        clips.append(AudioClip(clip_id=f"{split}-{seed}-{name}", samples=samples, label=label))
    return clips
