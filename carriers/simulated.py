"""An in-process PBX for the simulator.

It answers the same interface as the SIP carrier, but the far ends are drawn from
a called-party model (supplied by ``sim``): how long the phone rings, whether a
person or a machine answers (with the audio of the first seconds, so the real
detector runs), or busy / no answer / bad number.  All timing goes through the
scheduler it is given, so under the virtual clock a shift runs in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from carriers.base import (
    Answered,
    AudioClip,
    CallOutcome,
    CarrierListener,
    DialRequest,
    Dtmf,
    Ended,
    Ringing,
    Scheduler,
    cancel_timer,
)


class PartyKind(StrEnum):
    PERSON = "person"
    MACHINE = "machine"
    FAX = "fax"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    BAD_NUMBER = "bad_number"


@dataclass(frozen=True, slots=True)
class PartyBehaviour:
    """What the far end of one dial will do (drawn when the call is placed)."""

    kind: PartyKind
    ring_s: float  # until answer (or until busy / bad-number tone)
    clip: AudioClip | None = None  # audio after answer (person or machine)
    talk_s: float = 0.0  # how long a person talks with an agent
    patience_s: float = 30.0  # how long a person waits in silence before hanging up
    machine_s: float = 30.0  # machine: records this long after the beep, then hangs up
    # agentless campaigns: the key this person presses while a message plays ("" for
    # none, None when the scenario has no IVR model) and when, after it starts
    ivr_key: str | None = None
    ivr_key_s: float = 0.0


class CalledPartyModel(Protocol):
    def sample(self, number: str, now: float, rng: np.random.Generator) -> PartyBehaviour: ...


@dataclass(frozen=True, slots=True)
class SimulatedPbxParams:
    channels: int = 10_000
    post_dial_delay_s: float = 0.4  # dial to first ringing
    busy_tone_s: float = 2.0
    bad_number_s: float = 1.5
    transfer_answer_s: float = 3.0  # a transfer's number rings this long, then answers


@dataclass(slots=True, eq=False)
class _Leg:
    request: DialRequest
    behaviour: PartyBehaviour
    answered: bool = False
    bridged: bool = False
    ended: bool = False
    timer: object | None = None
    play_timer: object | None = None
    key_pressed: bool = False


class SimulatedPbx:
    """The simulator's carrier.  ``truth`` records what really answered each call,
    for scoring AMD against ground truth; the engine never reads it."""

    name = "simulated"

    def __init__(
        self,
        scheduler: Scheduler,
        model: CalledPartyModel,
        rng: np.random.Generator,
        params: SimulatedPbxParams | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.model = model
        self.rng = rng
        self.params = params or SimulatedPbxParams()
        self._listener: CarrierListener | None = None
        self._legs: dict[str, _Leg] = {}
        self.truth: dict[str, PartyBehaviour] = {}
        self.dials = 0

    # -- interface -------------------------------------------------------------------
    def set_listener(self, listener: CarrierListener) -> None:
        self._listener = listener

    def free_channels(self) -> int:
        return max(0, self.params.channels - len(self._legs))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for call_id in list(self._legs):
            self.hangup(call_id)

    def dial(self, request: DialRequest) -> None:
        now = self.scheduler.monotonic()
        self.dials += 1
        if len(self._legs) >= self.params.channels:
            # no leg was opened, so the 503 is reported directly (not through _end,
            # which only ends legs it holds: the call would stay dialling forever)
            cid = request.call_id
            self._after(
                0.0,
                lambda: self._emit(
                    Ended(cid, self.scheduler.monotonic(), CallOutcome.TRUNK_FAILURE, 503, "503")
                ),
            )
            return
        b = self.model.sample(request.number, now, self.rng)
        self.truth[request.call_id] = b
        leg = _Leg(request, b)
        self._legs[request.call_id] = leg
        cid = request.call_id
        p = self.params
        if b.kind is PartyKind.BAD_NUMBER:
            leg.timer = self._after(
                p.bad_number_s, lambda: self._end(cid, CallOutcome.BAD_NUMBER, 404)
            )
            return
        if b.kind is PartyKind.BUSY:
            leg.timer = self._after(p.busy_tone_s, lambda: self._end(cid, CallOutcome.BUSY, 486))
            return
        self._after(p.post_dial_delay_s, lambda: self._emit_ringing(cid))
        if b.kind is PartyKind.NO_ANSWER or b.ring_s >= request.timeout_s:
            # our no-answer timeout: CANCEL, then 487 from the far end
            leg.timer = self._after(
                request.timeout_s, lambda: self._end(cid, CallOutcome.NO_ANSWER, 487, "timeout")
            )
            return
        leg.timer = self._after(max(p.post_dial_delay_s, b.ring_s), lambda: self._answer(cid))

    def hangup(self, call_id: str) -> None:
        leg = self._legs.get(call_id)
        if leg is None:
            return
        outcome = CallOutcome.ANSWERED if leg.answered else CallOutcome.NO_ANSWER
        status = None if leg.answered else 487
        self._cancel(leg)
        self._after(
            0.0, lambda: self._end(call_id, outcome, status, "local hangup", by_remote=False)
        )
        leg.ended = True

    def play(self, call_id: str, clip: AudioClip, on_done: Callable[[], None]) -> None:
        leg = self._legs.get(call_id)
        if leg is None or leg.ended:
            return
        cancel_timer(leg.play_timer)  # barge-in: the new clip replaces the one playing

        def done() -> None:
            leg.play_timer = None
            if call_id in self._legs:
                on_done()

        leg.play_timer = self._after(clip.duration_s, done)
        b = leg.behaviour
        if b.ivr_key is not None and not leg.bridged:
            # a person listening to a message does not hang up for silence; they
            # press their key (once) or hang up once it is over and they lose patience
            self._cancel(leg)
            if b.ivr_key and not leg.key_pressed:
                leg.key_pressed = True
                leg.timer = self._after(
                    min(b.ivr_key_s, clip.duration_s + b.patience_s),
                    lambda: self._press(call_id, b.ivr_key or ""),
                )
            else:
                leg.timer = self._after(
                    clip.duration_s + b.patience_s,
                    lambda: self._end(call_id, CallOutcome.ANSWERED, None, "far end hung up"),
                )

    def _press(self, call_id: str, digit: str) -> None:
        leg = self._legs.get(call_id)
        if leg is None or leg.ended:
            return
        leg.timer = self._after(
            leg.behaviour.patience_s + 30.0,
            lambda: self._end(call_id, CallOutcome.ANSWERED, None, "far end hung up"),
        )
        if self._listener is not None:
            self._listener.on_carrier_event(Dtmf(call_id, self.scheduler.monotonic(), digit))

    def bridge(self, call_id: str, agent_id: str) -> None:
        leg = self._legs.get(call_id)
        if leg is None or leg.ended:
            return
        leg.bridged = True
        self._cancel(leg)
        leg.timer = self._after(
            leg.behaviour.talk_s, lambda: self._end(call_id, CallOutcome.ANSWERED, None, "bye")
        )

    def unbridge(self, call_id: str) -> None:
        leg = self._legs.get(call_id)
        if leg is not None:
            leg.bridged = False

    def transfer(self, call_id: str, number: str, on_result: Callable[[bool, str], None]) -> None:
        """The number answers after ``transfer_answer_s``; the person then talks for
        their talk time, as with an agent (a number that is down is not modelled)."""
        leg = self._legs.get(call_id)
        if leg is None or leg.ended:
            self._after(0.0, lambda: on_result(False, "the customer's call has ended"))
            return
        self._cancel(leg)
        leg.bridged = True  # no more keys; the person talks to whoever answers

        def answered() -> None:
            if call_id not in self._legs or leg.ended:
                return
            on_result(True, "")
            leg.timer = self._after(
                leg.behaviour.talk_s,
                lambda: self._end(call_id, CallOutcome.ANSWERED, None, "bye"),
            )

        leg.timer = self._after(self.params.transfer_answer_s, answered)

    # -- internals -------------------------------------------------------------------
    def _after(self, delay: float, fn: Callable[[], None]) -> object:
        return self.scheduler.call_at(self.scheduler.monotonic() + delay, fn)

    @staticmethod
    def _cancel(leg: _Leg) -> None:
        cancel_timer(leg.timer)
        leg.timer = None

    def _emit(self, event: Ringing | Answered | Ended) -> None:
        if self._listener is not None:
            self._listener.on_carrier_event(event)

    def _emit_ringing(self, call_id: str) -> None:
        leg = self._legs.get(call_id)
        if leg is not None and not leg.answered and not leg.ended:
            self._emit(Ringing(call_id, self.scheduler.monotonic()))

    def _answer(self, call_id: str) -> None:
        leg = self._legs.get(call_id)
        if leg is None or leg.ended:
            return
        leg.answered = True
        b = leg.behaviour
        leg.timer = None  # the ring timer, which brought us here
        self._emit(Answered(call_id, self.scheduler.monotonic(), clip=b.clip))
        if call_id not in self._legs or leg.ended or leg.timer is not None:
            # the engine already gave them something to hear (an IVR message, a
            # bridge), whose own timer decides when they hang up
            return
        # a person who hears nothing for too long hangs up; a machine stops recording
        limit = b.patience_s if b.kind is PartyKind.PERSON else b.machine_s
        leg.timer = self._after(
            limit, lambda: self._end(call_id, CallOutcome.ANSWERED, None, "far end hung up")
        )

    def _end(
        self,
        call_id: str,
        outcome: CallOutcome,
        status: int | None,
        cause: str = "",
        by_remote: bool = True,
    ) -> None:
        leg = self._legs.pop(call_id, None)
        if leg is None:
            return
        self._cancel(leg)
        self._emit(
            Ended(call_id, self.scheduler.monotonic(), outcome, status, cause, by_remote=by_remote)
        )
