"""The call lifecycle: one explicit table of states and transitions.

Every call an engine places walks this table; an illegal transition raises
:class:`IllegalTransition` so a bug shows up at once instead of as a wrong report.
Each transition is an event that is stored and published (reports are built from
these events, not from counters kept on the side).
"""

from __future__ import annotations

from enum import StrEnum


class CallState(StrEnum):
    QUEUED = "queued"  # attempt written, dial not yet sent
    DIALING = "dialing"  # dial sent to the carrier
    RINGING = "ringing"
    EARLY_MEDIA = "early_media"  # 183 with audio: listen for SIT tones
    ANSWERED = "answered"
    CLASSIFYING = "classifying"  # AMD is listening
    WAITING_AGENT = "waiting_agent"  # a live person; the 2-second rule is running
    CONNECTED = "connected"  # bridged to an agent
    IVR = "ivr"  # agentless: playing a prompt / reading DTMF
    ABANDONED = "abandoned"  # no agent in time: playing the identification message
    MACHINE_HANDLED = "machine_handled"  # machine or fax: hang up or leave a message
    WRAP_UP = "wrap_up"  # customer leg ended, agent finishing the record
    DONE = "done"
    # terminal failures before answer
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    BAD_NUMBER = "bad_number"
    TRUNK_FAILURE = "trunk_failure"
    REJECTED = "rejected"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # found open after a crash; outcome unknown


TERMINAL: frozenset[CallState] = frozenset(
    {
        CallState.DONE,
        CallState.BUSY,
        CallState.NO_ANSWER,
        CallState.BAD_NUMBER,
        CallState.TRUNK_FAILURE,
        CallState.REJECTED,
        CallState.FAILED,
        CallState.INTERRUPTED,
    }
)

_PRE_ANSWER_FAILURES = frozenset(
    {
        CallState.BUSY,
        CallState.NO_ANSWER,
        CallState.BAD_NUMBER,
        CallState.TRUNK_FAILURE,
        CallState.REJECTED,
        CallState.FAILED,
    }
)

S = CallState
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    S.QUEUED: frozenset({S.DIALING, S.FAILED}),
    S.DIALING: frozenset({S.RINGING, S.EARLY_MEDIA, S.ANSWERED}) | _PRE_ANSWER_FAILURES,
    S.RINGING: frozenset({S.EARLY_MEDIA, S.ANSWERED}) | _PRE_ANSWER_FAILURES,
    S.EARLY_MEDIA: frozenset({S.RINGING, S.ANSWERED}) | _PRE_ANSWER_FAILURES,
    # AMD off -> straight to the agent queue or the IVR; a hang-up at once -> done
    S.ANSWERED: frozenset({S.CLASSIFYING, S.WAITING_AGENT, S.IVR, S.DONE, S.FAILED}),
    S.CLASSIFYING: frozenset({S.WAITING_AGENT, S.IVR, S.MACHINE_HANDLED, S.DONE, S.FAILED}),
    S.WAITING_AGENT: frozenset({S.CONNECTED, S.ABANDONED, S.FAILED}),
    S.CONNECTED: frozenset({S.WRAP_UP, S.FAILED}),
    S.IVR: frozenset({S.WAITING_AGENT, S.DONE, S.FAILED}),
    S.ABANDONED: frozenset({S.DONE}),
    S.MACHINE_HANDLED: frozenset({S.DONE}),
    S.WRAP_UP: frozenset({S.DONE}),
}
# A restart may find a call in any open state; it can only be closed as interrupted.
for _s in list(TRANSITIONS):
    TRANSITIONS[_s] = TRANSITIONS[_s] | {S.INTERRUPTED}
for _t in TERMINAL:
    TRANSITIONS[_t] = frozenset()

OPEN_STATES: frozenset[CallState] = frozenset(s for s in CallState if s not in TERMINAL)


class IllegalTransition(RuntimeError):
    def __init__(self, call_id: str, src: CallState, dst: CallState) -> None:
        super().__init__(f"call {call_id}: illegal transition {src.value} -> {dst.value}")
        self.call_id = call_id
        self.src = src
        self.dst = dst


def check_transition(call_id: str, src: CallState, dst: CallState) -> None:
    if dst not in TRANSITIONS[src]:
        raise IllegalTransition(call_id, src, dst)


class CallResult(StrEnum):
    """The attempt's outcome as stored and reported (what the treatment keys on)."""

    CONNECTED = "connected"  # a person reached an agent
    ABANDONED = "abandoned"  # a person, no agent within 2 s
    MACHINE = "machine"
    MESSAGE_LEFT = "message_left"
    FAX = "fax"
    IVR_COMPLETED = "ivr_completed"
    HANGUP = "hangup"  # answered, then hung up before we could classify or route
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    BAD_NUMBER = "bad_number"
    TRUNK_FAILURE = "trunk_failure"
    REJECTED = "rejected"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
