"""Campaign settings: what a supervisor configures, validated with clear errors."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dialer.callstate import CallResult
from dialer.ivr import IvrSettings

NO_ANSWER_FLOOR_S = 15.0  # FTC TSR / Ofcom: ring at least 15 s before giving up


def check_policy(name: str) -> str:
    from pacing.registry import names

    if name not in names():
        raise ValueError(f"unknown pacing policy {name!r}; known: {', '.join(names())}")
    return name


def check_amd_profile(name: str) -> str:
    from amd.profiles import names

    known = names()
    if known and name not in known:
        raise ValueError(f"unknown AMD profile {name!r}; known: {', '.join(known)}")
    return name


def check_timezone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def check_calltimes(name_or_path: str) -> str:
    from dialer.compliance.hours import load_calltimes

    load_calltimes(name_or_path)  # raises CallTimesError (a ValueError) naming what is wrong
    return name_or_path


class DialMode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    POWER = "power"
    PREDICTIVE = "predictive"


class AmdAction(StrEnum):
    HANGUP = "hangup"
    MESSAGE = "message"  # wait for the beep and leave a message


class Treatment(BaseModel):
    """What to do with a contact after a result (the contact strategy).

    ``move_to`` hands the contact to another campaign (an SMS or e-mail campaign, a
    different team): at once with ``action = "move"``, or once the contact has had
    ``move_after`` attempts (e.g. no answer three times) with any other action."""

    model_config = ConfigDict(extra="forbid", strict=True)
    action: Literal["retry", "next_number", "final", "move"] = "retry"
    delay_s: float = Field(default=1800.0, ge=0)
    charge: bool = True  # False: does not count against the attempt limits
    move_to: str | None = Field(default=None, min_length=1, max_length=200)
    move_after: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _move_needs_target(self) -> Treatment:
        if self.action == "move" and not self.move_to:
            raise ValueError("action 'move' needs move_to (the campaign to move the contact to)")
        if self.move_after is not None and not self.move_to:
            raise ValueError("move_after needs move_to (the campaign to move the contact to)")
        return self

    def moves(self, attempts: int) -> bool:
        """Does a contact with this many attempts leave for ``move_to`` now?"""
        if self.move_to is None:
            return False
        return self.action == "move" or (
            self.move_after is not None and attempts >= self.move_after
        )


class Disposition(BaseModel):
    """A wrap-up code an agent may pick, and what it does to the contact.

    Exactly one of ``final``, ``retry_delay_s``, ``callback``, ``dnc`` says what
    happens next; ``success`` and ``contact`` (right-party contact) only count."""

    model_config = ConfigDict(extra="forbid", strict=True)
    label: str = Field(default="", max_length=100)
    final: bool = False
    retry_delay_s: float | None = Field(default=None, ge=0, le=365 * 86400)
    callback: bool = False  # the agent gives a time; see Engine.schedule_callback
    dnc: bool = False  # the person asked not to be called again: an opt-out
    success: bool = False  # a sale, a promise to pay, an appointment
    contact: bool = True  # right-party contact

    @model_validator(mode="after")
    def _one_outcome(self) -> Disposition:
        chosen = [
            k
            for k, on in (
                ("final", self.final),
                ("retry_delay_s", self.retry_delay_s is not None),
                ("callback", self.callback),
                ("dnc", self.dnc),
            )
            if on
        ]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of final, retry_delay_s, callback, dnc "
                f"(got {', '.join(chosen) if chosen else 'none'})"
            )
        return self


DISPOSITION_NAME = r"^[a-z0-9][a-z0-9_.-]{0,49}$"


def check_disposition_names(v: dict[str, Disposition]) -> dict[str, Disposition]:
    import re

    for name in v:
        if not re.match(DISPOSITION_NAME, name):
            raise ValueError(
                f"disposition name {name!r}: use 1-50 lower-case letters, digits, _ . -"
            )
    return v


def default_dispositions() -> dict[str, Disposition]:
    # the desktop's codes (dialer/desktop.py), and "wrap_timeout", which it sends
    # for an agent who picked none in time
    return {
        "sale": Disposition(label="Sale", final=True, success=True),
        "no_sale": Disposition(label="No sale", final=True),
        "not_interested": Disposition(label="Not interested", final=True),
        "callback": Disposition(label="Call back", callback=True),
        "dnc": Disposition(label="Do not call", dnc=True),
        "wrong_number": Disposition(label="Wrong number", final=True, contact=False),
        "no_contact": Disposition(label="Not the right person", retry_delay_s=3600, contact=False),
        "other": Disposition(label="Other", final=True),
        "wrap_timeout": Disposition(label="No code picked in time", final=True),
    }


def default_treatments() -> dict[CallResult, Treatment]:
    R = CallResult
    return {
        R.BUSY: Treatment(action="retry", delay_s=600),
        R.NO_ANSWER: Treatment(action="retry", delay_s=1800),
        R.MACHINE: Treatment(action="retry", delay_s=3600),
        R.MESSAGE_LEFT: Treatment(action="final"),
        R.FAX: Treatment(action="next_number"),
        R.BAD_NUMBER: Treatment(action="next_number"),
        # the UK rule: no repeat call within 72 hours of an abandoned call
        R.ABANDONED: Treatment(action="retry", delay_s=72 * 3600),
        R.HANGUP: Treatment(action="retry", delay_s=3600),
        R.TRUNK_FAILURE: Treatment(action="retry", delay_s=60, charge=False),
        R.REJECTED: Treatment(action="next_number"),
        R.FAILED: Treatment(action="retry", delay_s=300, charge=False),
        R.INTERRUPTED: Treatment(action="retry", delay_s=0, charge=False),
        R.CONNECTED: Treatment(action="final"),
        R.IVR_COMPLETED: Treatment(action="final"),
    }


class CampaignSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(min_length=1, max_length=200)
    list_name: str = Field(default="", max_length=200)
    mode: DialMode = DialMode.PREDICTIVE
    policy: str = "predictive"  # pacing policy used in predictive mode
    power_ratio: float = Field(default=2.0, ge=1.0, le=15.0)
    abandon_target: float = Field(default=0.03, ge=0.0, le=1.0)  # fraction of live answers
    abandon_window: Literal["campaign", "24h", "30d"] = "campaign"
    connect_window_s: float = Field(default=2.0, gt=0, le=10)  # the 2-second rule
    no_answer_timeout_s: float = Field(default=25.0)
    max_attempts: int = Field(default=5, ge=1, le=100)
    amd_enabled: bool = True
    amd_profile: str = "balanced"
    amd_action: AmdAction = AmdAction.HANGUP
    amd_false_positive_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    notsure_to_agent: bool = True
    silence_to_agent: bool = True
    abandon_message_s: float = Field(default=4.0, ge=0.5, le=30)  # name + call-back number
    max_lines_per_agent: float = Field(default=3.0, ge=1.0, le=15.0)
    max_lines: int = Field(default=10_000, ge=1)
    tick_s: float = Field(default=1.0, gt=0.05, le=30)
    preview_s: float = Field(default=8.0, ge=0)  # 0: only the agent's Dial places the call
    caller_id: str = ""
    # compliance (the dial gate)
    calltimes: str = "us-tcpa"  # a set in config/calltimes/ or a TOML path
    timezone: str = "America/New_York"  # when neither the contact nor the number says
    max_attempts_per_number: int | None = Field(default=None, ge=1, le=100)
    max_attempts_per_day: int | None = Field(default=None, ge=1, le=100)
    max_attempts_per_24h: int | None = Field(default=None, ge=1, le=100)
    abandon_cooldown_h: float = Field(default=72.0, ge=0, le=24 * 365)
    treatments: dict[CallResult, Treatment] = Field(default_factory=default_treatments)
    # agentless: people who answer hear this message and menu instead of an agent
    ivr: IvrSettings | None = None
    # wrap-up codes agents pick (names: lower case, digits, _ . -)
    dispositions: dict[str, Disposition] = Field(default_factory=default_dispositions)
    # opt-outs (agent "dnc" disposition, IVR "press 9", API) land on this DNC list;
    # "account" makes a new list apply to every campaign, "campaign" to this one only
    optout_list: str = Field(default="optouts", min_length=1, max_length=200)
    optout_scope: Literal["account", "campaign"] = "account"
    # a personal callback waits this long for its agent, then any agent takes it
    callback_grace_s: float = Field(default=600.0, ge=0, le=7 * 86400)

    _policy = field_validator("policy")(lambda cls, v: check_policy(v))
    _profile = field_validator("amd_profile")(lambda cls, v: check_amd_profile(v))

    _zone = field_validator("timezone")(lambda cls, v: check_timezone(v))
    _calltimes = field_validator("calltimes")(lambda cls, v: check_calltimes(v))

    @field_validator("no_answer_timeout_s")
    @classmethod
    def _ring_floor(cls, v: float) -> float:
        if v < NO_ANSWER_FLOOR_S:
            raise ValueError(
                f"must be at least {NO_ANSWER_FLOOR_S:g} s (regulators require 15 s of ringing)"
            )
        return v

    @model_validator(mode="after")
    def _fill_treatments(self) -> CampaignSettings:
        defaults = default_treatments()
        for k, v in defaults.items():
            self.treatments.setdefault(k, v)
        return self

    _dispositions = field_validator("dispositions")(lambda cls, v: check_disposition_names(v))

    @property
    def window_s(self) -> float | None:
        return {"campaign": None, "24h": 86400.0, "30d": 30 * 86400.0}[self.abandon_window]
