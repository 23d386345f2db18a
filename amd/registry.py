"""Build a detector from a profile name, a params object, plus overrides."""

from __future__ import annotations

import dataclasses
from typing import Any

from amd.asterisk import AsteriskDetector, AsteriskParams
from amd.detector import StreamingDetector
from amd.params import DetectorParams
from amd.profiles import load, make_params
from amd.types import Detector

Params = DetectorParams | AsteriskParams


def resolve(profile: str | Params = "balanced", **overrides: Any) -> Params:
    """The parameters a profile name (or params object) plus overrides give."""
    params = load(profile) if isinstance(profile, str) else profile
    if overrides:
        merged = {**dataclasses.asdict(params), **overrides}
        params = make_params(type(params), merged, f"overrides for {profile!s:.40}")
    return params


def create(profile: str | Params = "balanced", **overrides: Any) -> Detector:
    """A fresh detector: ``create("fast")``, ``create("asterisk")``,
    ``create("balanced", wait_for_beep=True)``."""
    params = resolve(profile, **overrides)
    if isinstance(params, AsteriskParams):
        return AsteriskDetector(params)
    return StreamingDetector(params)
