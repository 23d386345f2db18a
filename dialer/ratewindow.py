"""Live answers and abandons over a trailing window, with running totals.

The engine asks for the window's figures on every pacing tick.  Summing the
window's events each time cost O(events): with a 30-day US window on a large
floor that is over a million entries a second, so the totals are kept as the
events come and go.
"""

from __future__ import annotations

from collections import deque


class RateWindow:
    """Events are (time, abandoned?); a live answer that is later abandoned is two
    events, the answer and the abandon, as the engine records them."""

    def __init__(self) -> None:
        self._events: deque[tuple[float, bool]] = deque()
        self._abandoned = 0

    def push(self, t: float, abandoned: bool) -> None:
        self._events.append((t, abandoned))
        self._abandoned += abandoned

    def trim(self, start: float) -> None:
        """Forget events before ``start``."""
        ev = self._events
        while ev and ev[0][0] < start:
            _, abandoned = ev.popleft()
            self._abandoned -= abandoned

    def clear(self) -> None:
        self._events.clear()
        self._abandoned = 0

    def counts(self) -> tuple[int, int]:
        """(abandoned, live answers) in the window."""
        return self._abandoned, len(self._events) - self._abandoned
