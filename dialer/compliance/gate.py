"""The dial gate: the single function every dial passes through.

It checks, in this order, and stops at the first refusal: DNC and suppression
lists, the callable window in the contact's local time (in every zone the number
may be in), holidays, attempt limits (per number and per contact, over the campaign,
per calendar day in the contact's time and per rolling 24 hours), the cool-down
after an abandoned call, and callbacks not yet due.  A refusal says why and when
the number may be dialled next (``None``: never).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dialer.campaign import CampaignSettings
from dialer.compliance.dnc import DncIndex
from dialer.compliance.hours import (
    CallTimes,
    closed_reason,
    load_calltimes,
    next_callable,
    zones_for,
)
from dialer.ports import GateVerdict, Lead


class RefusalReason(StrEnum):
    DNC = "dnc"
    OUTSIDE_HOURS = "outside_hours"
    HOLIDAY = "holiday"
    ATTEMPT_LIMIT = "attempt_limit"
    NUMBER_ATTEMPT_LIMIT = "number_attempt_limit"
    DAILY_LIMIT = "daily_attempt_limit"
    ROLLING_LIMIT = "rolling_24h_attempt_limit"
    ABANDON_COOLDOWN = "abandon_cooldown"
    CALLBACK_NOT_DUE = "callback_not_due"


@dataclass(frozen=True)
class GateRules:
    campaign: str
    calltimes: CallTimes
    campaign_tz: str = "America/New_York"
    max_attempts: int = 5  # per contact over the campaign
    max_attempts_per_number: int | None = None
    max_attempts_per_day: int | None = None  # calendar day in the contact's local time
    max_attempts_per_24h: int | None = None
    abandon_cooldown_s: float = 72 * 3600.0  # UK: no repeat within 72 h of an abandon
    include_optional_dnc: bool = True


class DialGate:
    """Callable as a :data:`dialer.ports.Gate`: ``gate(lead, now_utc)``."""

    def __init__(self, rules: GateRules, dnc: DncIndex | None = None) -> None:
        self.rules = rules
        self.dnc = dnc or DncIndex()
        self.decisions = 0

    def __call__(self, lead: Lead, now: datetime) -> GateVerdict:
        self.decisions += 1
        r = self.rules
        number = lead.number
        # 1. DNC and suppression lists
        matches = self.dnc.check(number, r.campaign, now, r.include_optional_dnc)
        if matches:
            expiries = [m.expires_at for m in matches]
            until = None if any(e is None for e in expiries) else max(e for e in expiries if e)
            names = ", ".join(sorted({f"{m.list_name}:{m.entry}" for m in matches}))
            return GateVerdict(False, RefusalReason.DNC.value, until, names)
        # 2-3. callable window and holidays in every zone the number may be in
        zones = zones_for(number, lead.timezone, r.campaign_tz)
        closed = closed_reason(r.calltimes, zones, now)
        if closed is not None:
            return GateVerdict(False, closed, next_callable(r.calltimes, zones, now))
        # 4. attempt limits
        log = lead.attempt_log
        if lead.attempts >= r.max_attempts:
            return GateVerdict(False, RefusalReason.ATTEMPT_LIMIT.value, None)
        if r.max_attempts_per_number is not None:
            on_number = sum(1 for _, n in log if n == number)
            if on_number >= r.max_attempts_per_number:
                return GateVerdict(False, RefusalReason.NUMBER_ATTEMPT_LIMIT.value, None)
        if r.max_attempts_per_day is not None and log:
            zone = zones[0]
            today = now.astimezone(zone).date()
            n_today = sum(1 for t, _ in log if t.astimezone(zone).date() == today)
            if n_today >= r.max_attempts_per_day:
                tomorrow = today + timedelta(days=1)
                midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone)
                return GateVerdict(False, RefusalReason.DAILY_LIMIT.value, midnight)
        if r.max_attempts_per_24h is not None and log:
            recent = sorted(t for t, _ in log if t > now - timedelta(hours=24))
            if len(recent) >= r.max_attempts_per_24h:
                # the moment enough of them have aged out to allow one more
                oldest_to_go = recent[len(recent) - r.max_attempts_per_24h]
                return GateVerdict(
                    False,
                    RefusalReason.ROLLING_LIMIT.value,
                    oldest_to_go + timedelta(hours=24, microseconds=1),
                )
        # 5. cool-down after an abandoned call
        if lead.last_abandon_at is not None:
            until = lead.last_abandon_at + timedelta(seconds=r.abandon_cooldown_s)
            if now < until:
                return GateVerdict(False, RefusalReason.ABANDON_COOLDOWN.value, until)
        # 6. a callback that is not due yet
        if lead.callback_at is not None and now < lead.callback_at:
            return GateVerdict(False, RefusalReason.CALLBACK_NOT_DUE.value, lead.callback_at)
        return GateVerdict(True)

    def check_schedule(self, lead: Lead, at: datetime) -> GateVerdict:
        """May a callback for ``lead`` be booked at ``at``?  The parts of the gate
        that do not depend on what happens until then: DNC lists (as they stand
        now, with expiries read at ``at``) and the callable window and holidays
        at ``at`` in every zone of the number.  The dial itself still passes the
        whole gate when it is due."""
        r = self.rules
        number = lead.number
        matches = self.dnc.check(number, r.campaign, at, r.include_optional_dnc)
        if matches:
            names = ", ".join(sorted({f"{m.list_name}:{m.entry}" for m in matches}))
            return GateVerdict(False, RefusalReason.DNC.value, None, f"{number} is on {names}")
        zones = zones_for(number, lead.timezone, r.campaign_tz)
        closed = closed_reason(r.calltimes, zones, at)
        if closed is not None:
            nxt = next_callable(r.calltimes, zones, at)
            where = ", ".join(str(z) for z in zones)
            local = ", ".join(f"{at.astimezone(z):%a %Y-%m-%d %H:%M} {z}" for z in zones[:3])
            what = (
                "a public holiday"
                if closed == RefusalReason.HOLIDAY.value
                else (f"outside the callable hours of {r.calltimes.name!r}")
            )
            detail = f"{local} is {what} for {number} (zones: {where})"
            if nxt is not None:
                detail += f"; the next callable time is {nxt.isoformat()}"
            return GateVerdict(False, closed, nxt, detail)
        return GateVerdict(True)


def gate_for(settings: CampaignSettings, dnc: DncIndex | None = None) -> DialGate:
    """The gate a campaign's settings describe."""
    return DialGate(
        GateRules(
            campaign=settings.name,
            calltimes=load_calltimes(settings.calltimes),
            campaign_tz=settings.timezone,
            max_attempts=settings.max_attempts,
            max_attempts_per_number=settings.max_attempts_per_number,
            max_attempts_per_day=settings.max_attempts_per_day,
            max_attempts_per_24h=settings.max_attempts_per_24h,
            abandon_cooldown_s=settings.abandon_cooldown_h * 3600.0,
        ),
        dnc,
    )
