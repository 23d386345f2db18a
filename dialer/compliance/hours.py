"""Callable times in the called party's own time zone, holidays, and when a number
next becomes callable.

A number's zones come from, in order: the contact's explicit time-zone column, the
number itself (``phonenumbers`` time-zone data), the campaign's zone.  Where a number
maps to several zones (a toll-free number, an area code across a zone line), a
moment is callable only if it is callable in every one of them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
import phonenumbers
from phonenumbers import timezone as pn_timezone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CALLTIMES_DIR = Path(__file__).resolve().parents[2] / "config" / "calltimes"
Window = tuple[int, int]  # minutes after local midnight, [start, end)


class CallTimesError(ValueError):
    pass


def _parse_window(text: Any, where: str) -> Window:
    if not isinstance(text, str) or "-" not in text:
        raise CallTimesError(f"{where}: expected 'HH:MM-HH:MM', got {text!r}")
    a, b = (part.strip() for part in text.split("-", 1))
    # "24:00" is how a window that runs to midnight is written; datetime.time
    # has no such value, so it is read as the end of the day.
    try:
        ta = time.fromisoformat(a)
        tb = time(0) if b == "24:00" else time.fromisoformat(b)
    except ValueError:
        raise CallTimesError(f"{where}: expected 'HH:MM-HH:MM', got {text!r}") from None
    start = ta.hour * 60 + ta.minute
    end = 1440 if b == "24:00" else tb.hour * 60 + tb.minute
    if end <= start:
        raise CallTimesError(f"{where}: window {text!r} ends before it starts")
    return start, end


@dataclass(frozen=True)
class CallTimes:
    """Per-weekday windows, plus what to do on public holidays."""

    name: str
    windows: tuple[tuple[Window, ...], ...]  # index 0 = Monday
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    holiday_windows: tuple[Window, ...] = ()  # empty: not callable on a holiday
    description: str = field(default="", compare=False)

    def holiday(self, day: date) -> str | None:
        if not self.holiday_country:
            return None
        cal = _calendar(self.holiday_country, self.holiday_subdivision, day.year)
        name = cal.get(day)
        return str(name) if name else None

    def windows_on(self, day: date) -> tuple[Window, ...]:
        if self.holiday(day):
            return self.holiday_windows
        return self.windows[day.weekday()]

    def open_local(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute + local.second / 60.0
        return any(s <= minute < e for s, e in self.windows_on(local.date()))


@lru_cache(maxsize=64)
def _calendar(country: str, subdiv: str | None, year: int) -> Any:
    return holidays_lib.country_holidays(country, subdiv=subdiv, years=year)


def parse_calltimes(data: dict[str, Any], where: str) -> CallTimes:
    known = {"name", "description", "windows", "holidays", "holiday_subdivision", "holiday_windows"}
    extra = set(data) - known
    if extra:
        raise CallTimesError(f"{where}: unknown key(s) {sorted(extra)}")
    win = data.get("windows")
    if not isinstance(win, dict):
        raise CallTimesError(f"{where}: windows: required table of weekday = ['HH:MM-HH:MM']")
    bad = set(win) - set(DAYS)
    if bad:
        raise CallTimesError(f"{where}: windows: unknown day(s) {sorted(bad)}; use {DAYS}")
    days = []
    for d in DAYS:
        items = win.get(d, [])
        if not isinstance(items, list):
            raise CallTimesError(f"{where}: windows.{d}: expected a list of 'HH:MM-HH:MM'")
        days.append(tuple(_parse_window(t, f"{where}: windows.{d}") for t in items))
    country = data.get("holidays")
    if country is not None:
        try:
            holidays_lib.country_holidays(country, subdiv=data.get("holiday_subdivision"))
        except (NotImplementedError, KeyError) as exc:
            raise CallTimesError(f"{where}: holidays: {exc}") from None
    hw = tuple(
        _parse_window(t, f"{where}: holiday_windows") for t in data.get("holiday_windows", [])
    )
    return CallTimes(
        name=str(data.get("name", Path(where).stem)),
        windows=tuple(days),
        holiday_country=country,
        holiday_subdivision=data.get("holiday_subdivision"),
        holiday_windows=hw,
        description=str(data.get("description", "")),
    )


def load_calltimes(name_or_path: str) -> CallTimes:
    """A set by name from config/calltimes/ or a TOML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CALLTIMES_DIR / f"{name_or_path}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CallTimesError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CallTimesError(f"{path}: not valid TOML: {exc}") from None
    return parse_calltimes(data, str(path))


