"""Reading contact files: CSV rows in, normalised contacts and per-row errors out.

Pure parsing (no database): :mod:`dialer.store.repo` writes what this accepts.
Numbers are normalised to E.164 with ``phonenumbers``; every other column is kept
as a contact field.  A row that cannot be used is reported with its line number
and reason, and every good row is kept.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

PHONE_COLUMN = re.compile(
    r"^(phone|number|tel|telephone|mobile|cell|home|work|home_phone|work_phone|"
    r"mobile_phone|phone_?\d+|number_?\d+)$",
    re.IGNORECASE,
)
ID_COLUMNS = ("id", "external_id", "customer_id", "account", "account_id")
TZ_COLUMNS = ("timezone", "tz", "time_zone")
PRIORITY_COLUMNS = ("priority",)
MAX_FIELD_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str
    fatal: bool = True  # False: the row was kept, but part of it was not

    def __str__(self) -> str:
        kind = "rejected" if self.fatal else "warning"
        return f"line {self.line}: {kind}: {self.reason}"


@dataclass(slots=True)
class ParsedContact:
    line: int
    dedupe_key: str
    numbers: list[tuple[str, str]]  # (E.164, source column) in file order
    fields: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    priority: int = 0


class ContactFileError(ValueError):
    """The file as a whole cannot be read (no header, no phone column...)."""


def normalise_number(raw: str, region: str) -> str:
    """E.164 for ``raw`` or ValueError saying why not."""
    text = raw.strip()
    if not text:
        raise ValueError("empty number")
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{text!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{text!r} is not a valid number for region {region.upper()}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Text and the encoding used: UTF-8 (with or without BOM), else Latin-1, the
    usual export of older spreadsheets; Latin-1 never fails, so nothing is dropped."""
    for enc in ("utf-8-sig",):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1"), "latin-1"


def _pick(headers: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {h.lower(): h for h in headers}
    for n in names:
        if n in lowered:
            return lowered[n]
    return None


def parse_contacts(
    text: str,
    region: str = "US",
    phone_columns: list[str] | None = None,
) -> Iterator[ParsedContact | RowError]:
    """Yield one :class:`ParsedContact` per usable row and :class:`RowError` for
    each problem, in file order."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ContactFileError("the file is empty (no header row)") from None
    except csv.Error as exc:
        raise ContactFileError(f"line 1: cannot read the header: {exc}") from None
    headers = [h.strip() for h in header]
    if len(set(h.lower() for h in headers)) != len(headers):
        raise ContactFileError(f"line 1: duplicate column names in header {headers}")
    if phone_columns:
        missing = [c for c in phone_columns if c not in headers]
        if missing:
            raise ContactFileError(f"phone column(s) {missing} not in header {headers}")
        phones = list(phone_columns)
    else:
        phones = [h for h in headers if PHONE_COLUMN.match(h)]
    if not phones:
        raise ContactFileError(
            f"line 1: no phone column in header {headers} (expected e.g. 'phone', "
            "'phone2', 'mobile', or name them with --phone-column)"
        )
    id_col = _pick(headers, ID_COLUMNS)
    tz_col = _pick(headers, TZ_COLUMNS)
    prio_col = _pick(headers, PRIORITY_COLUMNS)
    seen: dict[str, int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(reader.line_num, f"malformed CSV: {exc}")
            continue
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(headers):
            yield RowError(line, f"has {len(row)} columns, the header has {len(headers)}")
            continue
        values = dict(zip(headers, (c.strip() for c in row), strict=True))
        too_long = [k for k, v in values.items() if len(v) > MAX_FIELD_CHARS]
        if too_long:
            yield RowError(line, f"column {too_long[0]!r} is longer than {MAX_FIELD_CHARS} chars")
            continue
        numbers: list[tuple[str, str]] = []
        problems: list[str] = []
        for col in phones:
            raw = values.get(col, "")
            if not raw:
                continue
            try:
                e164 = normalise_number(raw, region)
            except ValueError as exc:
                problems.append(f"column {col!r}: {exc}")
                continue
            if all(e164 != n for n, _ in numbers):
                numbers.append((e164, col))
        if not numbers:
            why = "; ".join(problems) if problems else f"no number in {phones}"
            yield RowError(line, why)
            continue
        tz: str | None = None
        if tz_col and values.get(tz_col):
            try:
                ZoneInfo(values[tz_col])
                tz = values[tz_col]
            except (ZoneInfoNotFoundError, ValueError):
                yield RowError(line, f"column {tz_col!r}: unknown time zone {values[tz_col]!r}")
                continue
        priority = 0
        if prio_col and values.get(prio_col):
            try:
                priority = int(values[prio_col])
            except ValueError:
                yield RowError(line, f"column {prio_col!r}: {values[prio_col]!r} is not a number")
                continue
        if id_col and values.get(id_col):
            key = f"id:{values[id_col]}"
        else:
            key = "tel:" + ",".join(sorted(n for n, _ in numbers))
        if key in seen:
            yield RowError(line, f"duplicate of line {seen[key]} ({key}); first kept")
            continue
        seen[key] = line
        for p in problems:
            yield RowError(line, p, fatal=False)
        skip = {*phones, *(c for c in (tz_col, prio_col) if c)}
        fields = {k: v for k, v in values.items() if k not in skip}
        yield ParsedContact(line, key, numbers, fields, tz, priority)


def read_contact_file(path: Path) -> tuple[str, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContactFileError(f"{path}: cannot read: {exc.strerror}") from None
    return decode_bytes(data)


def normalise_entry(raw: str, region: str) -> str:
    """An E.164 number, a prefix ('+1212*' or '212*' with the region) or an e-mail."""
    text = raw.strip()
    if "@" in text:
        local, _, domain = text.partition("@")
        if not local or "." not in domain:
            raise ValueError(f"{text!r} is not an e-mail address")
        return text.lower()
    if text.endswith("*"):
        digits = text[:-1].replace(" ", "").replace("-", "")
        if digits.startswith("+") and digits[1:].isdigit() and len(digits) >= 3:
            return digits + "*"
        if digits.isdigit() and region.upper() in ("US", "CA"):
            return "+1" + digits + "*"
        raise ValueError(f"{text!r} is not a prefix (write it as +<digits>*)")
    return normalise_number(text, region)
