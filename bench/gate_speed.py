"""How fast the dial gate decides, and DNC checks against a 10-million-entry list.

Baseline in the same process: a Python set of the same numbers (what a naive
implementation would hold, at several times the memory).

    .venv/bin/python bench/gate_speed.py [--entries 10000000]
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc
from datetime import UTC, datetime

import numpy as np

from dialer.compliance.dnc import DncIndex, DncList
from dialer.compliance.gate import DialGate, GateRules
from dialer.compliance.hours import load_calltimes
from dialer.ports import Lead
from sim.numbers import synthetic_numbers

NOW = datetime(2026, 1, 14, 17, 0, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--checks", type=int, default=200_000)
    args = ap.parse_args()
    print(
        f"machine: {platform.node()}, python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    rng = np.random.default_rng(1)
    keys = 1_200_000_0000 + rng.choice(8_000_000_000, size=args.entries, replace=False)
    t = time.perf_counter()
    lst = DncList("national")
    lst.load_numbers(keys)
    build = time.perf_counter() - t
    idx = DncIndex([lst])
    print(
        f"DNC list: {args.entries:,} entries loaded in {build:.2f} s "
        f"({lst._keys.nbytes / 1e6:.0f} MB of keys)"
    )

    probes = [f"+{k}" for k in rng.choice(keys, size=args.checks // 2)]
    probes += [f"+{k}" for k in 1_200_000_0000 + rng.integers(0, 8_000_000_000, args.checks // 2)]
    t = time.perf_counter()
    hits = sum(1 for p in probes if idx.check(p, "c", NOW))
    dt = time.perf_counter() - t
    print(
        f"DNC checks: {len(probes) / dt:,.0f} per s ({hits:,} hits of {len(probes):,}); "
        f"target 100,000 per s: {'MET' if len(probes) / dt >= 100_000 else 'MISSED'}"
    )

    tracemalloc.start()
    t = time.perf_counter()
    naive = {f"+{k}" for k in keys[: min(len(keys), 2_000_000)]}
    naive_build = time.perf_counter() - t
    mem = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t = time.perf_counter()
    nh = sum(1 for p in probes if p in naive)
    ndt = time.perf_counter() - t
    print(
        f"baseline Python set (2M of the entries, {naive_build:.1f} s, {mem / 1e6:.0f} MB): "
        f"{len(probes) / ndt:,.0f} lookups per s ({nh:,} hits); the gate's index is "
        f"{(len(probes) / dt) / (len(probes) / ndt):.2f}x its speed"
    )

    gate = DialGate(
        GateRules("c", load_calltimes("us-tcpa"), max_attempts_per_day=3, max_attempts_per_24h=3),
        idx,
    )
    numbers = synthetic_numbers(5000, np.random.default_rng(2))
    leads = [Lead(i, [n], attempt_log=[(NOW, n)]) for i, n in enumerate(numbers)]
    n = 100_000
    t = time.perf_counter()
    allowed = sum(gate(leads[i % len(leads)], NOW).allowed for i in range(n))
    gdt = time.perf_counter() - t
    print(
        f"gate decisions (DNC + hours in every zone + holidays + limits + cool-down): "
        f"{n / gdt:,.0f} per s ({allowed:,} allowed of {n:,})"
    )


if __name__ == "__main__":
    main()
