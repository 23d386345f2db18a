from __future__ import annotations

import numpy as np
import pytest

from pacing import registry
from pacing.types import Limits, cap
from tests.pacing.conftest import make_snapshot

BUSY = [30.0, 100.0, 200.0, 400.0, 10.0, 60.0, 150.0, 90.0]


def test_registry_lists_and_creates_every_policy() -> None:
    for name in ("progressive", "power", "predictive"):
        assert name in registry.names()
        assert registry.create(name).name == name


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"known: .*predictive"):
        registry.create("psychic")


def test_bad_parameter_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="power"):
        registry.create("power", ratio=99)
    with pytest.raises(ValueError, match="predictive"):
        registry.create("predictive", no_such_knob=1.0)


@pytest.mark.parametrize("name", ["progressive", "power", "predictive"])
def test_no_agents_means_no_calls(name: str, rng: np.random.Generator) -> None:
    snap = make_snapshot()
    assert registry.create(name).decide(snap, rng).calls == 0


@pytest.mark.parametrize("name", ["progressive", "power", "predictive"])
def test_only_paused_agents_means_no_calls(name: str, rng: np.random.Generator) -> None:
    from dataclasses import replace

    from pacing.types import AgentView

    snap = make_snapshot()
    snap = replace(snap, agents=AgentView(paused=5, reserved=2))
    assert registry.create(name).decide(snap, rng).calls == 0


def test_progressive_one_per_free_agent_minus_in_progress(rng: np.random.Generator) -> None:
    pol = registry.create("progressive")
    assert pol.decide(make_snapshot(ready=5), rng).calls == 5
    assert pol.decide(make_snapshot(ready=5, dialing=2, waiting=1), rng).calls == 2
    assert pol.decide(make_snapshot(ready=2, dialing=4, on_call=BUSY), rng).calls == 0


def test_power_keeps_ratio_lines_per_free_agent(rng: np.random.Generator) -> None:
    pol = registry.create("power")
    assert pol.decide(make_snapshot(ready=4, limits=Limits(power_ratio=2.5)), rng).calls == 10
    assert pol.decide(make_snapshot(ready=4, dialing=3), rng).calls == 5
    fixed = registry.create("power", ratio=1.5)
    assert fixed.decide(make_snapshot(ready=4), rng).calls == 6


def test_all_agents_free_predictive_dials_more_than_progressive(
    rng: np.random.Generator,
) -> None:
    snap = make_snapshot(ready=10)
    prog = registry.create("progressive").decide(snap, rng).calls
    pred = registry.create("predictive").decide(snap, rng)
    assert prog == 10
    # with a 20 % connect rate, ten free agents want more than ten lines
    assert pred.calls > prog
    assert pred.calls <= cap(snap, 10**9)
    assert 0.0 <= pred.expected_abandon_prob <= 0.03 + 1e-9


@pytest.mark.parametrize(
    ("abandoned", "target"), [(30.0, 0.03), (31.0, 0.03), (0.0, 0.0), (5.0, 0.005)]
)
def test_budget_exhausted_predictive_dials_only_for_free_agents(
    abandoned: float, target: float, rng: np.random.Generator
) -> None:
    pol = registry.create("predictive")
    for ready, dialing in [(0, 0), (3, 1), (3, 5), (10, 0)]:
        snap = make_snapshot(
            ready=ready,
            on_call=BUSY,
            wrap_up=[1.0, 2.0],
            dialing=dialing,
            abandoned=abandoned,
            target=target,
        )
        assert snap.budget.headroom() <= 0
        assert pol.decide(snap, rng).calls == max(0, ready - dialing)


def test_predictive_dials_ahead_for_busy_agents_when_budget_allows(
    rng: np.random.Generator,
) -> None:
    # agents deep into long calls are likely to be free within a ring time
    snap = make_snapshot(on_call=[400.0] * 20, wrap_up=[40.0] * 5)
    d = registry.create("predictive").decide(snap, rng)
    assert d.calls > 0
    assert d.expected_free_agents > 0


def test_small_team_is_cautious(rng: np.random.Generator) -> None:
    # three agents, all just started long calls: nothing to dial for
    snap = make_snapshot(on_call=[1.0, 2.0, 3.0])
    assert registry.create("predictive").decide(snap, rng).calls == 0


