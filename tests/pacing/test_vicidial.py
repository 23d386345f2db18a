from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pacing.types import OutcomeStats, PacingSnapshot
from pacing.vicidial import VicidialAdaptive, VicidialParams, _hhmm_plus
from tests.pacing.conftest import make_snapshot

STATS = OutcomeStats(dials=1000, live_answers=300)


def run(policy: VicidialAdaptive, snap: PacingSnapshot, seconds: int, t0: float = 0.0) -> None:
    rng = np.random.default_rng(0)
    for s in range(seconds):
        policy.decide(replace(snap, now=t0 + s), rng)


def test_idle_agents_raise_the_level_by_their_share() -> None:
    # 10 agents, 2 idle on average, nobody waiting: +20 % per 15 s update
    pol = VicidialAdaptive()
    snap = make_snapshot(ready=2, on_call=[50.0] * 8, stats=STATS, abandoned=0.0)
    run(pol, snap, 16)
    assert pol.level == pytest.approx(1.2)
    run(pol, snap, 15, t0=16)
    assert pol.level == pytest.approx(1.44)


def test_waiting_customers_lower_the_level_and_clamps_hold() -> None:
    pol = VicidialAdaptive(initial_level=2.0)
    snap = make_snapshot(on_call=[50.0] * 10, waiting=3, stats=STATS)
    run(pol, snap, 16)
    assert pol.level == pytest.approx(1.4)
    run(pol, snap, 120, t0=16)
    assert pol.level == 1.0
    up = VicidialAdaptive(initial_level=2.9)
    run(up, make_snapshot(ready=10, stats=STATS), 16)
    assert up.level == 3.0


def test_intensity_scales_the_step() -> None:
    fast = VicidialAdaptive(intensity=20)
    run(fast, make_snapshot(ready=2, on_call=[50.0] * 8, stats=STATS), 16)
    assert fast.level == pytest.approx(1.24)


@pytest.mark.parametrize(
    ("method", "expected"), [("HARD_LIMIT", 1.0), ("AVERAGE", 1.2), ("TAPERED", 2.4 * 0.77)]
)
def test_drop_rules(method: str, expected: float) -> None:
    # 5 % of answers dropped today, 1000 calls: over the 3 % limit
    pol = VicidialAdaptive(method=method, initial_level=2.0, shift_start_hhmm=1330)
    snap = make_snapshot(
        ready=2, on_call=[50.0] * 8, stats=STATS, abandoned=15.0, live_answers=300.0
    )
    run(pol, snap, 16)
    assert pol.level == pytest.approx(expected, abs=1e-3)


def test_no_drop_rule_before_fifty_calls() -> None:
    pol = VicidialAdaptive(initial_level=2.0)
    snap = make_snapshot(
        ready=2, on_call=[50.0] * 8, stats=OutcomeStats(dials=40), abandoned=5, live_answers=10
    )
    run(pol, snap, 16)
    assert pol.level == pytest.approx(2.4)


def test_calls_placed_keep_level_times_agents_lines() -> None:
    pol = VicidialAdaptive(initial_level=2.0)
    snap = make_snapshot(ready=3, on_call=[10.0] * 2, dialing=4, stats=STATS)
    # goal = round(2 * 5) = 10; exist = 4 dialing + 2 talking
    assert pol.decide(snap, np.random.default_rng(0)).calls == 4


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="method"):
        VicidialParams(method="RATIO")
    with pytest.raises(ValueError, match="intensity"):
        VicidialParams(intensity=50)
    with pytest.raises(ValueError, match="maximum_level"):
        VicidialParams(maximum_level=0.5)


def test_server_time_arithmetic() -> None:
    assert _hhmm_plus(1330, 0) == 1330
    assert _hhmm_plus(1330, 45 * 60) == 1415
    assert _hhmm_plus(2330, 3600) == 30
