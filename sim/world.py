"""A simulated world for the live engine: `dialer run` against the simulated PBX
in real time, with simulated agents, so the API, dashboard and events can be
exercised (and demonstrated) without telephones."""

from __future__ import annotations

import numpy as np

from carriers.base import AudioClip, Carrier
from carriers.simulated import SimulatedPbx, SimulatedPbxParams
from dialer.campaign import CampaignSettings
from dialer.clock import Clock
from dialer.config import CampaignConfig
from dialer.ports import AgentPort
from sim.agents import SimulatedAgents
from sim.audio import ClipBank, corpus_clips, message_clip
from sim.numbers import synthetic_numbers
from sim.population import Population
from sim.scenario import Scenario


def agent_ids(campaign: str, count: int) -> list[str]:
    """The ids of a campaign's simulated agents (SIP users when they have phones)."""
    return [f"{campaign}-agent{i + 1:04d}" for i in range(count)]


class SimWorld:
    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.root = np.random.default_rng(seed)
        self._carrier: SimulatedPbx | None = None
        self._clock: Clock | None = None
        self.agents: dict[str, SimulatedAgents] = {}

    def bind(self, clock: Clock) -> None:
        self._clock = clock
        sc = self.scenario
        r_clips, r_pbx = self.root.spawn(2)
        corpus = (
            corpus_clips(max(48, sc.audio_clips * 4), seed=1)[0] if sc.audio == "corpus" else []
        )
        self._carrier = SimulatedPbx(
            clock,
            Population(
                sc.called_party, ClipBank(r_clips, sc.audio_clips, corpus), clock.monotonic()
            ),
            r_pbx,
            SimulatedPbxParams(channels=sc.channels),
        )

    @property
    def carrier(self) -> Carrier:
        if self._carrier is None:
            raise RuntimeError("SimWorld.bind(clock) must be called first")
        return self._carrier

    def agents_for(self, campaign: str, clock: Clock) -> AgentPort:
        (rng,) = self.root.spawn(1)
        team = SimulatedAgents(clock, self.scenario.agents, rng)
        team.ids = agent_ids(campaign, len(team.ids))
        team.calls_taken = dict.fromkeys(team.ids, 0)
        self.agents[campaign] = team
        return team

    def start_agents(self, campaign: str) -> None:
        self.agents[campaign].login_all()

    def fill_list(self, campaign: CampaignConfig) -> list[tuple[str, dict[str, str]]]:
        (rng,) = self.root.spawn(1)
        return [
            (n, {"name": f"Customer {i + 1}", "source": "generated"})
            for i, n in enumerate(synthetic_numbers(self.scenario.list_size, rng))
        ]

    def abandon_message(self, settings: CampaignSettings) -> AudioClip:
        return message_clip(settings.abandon_message_s, "abandon-message")
