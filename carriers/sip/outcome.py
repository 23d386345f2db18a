"""Map SIP final responses to the engine's :class:`CallOutcome`."""

from __future__ import annotations

from carriers.base import CallOutcome

_BY_STATUS: dict[int, CallOutcome] = {
    486: CallOutcome.BUSY,
    600: CallOutcome.BUSY,
    404: CallOutcome.BAD_NUMBER,
    484: CallOutcome.BAD_NUMBER,
    604: CallOutcome.BAD_NUMBER,
    408: CallOutcome.NO_ANSWER,
    480: CallOutcome.NO_ANSWER,
    403: CallOutcome.REJECTED,
    603: CallOutcome.REJECTED,
}


def outcome_for_status(status: int, *, cancelled_by_us: bool = False) -> CallOutcome:
    """The outcome of an INVITE that ended with final response ``status``.

    A 487 after our own CANCEL is our no-answer timeout; a 487 we did not ask
    for is the network giving up, a trunk problem.
    """
    if 200 <= status < 300:
        return CallOutcome.ANSWERED
    if status == 487:
        return CallOutcome.NO_ANSWER if cancelled_by_us else CallOutcome.TRUNK_FAILURE
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 500 <= status < 600:
        return CallOutcome.TRUNK_FAILURE
    if 300 <= status < 700:
        return CallOutcome.REJECTED
    return CallOutcome.FAILED
