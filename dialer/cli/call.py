"""`dialer call NUMBER --trunk NAME`: one call through one trunk, to check it.

Places the call, runs AMD on the answer's audio (as the engine would), hangs up
as soon as the detector decides, and prints what happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from amd.registry import create as create_detector
from amd.types import FRAME_SAMPLES, Detector, Label, Verdict
from carriers.base import (
    Answered,
    CallOutcome,
    CarrierEvent,
    DialRequest,
    Ended,
    MediaFrames,
    Ringing,
)
from carriers.sip.carrier import CarrierStartError, SipCarrier
from dialer.cli.common import err, out
from dialer.clock import RealClock
from dialer.config import ConfigError, SipCarrierConfig, load_config

_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_RESULTS = {
    CallOutcome.BUSY: "busy",
    CallOutcome.NO_ANSWER: "no_answer",
    CallOutcome.BAD_NUMBER: "bad_number",
}


@dataclass
class CallReport:
    number: str
    trunk: str
    result: str = "failed"
    sip_status: int | None = None
    amd: dict[str, Any] | None = None
    setup_ms: int | None = None
    ringing_ms: int | None = None
    early_media: bool = False
    cause: str = ""
    rtp_frames: int = 0
    tried: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "sip_status": self.sip_status,
            "amd": self.amd,
            "setup_ms": self.setup_ms,
            "ringing_ms": self.ringing_ms,
            "early_media": self.early_media,
            "number": self.number,
            "trunk": self.trunk,
            "tried": self.tried,
            "rtp_frames": self.rtp_frames,
            "cause": self.cause,
        }


class _OneCall:
    """Listens to the carrier for one call and drives AMD on its audio."""

    def __init__(
        self, carrier: SipCarrier, clock: RealClock, profile: str, listen_s: float
    ) -> None:
        self.carrier = carrier
        self.clock = clock
        self.profile = profile
        self.listen_s = listen_s
        self.detector: Detector | None = None
        self.verdict: Verdict | None = None
        self.t_dial = 0.0
        self.t_answer: float | None = None
        self.t_ringing: float | None = None
        self.early = False
        self.ended: Ended | None = None
        self.done = asyncio.Event()
        self.frames = 0

    def on_carrier_event(self, event: CarrierEvent) -> None:
        if isinstance(event, Ringing):
            self.t_ringing = self.t_ringing or event.at
            self.early = self.early or event.early_media
        elif isinstance(event, Answered):
            self.t_answer = event.at
            self.detector = create_detector(self.profile)
            self.clock.call_later(self.listen_s, lambda: self._decide(event.call_id, None))
        elif isinstance(event, MediaFrames):
            self._feed(event)
        elif isinstance(event, Ended):
            if self.detector is not None and self.verdict is None:
                self.verdict = self.detector.finish()
            self.ended = event
            self.done.set()

    def _feed(self, event: MediaFrames) -> None:
        det = self.detector
        if det is None or self.verdict is not None:
            return
        s = event.samples
        for start in range(0, len(s) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            self.frames += 1
            verdict = det.feed(s[start : start + FRAME_SAMPLES])
            if verdict is not None:
                self._decide(event.call_id, verdict)
                return

    def _decide(self, call_id: str, verdict: Verdict | None) -> None:
        if self.verdict is not None or self.ended is not None:
            return
        if verdict is None:
            assert self.detector is not None
            verdict = self.detector.finish()  # listened long enough
        self.verdict = verdict
        self.carrier.hangup(call_id)


def _report(number: str, trunk: str, call: _OneCall) -> CallReport:
    rep = CallReport(number, trunk)
    ended = call.ended
    if ended is None:
        rep.cause = "no result (carrier did not end the call in time)"
        return rep
    rep.sip_status = ended.sip_status
    rep.cause = ended.cause
    rep.tried = [t for t in ended.extra.get("tried", "").split(",") if t]
    rep.rtp_frames = int(ended.extra.get("rtp_frames", "0") or 0)
    rep.early_media = call.early
    end_setup = call.t_answer if call.t_answer is not None else ended.at
    rep.setup_ms = round((end_setup - call.t_dial) * 1000)
    if call.t_ringing is not None:
        rep.ringing_ms = round((call.t_ringing - call.t_dial) * 1000)
    if call.t_answer is not None and ended.outcome is CallOutcome.ANSWERED:
        v = call.verdict
        machine = v is not None and v.label in (Label.MACHINE, Label.FAX)
        rep.result = "answered_machine" if machine else "answered_human"
        if v is not None:
            rep.amd = {
                "label": v.label.value,
                "decision_ms": v.decision_ms,
                "cause": v.cause,
                "profile": call.profile,
            }
    else:
        rep.result = _RESULTS.get(ended.outcome, "failed")
    return rep


async def place_call(
    cfg: SipCarrierConfig,
    trunk: str,
    number: str,
    *,
    timeout_s: float = 25.0,
    listen_s: float = 6.0,
    profile: str = "balanced",
    bind_port: int | None = None,
) -> CallReport:
    """One call through ``trunk``; returns when it has ended."""
    clock = RealClock()
    params = cfg.params()
    if bind_port is not None:
        params = replace(params, bind_port=bind_port)
    carrier = SipCarrier(clock, params)
    call = _OneCall(carrier, clock, profile, listen_s)
    carrier.set_listener(call)
    await carrier.start()
    try:
        t = next(x for x in cfg.trunks if x.name == trunk)
        call.t_dial = clock.monotonic()
        carrier.dial(DialRequest("call-1", number, t.caller_id, timeout_s, trunk=trunk))
        # the no-answer timeout, a CANCEL's wait and the listening bound the call
        guard = timeout_s + listen_s + params.cancel_guard_s + 5.0
        try:
            await asyncio.wait_for(call.done.wait(), guard)
        except TimeoutError:
            carrier.hangup("call-1")
    finally:
        await carrier.stop()
    return _report(number, trunk, call)


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}", markup=False)
    return typer.Exit(2)


def call(
    number: Annotated[str, typer.Argument(help="The number to call (E.164, e.g. +12125550123).")],
    trunk: Annotated[str, typer.Option("--trunk", help="Trunk name from the config.")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help='Engine config with [carrier] kind = "sip" '
            "(default: $DIALER_CONFIG, else dialer.toml).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="No-answer timeout, s.")] = 25.0,
    listen: Annotated[float, typer.Option("--listen", help="Longest AMD listen, s.")] = 6.0,
    profile: Annotated[str, typer.Option("--profile", help="AMD profile.")] = "balanced",
    port: Annotated[
        int | None, typer.Option("--port", help="Local SIP port (default: the config's).")
    ] = None,
) -> None:
    """Place one call through a trunk, run AMD on the answer, hang up, print the
    result: answered_human / answered_machine / busy / no_answer / bad_number / failed."""
    path = config or Path(os.environ.get("DIALER_CONFIG", "dialer.toml"))
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not isinstance(cfg.carrier, SipCarrierConfig):
        raise _fail(f'{path}: carrier.kind is "{cfg.carrier.kind}"; `dialer call` needs "sip"')
    names = [t.name for t in cfg.carrier.trunks]
    if trunk not in names:
        raise _fail(f"{path}: no trunk named {trunk!r} (configured: {', '.join(names)})")
    dialled = re.sub(r"[\s().-]", "", number)
    if not _NUMBER.match(dialled):
        raise _fail(f"{number!r} is not a dialable number (digits, optional leading +)")
    try:
        create_detector(profile)
    except (ValueError, KeyError, OSError) as exc:
        raise _fail(f"AMD profile {profile!r}: {exc}") from None
    if not timeout > 0 or not listen > 0:
        raise _fail("--timeout and --listen must be positive")
    try:
        rep = asyncio.run(
            place_call(
                cfg.carrier,
                trunk,
                dialled,
                timeout_s=timeout,
                listen_s=listen,
                profile=profile,
                bind_port=port,
            )
        )
    except CarrierStartError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(rep.as_dict()))
    else:
        amd = rep.amd
        amd_text = f"{amd['label']} after {amd['decision_ms']} ms ({amd['cause']})" if amd else "-"
        out.print(
            f"result     {rep.result}\nsip_status {rep.sip_status}\namd        {amd_text}\n"
            f"setup_ms   {rep.setup_ms}\ntrunk      {', '.join(rep.tried) or trunk}\n"
            f"cause      {rep.cause}",
            markup=False,
        )
    if rep.result == "failed":
        raise typer.Exit(1)
