from __future__ import annotations

import math

import pytest

from pacing.abandon import (
    UK_WINDOW_S,
    AbandonController,
    AbandonParams,
    RiskParams,
    allowed_risk,
)
from pacing.types import AbandonBudget


def test_abandoned_means_not_connected_within_grace() -> None:
    c = AbandonController(AbandonParams(target=0.03))
    assert not c.record_live(1.0, 0.4)
    assert not c.record_live(2.0, 2.0)
    assert c.record_live(3.0, 2.01)
    assert c.record_live(4.0, math.inf)
    b = c.budget(5.0)
    assert (b.abandoned, b.live_answers) == (2, 4)


def test_rolling_window_forgets_old_events() -> None:
    c = AbandonController(AbandonParams(target=0.03, window_s=UK_WINDOW_S))
    c.record_live(0.0, 10.0)
    for i in range(99):
        c.record_live(100.0 + i, 0.5)
    assert c.budget(1000.0).rate == pytest.approx(0.01)
    later = c.budget(UK_WINDOW_S + 50.0)
    assert later.abandoned == 0 and later.live_answers == 99


def test_campaign_window_never_forgets() -> None:
    c = AbandonController(AbandonParams(window_s=None))
    c.record_live(0.0, 10.0)
    assert c.budget(1e9).abandoned == 1


def test_amd_false_positives_count_as_abandoned_people() -> None:
    c = AbandonController(AbandonParams(target=0.03, amd_fp_rate=0.05))
    for i in range(100):
        c.record_live(float(i), 0.5)
    for i in range(40):
        c.record_machine(200.0 + i)
    b = c.budget(300.0)
    assert b.abandoned == pytest.approx(2.0)
    assert b.live_answers == pytest.approx(102.0)


def test_target_change_applies_at_the_next_tick() -> None:
    c = AbandonController(AbandonParams(target=0.03))
    for i in range(100):
        c.record_live(float(i), 0.5 if i % 50 else 9.0)  # 2 abandons in 100
    before = c.allowed_risk(100.0)
    assert before > 0
    c.set_target(1.0)
    assert c.target == 0.03  # the tick in flight keeps its target
    assert c.budget(101.0).target == pytest.approx(0.01)
    assert c.allowed_risk(101.0) == 0.0  # 2 % observed is over a 1 % target
    c.set_target(5.0)
    assert c.allowed_risk(102.0) > before
    c.set_target(0.0)
    assert c.allowed_risk(103.0) == 0.0


def test_allowed_risk_tightens_as_budget_runs_out() -> None:
    risks = [
        allowed_risk(AbandonBudget(target=0.03, abandoned=a, live_answers=1000.0))
        for a in (0, 10, 20, 25, 29, 30, 40)
    ]
    assert risks == sorted(risks, reverse=True)
    assert risks[0] == pytest.approx(0.03)
    assert risks[-2] == 0.0 and risks[-1] == 0.0
    assert 0 < risks[4] < 0.01


def test_risk_gain_sets_equilibrium() -> None:
    p = RiskParams(gain=3.0, max_mult=1.0)
    # at 3/4 of the target the planned risk equals the observed rate
    b = AbandonBudget(target=0.04, abandoned=30.0, live_answers=1000.0)
    assert allowed_risk(b, p) == pytest.approx(0.03)


@pytest.mark.parametrize("pct", [-1.0, 100.5, math.nan])
def test_bad_targets_are_rejected(pct: float) -> None:
    with pytest.raises(ValueError, match="percentage"):
        AbandonController().set_target(pct)


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="window_s"):
        AbandonParams(window_s=0)
    with pytest.raises(ValueError, match="amd_fp_rate"):
        AbandonParams(amd_fp_rate=1.5)
    with pytest.raises(ValueError, match="target"):
        AbandonBudget(target=3.0, abandoned=0, live_answers=0)


def test_events_out_of_order_are_rejected() -> None:
    c = AbandonController()
    c.record_live(10.0, 0.0)
    with pytest.raises(ValueError, match="time order"):
        c.record_live(5.0, 0.0)


def test_no_dialing_ahead_until_one_abandon_fits_in_the_window() -> None:
    strict = RiskParams(min_headroom=1.0)
    early = AbandonBudget(target=0.03, abandoned=0.0, live_answers=20.0)
    assert allowed_risk(early, strict) == 0.0
    assert allowed_risk(early) == pytest.approx(0.03)
    later = AbandonBudget(target=0.03, abandoned=0.0, live_answers=40.0)
    assert allowed_risk(later, strict) == pytest.approx(0.03)
