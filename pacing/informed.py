"""A simulator-only reference: the predictive policy told when every agent frees.

The clairvoyant bound knows two things no dialer can: when each busy agent will
be free, and which dials will reach a person and when.  ``informed`` is the
predictive policy with only the first of these: each busy agent's supply is the
share of the horizon's ring-time quantiles by which that agent is *exactly* free
(from ``snapshot.oracle.agent_free_in``), instead of a probability from talk and
wrap-up fits.  Everything about calls (connect rate, ring times, calls in flight)
is still learnt, as a real dialer must.

Run beside ``predictive`` and ``clairvoyant`` it splits the gap to the bound: what
``informed`` closes is the price of not knowing agents' remaining talk; what it
leaves is the price of not knowing call outcomes, which no dialer can know.
It is a reference policy, not a bound: nothing here proves that no other policy
with the same knowledge could do better.
"""

from __future__ import annotations

import numpy as np

from pacing.predictive import Forecast, Predictive
from pacing.types import PacingSnapshot


class Informed(Predictive):
    name = "informed"

    def forecast(self, snapshot: PacingSnapshot) -> Forecast:
        fc = super().forecast(snapshot)
        oracle = snapshot.oracle
        if oracle is None:
            raise ValueError("the informed policy needs snapshot.oracle (simulator only)")
        free_in = np.asarray(oracle.agent_free_in, dtype=np.float64)
        # the same horizon quantiles the model averages over, but exact agents
        p_free = (free_in[:, None] <= fc.horizon[None, :]).mean(axis=1)
        return Forecast(
            fc.p_live,
            fc.p_human_answer,
            fc.horizon,
            p_free,
            np.zeros(0),
            fc.p_live_dialing,
        )
