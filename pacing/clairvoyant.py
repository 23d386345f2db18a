"""The clairvoyant bound (simulator only): dials knowing every call's future.

It reads ``snapshot.oracle``: when each busy agent will be free, when each call in
progress will turn live, and the outcome and ring time of the next candidate
dials.  Live callers are matched, in order of arrival, to the agent free soonest
(no later than arrival + grace); a new candidate is placed only if its live
answer (when it is live) finds an agent that way, and no call is placed whose
live answer would be abandoned.  Dials are taken in list order (a dialer cannot
skip ahead in its hopper), so dead candidates are placed as soon as they may be.
"""

from __future__ import annotations

import numpy as np

from pacing.types import Decision, PacingSnapshot, cap, dial_level


class Clairvoyant:
    name = "clairvoyant"

    def __init__(self, grace_s: float = 2.0) -> None:
        if grace_s < 0:
            raise ValueError(f"clairvoyant grace_s must be >= 0, got {grace_s}")
        self.grace_s = grace_s

    def decide(self, snapshot: PacingSnapshot, rng: np.random.Generator) -> Decision:
        oracle = snapshot.oracle
        if oracle is None:
            raise ValueError("the clairvoyant policy needs snapshot.oracle (simulator only)")
        n_max = cap(snapshot, len(oracle.next_live))
        free = np.sort(np.concatenate([np.zeros(len(snapshot.agents.ready)), oracle.agent_free_in]))
        # callers already waiting need an agent now, pending ones when they turn live;
        # each takes the agent free soonest, and one nobody can reach in time is lost
        # anyway and takes nobody
        pending = np.sort(oracle.pending_live_in[np.isfinite(oracle.pending_live_in)])
        arrivals = np.concatenate([np.zeros(len(snapshot.calls.waiting)), pending])
        taken = np.zeros(len(free), dtype=bool)
        j = 0
        for t in arrivals:
            if j < len(free) and free[j] <= t + self.grace_s:
                taken[j] = True
                j += 1
        left = free[~taken]
        live = np.asarray(oracle.next_live[:n_max], dtype=bool)
        deadlines = np.asarray(oracle.next_ring[:n_max], dtype=np.float64) + self.grace_s

        def feasible(k: int) -> bool:
            # the i-th earliest deadline must meet the i-th earliest free agent
            d = np.sort(deadlines[:k][live[:k]])
            return len(d) <= len(left) and bool(np.all(left[: len(d)] <= d))

        lo, hi = 0, n_max
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if feasible(mid):
                lo = mid
            else:
                hi = mid - 1
        # Dead calls (no answer, busy, machines) are placed too: the hopper is
        # worked in order, so each one must go before the live calls behind it, and
        # placing it now lets those come sooner.  Holding back when the window
        # shows no live call would stall the list for good.
        n = lo
        return Decision(
            calls=n,
            dial_level=dial_level(snapshot, n),
            expected_free_agents=float(len(left)),
            expected_live=float(live[:n].sum()),
            reason="oracle",
        )
