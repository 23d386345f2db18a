"""The informed reference policy: predictive with agents' exact free times."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dialer.config import CampaignConfig
from pacing import registry
from pacing.informed import Informed
from pacing.predictive import Predictive
from pacing.types import Oracle
from tests.pacing.conftest import make_snapshot


def test_informed_needs_the_oracle(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="oracle"):
        registry.create("informed").decide(make_snapshot(ready=2), rng)


def test_supply_is_the_agents_exact_free_times() -> None:
    snap = make_snapshot(on_call=[30.0, 30.0, 30.0], wrap_up=[5.0])
    # one agent frees at once, one long after any ring time, one in the middle of
    # the horizon's quantiles, the wrap-up agent never within it
    oracle = Oracle(agent_free_in=np.array([0.5, 500.0, 12.0, 400.0]))
    fc = Informed().forecast(replace(snap, oracle=oracle))
    base = Predictive().forecast(snap)
    assert fc.horizon.tolist() == base.horizon.tolist()
    share_mid = float((fc.horizon >= 12.0).mean())
    assert fc.p_free_on_call.tolist() == [1.0, 0.0, share_mid, 0.0]
    assert 0.0 < share_mid < 1.0  # the fixture's ring times put 12 s inside the horizon
    assert fc.p_free_wrap.size == 0
    # everything about calls is still the learnt model's
    assert fc.p_live == base.p_live
    assert fc.p_live_dialing.tolist() == base.p_live_dialing.tolist()


def test_knowing_agents_free_soon_dials_more(rng: np.random.Generator) -> None:
    snap = make_snapshot(ready=0, on_call=[100.0] * 10)
    soon = Oracle(agent_free_in=np.full(10, 1.0))
    late = Oracle(agent_free_in=np.full(10, 1000.0))
    n_soon = Informed().decide(replace(snap, oracle=soon), rng).calls
    n_late = Informed().decide(replace(snap, oracle=late), rng).calls
    # nobody free for 1000 s and nobody ready: not a single call
    assert n_late == 0
    assert n_soon >= 10


def test_live_campaigns_refuse_simulator_only_policies() -> None:
    for name in ("informed", "clairvoyant"):
        with pytest.raises(ValueError, match="only in the simulator"):
            CampaignConfig.model_validate({"name": "x", "policy": name})
