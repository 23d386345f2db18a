"""Simulated agents: they log in, take the calls the engine connects, wrap up for
a time drawn from the scenario, and become ready again.  The engine only sees
their state changes, exactly as it would from real agents."""

from __future__ import annotations

from functools import partial

import numpy as np

from dialer.agentstate import AgentState
from dialer.clock import Clock
from dialer.ports import AgentEvent, AgentListener, Lead
from sim.distributions import sample
from sim.scenario import AgentsModel


class SimulatedAgents:
    def __init__(self, clock: Clock, model: AgentsModel, rng: np.random.Generator) -> None:
        self.clock = clock
        self.model = model
        self.rng = rng
        self.ids = [f"agent{i + 1:04d}" for i in range(model.count)]
        self._listener: AgentListener | None = None
        self.logged_out: set[str] = set()
        self.calls_taken: dict[str, int] = dict.fromkeys(self.ids, 0)

    def set_listener(self, listener: AgentListener) -> None:
        self._listener = listener

    def _emit(self, agent_id: str, state: AgentState, disposition: str = "") -> None:
        assert self._listener is not None
        self._listener.on_agent_event(
            AgentEvent(agent_id, state, self.clock.monotonic(), disposition)
        )

    def login_all(self) -> None:
        spread = self.model.login_spread_s
        for agent_id in self.ids:
            delay = float(self.rng.uniform(0, spread)) if spread > 0 else 0.0
            self.clock.call_later(delay, partial(self._emit, agent_id, AgentState.READY))

    def connect(self, agent_id: str, call_id: str, lead: Lead) -> None:
        self.calls_taken[agent_id] += 1

    def preview(self, agent_id: str, call_id: str, lead: Lead) -> None:
        pass  # simulated agents accept every previewed record; the timer dials it

    def call_ended(self, agent_id: str, call_id: str) -> None:
        wrap = sample(self.model.wrap, self.rng)
        self.clock.call_later(wrap, lambda: self._wrap_done(agent_id))

    def _wrap_done(self, agent_id: str) -> None:
        if agent_id in self.logged_out:
            self._emit(
                agent_id,
                AgentState.LOGGED_OUT,
                "sale" if self.rng.random() < 0.2 else "not_interested",
            )
        else:
            self._emit(
                agent_id, AgentState.READY, "sale" if self.rng.random() < 0.2 else "not_interested"
            )
