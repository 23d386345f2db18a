"""Hand-made snapshots for the pacing tests."""

from __future__ import annotations

import numpy as np
import pytest

from pacing.types import AbandonBudget, AgentView, CallView, Limits, OutcomeStats, PacingSnapshot


def make_snapshot(
    *,
    ready: int = 0,
    on_call: list[float] | None = None,
    wrap_up: list[float] | None = None,
    dialing: int = 0,
    classifying: int = 0,
    waiting: int = 0,
    target: float = 0.03,
    abandoned: float = 0.0,
    live_answers: float = 1000.0,
    limits: Limits | None = None,
    now: float = 100.0,
    stats: OutcomeStats | None = None,
) -> PacingSnapshot:
    rng = np.random.default_rng(7)
    if stats is None:
        stats = OutcomeStats(
            dials=5000,
            live_answers=1000,
            machine_answers=500,
            other_outcomes=3500,
            ring_times_live=rng.lognormal(np.log(10), 0.3, 300),
            ring_times_all=rng.lognormal(np.log(15), 0.5, 300),
            talk_times=rng.lognormal(np.log(100), 0.6, 300),
            wrap_times=rng.lognormal(np.log(15), 0.5, 300),
            handle_times=rng.lognormal(np.log(120), 0.6, 300),
        )
    return PacingSnapshot(
        now=now,
        agents=AgentView(
            ready=np.full(ready, 5.0),
            on_call=np.asarray(on_call or [], dtype=np.float64),
            wrap_up=np.asarray(wrap_up or [], dtype=np.float64),
        ),
        calls=CallView(
            dialing=np.full(dialing, 3.0),
            classifying=np.full(classifying, 1.0),
            waiting=np.full(waiting, 0.5),
        ),
        stats=stats,
        budget=AbandonBudget(target=target, abandoned=abandoned, live_answers=live_answers),
        limits=limits or Limits(),
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
