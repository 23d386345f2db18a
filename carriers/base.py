"""The carrier interface every adapter implements (simulated PBX, SIP trunks).

The engine hands a carrier commands (``dial``, ``hangup``, ``play``, ``bridge``)
and the carrier reports what happened as :data:`CarrierEvent` values through the
listener it was given.  Commands never block and never raise for call-level
failures: a failure is an :class:`Ended` event with an outcome, so the engine has
one path for every result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz, the G.711 packet size


class Scheduler(Protocol):
    """What a carrier needs of the engine's clock (dialer.clock.Clock satisfies it)."""

    def monotonic(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> object: ...


def cancel_timer(handle: object | None) -> None:
    """Cancel what ``Scheduler.call_at`` returned (None: nothing to cancel).  The
    handle's type is the clock's own, so only its ``cancel`` is relied on."""
    cancel = getattr(handle, "cancel", None)
    if cancel is not None:
        cancel()


class CallOutcome(StrEnum):
    """Why a call leg ended, in the engine's words (SIP codes map onto these)."""

    ANSWERED = "answered"  # the leg was answered and later hung up normally
    BUSY = "busy"  # 486, 600
    NO_ANSWER = "no_answer"  # 408, 480, our no-answer timeout (CANCEL / 487)
    BAD_NUMBER = "bad_number"  # 404, 484, 604, SIT tone on early media
    TRUNK_FAILURE = "trunk_failure"  # 5xx, timeouts: not the contact's fault
    REJECTED = "rejected"  # 403, 603 and other 4xx-6xx the callee or network refused
    FAILED = "failed"  # anything else (local error)


@dataclass(frozen=True, slots=True)
class AudioClip:
    """Audio known in advance (the simulator's called parties, prompts).

    ``clip_id`` names the recording so detectors may cache their verdict for it:
    the same samples always give the same verdict.
    """

    clip_id: str
    samples: npt.NDArray[np.int16]
    label: str = ""  # ground truth when known (simulator), never read by the engine

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class DialRequest:
    call_id: str
    number: str  # E.164
    caller_id: str = ""
    timeout_s: float = 25.0  # no-answer timeout; the engine enforces a 15 s floor
    campaign: str = ""
    trunk: str | None = None  # a named trunk, or None for the carrier's choice


@dataclass(frozen=True, slots=True)
class AgentLegRequest:
    """Where an agent's call leg goes (SIP URI, or a simulated agent id)."""

    agent_id: str
    target: str


@dataclass(frozen=True, slots=True)
class Ringing:
    call_id: str
    at: float
    early_media: bool = False


@dataclass(frozen=True, slots=True)
class Answered:
    """The far end answered.  ``clip`` is set when the audio is known in advance
    (simulation); live carriers stream :class:`MediaFrames` instead."""

    call_id: str
    at: float
    clip: AudioClip | None = None
    sip_status: int | None = 200


@dataclass(frozen=True, slots=True)
class MediaFrames:
    """Received audio: ``samples`` holds whole 20 ms frames of 8 kHz int16;
    ``media_time`` is the RTP time (seconds since answer) of the first sample."""

    call_id: str
    at: float
    media_time: float
    samples: npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Ended:
    call_id: str
    at: float
    outcome: CallOutcome
    sip_status: int | None = None
    cause: str = ""
    by_remote: bool = True
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the far end pressed (RFC 4733 telephone-event, or the simulator's)."""

    call_id: str
    at: float
    digit: str  # one of 0-9 * # A-D


CarrierEvent = Ringing | Answered | MediaFrames | Dtmf | Ended


@dataclass(frozen=True, slots=True)
class AgentLineUp:
    """The agent's phone answered the engine's call: the nailed-up leg is open,
    so connecting a customer needs no ring on the agent's side."""

    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentLineDown:
    """The agent's leg could not be set up, or ended (the phone hung up, the
    registration lapsed, the engine released it).  ``cause`` says which."""

    agent_id: str
    at: float
    cause: str
    by_remote: bool = True


AgentLineEvent = AgentLineUp | AgentLineDown


class CarrierListener(Protocol):
    def on_carrier_event(self, event: CarrierEvent) -> None: ...


class Carrier(Protocol):
    """An outbound route.  All methods return at once; results arrive as events."""

    name: str

    def set_listener(self, listener: CarrierListener) -> None: ...

    def free_channels(self) -> int:
        """How many more calls may start now (channel and calls-per-second limits)."""
        ...

    def dial(self, request: DialRequest) -> None: ...

    def hangup(self, call_id: str) -> None:
        """End the leg (CANCEL before answer, BYE after).  An :class:`Ended`
        event follows with ``by_remote=False``."""
        ...

    def play(self, call_id: str, clip: AudioClip, on_done: Callable[[], None]) -> None:
        """Play audio to the far end; ``on_done`` runs when it has been sent.  A new
        play replaces one still playing (an IVR key barges in), whose ``on_done``
        then never runs."""
        ...

    def bridge(self, call_id: str, agent_id: str) -> None:
        """Connect the customer leg to the agent's (nailed-up) leg."""
        ...

    def unbridge(self, call_id: str) -> None: ...

    def transfer(self, call_id: str, number: str, on_result: Callable[[bool, str], None]) -> None:
        """Connect the answered customer leg to ``number`` (E.164) through the
        carrier: a new call to it, joined to the customer's when answered.  The
        customer's call then lasts until either side hangs up (its :class:`Ended`
        as usual).  ``on_result(ok, cause)`` follows, never from inside this call:
        ``ok`` once the number answered, else why it did not."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class AgentLines(Protocol):
    """A carrier that reaches agents' phones (SIP): one long-lived leg per agent,
    opened at login and kept for the session, that ``bridge`` joins a customer to."""

    def set_line_listener(self, listener: Callable[[AgentLineEvent], None]) -> None: ...

    def nail_up(self, request: AgentLegRequest) -> None:
        """Call the agent's phone (``target``: a SIP URI, or the user name of a
        phone registered with the engine).  :class:`AgentLineUp` or
        :class:`AgentLineDown` follows, never from inside this call."""
        ...

    def release(self, agent_id: str) -> None:
        """Hang up the agent's leg (logout); :class:`AgentLineDown` follows."""
        ...

    def line_up(self, agent_id: str) -> bool: ...
