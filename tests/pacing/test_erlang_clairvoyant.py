from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pacing import registry
from pacing.erlang import erlang_c, wait_tail
from pacing.types import Oracle
from tests.pacing.conftest import make_snapshot


def test_erlang_c_known_value() -> None:
    # textbook example: 10 agents, 8 Erlangs offered: P(wait) ~ 0.409
    assert erlang_c(10, 8.0) == pytest.approx(0.409, abs=2e-3)
    assert erlang_c(10, 0.0) == 0.0
    assert erlang_c(10, 10.0) == 1.0
    assert wait_tail(10, 8.0, 1.0) < erlang_c(10, 8.0)


def test_erlang_dials_more_for_bigger_teams(rng: np.random.Generator) -> None:
    small = registry.create("erlang").decide(make_snapshot(ready=5), rng).calls
    big = registry.create("erlang").decide(make_snapshot(ready=50), rng).calls
    assert 5 <= small < big


def test_erlang_spent_budget_is_progressive(rng: np.random.Generator) -> None:
    snap = make_snapshot(ready=4, on_call=[300.0] * 6, dialing=1, abandoned=40)
    assert registry.create("erlang").decide(snap, rng).calls == 3


def test_clairvoyant_needs_the_oracle(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="oracle"):
        registry.create("clairvoyant").decide(make_snapshot(ready=2), rng)


def test_clairvoyant_places_only_calls_that_meet_an_agent(rng: np.random.Generator) -> None:
    snap = make_snapshot(ready=1, on_call=[10.0, 20.0])
    oracle = Oracle(
        agent_free_in=np.array([15.0, 100.0]),
        next_live=np.array([False, True, False, True, True, True]),
        next_ring=np.array([20.0, 10.0, 30.0, 14.0, 12.0, 40.0]),
    )
    d = registry.create("clairvoyant").decide(replace(snap, oracle=oracle), rng)
    # live at 10 s -> the ready agent; live at 14 s -> agent free at 15 (grace 2 s);
    # live at 12 s would find nobody before 100 s: stop before it
    assert d.calls == 4
    assert d.expected_live == 2


def test_clairvoyant_accounts_for_calls_already_coming(rng: np.random.Generator) -> None:
    snap = make_snapshot(ready=1, dialing=1)
    oracle = Oracle(
        agent_free_in=np.zeros(0),
        next_live=np.array([True]),
        next_ring=np.array([5.0]),
        pending_live_in=np.array([3.0]),
    )
    assert registry.create("clairvoyant").decide(replace(snap, oracle=oracle), rng).calls == 0


def test_clairvoyant_places_dead_calls_so_the_list_moves_on(rng: np.random.Generator) -> None:
    # nothing live within reach: the dead calls still go, else the hopper never advances
    snap = make_snapshot(ready=2)
    oracle = Oracle(
        agent_free_in=np.zeros(0),
        next_live=np.zeros(5, dtype=bool),
        next_ring=np.zeros(5),
    )
    d = registry.create("clairvoyant").decide(replace(snap, oracle=oracle), rng)
    assert d.calls == 5
    assert d.expected_live == 0
