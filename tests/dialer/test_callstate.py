from __future__ import annotations

import itertools

import pytest

from dialer.agentstate import (
    AGENT_TRANSITIONS,
    AgentState,
    IllegalAgentTransition,
    check_agent_transition,
)
from dialer.callstate import (
    TERMINAL,
    TRANSITIONS,
    CallState,
    IllegalTransition,
    check_transition,
)

PAIRS = list(itertools.product(CallState, CallState))
LEGAL = [(a, b) for a, b in PAIRS if b in TRANSITIONS[a]]
ILLEGAL = [(a, b) for a, b in PAIRS if b not in TRANSITIONS[a]]


@pytest.mark.parametrize(("src", "dst"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_every_legal_transition_is_accepted(src: CallState, dst: CallState) -> None:
    check_transition("c1", src, dst)


@pytest.mark.parametrize(("src", "dst"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_illegal_transition_raises(src: CallState, dst: CallState) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition("c1", src, dst)
    assert f"{src.value} -> {dst.value}" in str(info.value)
    assert "c1" in str(info.value)


def test_table_shape() -> None:
    # terminal states lead nowhere; every open state can be closed after a crash
    for t in TERMINAL:
        assert TRANSITIONS[t] == frozenset()
    for s in CallState:
        if s not in TERMINAL:
            assert CallState.INTERRUPTED in TRANSITIONS[s]
    # every state is reachable from QUEUED
    seen = {CallState.QUEUED}
    frontier = [CallState.QUEUED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(CallState)
    # a person waiting for an agent cannot be dropped silently: connect or abandon
    assert TRANSITIONS[CallState.WAITING_AGENT] == {
        CallState.CONNECTED,
        CallState.ABANDONED,
        CallState.FAILED,
        CallState.INTERRUPTED,
    }


AGENT_PAIRS = list(itertools.product(AgentState, AgentState))


@pytest.mark.parametrize(("src", "dst"), AGENT_PAIRS, ids=[f"{a}->{b}" for a, b in AGENT_PAIRS])
def test_agent_transitions(src: AgentState, dst: AgentState) -> None:
    if dst in AGENT_TRANSITIONS[src]:
        check_agent_transition("a1", src, dst)
    else:
        with pytest.raises(IllegalAgentTransition, match="a1"):
            check_agent_transition("a1", src, dst)
