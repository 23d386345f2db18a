"""Simulated agents: they log in, take the calls the engine connects, wrap up for
a time drawn from the scenario, and become ready again.  The engine only sees
their state changes, exactly as it would from real agents."""

from __future__ import annotations

from functools import partial

import numpy as np

from dialer.agentstate import AgentState
from dialer.clock import Clock
from dialer.ports import AgentEvent, AgentListener, Lead
from sim.distributions import KeyedStream, sample
from sim.scenario import AgentsModel, Dist


class SimulatedAgents:
    def __init__(
        self,
        clock: Clock,
        model: AgentsModel,
        rng: np.random.Generator,
        foresight_seed: int | None = None,
    ) -> None:
        self.clock = clock
        self.model = model
        self.rng = rng
        self.ids = [f"agent{i + 1:04d}" for i in range(model.count)]
        self._listener: AgentListener | None = None
        self.logged_out: set[str] = set()
        self.calls_taken: dict[str, int] = dict.fromkeys(self.ids, 0)
        self.wrap_ahead = (
            None if foresight_seed is None else WrapAhead(foresight_seed, self.ids, model.wrap)
        )

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
        if self.wrap_ahead is not None:
            wrap = self.wrap_ahead.take(agent_id, self.clock.monotonic())
        else:
            wrap = sample(self.model.wrap, self.rng)
        self.clock.call_later(wrap, lambda: self._wrap_done(agent_id))

    def _wrap_done(self, agent_id: str) -> None:
        if self.wrap_ahead is not None:
            self.wrap_ahead.ready_at.pop(agent_id, None)
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


class WrapAhead:
    """Each agent's wrap-ups drawn ahead (the simulator's foresight): the k-th
    wrap-up of the i-th agent comes from a stream keyed by (i, k), so it is known
    while the agent still talks and is the same whichever policy runs."""

    def __init__(self, seed: int, ids: list[str], wrap: Dist) -> None:
        self._stream = KeyedStream(seed)
        self._wrap = wrap
        self._index = {a: i for i, a in enumerate(ids)}
        self._count: dict[str, int] = {}
        self._next: dict[str, float] = {}
        self.ready_at: dict[str, float] = {}  # agents in wrap-up: when they are ready

    def peek(self, agent_id: str) -> float:
        """The wrap-up that follows the agent's current (or next) call."""
        hit = self._next.get(agent_id)
        if hit is None:
            key = (self._index[agent_id] << 32) | self._count.get(agent_id, 0)
            hit = self._next[agent_id] = sample(self._wrap, self._stream.at(key))
        return hit

    def take(self, agent_id: str, now: float) -> float:
        wrap = self.peek(agent_id)
        del self._next[agent_id]
        self._count[agent_id] = self._count.get(agent_id, 0) + 1
        self.ready_at[agent_id] = now + wrap
        return wrap
