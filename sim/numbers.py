"""Synthetic but valid-looking North American numbers for generated lists."""

from __future__ import annotations

import numpy as np

# area codes across the four mainland US time zones
_NPAS = (212, 617, 305, 404, 312, 214, 713, 303, 602, 415, 206, 503, 702, 801)


def synthetic_numbers(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct E.164 numbers (+1 NPA NXX XXXX) with realistic area codes."""
    npas = np.asarray(_NPAS, dtype=np.int64)
    seen: set[int] = set()
    out: list[str] = []
    while len(out) < n:
        k = (n - len(out)) * 2 + 16
        npa = npas[rng.integers(len(npas), size=k)]
        nxx = rng.integers(201, 999, size=k)
        line = rng.integers(0, 10000, size=k)
        ok = (nxx % 100 != 11) & (nxx != 555)
        nums = (npa * 10_000_000 + nxx * 10_000 + line)[ok]
        for v in nums.tolist():
            if v not in seen:
                seen.add(v)
                out.append(f"+1{v}")
                if len(out) == n:
                    break
    return out
