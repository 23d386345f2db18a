"""Sampling the scenario's duration distributions with an explicit generator."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.scenario import Dist


def sample(d: Dist, rng: np.random.Generator) -> float:
    if d.kind == "fixed":
        x = d.mean
    elif d.kind == "exponential":
        x = rng.exponential(d.mean)
    elif d.kind == "uniform":
        x = rng.uniform(d.mean - d.sd, d.mean + d.sd)
    elif d.kind == "gamma":
        shape = (d.mean / d.sd) ** 2
        x = rng.gamma(shape, d.mean / shape)
    else:  # lognormal parameterised by its own mean and sd (what people measure)
        sigma2 = math.log(1.0 + (d.sd / d.mean) ** 2)
        mu = math.log(d.mean) - sigma2 / 2.0
        x = rng.lognormal(mu, math.sqrt(sigma2))
    return float(min(max(x, d.min), d.max))


_KEY_MASK = (1 << 64) - 1


class KeyedStream:
    """A generator whose draws for key ``k`` are fixed: ``at(k)`` rewinds it.

    Philox is counter-based, so resetting its key and counter is a few
    microseconds, where building a fresh generator per dial costs ~35 us."""

    def __init__(self, seed: int) -> None:
        self._base = int(seed) & _KEY_MASK
        self.gen = np.random.Generator(np.random.Philox(key=self._base))
        self._state: dict[str, Any] = dict(self.gen.bit_generator.state)

    def at(self, k: int) -> np.random.Generator:
        st = self._state
        st["state"]["key"][0] = self._base
        st["state"]["key"][1] = k & _KEY_MASK
        st["state"]["counter"][:] = 0
        st["buffer_pos"] = 4  # an empty output buffer: the next draw starts at counter 0
        st["has_uint32"] = 0
        st["uinteger"] = 0
        self.gen.bit_generator.state = st
        return self.gen