def test_limits_reject_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="max_lines_per_agent"):
        Limits(max_lines_per_agent=16)
    with pytest.raises(ValueError, match="max_lines_per_agent"):
        Limits(max_lines_per_agent=0.5)
    with pytest.raises(ValueError, match="max_lines"):
        Limits(max_lines=-1)
    with pytest.raises(ValueError, match="carrier_free"):
        Limits(carrier_free=-3)
    with pytest.raises(ValueError, match="power_ratio"):
        Limits(power_ratio=0.5)
    with pytest.raises(ValueError, match="cps"):
        Limits(cps=0)
    assert Limits(max_lines_per_agent=15).max_lines_per_agent == 15


def test_cap_applies_every_limit() -> None:
    snap = make_snapshot(ready=4, limits=Limits(max_lines_per_agent=2))
    assert cap(snap, 100) == 8
    snap = make_snapshot(ready=4, dialing=3, limits=Limits(max_lines=5))
    assert cap(snap, 100) == 2
    snap = make_snapshot(ready=4, limits=Limits(carrier_free=1))
    assert cap(snap, 100) == 1
    snap = make_snapshot(ready=4, limits=Limits(cps=2.5))
    assert cap(snap, 100) == 2
    assert cap(snap, -4) == 0


def test_connect_estimate_forgets_old_outcomes() -> None:
    from pacing.forecast import DecayingRate

    r = DecayingRate(prior_p=0.3, prior_strength=20, half_life_s=600)
    assert r.update(0.0, 0.0, 0.0) == pytest.approx(0.3)
    r.update(3600.0, 400.0, 1000.0)  # morning: 40 % connect
    assert r.estimate() == pytest.approx(0.4, abs=0.01)
    # lunchtime: 10 % connect for 20 minutes
    for minute in range(1, 21):
        r.update(3600.0 + 60 * minute, 400.0 + 5 * minute, 1000.0 + 50 * minute)
    assert r.estimate() < 0.2
    # counts that go backwards (the engine discounts them) restart tracking
    assert r.update(5000.0, 10.0, 100.0) == pytest.approx((6 + 10) / 120)


def test_cold_start_is_more_cautious_than_a_learnt_campaign(rng: np.random.Generator) -> None:
    from pacing.types import OutcomeStats

    cold = make_snapshot(ready=6, on_call=[200.0] * 4, stats=OutcomeStats())
    warm = make_snapshot(ready=6, on_call=[200.0] * 4)
    n_cold = registry.create("predictive").decide(cold, rng).calls
    n_warm = registry.create("predictive").decide(warm, rng).calls
    assert 6 <= n_cold < n_warm


def test_forecast_sees_agents_deep_in_calls(rng: np.random.Generator) -> None:
    from pacing.predictive import Predictive

    pol = Predictive()
    fresh = pol.forecast(make_snapshot(on_call=[1.0] * 10)).expected_free
    late = pol.forecast(make_snapshot(on_call=[400.0] * 10)).expected_free
    assert 0 <= fresh < late <= 10


def test_large_floor_dials_in_proportion(rng: np.random.Generator) -> None:
    r = np.random.default_rng(3)
    snap = make_snapshot(
        ready=20,
        on_call=list(r.uniform(0, 400, 400)),
        wrap_up=list(r.uniform(0, 30, 80)),
        dialing=100,
    )
    d = registry.create("predictive").decide(snap, rng)
    assert 0 < d.calls <= cap(snap, 10**9)
    # about one live answer per expected free agent, not wildly more
    assert d.expected_live <= 1.2 * d.expected_free_agents + 5
    assert d.expected_abandon_prob <= 0.03 + 1e-9


def test_lower_connect_rate_means_more_lines(rng: np.random.Generator) -> None:
    from pacing.types import OutcomeStats

    base = make_snapshot(ready=5, on_call=[300.0] * 5)
    hi = OutcomeStats(dials=1000, live_answers=400, machine_answers=100, other_outcomes=500)
    lo = OutcomeStats(dials=1000, live_answers=100, machine_answers=100, other_outcomes=800)
    from dataclasses import replace

    n_hi = registry.create("predictive").decide(replace(base, stats=hi), rng).calls
    n_lo = registry.create("predictive").decide(replace(base, stats=lo), rng).calls
    assert n_lo > n_hi >= 5
