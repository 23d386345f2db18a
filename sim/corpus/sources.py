"""Audio sources for the corpus: espeak-ng voices, Asterisk's recorded prompts, sox.

Everything comes back as float64 samples at 8 kHz in [-1, 1].
"""

from __future__ import annotations

import io
import shutil
import subprocess
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.io import wavfile
from scipy.signal import resample_poly

RATE = 8000
PROMPT_DIRS = (
    Path("/usr/share/asterisk/sounds/en"),
    Path("/usr/share/asterisk/sounds/en_US_f_Allison"),
)

Audio = npt.NDArray[np.float64]


class MissingTool(RuntimeError):
    """A program the corpus generator needs is not installed."""


def check_tools() -> None:
    """Raise :class:`MissingTool` naming what is missing and how to install it."""
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if prompt_dir() is None:
        missing.append("asterisk-core-sounds-en-wav (prompts)")
    if missing:
        raise MissingTool(
            "the AMD corpus generator needs: "
            + ", ".join(missing)
            + " (apt-get install espeak-ng sox asterisk-core-sounds-en-wav, or `make system-deps`)"
        )


def prompt_dir() -> Path | None:
    for d in PROMPT_DIRS:
        if (d / "vm-intro.wav").exists():
            return d
    return None


def to_float(data: npt.NDArray[np.generic]) -> Audio:
    if data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        x = data.astype(np.float64) / float(np.iinfo(data.dtype.name).max + 1)
    else:
        x = data.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    return x


def resample(x: Audio, rate: int) -> Audio:
    if rate == RATE:
        return x
    g = int(np.gcd(rate, RATE))
    return np.asarray(resample_poly(x, RATE // g, rate // g), dtype=np.float64)


def read_wav(data: bytes | Path) -> Audio:
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    rate, samples = wavfile.read(src)
    return resample(to_float(samples), int(rate))


@lru_cache(maxsize=4096)
def speak(text: str, voice: str, speed: int, pitch: int) -> Audio:
    """espeak-ng speech for ``text`` (cached: voices repeat across clips)."""
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    with warnings.catch_warnings():  # espeak-ng streams a WAV header with no length
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        x = read_wav(out)
    nz = np.flatnonzero(np.abs(x) > 1e-3)
    return x[nz[0] : nz[-1] + 1] if len(nz) else x


@lru_cache(maxsize=512)
def prompt(name: str) -> Audio:
    d = prompt_dir()
    if d is None:
        raise MissingTool("asterisk-core-sounds-en-wav is not installed")
    x = read_wav(d / f"{name}.wav")
    nz = np.flatnonzero(np.abs(x) > 2e-3)
    return x[nz[0] : nz[-1] + 1] if len(nz) else x


def sox_effect(x: Audio, effects: list[str]) -> Audio:
    """Run samples through a sox effect chain (raw 8 kHz float in and out)."""
    raw = x.astype(np.float32).tobytes()
    fmt = ["-t", "raw", "-r", str(RATE), "-e", "floating-point", "-b", "32", "-c", "1"]
    out = subprocess.run(
        ["sox", *fmt, "-", *fmt, "-", *effects], input=raw, capture_output=True, check=True
    ).stdout
    return np.frombuffer(out, dtype=np.float32).astype(np.float64)


def read_pcm16(path: Path) -> npt.NDArray[np.int16]:
    """Any WAV (rate, sample format, channels) as 8 kHz mono int16.

    Raises ValueError naming the file when it cannot be read.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            x = read_wav(path)
    except (OSError, ValueError, EOFError, TypeError) as e:
        raise ValueError(f"{path}: cannot read as WAV: {e}") from e
    if x.size == 0:
        raise ValueError(f"{path}: holds no audio")
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
