"""The simulator's oracle for the clairvoyant bound, and its refusal in live configs."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from dialer.callstate import CallResult
from dialer.config import ConfigError, parse_config
from pacing.forecast import LogNormal
from pacing.types import Oracle, PacingSnapshot
from sim.agents import WrapAhead
from sim.audio import ClipBank
from sim.oracle import Foresight
from sim.population import Population
from sim.runner import SimOptions, run_scenario
from sim.scenario import Dist, Scenario, parse_scenario

TINY = """
name = "tiny-oracle"
seed = 3
shift_hours = 0.4
list_size = 3000
audio = "synthetic"
audio_clips = 4
[agents]
count = 6
login_spread_s = 10.0
[called_party]
answer_rate = 0.4
machine_share = 0.3
[campaign]
abandon_target_pct = 3.0
"""


def tiny() -> Scenario:
    return parse_scenario(TINY)


def test_foresight_peek_is_what_the_pbx_meets_and_is_the_same_for_every_run() -> None:
    sc = tiny()
    bank = ClipBank(np.random.default_rng(0), 4)
    a = Foresight(Population(sc.called_party, bank), seed=42)
    b = Foresight(Population(sc.called_party, bank), seed=42)
    ahead = a.peek(30, now=0.0)
    rng = np.random.default_rng(9)  # ignored: the future is fixed by dial position
    placed = [a.sample("+1", 0.0, rng) for _ in range(30)]
    assert placed == ahead
    assert [b.sample("+1", 0.0, rng) for _ in range(30)] == placed
    kinds = {p.kind for p in placed}
    assert len(kinds) >= 3  # a real mix, not one party repeated
    other = Foresight(Population(sc.called_party, bank), seed=43)
    assert other.peek(30, 0.0) != ahead


def test_wrap_ahead_peek_equals_the_wrap_taken() -> None:
    w = WrapAhead(5, ["a", "b"], Dist(kind="lognormal", mean=15.0, sd=8.0))
    first = w.peek("a")
    assert w.take("a", now=100.0) == first
    assert w.ready_at["a"] == pytest.approx(100.0 + first)
    assert w.peek("a") != first  # the next wrap-up is a new draw
    assert w.peek("b") != first


def test_oracle_predicts_which_dials_turn_live() -> None:
    sc = tiny()
    seen: list[tuple[int, bool]] = []

    async def go() -> dict[str, object]:
        from sim import runner

        orig = runner.SimOracle.__call__

        def spy(self: runner.SimOracle, snap: PacingSnapshot) -> Oracle:
            o = orig(self, snap)
            if len(o.next_live):
                seen.append((self.foresight.placed, bool(o.next_live[0])))
            return o

        runner.SimOracle.__call__ = spy  # type: ignore[method-assign]
        try:
            res = await run_scenario(sc, SimOptions(policy="clairvoyant", seed=5))
        finally:
            runner.SimOracle.__call__ = orig  # type: ignore[method-assign]
        results = res.engine.results_by_call
        return {cid: r for cid, r in results.items()}

    results = asyncio.run(go())
    by_index = {int(cid.rsplit("-", 1)[1]) - 1: r for cid, r in results.items()}
    checked = [
        (pred, by_index[i] in (CallResult.CONNECTED, CallResult.ABANDONED))
        for i, pred in seen
        if i in by_index
    ]
    assert len(checked) > 100
    assert sum(p for p, _ in checked) > 10
    agree = sum(p == actual for p, actual in checked) / len(checked)
    assert agree > 0.99, agree


def test_clairvoyant_bounds_the_predictive_policy_in_the_simulator() -> None:
    sc = tiny()
    clair = asyncio.run(run_scenario(sc, SimOptions(policy="clairvoyant", seed=7))).summary
    pred = asyncio.run(
        run_scenario(sc, SimOptions(policy="predictive", seed=7, foresight=True))
    ).summary
    assert clair["foresight"] is True
    assert clair["abandon_rate"] <= 0.03
    assert clair["occupancy"] > 0.9
    assert clair["occupancy"] >= pred["occupancy"]


def test_clairvoyant_without_foresight_is_refused() -> None:
    with pytest.raises(ValueError, match="foresight"):
        asyncio.run(run_scenario(tiny(), SimOptions(policy="clairvoyant", foresight=False)))


def test_live_config_refuses_the_clairvoyant_policy() -> None:
    text = """
[[campaigns]]
name = "c1"
list = "l1"
policy = "clairvoyant"
"""
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "engine.toml")
    msg = str(exc.value)
    assert "engine.toml" in msg
    assert "policy" in msg
    assert "simulator" in msg
    # the other policies stay accepted
    parse_config(text.replace("clairvoyant", "vicidial-adaptive"), "engine.toml")


def test_engine_hands_predictive_what_its_calls_in_flight_model_needs() -> None:
    res = asyncio.run(run_scenario(tiny(), SimOptions(policy="predictive", seed=7, foresight=True)))
    eng = res.engine
    stats = eng.snapshot(eng.clock.monotonic() + 60.0).stats  # past the sample refresh
    # one answer time per live answer, each before that call's live verdict
    assert len(stats.answer_times_live) == len(stats.ring_times_live) > 20
    assert np.all(stats.answer_times_live <= stats.ring_times_live + 1e-9)
    assert stats.abandoned == eng.counters.abandoned
    # a call still dialing after every live answer seen so far came is priced as
    # (nearly) never reaching a person
    from pacing.forecast import live_given_still_dialing

    answered = np.sort(stats.answer_times_live)
    p = live_given_still_dialing(
        0.2,
        np.sort(stats.ring_times_all),
        np.array([answered[-1] + 0.5]),
        answered,
        LogNormal(float(np.log(10.0)), 0.4),
    )
    assert p[0] < 0.05
