"""Named detector profiles: ``config/amd/<name>.toml`` over :class:`DetectorParams`.

A profile file holds ``[detector]`` keys (the fields of DetectorParams) or, for
the baseline, ``[asterisk]`` keys (the fields of AsteriskParams).  Unknown keys
and values of the wrong type or range are errors that name the key and file.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from amd.asterisk import AsteriskParams
from amd.params import DetectorParams

PROFILE_DIR = Path(__file__).resolve().parent.parent / "config" / "amd"

_RANGES: dict[str, tuple[float, float]] = {
    "vad_mode": (0, 3),
    "tone_purity": (0.3, 1.0),
    "speech_snr_db": (0.0, 40.0),
    "min_level_dbfs": (-96.0, 0.0),
    "floor_rise_db_per_s": (0.01, 20.0),
}


class ProfileError(ValueError):
    """A profile is missing or holds a bad key or value."""


def _check(key: str, value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ProfileError(f"{where}: key {key!r} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"{where}: key {key!r} must be an integer (ms), got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProfileError(f"{where}: key {key!r} must be a number, got {value!r}")
        value = float(value)
    lo, hi = _RANGES.get(key, (0, 600_000))
    if key == "min_level_dbfs":
        lo, hi = _RANGES[key]
    if not lo <= value <= hi:
        raise ProfileError(f"{where}: key {key!r} must be within {lo}..{hi}, got {value!r}")
    return value


def make_params(
    cls: type[DetectorParams] | type[AsteriskParams], values: dict[str, Any], where: str
) -> DetectorParams | AsteriskParams:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ProfileError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(fields))})")
        checked[key] = _check(key, value, getattr(defaults, key), where)
    return cls(**checked)


def parse(text: str, where: str) -> DetectorParams | AsteriskParams:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{where}: not valid TOML: {e}") from e
    sections = set(data) - {"description"}
    if sections == {"detector"}:
        return make_params(DetectorParams, data["detector"], where)
    if sections == {"asterisk"}:
        return make_params(AsteriskParams, data["asterisk"], where)
    raise ProfileError(
        f"{where}: expected exactly one table, [detector] or [asterisk], got {sorted(sections)}"
    )


def names(directory: Path = PROFILE_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def load(
    name_or_path: str | Path, directory: Path = PROFILE_DIR
) -> DetectorParams | AsteriskParams:
    """A profile by name (``balanced``) or path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = directory / f"{name_or_path}.toml"
        if not path.exists():
            raise ProfileError(
                f"no AMD profile {str(name_or_path)!r} (known: {', '.join(names(directory))})"
            )
    try:
        text = path.read_text()
    except OSError as e:
        raise ProfileError(f"cannot read AMD profile {path}: {e}") from e
    return parse(text, str(path))
