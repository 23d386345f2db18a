"""Predictive pacing: dial for agents expected to be free when a new call turns live.

Model of one decision (placing ``n`` calls now):

- supply: ready agents, plus each agent on a call or in wrap-up who becomes free
  within the horizon (a Bernoulli per agent, P(free by r + grace | time already
  spent) from lognormal talk and wrap-up fits with priors, averaged over
  quantiles r of the live-answer ring-time fit; an agent on a call needs the rest
  of the talk plus a whole wrap-up, averaged over wrap-up quantiles);
- demand: live callers already waiting, plus classifying calls that turn out
  live (binomial), plus calls dialing that reach a person (each with its own
  probability given how long it has rung already, see
  :func:`pacing.forecast.live_given_still_dialing`), plus the ``n`` new ones
  (binomial with a Beta-binomial connect estimate that forgets old outcomes);
- expected abandons E[(demand - supply)+]; expected agents used E[min(demand, supply)].

It picks the largest ``n`` whose expected abandons per expected live answer stay
within the planned risk (and within the window's absolute headroom), stops early
once one more call adds almost no expected agent work, and never dials fewer
calls than progressive would.  The planned risk is
:func:`pacing.abandon.allowed_risk` of the budget (the brake: nothing once the
window's rate reaches the target) times the multiplier of a
:class:`pacing.abandon.RiskLoop`, which learns from the abandons the decisions
actually caused and steers the realised rate towards ``loop.aim`` of the target.

Known simplifications: a call already dialing is given a new call's horizon
(its answer may come sooner); supply and demand are taken as independent; the
horizon is the same for every candidate call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pacing.abandon import LoopParams, RiskLoop, RiskParams, allowed_risk
from pacing.forecast import (
    DecayingRate,
    DialingCurve,
    FreeCurve,
    LogNormal,
    LogNormalPrior,
    binom_pmf,
    binom_pmf_rows,
    expected_shortfall_curve,
    fit_lognormal,
    poisson_binomial_pmf,
)
from pacing.types import (
    Decision,
    FloatArray,
    PacingSnapshot,
    cap,
    dial_level,
    progressive_need,
)


@dataclass(frozen=True, slots=True)
class PredictiveParams:
    # cold start: the connect prior leans high so a new campaign under-dials
    prior_connect: float = 0.35
    prior_connect_strength: float = 20.0
    prior_human_share: float = 0.7  # of answered calls, the share that are people
    connect_half_life_s: float = 900.0
    # also forget after this many outcomes: a large floor follows a change in seconds
    connect_half_life_n: float = 1000.0
    talk_prior: LogNormalPrior = field(
        default_factory=lambda: LogNormalPrior(median_s=120.0, sigma=0.8, strength=10.0)
    )
    wrap_prior: LogNormalPrior = field(
        default_factory=lambda: LogNormalPrior(median_s=20.0, sigma=0.6, strength=10.0)
    )
    ring_prior: LogNormalPrior = field(
        default_factory=lambda: LogNormalPrior(median_s=12.0, sigma=0.4, strength=10.0)
    )
    grace_s: float = 2.0
    ring_quantiles: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    max_samples: int = 400  # most recent samples used per fit
    # below this many finished dialing phases a call in flight counts as a new one
    min_dial_samples: int = 50
    min_gain: float = 0.1  # stop when a call adds < min_gain * p(live) expected agent work
    # the brake on the window's rate: full risk up to 2/3 of the target, none at it
    risk: RiskParams = field(default_factory=lambda: RiskParams(gain=3.0))
    loop: LoopParams = field(default_factory=LoopParams)

    def __post_init__(self) -> None:
        if not 0.0 < self.prior_connect < 1.0 or not 0.0 < self.prior_human_share <= 1.0:
            raise ValueError(f"PredictiveParams priors must be probabilities in (0, 1): {self}")
        if self.connect_half_life_n <= 0:
            raise ValueError(f"PredictiveParams.connect_half_life_n must be > 0: {self}")
        if self.prior_connect_strength < 0 or self.connect_half_life_s <= 0:
            raise ValueError(
                "PredictiveParams.prior_connect_strength must be >= 0 and "
                f"connect_half_life_s > 0: {self}"
            )
        if not self.ring_quantiles or not all(0 < q < 1 for q in self.ring_quantiles):
            raise ValueError(f"PredictiveParams.ring_quantiles must lie in (0, 1): {self}")
        if self.grace_s < 0 or self.max_samples < 1 or not 0 <= self.min_gain < 1:
            raise ValueError(f"PredictiveParams out of range: {self}")


@dataclass(frozen=True, slots=True)
class Forecast:
    """What the model believes at one tick (exposed for tests and supervisors)."""

    p_live: float  # a new dial reaches a person
    p_human_answer: float  # an answered call being classified is a person
    horizon: FloatArray  # seconds after dialing by which an agent must be free
    p_free_on_call: FloatArray
    p_free_wrap: FloatArray
    p_live_dialing: FloatArray  # each call now dialing reaches a person

    @property
    def expected_pending_live(self) -> float:
        """Live answers expected from the calls now dialing."""
        return float(self.p_live_dialing.sum())

    @property
    def expected_free(self) -> float:
        return float(self.p_free_on_call.sum() + self.p_free_wrap.sum())


class Predictive:
    name = "predictive"

    def __init__(self, params: PredictiveParams | None = None, **overrides: float) -> None:
        """``overrides`` name PredictiveParams fields, or fields of its nested
        ``risk`` and ``loop`` parameters with a ``risk_`` or ``loop_`` prefix (so a
        sweep can pass ``loop_aim=0.9``)."""
        base = params or PredictiveParams()
        if overrides:
            known = set(PredictiveParams.__dataclass_fields__)
            nested: dict[str, Any] = {"risk": base.risk, "loop": base.loop}
            flat: dict[str, Any] = {}
            bad = []
            for key, value in overrides.items():
                head, _, rest = key.partition("_")
                if key in known:
                    flat[key] = value
                elif head in nested and rest in type(nested[head]).__dataclass_fields__:
                    nested[head] = replace(nested[head], **{rest: value})
                else:
                    bad.append(key)
            if bad:
                hint = [*sorted(known), "risk_*", "loop_*"]
                raise ValueError(f"unknown predictive parameter(s) {sorted(bad)}; known: {hint}")
            kw = {k: getattr(base, k) for k in known}
            kw.update(nested)
            kw.update(flat)
            base = PredictiveParams(**kw)
        self.params = base
        self._connect = DecayingRate(
            base.prior_connect,
            base.prior_connect_strength,
            base.connect_half_life_s,
            base.connect_half_life_n,
        )
        self._human = DecayingRate(
            base.prior_human_share,
            base.prior_connect_strength,
            base.connect_half_life_s,
            base.connect_half_life_n,
        )
        self.loop = RiskLoop(base.loop)
        self._quantiles = np.asarray(base.ring_quantiles, dtype=np.float64)
        self._fits: dict[str, tuple[FloatArray, int, LogNormal]] = {}
        self._horizon_cache: tuple[LogNormal, FloatArray] | None = None
        # sorted copies of sample arrays, by name: (array, length, sorted)
        self._sorted: dict[str, tuple[FloatArray, int, FloatArray]] = {}
        # (ended, answered, ring fit) the dialing curve was built for, and the curve
        self._dialing: tuple[tuple[object, ...], DialingCurve] | None = None
        # (talk, wrap, ring) fits the curves were built for, and the curves
        self._curves: tuple[tuple[LogNormal, ...], FreeCurve, FreeCurve] | None = None
        self._last_calls: int | None = None  # where the next tick's search starts

    def _fit(self, key: str, samples: FloatArray, prior: LogNormalPrior) -> LogNormal:
        # The engine refreshes its sample arrays every few seconds and hands the same
        # objects in between, so a fit is redone only when the array changes.
        hit = self._fits.get(key)
        if hit is not None and hit[0] is samples and hit[1] == len(samples):
            return hit[2]
        dist = fit_lognormal(samples[-self.params.max_samples :], prior)
        self._fits[key] = (samples, len(samples), dist)
        return dist

    def _sorted_recent(self, key: str, samples: FloatArray) -> FloatArray:
        hit = self._sorted.get(key)
        if hit is not None and hit[0] is samples and hit[1] == len(samples):
            return hit[2]
        out = np.sort(samples[-self.params.max_samples :])
        self._sorted[key] = (samples, len(samples), out)
        return out

    def _horizon(self, ring: LogNormal) -> FloatArray:
        if self._horizon_cache is None or self._horizon_cache[0] is not ring:
            self._horizon_cache = (ring, ring.quantiles(self._quantiles) + self.params.grace_s)
        return self._horizon_cache[1]

    def forecast(self, snapshot: PacingSnapshot) -> Forecast:
        """Update the learnt rates from the snapshot and return this tick's beliefs."""
        prm = self.params
        st = snapshot.stats
        resolved = st.live_answers + st.machine_answers + st.other_outcomes
        p_live = self._connect.update(snapshot.now, st.live_answers, resolved)
        p_human = self._human.update(
            snapshot.now, st.live_answers, st.live_answers + st.machine_answers
        )
        ring = self._fit("ring", st.ring_times_live, prm.ring_prior)
        talk = self._fit("talk", st.talk_times, prm.talk_prior)
        wrap = self._fit("wrap", st.wrap_times, prm.wrap_prior)
        horizon = self._horizon(ring)
        ag = snapshot.agents
        fits = (talk, wrap, ring)
        cached = self._curves
        if cached is None or any(a is not b for a, b in zip(cached[0], fits, strict=True)):
            # an agent on a call is free once the rest of the talk and a whole wrap-up
            # are over: average over wrap-up quantiles of P(talk ends by horizon - wrap)
            wrap_q = wrap.quantiles(self._quantiles)
            talk_h = (horizon[:, None] - wrap_q[None, :]).ravel()
            cached = self._curves = (fits, FreeCurve(talk, talk_h), FreeCurve(wrap, horizon))
        p_on = cached[1](ag.on_call)
        p_wr = cached[2](ag.wrap_up)
        dialing = snapshot.calls.dialing
        if len(st.ring_times_all) >= prm.min_dial_samples:
            ended = self._sorted_recent("ended", st.ring_times_all)
            answered = self._sorted_recent("answered", st.answer_times_live)
            key = (ended, answered, ring)
            hit = self._dialing
            if hit is None or any(a is not b for a, b in zip(hit[0], key, strict=True)):
                hit = self._dialing = (key, DialingCurve(ended, answered, ring))
            p_dial = hit[1](p_live, dialing)
        else:
            p_dial = np.full(len(dialing), p_live)
        return Forecast(p_live, p_human, horizon, p_on, p_wr, p_dial)

    def decide(self, snapshot: PacingSnapshot, rng: np.random.Generator) -> Decision:
        fc = self.forecast(snapshot)
        ag, calls, budget = snapshot.agents, snapshot.calls, snapshot.budget
        floor_n = cap(snapshot, progressive_need(snapshot))
        n_max = cap(snapshot, 10**9)
        mult = self.loop.update(snapshot.stats.live_answers, snapshot.stats.abandoned, budget)
        risk = allowed_risk(budget, self.params.risk) * mult
        ready = len(ag.ready)
        free_exp = ready + fc.expected_free
        if ag.working == 0 or n_max <= floor_n or risk <= 0.0:
            why = "no room" if risk > 0.0 else "abandon budget spent: progressive"
            return Decision(
                calls=floor_n,
                dial_level=dial_level(snapshot, floor_n),
                expected_free_agents=free_exp,
                reason=why,
            )

        busy_p = np.concatenate([fc.p_free_on_call, fc.p_free_wrap])
        supply = np.concatenate([np.zeros(ready), poisson_binomial_pmf(busy_p)])
        waiting = len(calls.waiting)
        classifying = len(calls.classifying)
        dialing = len(calls.dialing)
        d_max = waiting + classifying + dialing + n_max
        g = expected_shortfall_curve(supply, d_max + 1)
        # live answers still to come from the calls in flight
        pending = poisson_binomial_pmf(
            np.concatenate([fc.p_live_dialing, np.full(classifying, fc.p_human_answer)])
        )
        # h[y]: expected abandons given y live answers among the new calls
        h = np.correlate(g[waiting:], pending, mode="valid")
        fixed_live = waiting + classifying * fc.p_human_answer + fc.expected_pending_live
        p = fc.p_live

        memo: dict[int, tuple[float, float]] = {}

        def evaluate(n: int) -> tuple[float, float]:
            if n not in memo:
                memo[n] = (float(binom_pmf(n, p) @ h[: n + 1]), fixed_live + n * p)
            return memo[n]

        def feasible(n: int) -> bool:
            ab, live = evaluate(n)
            return ab <= risk * live + 1e-12 and ab <= budget.headroom(live) + 1e-12

        def worth_it(n: int) -> bool:
            # does call number n+1 still add expected agent work?
            ab0, live0 = evaluate(n)
            ab1, live1 = evaluate(n + 1)
            return (live1 - ab1) - (live0 - ab0) >= self.params.min_gain * p

        hint = self._last_calls
        if hint is not None:
            # the search almost always asks about the last answer and its two
            # neighbours: price the three in one batch
            near = [k for k in (hint - 1, hint, hint + 1) if floor_n <= k <= n_max]
            if len(near) > 1:
                rows = binom_pmf_rows(near, p)
                abandons = rows @ h[: rows.shape[1]]
                for k, ab_k in zip(near, abandons.tolist(), strict=True):
                    memo[k] = (ab_k, fixed_live + k * p)
        n = _largest(floor_n, n_max, feasible, hint)
        n = _largest(floor_n, n, lambda k: k == floor_n or worth_it(k - 1), hint)
        self._last_calls = n
        ab, live = evaluate(n)
        return Decision(
            calls=n,
            dial_level=dial_level(snapshot, n),
            expected_free_agents=free_exp,
            expected_live=live,
            expected_abandon_prob=ab / live if live > 0 else 0.0,
            reason=f"risk {risk:.4f} p_live {p:.3f} loop x{mult:.2f}",
        )


def _largest(lo: int, hi: int, ok: Callable[[int], bool], hint: int | None = None) -> int:
    """Largest k in [lo, hi] with ok(k), assuming ok is true at lo and monotone.

    ``hint`` (last tick's answer) is where the search starts: from one second to
    the next the answer rarely moves, so galloping out from it settles in two or
    three evaluations instead of a bisection's eight or more.
    """
    good, bad = lo, hi + 1  # ok(good) holds; ok(k) fails for every k >= bad
    if hint is not None and lo < hint <= hi:
        step = 1
        if ok(hint):
            good = hint
            while good + step < bad:
                if not ok(good + step):
                    bad = good + step
                    break
                good += step
                step *= 2
        else:
            bad = hint
            while bad - step > good:
                if ok(bad - step):
                    good = bad - step
                    break
                bad -= step
                step *= 2
    elif ok(hi):
        return hi
    else:
        bad = hi
    while bad - good > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good
