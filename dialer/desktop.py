"""Agents who work from the web desktop: the engine's agent port for people.

The desktop is how a person tells the engine what they are doing (log in, ready,
pause with a reason, disposition after a call, log out) and how the engine tells
them what is happening (a previewed record, a connected customer, a call that
ended).  Nothing here talks HTTP: :mod:`dialer.api.desktop` carries these
messages over a WebSocket, so the same object serves tests and the browser.

Wrap-up is timed: an agent who has not picked a disposition when
``wrap_up_s`` runs out is made ready with the disposition ``wrap_timeout``, so a
forgotten browser tab cannot hold an agent out of the pool (and the report
shows whose calls ended that way).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dialer.agentstate import AGENT_TRANSITIONS, AgentState
from dialer.clock import Clock, TimerHandle
from dialer.events import Event
from dialer.ports import AgentEvent, AgentListener, Lead

WRAP_TIMEOUT = "wrap_timeout"
DEFAULT_DISPOSITIONS = ("sale", "no_sale", "callback", "dnc", "wrong_number", "other")


class DeskError(ValueError):
    """An agent's action that makes no sense now; the message is shown to the agent."""


@dataclass
class DeskAgent:
    agent_id: str
    state: AgentState = AgentState.LOGGED_OUT
    pause_reason: str = ""
    call_id: str | None = None
    lead: Lead | None = None
    wrap_timer: TimerHandle | None = None
    phone: str = ""  # the SIP phone line, for agents on SIP phones
    outboxes: list[asyncio.Queue[dict[str, Any]]] = field(default_factory=list)


