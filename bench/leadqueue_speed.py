"""What keeping each contact in the dial queue once costs.

The queue now replaces a contact's entry when it is pushed again (so a callback
booked for a queued contact moves it instead of duplicating it) and ranks due
callbacks first.  Baseline in the same process: the plain two-heap queue it
replaced, which allowed duplicates.  Also times booking checks for callbacks
(``DialGate.check_schedule``: DNC and the callable window at the booked time).

    .venv/bin/python bench/leadqueue_speed.py [--leads 200000]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import platform
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from dialer.compliance.dnc import DncIndex, DncList
from dialer.compliance.gate import DialGate, GateRules
from dialer.compliance.hours import load_calltimes
from dialer.leadqueue import LeadQueue
from dialer.ports import Lead
from sim.numbers import synthetic_numbers

NOW = datetime(2026, 1, 14, 17, 0, tzinfo=UTC)


class PlainQueue:
    """The queue before this change: two heaps, no per-contact index."""

    def __init__(self) -> None:
        self._ready: list[tuple[int, int, Lead]] = []
        self._later: list[tuple[float, int, int, Lead]] = []
        self._seq = itertools.count()

    def push(self, lead: Lead, now: float) -> None:
        seq = next(self._seq)
        if lead.not_before <= now:
            heapq.heappush(self._ready, (-lead.priority, seq, lead))
        else:
            heapq.heappush(self._later, (lead.not_before, -lead.priority, seq, lead))

    def pop_ready(self, now: float) -> Lead | None:
        later = self._later
        while later and later[0][0] <= now:
            _, prio, seq, lead = heapq.heappop(later)
            heapq.heappush(self._ready, (prio, seq, lead))
        if not self._ready:
            return None
        return heapq.heappop(self._ready)[2]


def churn(queue: PlainQueue | LeadQueue, leads: list[Lead], rng: np.random.Generator) -> float:
    """Push every lead, then pop and re-push half of them later (retries), as a
    campaign does; returns operations per second."""
    t0 = time.perf_counter()
    for lead in leads:
        queue.push(lead, 0.0)
    delays = rng.uniform(0, 3600, size=len(leads))
    now = 0.0
    ops = len(leads)
    for i in range(len(leads)):
        lead = queue.pop_ready(now)
        ops += 1
        if lead is None:
            now += 60.0
            continue
        if i % 2 == 0:
            lead.not_before = now + float(delays[i])
            queue.push(lead, now)
            ops += 1
        now += 0.01
    return ops / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=200_000)
    ap.add_argument("--checks", type=int, default=50_000)
    args = ap.parse_args()
    print(
        f"machine: {platform.node()}, python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    rng = np.random.default_rng(1)
    numbers = synthetic_numbers(args.leads, rng)

    def fresh() -> list[Lead]:
        return [Lead(i + 1, [n], priority=int(i % 7 == 0)) for i, n in enumerate(numbers)]

    base = churn(PlainQueue(), fresh(), np.random.default_rng(2))
    new = churn(LeadQueue(), fresh(), np.random.default_rng(2))
    print(f"queue ops/s, plain two-heap baseline: {base:,.0f}")
    print(f"queue ops/s, one entry per contact:   {new:,.0f}  (ratio {new / base:.2f})")

    dnc = DncIndex([DncList("optouts")])
    for n in numbers[: len(numbers) // 10]:
        dnc.lists["optouts"].add(n)
    gate = DialGate(GateRules("c", load_calltimes("us-tcpa")), dnc)
    leads = fresh()
    at = [NOW + timedelta(minutes=int(m)) for m in rng.integers(0, 3 * 1440, size=args.checks)]
    t0 = time.perf_counter()
    allowed = 0
    for i in range(args.checks):
        allowed += gate.check_schedule(leads[i % len(leads)], at[i]).allowed
    rate = args.checks / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(args.checks):
        gate(leads[i % len(leads)], at[i])
    full = args.checks / (time.perf_counter() - t0)
    print(
        f"callback booking checks/s: {rate:,.0f} ({allowed / args.checks:.0%} bookable); "
        f"full gate decisions/s on the same inputs: {full:,.0f}"
    )


if __name__ == "__main__":
    main()
