"""The outer loop that steers the realised abandon rate, and the predictive policy
around it: a target change, an exhausted budget, a doubled connect rate."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from pacing import registry
from pacing.abandon import AbandonController, AbandonParams, LoopParams, RiskLoop
from pacing.forecast import DecayingRate
from pacing.predictive import Predictive
from pacing.types import AbandonBudget, OutcomeStats, PacingSnapshot
from tests.pacing.conftest import make_snapshot

T = 0.03


def _budget(live: float, abandoned: float, target: float = T) -> AbandonBudget:
    return AbandonBudget(target=target, abandoned=abandoned, live_answers=live)


def test_quiet_answers_raise_the_multiplier_and_abandons_cut_it() -> None:
    loop = RiskLoop()
    live = 0.0
    loop.update(live, 0.0, _budget(live, 0.0))
    for _ in range(50):
        live += 20.0
        up = loop.update(live, 0.0, _budget(live, 0.0))
    assert up > 1.5
    down = loop.update(live + 1.0, 3.0, _budget(live + 1.0, 3.0))
    assert down < up * 0.8


def test_multiplier_stays_in_its_range() -> None:
    p = LoopParams(min_mult=0.5, max_mult=2.0)
    loop = RiskLoop(p)
    loop.update(0.0, 0.0, _budget(0.0, 0.0))
    assert loop.update(1e6, 0.0, _budget(1e6, 0.0)) == pytest.approx(2.0)
    assert loop.update(1e6 + 1, 1e5, _budget(1e6 + 1, 1e5)) == pytest.approx(0.5)


def test_counts_going_backwards_restart_the_tracking() -> None:
    loop = RiskLoop()
    loop.update(100.0, 0.0, _budget(100.0, 0.0))
    theta = loop.theta
    assert loop.update(10.0, 0.0, _budget(10.0, 0.0)) == pytest.approx(np.exp(theta))
    assert loop.update(10.0, 0.0, _budget(10.0, 0.0)) == pytest.approx(np.exp(theta))


def test_margin_below_the_aim_shrinks_with_evidence() -> None:
    loop = RiskLoop(LoopParams(aim=0.85, z=1.0))
    assert loop.aim(_budget(0.0, 0.0)) == 0.0
    few, many = loop.aim(_budget(300.0, 0.0)), loop.aim(_budget(100_000.0, 0.0))
    assert 0.0 < few < many < 0.85
    assert many > 0.8


@pytest.mark.parametrize("bias", [0.4, 1.0, 2.0])
def test_loop_settles_near_the_aim_whatever_the_model_bias(bias: float) -> None:
    # a model that plans risk r causes abandons at bias * r; the brake on the
    # window rate is left out, so this is the loop alone
    r = np.random.default_rng(5)
    loop = RiskLoop(LoopParams(aim=0.85, z=0.0))
    live = ab = 0.0
    loop.update(live, ab, _budget(live, ab))
    for _ in range(4000):
        n = 10
        ab += r.binomial(n, min(1.0, bias * T * loop.multiplier))
        live += n
        loop.update(live, ab, _budget(live, ab))
    late = ab / live
    assert 0.7 * T < late < 0.97 * T
    assert loop.multiplier == pytest.approx(0.85 / bias, rel=0.35)


def test_connect_rate_forgets_after_many_outcomes() -> None:
    by_time = DecayingRate(0.3, 20.0, 900.0)
    by_count = DecayingRate(0.3, 20.0, 900.0, half_life_n=500.0)
    for rate in (by_time, by_count):
        rate.update(0.0, 0.0, 0.0)
        rate.update(60.0, 6000.0, 10_000.0)  # 60 % connect for a minute
        rate.update(120.0, 7500.0, 20_000.0)  # then 15 %
    assert by_count.estimate() == pytest.approx(0.15, abs=0.02)
    assert by_time.estimate() > 0.3


def _busy_team(**kw: Any) -> PacingSnapshot:
    """Two free agents, ten deep into long calls, three in wrap-up."""
    return make_snapshot(ready=2, on_call=[300.0] * 10, wrap_up=[5.0] * 3, **kw)


def test_target_change_moves_predictive_at_the_next_tick(rng: np.random.Generator) -> None:
    ctl = AbandonController(AbandonParams(target=0.03, window_s=None))
    for i in range(1000):
        ctl.record_live(float(i), 0.5 if i % 100 else 10.0)  # 1 % abandoned
    pol = Predictive()
    base = _busy_team()

    def calls(now: float) -> int:
        return pol.decide(replace(base, now=now, budget=ctl.budget(now)), rng).calls

    at_3 = calls(2000.0)
    ctl.set_target(1.5)  # the engine's next tick reads the budget, and with it the target
    at_15 = calls(2001.0)
    ctl.set_target(0.0)
    at_0 = calls(2002.0)
    assert at_3 > at_15 > at_0
    assert at_0 == 2  # one per free agent: progressive
    ctl.set_target(3.0)
    assert calls(2003.0) == at_3


def test_budget_exhausted_dials_only_for_free_agents_even_after_a_quiet_day(
    rng: np.random.Generator,
) -> None:
    pol = Predictive()
    stats = make_snapshot().stats
    # a long run of answers without abandons winds the loop up to its maximum
    for k in range(1, 200):
        s = replace(stats, live_answers=1000.0 + 50 * k, abandoned=0.0)
        pol.decide(_busy_team(now=100.0 + k, stats=s), rng)
    assert pol.loop.multiplier == pytest.approx(pol.params.loop.max_mult)
    for abandoned in (30.0, 45.0):
        snap = _busy_team(now=400.0, abandoned=abandoned)
        assert snap.budget.headroom() <= 0
        assert pol.decide(snap, rng).calls == 2


def test_loop_and_risk_parameters_by_prefix() -> None:
    pol = registry.create("predictive", loop_aim=0.9, risk_gain=3.0, min_gain=0.2)
    assert isinstance(pol, Predictive)
    assert pol.params.loop.aim == 0.9
    assert pol.params.risk.gain == 3.0
    assert pol.params.min_gain == 0.2
    with pytest.raises(ValueError, match="loop_nope"):
        registry.create("predictive", loop_nope=1.0)
    with pytest.raises(ValueError, match="aim"):
        registry.create("predictive", loop_aim=1.5)


def test_predictive_reports_the_loop_in_its_reason(rng: np.random.Generator) -> None:
    d = Predictive().decide(_busy_team(), rng)
    assert "loop x1.00" in d.reason


def test_stats_abandoned_defaults_to_zero() -> None:
    assert OutcomeStats().abandoned == 0.0
