"""Booking a callback: the time in the contact's own zone, checked against the
gate's DNC lists and callable hours before it is accepted.

A callback is asked for as local wall time ("call me at 10:30") in the contact's
zone: its time-zone column, else the zone of its number, else the campaign's.  A
number that spans zones with different offsets at that moment (a toll-free or
cross-zone area code) needs the zone spelt out, rather than a guess that may
land outside the person's hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.compliance.gate import DialGate
from dialer.compliance.hours import zones_for
from dialer.ports import Lead

PAST_TOLERANCE = timedelta(minutes=1)
MAX_AHEAD = timedelta(days=366)
MIN_YEAR, MAX_YEAR = 2000, 2200  # keeps zone arithmetic away from datetime's limits


class CallbackError(ValueError):
    """Not bookable; the message says why (and when it would be)."""


@dataclass(frozen=True)
class CallbackTime:
    due_at: datetime  # aware
    local_time: str  # as the contact sees it, 'YYYY-MM-DDTHH:MM'
    timezone: str


def resolve(lead: Lead, at: datetime, zone: str | None, campaign_tz: str) -> CallbackTime:
    """The instant a callback asked for ``at`` means for this contact."""
    if not MIN_YEAR <= at.year <= MAX_YEAR:
        raise CallbackError(f"at: {at.isoformat()} is not a plausible callback time")
    if zone:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CallbackError(f"timezone: unknown time zone {zone!r}") from None
        zones: tuple[ZoneInfo, ...] = (tz,)
    else:
        zones = zones_for(lead.number, lead.timezone, campaign_tz)
    if at.tzinfo is not None:
        tz = zones[0]
        return CallbackTime(at, at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"), str(tz))
    instants = {at.replace(tzinfo=z) for z in zones}
    offsets = {i.utcoffset() for i in instants}
    if len(offsets) > 1:
        names = ", ".join(str(z) for z in zones[:6]) + (" ..." if len(zones) > 6 else "")
        raise CallbackError(
            f"at: {lead.number} may be in several time zones ({names}); "
            "give timezone, or a time with a UTC offset"
        )
    tz = zones[0]
    return CallbackTime(at.replace(tzinfo=tz), at.strftime("%Y-%m-%dT%H:%M"), str(tz))


def check(gate: DialGate, lead: Lead, when: CallbackTime, now: datetime) -> None:
    """CallbackError unless the callback may be booked at that time."""
    if when.due_at < now - PAST_TOLERANCE:
        raise CallbackError(f"at: {when.local_time} {when.timezone} is in the past")
    if when.due_at > now + MAX_AHEAD:
        raise CallbackError(f"at: {when.local_time} {when.timezone} is more than a year ahead")
    verdict = gate.check_schedule(lead, when.due_at)
    if not verdict.allowed:
        raise CallbackError(f"at: not callable ({verdict.reason}): {verdict.detail}")
    if lead.attempts >= gate.rules.max_attempts:
        # the gate would refuse the dial for good: say so now, not at the due time
        raise CallbackError(
            f"contact_id: contact {lead.contact_id} has had all {gate.rules.max_attempts} "
            "attempts this campaign allows (max_attempts)"
        )
