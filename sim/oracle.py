"""What the simulator knows about the future, handed to the clairvoyant policy.

Two pieces make the future knowable before it happens:

* :class:`Foresight` wraps the called-party model so that the i-th dial of the run
  always meets the same party: its draws come from a counter-based generator keyed
  by (run, i), so the party of a dial not yet placed can be looked at now and will
  be exactly the one the PBX meets when the dial is placed (the answer rate is
  still read at dial time, so mid-shift changes apply).  Because the party depends
  only on the dial's position, every policy run with the same seed meets the same
  sequence of people: comparisons between policies use common random numbers.
* :class:`SimulatedAgents` with ``foresight=True`` draws each agent's k-th wrap-up
  from a stream keyed by (agent, k), so it is known while the agent still talks.

:class:`SimOracle` turns these and the engine's state into a
:class:`pacing.types.Oracle` on every pacing tick.  Times it reports for a caller
(``next_ring``, ``pending_live_in``) are the moment the engine's connect window
starts for that caller (the end of the greeting, moved earlier when the caller's
patience is shorter, later when the AMD verdict comes after the window): an agent
free within ``connect_window_s`` of it takes the call, which is the rule the
clairvoyant policy applies with its ``grace_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from amd.types import Label
from carriers.simulated import PartyBehaviour, PartyKind, SimulatedPbxParams
from dialer.agentstate import AgentState
from dialer.campaign import AmdAction
from dialer.engine import Engine
from pacing.types import Oracle, PacingSnapshot, cap
from sim.agents import WrapAhead
from sim.distributions import KeyedStream
from sim.population import Population


@dataclass(slots=True)
class _Future:
    rate: float  # the answer rate this prediction was made with
    party: PartyBehaviour


class Foresight:
    """The called-party model with the future fixed by dial position."""

    def __init__(self, model: Population, seed: int) -> None:
        self.model = model
        self._stream = KeyedStream(seed)
        self.placed = 0  # dials the PBX has sampled so far
        self._cache: dict[int, _Future] = {}

    def _party(self, index: int, now: float) -> PartyBehaviour:
        rate = self.model.answer_rate(now)
        hit = self._cache.get(index)
        if hit is None or hit.rate != rate:
            party = self.model.sample("", now, self._stream.at(index))
            hit = self._cache[index] = _Future(rate, party)
        return hit.party

    def sample(self, number: str, now: float, rng: np.random.Generator) -> PartyBehaviour:
        index = self.placed
        self.placed += 1
        party = self._party(index, now)
        self._cache.pop(index, None)
        return party

    def peek(self, k: int, now: float) -> list[PartyBehaviour]:
        """The parties the next ``k`` dials will meet if placed at ``now``."""
        return [self._party(self.placed + i, now) for i in range(k)]


class SimOracle:
    """Builds ``PacingSnapshot.oracle`` from the simulated world's hidden state."""

    def __init__(
        self,
        engine: Engine,
        foresight: Foresight,
        pbx_params: SimulatedPbxParams,
        truth: dict[str, PartyBehaviour],
        wrap_ahead: WrapAhead,
    ) -> None:
        self.engine = engine
        self.foresight = foresight
        self.pbx = pbx_params
        self.truth = truth
        self.wraps = wrap_ahead
        self._call_start: dict[str, float] = {}  # call id -> connect window start (abs)

    def window_start(self, party: PartyBehaviour, timeout_s: float) -> float:
        """Seconds from dial until the caller's connect window starts (inf: never live)."""
        if party.kind in (PartyKind.BUSY, PartyKind.BAD_NUMBER, PartyKind.NO_ANSWER):
            return math.inf
        if party.ring_s >= timeout_s:
            return math.inf
        answer = max(self.pbx.post_dial_delay_s, party.ring_s)
        limit = party.patience_s if party.kind is PartyKind.PERSON else party.machine_s
        st = self.engine.settings
        window = st.connect_window_s
        cache = self.engine.amd_cache
        if not st.amd_enabled or cache is None or party.clip is None:
            # without AMD every answer goes to an agent (as the engine does)
            return answer + min(window, limit) - window
        verdict = cache.classify(party.clip, st.amd_action is AmdAction.MESSAGE)
        label = verdict.label
        to_agent = (
            label is Label.HUMAN
            or (label is Label.NOTSURE and st.notsure_to_agent)
            or (label is Label.SILENCE and st.silence_to_agent)
        )
        decided = verdict.decision_ms / 1000.0
        if not to_agent or limit <= decided:
            return math.inf  # a machine verdict, or the caller hung up while classified
        end_ms = verdict.speech_end_ms if verdict.speech_end_ms is not None else verdict.decision_ms
        greeting_end = min(decided, end_ms / 1000.0)
        # an agent ready at the verdict takes the call even after the window
        latest = max(decided, min(greeting_end + window, limit))
        return answer + latest - window

    def __call__(self, snap: PacingSnapshot) -> Oracle:
        eng = self.engine
        now = snap.now
        timeout = eng.settings.no_answer_timeout_s
        k = cap(snap, 1 << 30)
        parties = self.foresight.peek(k, now)
        starts = np.fromiter((self.window_start(p, timeout) for p in parties), float, k)

        pending: list[float] = []
        for phase in ("dialing", "classifying"):
            for call_id in eng._phase_since[phase]:
                start = self._call_start.get(call_id)
                if start is None:
                    party = self.truth.get(call_id)
                    if party is None:  # queued, not yet with the PBX
                        continue
                    start = eng.calls[call_id].t_dial + self.window_start(party, timeout)
                    self._call_start[call_id] = start
                pending.append(start - now)

        free_in: list[float] = []
        for agent_id in eng._agent_since[AgentState.ON_CALL]:
            on = eng.agents[agent_id].call_id or ""
            talk_from = eng._talk_start.get(on)
            party = self.truth.get(on)
            if talk_from is None or party is None:
                continue
            talk_end = max(now, talk_from + party.talk_s)
            free_in.append(talk_end - now + self.wraps.peek(agent_id))
        for agent_id in eng._agent_since[AgentState.WRAP_UP]:
            ready_at = self.wraps.ready_at.get(agent_id)
            if ready_at is not None:
                free_in.append(max(0.0, ready_at - now))
        if len(self._call_start) > 4 * (len(eng.calls) + 64):
            live = eng.calls.keys()
            self._call_start = {c: t for c, t in self._call_start.items() if c in live}
        return Oracle(
            agent_free_in=np.asarray(free_in, dtype=np.float64),
            next_live=np.isfinite(starts),
            next_ring=np.where(np.isfinite(starts), starts, 0.0),
            pending_live_in=np.asarray(pending, dtype=np.float64),
        )
