"""The campaign's dial list in memory: who may be tried next, in order.

Ordered by (not-before time, higher priority first, insertion order) so a contact
put "at the top of the list" is dialled next and retries wait their turn.
"""

from __future__ import annotations

import heapq
import itertools

from dialer.ports import Lead


class LeadQueue:
    def __init__(self) -> None:
        self._ready: list[tuple[int, int, Lead]] = []  # (-priority, seq, lead): due now
        self._later: list[tuple[float, int, int, Lead]] = []  # (not_before, -prio, seq, lead)
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._ready) + len(self._later)

    def push(self, lead: Lead, now: float) -> None:
        seq = next(self._seq)
        if lead.not_before <= now:
            heapq.heappush(self._ready, (-lead.priority, seq, lead))
        else:
            heapq.heappush(self._later, (lead.not_before, -lead.priority, seq, lead))

    def _promote(self, now: float) -> None:
        later = self._later
        while later and later[0][0] <= now:
            _, prio, seq, lead = heapq.heappop(later)
            heapq.heappush(self._ready, (prio, seq, lead))

    def pop_ready(self, now: float) -> Lead | None:
        self._promote(now)
        if not self._ready:
            return None
        return heapq.heappop(self._ready)[2]

    def ready_count(self, now: float) -> int:
        self._promote(now)
        return len(self._ready)

    def next_due(self) -> float | None:
        if self._ready:
            return 0.0
        return self._later[0][0] if self._later else None
