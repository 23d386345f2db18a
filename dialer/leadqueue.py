"""The campaign's dial list in memory: who may be tried next, in order.

Ordered by (not-before time, higher priority first, insertion order) so a contact
put "at the top of the list" is dialled next and retries wait their turn.  A lead
with a callback ranks above every other (due callbacks go first).

Each contact is in the queue at most once: pushing a contact that is already
queued replaces its entry (the old heap entry is skipped when it surfaces), so a
callback scheduled for a queued contact moves it rather than duplicating it.
"""

from __future__ import annotations

import heapq
import itertools

from dialer.ports import Lead

CALLBACK_BOOST = 2_000_000  # above "top of the list" (1,000,000)


def rank(lead: Lead) -> int:
    return lead.priority + (CALLBACK_BOOST if lead.callback_at is not None else 0)


class LeadQueue:
    def __init__(self) -> None:
        self._ready: list[tuple[int, int, Lead]] = []  # (-priority, seq, lead): due now
        self._later: list[tuple[float, int, int, Lead]] = []  # (not_before, -prio, seq, lead)
        self._seq = itertools.count()
        self._live: dict[int, int] = {}  # contact_id -> seq of its current entry

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, contact_id: object) -> bool:
        return contact_id in self._live

    def leads(self) -> list[Lead]:
        """Every queued lead (each contact once)."""
        out = []
        for heap in (self._ready, self._later):
            for entry in heap:
                lead = entry[-1]
                assert isinstance(lead, Lead)
                if self._live.get(lead.contact_id) == entry[-2]:
                    out.append(lead)
        return out

    def get(self, contact_id: int) -> Lead | None:
        for heap in (self._ready, self._later):
            for entry in heap:
                lead = entry[-1]
                assert isinstance(lead, Lead)
                if lead.contact_id == contact_id and self._live.get(contact_id) == entry[-2]:
                    return lead
        return None

    def push(self, lead: Lead, now: float) -> None:
        seq = next(self._seq)
        self._live[lead.contact_id] = seq  # an older entry for the contact is now stale
        if lead.not_before <= now:
            heapq.heappush(self._ready, (-rank(lead), seq, lead))
        else:
            heapq.heappush(self._later, (lead.not_before, -rank(lead), seq, lead))

    def extend(self, leads: list[Lead], now: float) -> None:
        """Many pushes at once (loading a list): one heapify instead of a sift per
        lead, which is most of the cost of starting a campaign of 100,000s."""
        live, seq = self._live, self._seq
        for lead in leads:
            n = next(seq)
            live[lead.contact_id] = n
            if lead.not_before <= now:
                self._ready.append((-rank(lead), n, lead))
            else:
                self._later.append((lead.not_before, -rank(lead), n, lead))
        heapq.heapify(self._ready)
        heapq.heapify(self._later)

    def remove(self, contact_id: int) -> bool:
        return self._live.pop(contact_id, None) is not None

    def _current(self, seq: int, lead: Lead) -> bool:
        return self._live.get(lead.contact_id) == seq

    def _promote(self, now: float) -> None:
        later = self._later
        while later and later[0][0] <= now:
            _, prio, seq, lead = heapq.heappop(later)
            if self._current(seq, lead):
                heapq.heappush(self._ready, (prio, seq, lead))

    def _drop_stale(self) -> None:
        while self._ready and not self._current(self._ready[0][1], self._ready[0][2]):
            heapq.heappop(self._ready)
        while self._later and not self._current(self._later[0][2], self._later[0][3]):
            heapq.heappop(self._later)

    def pop_ready(self, now: float) -> Lead | None:
        self._promote(now)
        self._drop_stale()
        if not self._ready:
            return None
        lead = heapq.heappop(self._ready)[2]
        del self._live[lead.contact_id]
        return lead

    def ready_count(self, now: float) -> int:
        self._promote(now)
        self._drop_stale()
        return sum(1 for _, seq, lead in self._ready if self._current(seq, lead))

    def next_due(self) -> float | None:
        self._drop_stale()
        if self._ready:
            return 0.0
        return self._later[0][0] if self._later else None
