"""Erlang-C pacing: the steady-state call rate that an M/M/c team can absorb.

Treats the working agents as c servers with exponential handle times (mean from
the observed handle times, with a prior) and live answers as Poisson arrivals.
It finds the largest offered load a = lambda * h whose Erlang-C probability of a
caller waiting longer than the grace period stays within the allowed abandon
risk, converts the live-answer rate lambda into dials per second with the
connect estimate, and keeps rate * mean ring time lines in progress (Little's
law).  It ignores where each agent is in its call, which is exactly what the
predictive policy adds; when the abandon budget is spent it dials progressively.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from pacing.abandon import RiskParams, allowed_risk
from pacing.forecast import DecayingRate, LogNormalPrior, fit_lognormal
from pacing.types import Decision, PacingSnapshot, cap, dial_level, progressive_need


def erlang_c(c: int, a: float) -> float:
    """Probability that an arriving caller waits (c servers, offered load a < c)."""
    if c <= 0:
        return 1.0
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    # Erlang B from the Poisson pmf / cdf, stable for large c
    log_pmf = c * np.log(a) - a - special.gammaln(c + 1.0)
    b = float(np.exp(log_pmf) / max(special.pdtr(c, a), 1e-300))
    return c * b / (c - a * (1.0 - b))


def wait_tail(c: int, a: float, t_over_h: float) -> float:
    """P(wait > t) in M/M/c, with t in units of the mean handle time."""
    return erlang_c(c, a) * float(np.exp(-(c - a) * t_over_h))


class ErlangC:
    name = "erlang"

    def __init__(
        self,
        prior_connect: float = 0.35,
        grace_s: float = 2.0,
        handle_prior: LogNormalPrior | None = None,
        ring_prior: LogNormalPrior | None = None,
    ) -> None:
        if not 0.0 < prior_connect < 1.0 or grace_s < 0:
            raise ValueError(
                f"erlang needs prior_connect in (0, 1) and grace_s >= 0, got "
                f"{prior_connect} and {grace_s}"
            )
        self.grace_s = grace_s
        self.handle_prior = handle_prior or LogNormalPrior(150.0, 0.7)
        self.ring_prior = ring_prior or LogNormalPrior(18.0, 0.5)
        self._connect = DecayingRate(prior_connect, 20.0, 900.0)
        self._risk = RiskParams()

    def decide(self, snapshot: PacingSnapshot, rng: np.random.Generator) -> Decision:
        floor_n = cap(snapshot, progressive_need(snapshot))
        st = snapshot.stats
        p_live = self._connect.update(
            snapshot.now, st.live_answers, st.live_answers + st.machine_answers + st.other_outcomes
        )
        risk = allowed_risk(snapshot.budget, self._risk)
        c = snapshot.agents.working
        if c == 0 or risk <= 0.0:
            return Decision(floor_n, dial_level(snapshot, floor_n), reason="progressive")
        h = fit_lognormal(st.handle_times, self.handle_prior).mean
        ring = fit_lognormal(st.ring_times_all, self.ring_prior).mean
        t = self.grace_s / h
        lo, hi = 0.0, float(c)
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if wait_tail(c, mid, t) <= risk:
                lo = mid
            else:
                hi = mid
        dial_rate = lo / h / p_live
        lines = int(np.floor(dial_rate * ring))
        n = max(floor_n, cap(snapshot, lines - snapshot.calls.in_progress))
        return Decision(
            calls=n,
            dial_level=dial_level(snapshot, n),
            expected_live=lo / h * snapshot.tick_s,
            reason=f"erlang load {lo:.1f}/{c}",
        )
