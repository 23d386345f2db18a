"""DNC and suppression lists, held in memory for the gate.

Exact numbers live in one sorted ``int64`` array per list (E.164 digits), with a
parallel array of expiries, so a check is a binary search however long the list;
prefixes (a whole area code: ``+1212``) are few and checked by length; e-mail
addresses are a dict.  A list is account-wide or attached to named campaigns, and
mandatory (a national registry, opt-outs) or optional (a campaign may ignore it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

NEVER = math.inf


def number_key(e164: str) -> int:
    """E.164 '+12125550100' -> 12125550100; ValueError for anything else."""
    if not e164.startswith("+") or not e164[1:].isdigit() or not 3 <= len(e164) <= 16:
        raise ValueError(f"{e164!r} is not an E.164 number (+ and 2-15 digits)")
    return int(e164[1:])


def _epoch(at: datetime | None) -> float:
    if at is None:
        return NEVER
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


@dataclass(frozen=True, slots=True)
class DncMatch:
    list_name: str
    entry: str
    expires_at: datetime | None  # None: never expires


@dataclass
class DncList:
    name: str
    campaigns: frozenset[str] = frozenset()  # empty: account-wide
    mandatory: bool = True
    _keys: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    _exp: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    _pending: dict[int, float] = field(default_factory=dict)
    _removed: set[int] = field(default_factory=set)
    prefixes: dict[str, float] = field(default_factory=dict)
    emails: dict[str, float] = field(default_factory=dict)

    def applies_to(self, campaign: str | None, include_optional: bool = True) -> bool:
        if not self.mandatory and not include_optional:
            return False
        return not self.campaigns or campaign in self.campaigns

    # -- building ---------------------------------------------------------------
    def load_numbers(self, keys: npt.ArrayLike, expiries: npt.ArrayLike | None = None) -> None:
        """Bulk load (10 million entries in seconds): E.164 digits as integers,
        expiries as epoch seconds (inf: never)."""
        k = np.asarray(keys, dtype=np.int64)
        e = np.full(len(k), NEVER) if expiries is None else np.asarray(expiries, dtype=np.float64)
        k = np.concatenate([self._keys, k])
        e = np.concatenate([self._exp, e])
        order = np.argsort(k, kind="stable")
        self._keys, self._exp = k[order], e[order]

    def add(self, entry: str, expires_at: datetime | None = None) -> None:
        """One entry: an E.164 number, a prefix ending in '*' (``+1212*``) or an e-mail."""
        exp = _epoch(expires_at)
        if "@" in entry:
            self.emails[entry.strip().lower()] = exp
        elif entry.endswith("*"):
            number_key(entry[:-1])  # validates
            self.prefixes[entry[:-1]] = exp
        else:
            key = number_key(entry)
            self._removed.discard(key)
            self._pending[key] = exp

    def remove(self, entry: str) -> None:
        if "@" in entry:
            self.emails.pop(entry.strip().lower(), None)
        elif entry.endswith("*"):
            self.prefixes.pop(entry[:-1], None)
        else:
            key = number_key(entry)
            self._pending.pop(key, None)
            self._removed.add(key)

    def __len__(self) -> int:
        return len(self._keys) + len(self._pending) + len(self.prefixes) + len(self.emails)

    # -- checking ---------------------------------------------------------------
    def _number_expiry(self, key: int) -> float | None:
        if key in self._removed:
            return None
        if key in self._pending:
            return self._pending[key]
        keys = self._keys
        i = int(np.searchsorted(keys, key))
        if i < len(keys) and keys[i] == key:
            return float(self._exp[i])
        return None

    def match_number(self, e164: str, at: float) -> DncMatch | None:
        """The entry that blocks the number longest (an exact entry may expire while
        a prefix that also covers the number does not)."""
        best: tuple[float, str] | None = None
        exp = self._number_expiry(number_key(e164))
        if exp is not None and exp > at:
            best = (exp, e164)
        if self.prefixes:
            for n in range(len(e164) - 1, 1, -1):
                pexp = self.prefixes.get(e164[:n])
                if pexp is not None and pexp > at and (best is None or pexp > best[0]):
                    best = (pexp, e164[:n] + "*")
        return None if best is None else DncMatch(self.name, best[1], _dt(best[0]))

    def match_email(self, email: str, at: float) -> DncMatch | None:
        exp = self.emails.get(email.strip().lower())
        if exp is not None and exp > at:
            return DncMatch(self.name, email, _dt(exp))
        return None


def _dt(epoch: float) -> datetime | None:
    return None if math.isinf(epoch) else datetime.fromtimestamp(epoch, UTC)


class DncIndex:
    """All lists; ``check`` returns every list that blocks a number now."""

    def __init__(self, lists: Iterable[DncList] = ()) -> None:
        self.lists: dict[str, DncList] = {lst.name: lst for lst in lists}

    def add_list(self, lst: DncList) -> DncList:
        self.lists[lst.name] = lst
        return lst

    def ensure_list(
        self, name: str, campaigns: frozenset[str] = frozenset(), mandatory: bool = True
    ) -> DncList:
        """The list of that name, made (with this scope) if there is none yet."""
        lst = self.lists.get(name)
        return lst if lst is not None else self.add_list(DncList(name, campaigns, mandatory))

    def check(
        self,
        number: str,
        campaign: str | None,
        at: datetime,
        include_optional: bool = True,
        email: str | None = None,
    ) -> list[DncMatch]:
        t = _epoch(at)
        out = []
        for lst in self.lists.values():
            if not lst.applies_to(campaign, include_optional):
                continue
            m = lst.match_number(number, t)
            if m is None and email:
                m = lst.match_email(email, t)
            if m is not None:
                out.append(m)
        return out