def _zones_of_number(number: str) -> tuple[str, ...]:
    # Parsing costs ~100 us and most numbers are dialled once, so a per-number cache
    # does not help.  In the North American plan the zone data is keyed by at most
    # 1+NPA+NXX (7 digits) and validity by NPA and NXX, so every number of one
    # exchange has the same answer: cache by exchange (checked against the full
    # lookup in tests).
    if number.startswith("+1") and len(number) == 12:
        return _zones_uncached(number[:8] + "0000", number[:8])
    return _zones_uncached(number, number)


@lru_cache(maxsize=262_144)
def _zones_uncached(number: str, key: str) -> tuple[str, ...]:
    if number.startswith("+1") and len(number) == 12 and number[2:].isdigit():
        # E.164 in the North American plan: the parse (half the cost) would only
        # split off the country code
        parsed = phonenumbers.PhoneNumber(country_code=1, national_number=int(number[2:]))
    else:
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return ()
    zones = tuple(z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown")
    return zones


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zones_for(number: str, explicit: str | None, campaign_tz: str) -> tuple[ZoneInfo, ...]:
    if explicit:
        try:
            return (_zone(explicit),)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # an unknown column value falls back to what the number says
    names = _zones_of_number(number)
    if names:
        return tuple(_zone(z) for z in names)
    return (_zone(campaign_tz),)


def closed_reason(times: CallTimes, zones: tuple[ZoneInfo, ...], at: datetime) -> str | None:
    """None if ``at`` is callable in every zone, else 'holiday' or 'outside_hours'."""
    # Windows start and end on whole minutes, so the answer is the same for every
    # instant of a minute: cache by minute (a pacing tick asks for many numbers at
    # the same instant, and most share a handful of zone sets).
    minute = int(at.timestamp() // 60)
    return _closed_at_minute(times, zones, minute)


@lru_cache(maxsize=65536)
def _closed_at_minute(times: CallTimes, zones: tuple[ZoneInfo, ...], minute: int) -> str | None:
    at = datetime.fromtimestamp(minute * 60, UTC)
    reason = None
    for z in zones:
        local = at.astimezone(z)
        if times.open_local(local):
            continue
        if times.holiday(local.date()) and not times.holiday_windows:
            return "holiday"
        reason = "outside_hours"
    return reason


def next_callable(
    times: CallTimes, zones: tuple[ZoneInfo, ...], after: datetime, max_days: int = 21
) -> datetime | None:
    """The first instant at or after ``after`` that is callable in every zone, or
    None if there is none within ``max_days`` (e.g. no window at all)."""
    if closed_reason(times, zones, after) is None:
        return after
    # Windows open on whole minutes, so the first opening strictly after any
    # instant of minute M is the first one at or after M+1: one answer per minute
    # (a refused lead is asked about at every pacing tick of the closed hours).
    return _next_open(times, zones, int(after.timestamp() // 60), max_days)


@lru_cache(maxsize=8192)
def _next_open(
    times: CallTimes, zones: tuple[ZoneInfo, ...], minute: int, max_days: int
) -> datetime | None:
    after = datetime.fromtimestamp(minute * 60, UTC)
    candidates: set[datetime] = set()
    for z in zones:
        local_day = after.astimezone(z).date()
        for k in range(-1, max_days + 1):
            day = local_day + timedelta(days=k)
            for start, _ in times.windows_on(day):
                h, m = divmod(start, 60)
                inst = datetime(day.year, day.month, day.day, h, m, tzinfo=z)
                if inst > after:
                    candidates.add(inst)
    for c in sorted(candidates):
        if closed_reason(times, zones, c) is None:
            return c
    return None
