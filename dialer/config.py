"""The engine's configuration file (`dialer run CONFIG.toml`), validated with
errors that name the key: ``campaigns.0.abandon_target_pct: ...``."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from carriers.sip.carrier import SipCarrierParams, Trunk
from carriers.sip.uri import SipUri, parse_uri
from dialer.callstate import CallResult
from dialer.campaign import (
    AmdAction,
    CampaignSettings,
    DialMode,
    Disposition,
    Treatment,
    check_amd_profile,
    check_calltimes,
    check_disposition_names,
    check_policy,
    check_timezone,
    default_dispositions,
)
from dialer.ivr import IvrSettings
from pacing.registry import SIMULATOR_ONLY


class HttpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class MqttConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    prefix: str = "dialer"
    buffer: int = Field(default=10_000, ge=1)


class CarrierConfig(BaseModel):
    """Where calls go.  ``simulated``: an in-process PBX whose called parties (and,
    until SIP agents land, agents) follow a scenario file, in real time."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["simulated"] = "simulated"
    scenario: Path = Path("config/scenarios/demo.toml")
    seed: int = 1


class TrunkConfig(BaseModel):
    """One SIP trunk; several may be listed, tried in ``priority`` order (lower first)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(strict=True, default=5060, ge=1, le=65535)
    transport: Literal["udp"] = "udp"
    username: str | None = Field(default=None, min_length=1)
    password: str | None = Field(default=None, min_length=1)
    caller_id: str = ""
    max_concurrent: int = Field(strict=True, default=30, ge=1, le=100_000)
    max_cps: float = Field(default=5.0, gt=0, le=10_000)
    priority: int = Field(strict=True, default=0, ge=0, le=1000)
    domain: str | None = None  # Request-URI host when the trunk wants a name, not an address

    @model_validator(mode="after")
    def _credentials(self) -> TrunkConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self

    def trunk(self) -> Trunk:
        return Trunk(**self.model_dump())


_AGENT_ID = r"^[A-Za-z0-9_.!~*'()-]+$"  # usable as a SIP user name as it stands


class AgentPhonesConfig(BaseModel):
    """Agents' SIP phones.  A phone either registers with the engine (its agent id
    as the SIP user, the password from ``users``) or is reached at a fixed URI
    (``phones``); the engine calls it when the agent logs in and keeps that leg."""

    model_config = ConfigDict(extra="forbid")
    realm: str = Field(default="dialer", min_length=1, max_length=100)
    users: dict[str, str] = Field(default_factory=dict)  # agent id -> digest password
    phones: dict[str, str] = Field(default_factory=dict)  # agent id -> sip:user@ip:port
    line_answer_timeout_s: float = Field(default=20.0, gt=0, le=120)
    rtp_timeout_s: float = Field(default=60.0, ge=0, le=3600)  # 0: never
    connect_tone_hz: float = Field(default=880.0, ge=0, le=3400)

    @field_validator("users", "phones")
    @classmethod
    def _ids(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in v if not re.match(_AGENT_ID, k) or len(k) > 64)
        if bad:
            raise ValueError(f"agent ids must be SIP user names (letters, digits, -_.): {bad}")
        empty = sorted(k for k, val in v.items() if not val.strip())
        if empty:
            raise ValueError(f"empty value for {empty}")
        return v

    @field_validator("phones")
    @classmethod
    def _uris(cls, v: dict[str, str]) -> dict[str, str]:
        for agent, text in v.items():
            try:
                uri = parse_uri(text, where=f"phones.{agent}")
            except ValueError as exc:
                raise ValueError(str(exc)) from None
            if not isinstance(uri, SipUri) or uri.scheme != "sip":
                raise ValueError(f"phones.{agent}: {text!r} is not a sip: URI")
            try:
                ipaddress.ip_address(uri.host)
            except ValueError:
                msg = f"phones.{agent}: the host of {text!r} must be an IP address"
                raise ValueError(msg) from None
        return v

    def target_for(self, agent_id: str) -> str:
        return self.phones.get(agent_id, agent_id)


class SipCarrierConfig(BaseModel):
    """Real SIP trunks over UDP; with ``agents``, agents' SIP phones as well
    (otherwise the scenario's simulated agents, who cannot take a SIP bridge)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["sip"]
    trunks: list[TrunkConfig] = Field(min_length=1)
    bind_host: str = "127.0.0.1"
    bind_port: int = Field(strict=True, default=5060, ge=0, le=65535)
    public_host: str | None = None  # the address peers should send to (Via, Contact, SDP)
    rtp_port_min: int = Field(strict=True, default=20000, ge=0, le=65534)
    rtp_port_max: int = Field(strict=True, default=30000, ge=0, le=65534)
    setup_timeout_s: float = Field(default=4.0, gt=0, le=60)
    match_port: StrictBool = False  # know trunks by IP and port, not by IP alone
    options_interval_s: float = Field(default=0.0, ge=0, le=3600)  # keep-alive; 0: off
    # probes in a row unanswered (within setup_timeout_s) before a trunk is tried last
    options_failures: int = Field(default=2, ge=1, le=100)
    scenario: Path = Path("config/scenarios/demo.toml")
    seed: int = 1
    agents: AgentPhonesConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> SipCarrierConfig:
        names = [t.name for t in self.trunks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"trunk names must be unique: {dupes}")
        if (self.rtp_port_min == 0) != (self.rtp_port_max == 0):
            raise ValueError("rtp_port_min and rtp_port_max are both 0 (any port) or a range")
        if self.rtp_port_min and not 1024 <= self.rtp_port_min <= self.rtp_port_max:
            raise ValueError("rtp_port_min..rtp_port_max must be a range within 1024-65534")
        if self.bind_host in ("0.0.0.0", "::") and not self.public_host:
            raise ValueError("public_host is required when bind_host is a wildcard address")
        return self

    def params(self) -> SipCarrierParams:
        return SipCarrierParams(
            trunks=tuple(t.trunk() for t in self.trunks),
            bind_host=self.bind_host,
            bind_port=self.bind_port,
            public_host=self.public_host,
            rtp_port_min=self.rtp_port_min,
            rtp_port_max=self.rtp_port_max,
            setup_timeout_s=self.setup_timeout_s,
            match_port=self.match_port,
            options_interval_s=self.options_interval_s,
            options_failures=self.options_failures,
            agents=self.agents is not None,
            agent_users=tuple(sorted(self.agents.users.items())) if self.agents else (),
            realm=self.agents.realm if self.agents else "dialer",
            line_answer_timeout_s=self.agents.line_answer_timeout_s if self.agents else 20.0,
            line_rtp_timeout_s=self.agents.rtp_timeout_s if self.agents else 60.0,
            connect_tone_hz=self.agents.connect_tone_hz if self.agents else 880.0,
        )


def _carrier_kind(value: object) -> str:
    kind = value.get("kind", "simulated") if isinstance(value, dict) else getattr(value, "kind", "")
    return str(kind)


# ``kind`` picks the model; an absent kind is the simulator.
AnyCarrierConfig = Annotated[
    Annotated[CarrierConfig, Tag("simulated")] | Annotated[SipCarrierConfig, Tag("sip")],
    Discriminator(_carrier_kind),
]


class CampaignConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    list: str = Field(min_length=1, max_length=200)
    mode: DialMode = DialMode.PREDICTIVE
    policy: str = "predictive"
    power_ratio: float = Field(strict=True, default=2.0, ge=1, le=15)
    abandon_target_pct: float = Field(strict=True, default=3.0, ge=0, le=100)
    abandon_window: Literal["campaign", "24h", "30d"] = "campaign"
    no_answer_timeout_s: float = Field(strict=True, default=25.0, ge=15)
    max_attempts: int = Field(strict=True, default=3, ge=1, le=100)
    max_lines_per_agent: float = Field(strict=True, default=3.0, ge=1, le=15)
    max_lines: int = Field(strict=True, default=10_000, ge=1, le=100_000)  # the campaign's lines
    amd_enabled: StrictBool = True
    amd_profile: str = "balanced"
    amd_action: AmdAction = AmdAction.HANGUP
    caller_id: str = ""
    autostart: StrictBool = True
    # who takes the calls: the scenario's simulated agents, or people at the web
    # desktop (/agent); wrap_up_s bounds a desktop agent's wrap-up (0: no limit)
    agents: Literal["simulated", "desktop"] = "simulated"
    ivr: IvrSettings | None = None  # agentless: a message and a DTMF menu instead of agents
    wrap_up_s: float = Field(strict=True, default=60.0, ge=0, le=3600)
    preview_s: float = Field(strict=True, default=8.0, ge=0, le=600)
    # the dial gate: which hours are callable and how often one number may be tried
    calltimes: str = "us-tcpa"  # a set in config/calltimes/ or a TOML path
    timezone: str = "America/New_York"  # when neither the contact nor the number says
    max_attempts_per_number: int | None = Field(strict=True, default=None, ge=1, le=100)
    max_attempts_per_day: int | None = Field(strict=True, default=None, ge=1, le=100)
    max_attempts_per_24h: int | None = Field(strict=True, default=None, ge=1, le=100)
    abandon_cooldown_h: float = Field(strict=True, default=72.0, ge=0, le=24 * 365)
    # the contact strategy: per call result, what next (results not named keep
    # their defaults); move_to names another campaign of this file
    treatments: dict[CallResult, Treatment] = Field(default_factory=dict)
    # wrap-up codes; when given, they replace the defaults
    dispositions: dict[str, Disposition] = Field(default_factory=default_dispositions)
    optout_list: str = Field(default="optouts", min_length=1, max_length=200)
    optout_scope: Literal["account", "campaign"] = "account"
    callback_grace_s: float = Field(strict=True, default=600.0, ge=0, le=7 * 86400)

    _policy = field_validator("policy")(lambda cls, v: check_policy(v))

    @field_validator("policy")
    @classmethod
    def _not_simulator_only(cls, v: str) -> str:
        if v in SIMULATOR_ONLY:
            raise ValueError(
                f"{v!r} reads the simulator's knowledge of the future and exists only in "
                "the simulator (dialer sim run/sweep); choose another policy for a live campaign"
            )
        return v

    _profile = field_validator("amd_profile")(lambda cls, v: check_amd_profile(v))
    _zone = field_validator("timezone")(lambda cls, v: check_timezone(v))
    _calltimes = field_validator("calltimes")(lambda cls, v: check_calltimes(v))
    _dispositions = field_validator("dispositions")(lambda cls, v: check_disposition_names(v))

    def settings(self) -> CampaignSettings:
        return CampaignSettings(
            name=self.name,
            list_name=self.list,
            mode=self.mode,
            policy=self.policy,
            power_ratio=self.power_ratio,
            abandon_target=self.abandon_target_pct / 100.0,
            abandon_window=self.abandon_window,
            no_answer_timeout_s=self.no_answer_timeout_s,
            max_attempts=self.max_attempts,
            max_lines_per_agent=self.max_lines_per_agent,
            max_lines=self.max_lines,
            amd_enabled=self.amd_enabled,
            amd_profile=self.amd_profile,
            amd_action=self.amd_action,
            caller_id=self.caller_id,
            preview_s=self.preview_s,
            ivr=self.ivr,
            calltimes=self.calltimes,
            timezone=self.timezone,
            max_attempts_per_number=self.max_attempts_per_number,
            max_attempts_per_day=self.max_attempts_per_day,
            max_attempts_per_24h=self.max_attempts_per_24h,
            abandon_cooldown_h=self.abandon_cooldown_h,
            treatments=dict(self.treatments),
            dispositions=dict(self.dispositions),
            optout_list=self.optout_list,
            optout_scope=self.optout_scope,
            callback_grace_s=self.callback_grace_s,
        )

    def move_targets(self) -> dict[str, str]:
        """Where the treatments send contacts: {'treatments.no_answer.move_to': name}."""
        return {
            f"treatments.{result.value}.move_to": t.move_to
            for result, t in self.treatments.items()
            if t.move_to is not None
        }


def check_move_targets(campaign: CampaignConfig, known: set[str], where: str) -> None:
    """A treatment may only move contacts to a campaign that exists, and not to itself."""
    for key, target in campaign.move_targets().items():
        if target == campaign.name:
            raise ValueError(f"{where}.{key}: a campaign cannot move contacts to itself")
        if target not in known:
            raise ValueError(
                f"{where}.{key}: no campaign named {target!r}"
                + (f" (known: {', '.join(sorted(known))})" if known else "")
            )


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    db: str | None = None  # default: --db / $DIALER_DB_URL / sqlite file
    http: HttpConfig = HttpConfig()
    mqtt: MqttConfig = MqttConfig()
    carrier: AnyCarrierConfig = Field(default_factory=CarrierConfig)
    campaigns: list[CampaignConfig] = Field(min_length=1)
    stats_interval_s: float = Field(default=2.0, gt=0, le=3600)
    idle_alert_s: float = Field(default=120.0, gt=0)  # no dial for this long while agents wait
    shutdown_grace_s: float = Field(default=30.0, ge=0, le=3600)
    bootstrap_admin_token: str | None = Field(default=None, min_length=16)

    @model_validator(mode="after")
    def _unique(self) -> EngineConfig:
        names = [c.name for c in self.campaigns]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"campaign names must be unique: {sorted(dupes)}")
        for i, c in enumerate(self.campaigns):
            check_move_targets(c, set(names), f"campaigns.{i}")
        return self


class ConfigError(ValueError):
    pass


def describe_validation(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = list(e["loc"])
        if loc[:1] == ["carrier"] and loc[1:2] in (["simulated"], ["sip"]):
            del loc[1]  # the union's tag, not a key the user wrote
        msg = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(
            e["type"], e["msg"]
        )
        msg = msg.removeprefix("Value error, ")
        if not e["loc"]:
            # whole-file checks name their own key (campaigns.0.treatments...)
            lines.append(f"{source}: {msg}")
            continue
        if e["type"] == "union_tag_invalid":
            ctx = e.get("ctx", {})
            loc.append("kind")
            msg = f"unknown kind {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
        where = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"{source}: {where}: {msg}")
    return "\n".join(lines)


def parse_config(text: str, source: str = "<config>") -> EngineConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return EngineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc, source)) from None


def load_config(path: Path) -> EngineConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    cfg = parse_config(text, str(path))
    if not cfg.carrier.scenario.is_absolute():
        # relative to the config file, so an example config works from anywhere
        candidate = (path.parent / cfg.carrier.scenario).resolve()
        if candidate.exists():
            cfg.carrier.scenario = candidate
    return cfg
