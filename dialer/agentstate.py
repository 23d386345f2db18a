"""Agent states as the engine sees them (one table, like the call's)."""

from __future__ import annotations

from enum import StrEnum


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RESERVED = "reserved"  # picked for a call being connected, or a personal callback
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


A = AgentState
AGENT_TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    A.LOGGED_OUT: frozenset({A.READY, A.PAUSED}),
    A.READY: frozenset({A.RESERVED, A.ON_CALL, A.PAUSED, A.LOGGED_OUT}),
    A.RESERVED: frozenset({A.ON_CALL, A.READY, A.PAUSED, A.LOGGED_OUT}),
    A.ON_CALL: frozenset({A.WRAP_UP, A.LOGGED_OUT}),
    A.WRAP_UP: frozenset({A.READY, A.PAUSED, A.LOGGED_OUT}),
    A.PAUSED: frozenset({A.READY, A.LOGGED_OUT}),
}


class IllegalAgentTransition(RuntimeError):
    pass


def check_agent_transition(agent_id: str, src: AgentState, dst: AgentState) -> None:
    if dst not in AGENT_TRANSITIONS[src]:
        raise IllegalAgentTransition(f"agent {agent_id}: illegal transition {src} -> {dst}")
