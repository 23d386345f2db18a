"""Properties every policy and the forecast must keep on random snapshots."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from pacing import registry
from pacing.forecast import (
    LogNormal,
    LogNormalPrior,
    binom_pmf,
    expected_shortfall_curve,
    fit_lognormal,
    poisson_binomial_pmf,
    prob_done_within,
)
from pacing.types import (
    AbandonBudget,
    AgentView,
    CallView,
    Limits,
    Oracle,
    OutcomeStats,
    PacingSnapshot,
    cap,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
durations = st.lists(st.floats(0.0, 5000.0), max_size=30)


@FAST
@given(
    samples=st.lists(st.floats(0.0, 3000.0), max_size=50),
    elapsed=durations,
    horizons=st.lists(st.floats(0.0, 600.0), min_size=1, max_size=8),
)
def test_free_probability_is_a_probability_and_grows_with_horizon(
    samples: list[float], elapsed: list[float], horizons: list[float]
) -> None:
    dist = fit_lognormal(np.asarray(samples), LogNormalPrior(120.0, 0.7))
    h = np.sort(np.asarray(horizons))
    p = prob_done_within(dist, np.asarray(elapsed), h)
    assert p.shape == (len(elapsed), len(h))
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p, axis=1) >= -1e-12)


@FAST
@given(probs=st.lists(st.floats(0.0, 1.0), max_size=120))
def test_poisson_binomial_is_a_distribution_with_the_right_mean(probs: list[float]) -> None:
    p = np.asarray(probs)
    pmf = poisson_binomial_pmf(p)
    assert np.all(pmf >= -1e-15)
    assert abs(pmf.sum() - 1.0) < 1e-9
    assert abs(pmf @ np.arange(len(pmf)) - p.sum()) < 0.05 + 1e-3 * len(p)


@FAST
@given(probs=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=48))
def test_poisson_binomial_is_exact_for_small_groups(probs: list[float]) -> None:
    """The FFT route (9-48 calls) agrees with the one-at-a-time recursion."""
    from pacing.forecast import _poisson_binomial_dp

    p = np.asarray(probs)
    assert np.allclose(poisson_binomial_pmf(p), _poisson_binomial_dp(p), atol=1e-12, rtol=0)


@FAST
# scipy's own pmf overflows for p within a few ulps of zero: stay above 1e-12
@given(n=st.integers(0, 3000), p=st.floats(1e-12, 1.0 - 1e-12) | st.sampled_from([0.0, 1.0]))
def test_binomial_matches_scipy(n: int, p: float) -> None:
    ours = binom_pmf(n, p)
    assert np.allclose(ours, sps.binom.pmf(np.arange(n + 1), n, p), atol=1e-12)


@FAST
@given(
    mu=st.floats(1.0, 6.0),
    sigma=st.floats(0.2, 1.5),
    elapsed=st.lists(st.floats(0.0, 4000.0), min_size=1, max_size=20),
    horizons=st.lists(st.floats(0.0, 600.0), min_size=1, max_size=6),
)
def test_free_probability_matches_scipy_conditional_law(
    mu: float, sigma: float, elapsed: list[float], horizons: list[float]
) -> None:
    # both code paths (plain ratio, and log domain once someone is deep in the
    # tail) must give P(T <= e + h | T > e) for a lognormal T
    dist = LogNormal(mu, sigma)
    e, h = np.asarray(elapsed), np.asarray(horizons)
    ours = prob_done_within(dist, e, h)
    law = sps.lognorm(s=sigma, scale=np.exp(mu))
    s0 = law.sf(e)[:, None]
    ref = 1.0 - law.sf(e[:, None] + h[None, :]) / np.where(s0 > 0, s0, 1.0)
    trusted = s0 > 1e-250  # beyond that scipy's own ratio is 0/0
    assert np.allclose(np.where(trusted, ours, 0.0), np.where(trusted, ref, 0.0), atol=1e-9)


@FAST
@given(
    pmf=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40).filter(lambda v: sum(v) > 0),
    length=st.integers(0, 60),
)
def test_shortfall_curve_is_expected_excess_demand(pmf: list[float], length: int) -> None:
    p = np.asarray(pmf) / sum(pmf)
    g = expected_shortfall_curve(p, length)
    s = np.arange(len(p))
    ref = [float(p @ np.maximum(d - s, 0)) for d in range(length)]
    assert np.allclose(g, ref, atol=1e-9)


def test_shortfall_curve_by_hand() -> None:
    g = expected_shortfall_curve(np.array([0.5, 0.5]), 4)  # S is 0 or 1
    assert np.allclose(g, [0.0, 0.5, 1.5, 2.5])


@st.composite
def snapshots(draw: st.DrawFn, with_oracle: bool = False) -> PacingSnapshot:
    n_ready = draw(st.integers(0, 12))
    on_call = draw(st.lists(st.floats(0.0, 900.0), max_size=40))
    wrap = draw(st.lists(st.floats(0.0, 120.0), max_size=10))
    dialing = draw(st.integers(0, 60))
    classifying = draw(st.integers(0, 5))
    waiting = draw(st.integers(0, 5))
    live = draw(st.floats(0.0, 5000.0))
    target = draw(st.sampled_from([0.0, 0.005, 0.01, 0.03, 0.1]))
    abandoned = draw(st.floats(0.0, 0.06)) * live
    dials = draw(st.floats(0.0, 20000.0))
    lives = draw(st.floats(0.0, 1.0)) * dials
    machines = draw(st.floats(0.0, 1.0)) * (dials - lives)
    limits = Limits(
        max_lines_per_agent=draw(st.floats(1.0, 15.0)),
        max_lines=draw(st.integers(0, 500)),
        carrier_free=draw(st.integers(0, 500)),
        power_ratio=draw(st.floats(1.0, 5.0)),
    )
    oracle = None
    if with_oracle:
        k = draw(st.integers(0, 40))
        oracle = Oracle(
            agent_free_in=np.asarray(
                draw(
                    st.lists(
                        st.floats(0, 300),
                        min_size=len(on_call) + len(wrap),
                        max_size=len(on_call) + len(wrap),
                    )
                )
            ),
            next_live=np.asarray(draw(st.lists(st.booleans(), min_size=k, max_size=k)), bool),
            next_ring=np.asarray(draw(st.lists(st.floats(1, 40), min_size=k, max_size=k))),
            pending_live_in=np.asarray(
                draw(st.lists(st.floats(0, 40) | st.just(np.inf), max_size=dialing))
            ),
        )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n_samples = draw(st.integers(0, 200))
    return PacingSnapshot(
        now=draw(st.floats(0.0, 1e6)),
        agents=AgentView(
            ready=np.full(n_ready, 3.0),
            on_call=np.asarray(on_call),
            wrap_up=np.asarray(wrap),
            paused=draw(st.integers(0, 3)),
        ),
        calls=CallView(
            dialing=np.full(dialing, 2.0),
            classifying=np.full(classifying, 1.0),
            waiting=np.full(waiting, 0.5),
        ),
        stats=OutcomeStats(
            dials=dials,
            live_answers=lives,
            machine_answers=machines,
            other_outcomes=dials - lives - machines,
            ring_times_live=rng.lognormal(2.3, 0.4, n_samples),
            ring_times_all=rng.lognormal(2.7, 0.5, n_samples),
            talk_times=rng.lognormal(4.5, 0.7, n_samples),
            wrap_times=rng.lognormal(2.7, 0.5, n_samples),
            handle_times=rng.lognormal(4.7, 0.7, n_samples),
        ),
        budget=AbandonBudget(target=target, abandoned=abandoned, live_answers=live),
        limits=limits,
        oracle=oracle,
    )


POLICIES = [
    "progressive",
    "power",
    "predictive",
    "vicidial-adaptive",
    "erlang",
    "clairvoyant",
    "informed",
]


@FAST
@given(snap=snapshots(with_oracle=True))
def test_no_policy_exceeds_the_limits_and_decisions_are_deterministic(
    snap: PacingSnapshot,
) -> None:
    limit = cap(snap, 10**9)
    for name in POLICIES:
        a = registry.create(name).decide(snap, np.random.default_rng(1))
        b = registry.create(name).decide(snap, np.random.default_rng(2))
        assert 0 <= a.calls <= limit, name
        assert a == b, name
        assert 0.0 <= a.expected_abandon_prob <= 1.0


@FAST
@given(snap=snapshots(with_oracle=True))
def test_spent_budget_keeps_predictive_policies_progressive(snap: PacingSnapshot) -> None:
    from dataclasses import replace

    spent = replace(
        snap,
        budget=AbandonBudget(
            target=snap.budget.target,
            abandoned=snap.budget.target * snap.budget.live_answers + 1.0,
            live_answers=snap.budget.live_answers,
        ),
    )
    prog = registry.create("progressive").decide(spent, np.random.default_rng(0)).calls
    for name in ("predictive", "erlang", "informed"):
        assert registry.create(name).decide(spent, np.random.default_rng(0)).calls <= prog


@FAST
@given(
    lo=st.integers(0, 50),
    width=st.integers(0, 300),
    cut=st.integers(0, 400),
    hint=st.none() | st.integers(-5, 400),
)
def test_search_from_a_hint_finds_the_same_answer(
    lo: int, width: int, cut: int, hint: int | None
) -> None:
    from pacing.predictive import _largest

    hi = lo + width
    threshold = max(lo, cut)  # ok(k) for k <= threshold: true at lo, monotone
    calls: list[int] = []

    def ok(k: int) -> bool:
        assert lo <= k <= hi, k  # never probes outside the range
        calls.append(k)
        return k <= threshold

    assert _largest(lo, hi, ok, hint) == min(hi, threshold)
    if hint is not None and lo < hint <= hi and hint == min(hi, threshold) < hi:
        assert len(calls) == 2  # an unchanged answer costs two evaluations


@FAST
@given(
    mu=st.floats(2.0, 6.5),
    sigma=st.floats(0.2, 1.5),
    elapsed=st.lists(st.floats(0.0, 5000.0), min_size=1, max_size=30),
    horizons=st.lists(st.floats(1.0, 300.0), min_size=1, max_size=12),
)
def test_tabulated_free_curve_matches_the_direct_computation(
    mu: float, sigma: float, elapsed: list[float], horizons: list[float]
) -> None:
    from pacing.forecast import FreeCurve

    dist, e, h = LogNormal(mu, sigma), np.asarray(elapsed), np.asarray(horizons)
    direct = prob_done_within(dist, e, h).mean(axis=1)
    curve = FreeCurve(dist, h)
    # 1 s steps on a law whose median is at least e^2 = 7 s: far below pacing's noise
    assert np.allclose(curve(e), direct, atol=2e-3)
    assert curve(np.zeros(0)).shape == (0,)


@FAST
@given(
    ns=st.lists(st.integers(0, 400), min_size=1, max_size=4),
    p=st.floats(1e-9, 1.0 - 1e-9) | st.sampled_from([0.0, 1.0]),
)
def test_batched_binomial_rows_match_one_at_a_time(ns: list[int], p: float) -> None:
    from pacing.forecast import binom_pmf_rows

    rows = binom_pmf_rows(ns, p)
    assert rows.shape == (len(ns), max(ns) + 1)
    for row, n in zip(rows, ns, strict=True):
        one = binom_pmf(n, p)
        assert np.allclose(row[: len(one)], one, atol=1e-12)
        assert not row[len(one) :].any()
