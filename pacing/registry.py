"""Policies by name: ``create("predictive", min_gain=0.2)``, ``names()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pacing.clairvoyant import Clairvoyant
from pacing.erlang import ErlangC
from pacing.informed import Informed
from pacing.power import Power
from pacing.predictive import Predictive
from pacing.progressive import Progressive
from pacing.types import Policy
from pacing.vicidial import VicidialAdaptive

_FACTORIES: dict[str, Callable[..., Policy]] = {
    "progressive": Progressive,
    "power": Power,
    "predictive": Predictive,
    "vicidial-adaptive": VicidialAdaptive,
    "erlang": ErlangC,
    "clairvoyant": Clairvoyant,
    "informed": Informed,
}

# policies that read snapshot.oracle (the simulator's knowledge of the future)
SIMULATOR_ONLY = frozenset({"clairvoyant", "informed"})


def names() -> list[str]:
    return sorted(_FACTORIES)


def create(name: str, **params: Any) -> Policy:
    """A fresh policy (its own learnt state); unknown names or parameters raise ValueError."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown pacing policy {name!r}; known: {', '.join(names())}") from None
    try:
        return factory(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for pacing policy {name!r}: {exc}") from None
