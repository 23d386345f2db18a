"""The end of a simulated shift must not abandon callers by itself."""

from __future__ import annotations

import asyncio

from sim.runner import SimOptions, run_scenario
from sim.scenario import parse_scenario

SCENARIO = """
name = "shift-end"
seed = 2
shift_hours = 0.1
list_size = 2000
audio = "synthetic"
audio_clips = 4
[agents]
count = 8
login_spread_s = 5.0
[called_party]
answer_rate = 0.6
machine_share = 0.1
patience = { kind = "fixed", mean = 60.0 }
[campaign]
amd_enabled = false
"""


def test_progressive_abandons_nobody_even_at_the_end_of_the_shift() -> None:
    # progressive keeps one call per ready agent, so every answer finds its agent;
    # agents who left while their calls still rang would abandon those callers
    sc = parse_scenario(SCENARIO)
    for seed in (1, 2, 3):
        s = asyncio.run(run_scenario(sc, SimOptions(policy="progressive", seed=seed))).summary
        assert s["live_answers"] > 20
        assert s["abandoned"] == 0, (seed, s["abandoned"])
        assert s["sim_seconds"] >= 0.1 * 3600