class DesktopAgents:
    """The agent port of one campaign whose agents are people at the desktop."""

    def __init__(
        self,
        clock: Clock,
        campaign: str,
        wrap_up_s: float = 60.0,
        dispositions: tuple[str, ...] = DEFAULT_DISPOSITIONS,
        outbox_size: int = 256,
        callback_codes: frozenset[str] = frozenset({"callback"}),
    ) -> None:
        self.clock = clock
        self.campaign = campaign
        self.wrap_up_s = wrap_up_s
        self.dispositions = dispositions
        # codes whose disposition books a callback (the campaign's callback flag):
        # they need a time, asked for before the wrap-up closes
        self.callback_codes = callback_codes
        self.outbox_size = outbox_size
        self.agents: dict[str, DeskAgent] = {}
        self._listener: AgentListener | None = None

    # ------------------------------------------------------------------ wiring
    def set_listener(self, listener: AgentListener) -> None:
        self._listener = listener

    def attach(self, agent_id: str) -> asyncio.Queue[dict[str, Any]]:
        """A desktop window for this agent (several are allowed: two tabs)."""
        agent = self.agents.setdefault(agent_id, DeskAgent(agent_id))
        box: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.outbox_size)
        agent.outboxes.append(box)
        box.put_nowait(self.view(agent_id))
        return box

    def detach(self, agent_id: str, box: asyncio.Queue[dict[str, Any]]) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None and box in agent.outboxes:
            agent.outboxes.remove(box)

    def view(self, agent_id: str) -> dict[str, Any]:
        a = self.agents.get(agent_id) or DeskAgent(agent_id)
        out: dict[str, Any] = {
            "type": "state",
            "agent": agent_id,
            "campaign": self.campaign,
            "state": a.state.value,
            "pause_reason": a.pause_reason,
            "call_id": a.call_id,
            "phone": a.phone,
            "dispositions": list(self.dispositions),
            "callback_dispositions": sorted(self.callback_codes & set(self.dispositions)),
        }
        if a.lead is not None:
            out["contact"] = _contact(a.lead)
        return out

    def _send(self, agent: DeskAgent, message: dict[str, Any]) -> None:
        for box in agent.outboxes:
            if box.full():
                box.get_nowait()  # a stalled tab loses its oldest message, not the engine
            box.put_nowait(message)

    def _emit(
        self,
        agent: DeskAgent,
        state: AgentState,
        disposition: str = "",
        callback_at: datetime | None = None,
        callback_personal: bool = False,
    ) -> None:
        if self._listener is None:
            raise DeskError("the campaign is not running")
        if state not in AGENT_TRANSITIONS[agent.state]:
            raise DeskError(f"cannot go {state.value} while {agent.state.value}")
        agent.state = state
        self._listener.on_agent_event(
            AgentEvent(
                agent.agent_id,
                state,
                self.clock.monotonic(),
                disposition,
                agent.pause_reason,
                callback_at,
                callback_personal,
            )
        )
        self._send(agent, self.view(agent.agent_id))

    def follow(self, ev: Event) -> None:
        """An engine event (hub listener).  The engine moves desktop agents too
        (reserved, on call, wrap-up, back to ready when a previewed call failed):
        their screens follow its word, not their own guess."""
        if ev.kind == "agent" and ev.campaign == self.campaign:
            p = ev.payload
            self.engine_moved(str(p.get("agent")), AgentState(str(p.get("state"))))

    def engine_moved(self, agent_id: str, state: AgentState) -> None:
        agent = self.agents.get(agent_id)
        if agent is None or agent.state is state:
            return
        agent.state = state
        if state is AgentState.READY:
            agent.call_id, agent.lead = None, None
        self._send(agent, self.view(agent_id))

    def line_state(self, agent_id: str, up: bool, cause: str) -> None:
        """The agent's phone line (SIP agents): shown on the desktop, and a line
        that could not come up leaves a "ready" agent paused with the reason."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        agent.phone = "connected" if up else f"down: {cause}"
        if not up and agent.state is AgentState.READY:
            # the engine kept them paused (no line, no calls): the screen says why
            agent.state, agent.pause_reason = AgentState.PAUSED, f"phone: {cause}"
        self._send(agent, self.view(agent_id))

    # ------------------------------------------------------------------ agent actions
    def login(self, agent_id: str) -> None:
        """Logging in leaves the agent paused: calls start when they say ready."""
        agent = self.agents.setdefault(agent_id, DeskAgent(agent_id))
        if agent.state is not AgentState.LOGGED_OUT:
            return  # a second tab, or a reload: already in
        agent.pause_reason = "logged in"
        self._emit(agent, AgentState.PAUSED)

    def _agent(self, agent_id: str) -> DeskAgent:
        agent = self.agents.get(agent_id)
        if agent is None or agent.state is AgentState.LOGGED_OUT:
            raise DeskError("log in first")
        return agent

    def ready(self, agent_id: str) -> None:
        agent = self._agent(agent_id)
        if agent.state is AgentState.WRAP_UP:
            raise DeskError("pick a disposition for the last call first")
        agent.pause_reason = ""
        self._emit(agent, AgentState.READY)

    def pause(self, agent_id: str, reason: str) -> None:
        agent = self._agent(agent_id)
        reason = reason.strip()[:100]
        if not reason:
            raise DeskError("say why you pause (break, training, ...)")
        if agent.state is AgentState.WRAP_UP:
            raise DeskError("pick a disposition for the last call first")
        agent.pause_reason = reason
        if agent.state is AgentState.PAUSED:
            self._send(agent, self.view(agent_id))  # a new reason, the same state
            return
        self._emit(agent, AgentState.PAUSED)

    def logout(self, agent_id: str) -> None:
        agent = self._agent(agent_id)
        if agent.state in (AgentState.ON_CALL, AgentState.WRAP_UP):
            raise DeskError("finish the call and its disposition before logging out")
        agent.pause_reason = ""
        self._emit(agent, AgentState.LOGGED_OUT)

    def dispose(
        self,
        agent_id: str,
        disposition: str,
        then_pause: str = "",
        callback_at: datetime | None = None,
        callback_personal: bool = False,
    ) -> dict[str, Any]:
        """Close the wrap-up with a disposition; returns what the call was (for the
        follow-ups the desktop asked for: callback, DNC)."""
        agent = self._agent(agent_id)
        if agent.state is not AgentState.WRAP_UP:
            raise DeskError("there is no call to disposition")
        if disposition not in self.dispositions:
            raise DeskError(
                f"unknown disposition {disposition!r}; this campaign has: "
                + ", ".join(self.dispositions)
            )
        if disposition in self.callback_codes and callback_at is None:
            raise DeskError(f"{disposition!r} books a callback: give a date and time")
        closed = {"call_id": agent.call_id, "lead": agent.lead, "disposition": disposition}
        self._close_wrap(agent)
        if then_pause.strip():
            agent.pause_reason = then_pause.strip()[:100]
            self._emit(agent, AgentState.PAUSED, disposition, callback_at, callback_personal)
        else:
            agent.pause_reason = ""
            self._emit(agent, AgentState.READY, disposition, callback_at, callback_personal)
        return closed

    def _close_wrap(self, agent: DeskAgent) -> None:
        if agent.wrap_timer is not None:
            agent.wrap_timer.cancel()
            agent.wrap_timer = None
        agent.call_id, agent.lead = None, None

    def _wrap_timeout(self, agent_id: str) -> None:
        agent = self.agents.get(agent_id)
        if agent is None or agent.state is not AgentState.WRAP_UP:
            return
        agent.wrap_timer = None
        self._close_wrap(agent)
        self._send(agent, {"type": "notice", "message": "wrap-up time ran out"})
        self._emit(agent, AgentState.READY, WRAP_TIMEOUT)

    # ------------------------------------------------------------------ AgentPort
    def preview(self, agent_id: str, call_id: str, lead: Lead) -> None:
        agent = self.agents.setdefault(agent_id, DeskAgent(agent_id))
        agent.state, agent.call_id, agent.lead = AgentState.RESERVED, call_id, lead
        self._send(agent, {"type": "preview", "call_id": call_id, "contact": _contact(lead)})

    def connect(self, agent_id: str, call_id: str, lead: Lead) -> None:
        agent = self.agents.setdefault(agent_id, DeskAgent(agent_id))
        agent.state, agent.call_id, agent.lead = AgentState.ON_CALL, call_id, lead
        self._send(agent, {"type": "connected", "call_id": call_id, "contact": _contact(lead)})

    def call_ended(self, agent_id: str, call_id: str) -> None:
        agent = self.agents.setdefault(agent_id, DeskAgent(agent_id))
        agent.state = AgentState.WRAP_UP
        if self.wrap_up_s > 0:
            agent.wrap_timer = self.clock.call_later(
                self.wrap_up_s, lambda: self._wrap_timeout(agent_id)
            )
        self._send(agent, {"type": "call_ended", "call_id": call_id, "wrap_up_s": self.wrap_up_s})


def _contact(lead: Lead) -> dict[str, Any]:
    return {
        "contact_id": lead.contact_id,
        "number": lead.number,
        "numbers": list(lead.numbers),
        "attempts": lead.attempts,
        "timezone": lead.timezone,
        "fields": dict(lead.fields),
    }
