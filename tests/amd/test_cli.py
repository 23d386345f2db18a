from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from signals import pcm, silence, voice
from typer.testing import CliRunner

from dialer.cli.amd import app

runner = CliRunner()


def _write(tmp_path: Path) -> tuple[Path, Path, Path]:
    good = tmp_path / "person.wav"
    wavfile.write(good, 8000, pcm(silence(0.3), voice(0.5), silence(3.0)))
    # 44.1 kHz float stereo: must be resampled and mixed down
    x = pcm(silence(0.3), voice(5.0), silence(1.0)).astype(np.float32) / 32768
    hifi = tmp_path / "machine_44k.wav"
    from scipy.signal import resample_poly

    y = resample_poly(x, 441, 80).astype(np.float32)
    wavfile.write(hifi, 44100, np.stack([y, y], axis=1))
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not a wav at all")
    return good, hifi, bad


def test_classify_bad_file_among_good(tmp_path: Path) -> None:
    good, hifi, bad = _write(tmp_path)
    r = runner.invoke(app, ["classify", str(good), str(bad), str(hifi), "--json"])
    assert r.exit_code == 1
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [d["file"] for d in lines] == [str(good), str(hifi)]
    for d in lines:
        assert set(d) == {"file", "label", "decision_ms", "beep_ms", "cause"}
    assert lines[0]["label"] == "human" and lines[1]["label"] == "machine"
    assert "broken.wav" in r.stderr


def test_classify_plain_and_asterisk_profile(tmp_path: Path) -> None:
    good, _, _ = _write(tmp_path)
    r = runner.invoke(app, ["classify", str(good), "--profile", "asterisk"])
    assert r.exit_code == 0, r.output
    assert "human" in r.stdout and "HUMAN-800-800" in r.stdout
    r = runner.invoke(app, ["classify", str(good), "--profile", "nope"])
    assert r.exit_code == 2 and "nope" in r.stderr


def test_eval_and_sweep(small_corpus: Path, tmp_path: Path) -> None:
    labels = small_corpus / "labels.csv"
    png = tmp_path / "eval.png"
    r = runner.invoke(app, ["eval", str(small_corpus), "--labels", str(labels), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    for text in ("balanced", "asterisk", "accuracy", "people as machines", "confusion"):
        assert text in r.stdout
    assert png.stat().st_size > 1000
    r = runner.invoke(
        app,
        [
            "sweep",
            str(small_corpus),
            "--labels",
            str(labels),
            "--param",
            "end_silence_ms=400:800:200",
            "--plot",
            str(tmp_path / "sweep.png"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "400" in r.stdout and "800" in r.stdout
    assert (tmp_path / "sweep.png").exists()
    r = runner.invoke(app, ["sweep", str(small_corpus), "--labels", str(labels), "--param", "x"])
    assert r.exit_code == 2 and "NAME=start:stop:step" in r.stderr


def test_corpus_build_command(small_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    r = runner.invoke(app, ["corpus", "build", str(out), "--n", "8", "--seed", "2"])
    assert r.exit_code == 0, r.output
    assert len((out / "labels.csv").read_text().splitlines()) == 9
    r = runner.invoke(app, ["corpus", "build", str(out), "--split", "test"])
    assert r.exit_code == 2
