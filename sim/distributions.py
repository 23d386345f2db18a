"""Sampling the scenario's duration distributions with an explicit generator."""

from __future__ import annotations

import math

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
