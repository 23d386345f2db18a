"""Time one pacing decision per policy for teams of 10, 100 and 500 agents,
against progressive (the cheapest possible policy) in the same process.

    .venv/bin/python bench/pacing_decide.py
"""

from __future__ import annotations

import timeit

import numpy as np

from pacing import registry
from pacing.types import AbandonBudget, AgentView, CallView, OutcomeStats, PacingSnapshot


def snapshot(agents: int) -> PacingSnapshot:
    r = np.random.default_rng(0)
    ready = max(1, agents // 20)
    busy = agents - ready
    on = r.uniform(0, 300, int(busy * 0.8))
    wrap = r.uniform(0, 30, busy - len(on))
    stats = OutcomeStats(
        dials=20000,
        live_answers=4000,
        machine_answers=2000,
        other_outcomes=14000,
        ring_times_live=r.lognormal(np.log(10), 0.3, 500),
        ring_times_all=r.lognormal(np.log(15), 0.5, 500),
        talk_times=r.lognormal(np.log(120), 0.7, 500),
        wrap_times=r.lognormal(np.log(15), 0.5, 500),
        handle_times=r.lognormal(np.log(140), 0.6, 500),
    )
    return PacingSnapshot(
        now=1000.0,
        agents=AgentView(ready=np.zeros(ready), on_call=on, wrap_up=wrap),
        calls=CallView(dialing=np.full(agents // 2, 4.0)),
        stats=stats,
        budget=AbandonBudget(target=0.03, abandoned=60.0, live_answers=4000.0),
    )


def per_call_us(name: str, snap: PacingSnapshot) -> float:
    pol = registry.create(name)
    rng = np.random.default_rng(1)
    pol.decide(snap, rng)
    n = 200
    return min(timeit.repeat(lambda: pol.decide(snap, rng), number=n, repeat=5)) / n * 1e6


def main() -> None:
    print(f"{'policy':18s} {'agents':>6s} {'us/decide':>10s} {'x progressive':>14s}")
    for agents in (10, 100, 500):
        snap = snapshot(agents)
        base = per_call_us("progressive", snap)
        for name in ("progressive", "power", "erlang", "vicidial-adaptive", "predictive"):
            us = per_call_us(name, snap)
            print(f"{name:18s} {agents:6d} {us:10.1f} {us / base:14.1f}")


if __name__ == "__main__":
    main()
