"""Scenario files (TOML): a team, a shift, a list, and the people being called.

Validated with pydantic; an invalid file gets an error naming the key and the
problem (``called_party.answer_rate: must be <= 1``).
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dialer.config import describe_validation
from dialer.ivr import IvrSettings


class Dist(BaseModel):
    """A positive duration distribution in seconds."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["lognormal", "gamma", "exponential", "fixed", "uniform"] = "lognormal"
    mean: float = Field(gt=0)
    sd: float = Field(default=0.0, ge=0)  # lognormal/gamma spread; uniform: half-width
    min: float = Field(default=0.0, ge=0)
    max: float = Field(default=1e9, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Dist:
        if self.kind in ("lognormal", "gamma") and self.sd <= 0:
            raise ValueError(f"{self.kind} needs sd > 0")
        if self.min >= self.max:
            raise ValueError("min must be below max")
        return self


class Change(BaseModel):
    """A mid-shift change in the population (lunchtime: fewer people answer)."""

    model_config = ConfigDict(extra="forbid")
    at_hour: float = Field(ge=0)
    until_hour: float = Field(gt=0)
    answer_rate_factor: float = Field(default=1.0, ge=0, le=10)


class IvrListener(BaseModel):
    """How people answer an agentless campaign's menu: the share who press each
    key, and when (seconds after the message starts)."""

    model_config = ConfigDict(extra="forbid")
    keys: dict[str, float] = Field(default_factory=lambda: {"9": 0.03, "2": 0.1})
    press: Dist = Dist(kind="lognormal", mean=8.0, sd=3.0, min=1.0, max=30.0)

    @model_validator(mode="after")
    def _check(self) -> IvrListener:
        bad = [k for k in self.keys if len(k) != 1 or k not in "0123456789*#"]
        if bad:
            raise ValueError(f"keys must be single DTMF digits, got {bad}")
        if any(p < 0 for p in self.keys.values()) or sum(self.keys.values()) > 1.0 + 1e-9:
            raise ValueError("key shares must be >= 0 and sum to at most 1")
        return self


class CalledParty(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_rate: float = Field(ge=0, le=1)  # share of dials answered (person or machine)
    machine_share: float = Field(default=0.3, ge=0, le=1)  # of answers
    fax_share: float = Field(default=0.0, ge=0, le=1)  # of answers
    busy_rate: float = Field(default=0.05, ge=0, le=1)
    bad_number_rate: float = Field(default=0.03, ge=0, le=1)
    ring: Dist = Dist(kind="lognormal", mean=9.0, sd=5.0, min=2.0, max=60.0)
    talk: Dist = Dist(kind="lognormal", mean=120.0, sd=90.0, min=5.0, max=3600.0)
    patience: Dist = Dist(kind="lognormal", mean=6.0, sd=4.0, min=0.5, max=60.0)
    changes: list[Change] = Field(default_factory=list)
    ivr: IvrListener | None = None  # for agentless campaigns

    @model_validator(mode="after")
    def _check(self) -> CalledParty:
        if self.answer_rate + self.busy_rate + self.bad_number_rate > 1.0 + 1e-9:
            raise ValueError("answer_rate + busy_rate + bad_number_rate must not exceed 1")
        if self.machine_share + self.fax_share > 1.0 + 1e-9:
            raise ValueError("machine_share + fax_share must not exceed 1")
        return self


class AgentsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=5000)
    wrap: Dist = Dist(kind="lognormal", mean=15.0, sd=8.0, min=2.0, max=600.0)
    login_spread_s: float = Field(default=60.0, ge=0)  # agents log in over this many seconds


class CampaignModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["preview", "progressive", "power", "predictive"] = "predictive"
    policy: str = "predictive"
    abandon_target_pct: float = Field(default=3.0, ge=0, le=100)
    abandon_window: Literal["campaign", "24h", "30d"] = "campaign"
    power_ratio: float = Field(default=2.0, ge=1, le=15)
    max_lines_per_agent: float = Field(default=3.0, ge=1, le=15)
    no_answer_timeout_s: float = Field(default=25.0, ge=15)
    max_attempts: int = Field(default=3, ge=1, le=100)
    amd_enabled: bool = True
    amd_profile: str = "balanced"
    amd_action: Literal["hangup", "message"] = "hangup"
    tick_s: float = Field(default=1.0, gt=0.05, le=30)
    calltimes: str = "us-tcpa"
    timezone: str = "America/New_York"
    max_attempts_per_day: int | None = Field(default=None, ge=1, le=100)
    ivr: IvrSettings | None = None  # agentless: the message and menu people hear


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    seed: int = 1
    start: datetime = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 in New York
    shift_hours: float = Field(gt=0, le=24)
    list_size: int = Field(ge=1, le=10_000_000)
    region: str = Field(default="US", min_length=2, max_length=2)
    channels: int = Field(default=10_000, ge=1)
    agents: AgentsModel
    called_party: CalledParty
    campaign: CampaignModel = CampaignModel()
    audio_clips: int = Field(default=24, ge=2, le=2000)  # distinct greetings per kind
    # "corpus": greetings from the generated speech corpus (espeak-ng, recorded
    # prompts; see sim.corpus), so AMD errors come from the real detector on
    # realistic audio; "synthetic": quick tone-and-noise stand-ins
    audio: Literal["corpus", "synthetic"] = "corpus"


class ScenarioError(ValueError):
    pass


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(describe_validation(exc, source)) from None


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_scenario(text, str(path))
