"""Agents who take their calls on SIP phones: the nailed-up line in agent state.

:class:`PhoneAgents` sits between a campaign's agent port (people at the web
desktop, or simulated agents) and the engine.  It asks the carrier to call an
agent's phone when the agent logs in and keeps that leg for the session; an
agent is made ready only while their line is up, because the engine connects a
customer to whoever is ready and a customer bridged to a dead line would hear
silence.  So:

* the first event of an agent (login) calls their phone;
* "ready" while the line is not up is held: the engine hears "paused, waiting
  for the phone" (closing a wrap-up with its disposition, so nothing is lost),
  then "ready" once the phone answers, or stays paused with the reason when it
  cannot be reached;
* a line that drops while the agent waits for calls pauses them; during a call
  the carrier has already ended the customer leg, and the agent's next "ready"
  calls the phone again;
* logout hangs the line up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from carriers.base import AgentLegRequest, AgentLineDown, AgentLineEvent, AgentLines
from dialer.agentstate import AgentState
from dialer.ports import AgentEvent, AgentListener, AgentPort, Lead

log = logging.getLogger(__name__)

WAITING_FOR_PHONE = "waiting for the phone"

A = AgentState
LineWatcher = Callable[[str, bool, str], None]  # agent, up, cause


class PhoneAgents:
    """An :class:`AgentPort` whose agents work on SIP phones (see the module doc)."""

    def __init__(
        self,
        inner: AgentPort,
        lines: AgentLines,
        target_for: Callable[[str], str],
        on_line: LineWatcher | None = None,
    ) -> None:
        self.inner = inner
        self.lines = lines
        self.target_for = target_for
        self.on_line = on_line
        self._engine: AgentListener | None = None
        self.state: dict[str, AgentState] = {}  # as the engine was last told or moved
        self._held: dict[str, AgentEvent] = {}  # "ready", waiting for the line

    def owns(self, agent_id: str) -> bool:
        return agent_id in self.state

    # -- AgentPort (the engine's side) ---------------------------------------------------
    def set_listener(self, listener: AgentListener) -> None:
        self._engine = listener
        self.inner.set_listener(self)

    def connect(self, agent_id: str, call_id: str, lead: Lead) -> None:
        self.state[agent_id] = A.ON_CALL
        self.inner.connect(agent_id, call_id, lead)

    def call_ended(self, agent_id: str, call_id: str) -> None:
        self.state[agent_id] = A.WRAP_UP
        self.inner.call_ended(agent_id, call_id)

    def preview(self, agent_id: str, call_id: str, lead: Lead) -> None:
        self.state[agent_id] = A.RESERVED
        self.inner.preview(agent_id, call_id, lead)

    # -- AgentListener (the agents' side) ------------------------------------------------
    def on_agent_event(self, ev: AgentEvent) -> None:
        agent = ev.agent_id
        if ev.state is A.LOGGED_OUT:
            self._held.pop(agent, None)
            self.lines.release(agent)
            self._tell(ev)
            return
        line_up = self.lines.line_up(agent)
        if (
            not line_up
            and agent not in self._held
            and self.state.get(agent, A.LOGGED_OUT)
            in (
                A.LOGGED_OUT,
                A.PAUSED,
                A.WRAP_UP,
            )
        ):
            # logging in, or coming back after the line dropped: call the phone
            self.lines.nail_up(AgentLegRequest(agent, self.target_for(agent)))
        if ev.state is A.READY and not line_up:
            self._held[agent] = ev
            if self.state.get(agent, A.LOGGED_OUT) is not A.PAUSED:
                # close the wrap-up now (its disposition must not wait for a phone)
                self._tell(
                    AgentEvent(
                        agent,
                        A.PAUSED,
                        ev.at,
                        ev.disposition,
                        WAITING_FOR_PHONE,
                        ev.callback_at,
                        ev.callback_personal,
                    )
                )
            return
        self._held.pop(agent, None)
        self._tell(ev)

    def on_line_event(self, ev: AgentLineEvent) -> None:
        agent = ev.agent_id
        up = not isinstance(ev, AgentLineDown)
        cause = ev.cause if isinstance(ev, AgentLineDown) else ""
        if not up:
            log.info("agent %s: phone line down: %s", agent, cause)
        if self.on_line is not None:
            self.on_line(agent, up, cause)
        held = self._held.pop(agent, None)
        if up:
            if held is not None:
                self._tell(AgentEvent(agent, A.READY, ev.at, "", ""))
            return
        if self.state.get(agent) in (A.READY, A.RESERVED):
            self._tell(AgentEvent(agent, A.PAUSED, ev.at, "", f"phone line down: {cause}"))

    def _tell(self, ev: AgentEvent) -> None:
        if self._engine is None:
            return
        self.state[ev.agent_id] = ev.state
        self._engine.on_agent_event(ev)
