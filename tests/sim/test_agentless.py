"""An agentless campaign in the simulator: people hear the message, press keys,
and those who press 9 are never dialled again."""

from __future__ import annotations

from carriers.simulated import PartyKind
from dialer.compliance.gate import DialGate
from dialer.ports import Lead
from sim.runner import SimOptions, run_scenario
from sim.scenario import load_scenario
from tests.conftest import ROOT


async def test_agentless_campaign_serves_everyone_and_honours_opt_outs() -> None:
    sc = load_scenario(ROOT / "config/scenarios/agentless-reminders.toml")
    sc = sc.model_copy(update={"list_size": 600, "audio": "synthetic"})
    res = await run_scenario(sc, SimOptions())
    s = res.summary
    outcomes = s["ivr_outcomes"]
    assert outcomes.get("opt_out", 0) > 0 and outcomes.get("to_agent", 0) > 0
    assert s["abandoned"] == 0  # nobody waits for an agent who is not there
    assert s["results"]["ivr_completed"] >= sum(outcomes.values()) - outcomes.get("to_agent", 0)
    # each opt-out landed on the campaign's list, and the gate now refuses it
    engine = res.engine
    gate = engine.gate
    assert isinstance(gate, DialGate)
    # the engine's opt-out list is the one the gate reads (Engine.opt_out)
    lst = gate.dnc.lists[engine.settings.optout_list]
    assert len(lst) == outcomes["opt_out"]
    numbers = ["+" + str(k) for k in lst._pending]
    for n in numbers:
        verdict = gate(Lead(1, [n]), sc.start)
        assert not verdict.allowed and verdict.reason == "dnc"
    assert all(b.ivr_key is not None for b in res.pbx.truth.values() if b.kind is PartyKind.PERSON)


async def test_press_2_can_transfer_to_the_business_line() -> None:
    """A menu key may transfer the person to a configured number: the carrier
    calls it and joins them; the call lasts while they talk."""
    sc = load_scenario(ROOT / "config/scenarios/agentless-reminders.toml")
    ivr = sc.campaign.ivr
    assert ivr is not None
    ivr = ivr.model_copy(
        update={"menu": {"9": "opt_out", "2": "transfer"}, "transfer_to": "+12125550199"}
    )
    sc = sc.model_copy(
        update={
            "list_size": 400,
            "audio": "synthetic",
            "campaign": sc.campaign.model_copy(update={"ivr": ivr}),
        }
    )
    res = await run_scenario(sc, SimOptions())
    outcomes = res.summary["ivr_outcomes"]
    assert outcomes.get("transferred", 0) > 0 and "to_agent" not in outcomes, outcomes
    # only people who press 2 are transferred, and the simulated line always answers
    pressing_2 = sum(
        1 for b in res.pbx.truth.values() if b.kind is PartyKind.PERSON and b.ivr_key == "2"
    )
    assert outcomes["transferred"] <= pressing_2 and "transfer_failed" not in outcomes
