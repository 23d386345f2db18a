"""A call that has rung for a while is less likely to reach a person than a new one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pacing import registry
from pacing.forecast import LogNormal, live_given_still_dialing
from pacing.predictive import Predictive
from pacing.types import CallView, OutcomeStats
from tests.pacing.conftest import make_snapshot

RING = LogNormal(float(np.log(10.0)), 0.3)


def _world() -> tuple[np.ndarray, np.ndarray]:
    """Dialing phases of 1000 calls: 200 people answer at 4-12 s, 100 machines at
    4-12 s, 100 busy at 1 s, 600 no-answers ring to the 25 s timeout."""
    r = np.random.default_rng(0)
    live = np.sort(r.uniform(4.0, 12.0, 200))
    ended = np.sort(
        np.concatenate([live, r.uniform(4.0, 12.0, 100), np.full(100, 1.0), np.full(600, 25.0)])
    )
    return ended, live


def test_old_calls_are_mostly_no_answers() -> None:
    ended, live = _world()
    p = live_given_still_dialing(0.2, ended, np.array([0.5, 2.0, 8.0, 13.0, 20.0]), live, RING)
    # truth: 200/1000, 200/900, ~100/750, 0/600, 0/600
    assert abs(p[0] - 0.2) < 0.01
    assert abs(p[1] - 200 / 900) < 0.01
    assert 0.1 < p[2] < 0.16
    assert p[3] < 0.005 and p[4] < 0.005


def test_without_samples_every_call_counts_as_new() -> None:
    p = live_given_still_dialing(0.3, np.zeros(0), np.array([1.0, 20.0]), np.zeros(0), RING)
    assert np.all(p == 0.3)


def test_without_answer_times_the_ring_fit_stands_in_and_errs_high() -> None:
    ended, live = _world()
    ages = np.array([2.0, 8.0, 13.0])
    with_fit = live_given_still_dialing(0.2, ended, ages, np.zeros(0), RING)
    empirical = live_given_still_dialing(0.2, ended, ages, live, RING)
    assert np.all(with_fit >= empirical - 1e-6)


@given(
    p_live=st.floats(0.0, 1.0),
    ended=st.lists(st.floats(0.0, 60.0), max_size=40),
    live=st.lists(st.floats(0.0, 60.0), max_size=40),
    ages=st.lists(st.floats(0.0, 100.0), max_size=20),
)
def test_is_a_probability(
    p_live: float, ended: list[float], live: list[float], ages: list[float]
) -> None:
    p = live_given_still_dialing(
        p_live, np.sort(np.asarray(ended)), np.asarray(ages), np.sort(np.asarray(live)), RING
    )
    assert p.shape == (len(ages),)
    assert np.all((p >= 0.0) & (p <= 1.0))


def _stats() -> OutcomeStats:
    ended, live = _world()
    base = make_snapshot().stats
    return replace(base, ring_times_all=ended, answer_times_live=live)


def test_predictive_dials_more_when_the_calls_in_flight_are_old(
    rng: np.random.Generator,
) -> None:
    snap = make_snapshot(ready=4, on_call=[300.0] * 6, stats=_stats())
    young = replace(snap, calls=CallView(dialing=np.full(12, 1.0)))
    old = replace(snap, calls=CallView(dialing=np.full(12, 20.0)))
    f_young = Predictive().forecast(young)
    f_old = Predictive().forecast(old)
    assert f_old.expected_pending_live < 0.1 < f_young.expected_pending_live
    n_young = registry.create("predictive").decide(young, rng).calls
    n_old = registry.create("predictive").decide(old, rng).calls
    assert n_old > n_young


def test_cold_start_counts_calls_in_flight_as_new() -> None:
    snap = make_snapshot(ready=2, stats=OutcomeStats())
    snap = replace(snap, calls=CallView(dialing=np.full(5, 20.0)))
    fc = Predictive().forecast(snap)
    assert np.allclose(fc.p_live_dialing, fc.p_live)


def test_tabulated_curve_matches_the_direct_estimate() -> None:
    from pacing.forecast import DialingCurve

    ended, live = _world()
    ages = np.linspace(0.0, 40.0, 401)
    direct = live_given_still_dialing(0.2, ended, ages, live, RING)
    table = DialingCurve(ended, live, RING)(0.2, ages)
    # the empirical survivals are step functions: away from the steps the two agree
    # exactly, and the interpolation never strays outside the neighbouring values
    assert np.median(np.abs(table - direct)) < 1e-3
    assert np.all((table >= 0.0) & (table <= 1.0))
