"""The one clock.

Everything that needs the time asks a :class:`Clock`.  Production uses
:class:`RealClock` (the asyncio loop's monotonic time plus a wall-clock anchor for
calendars); the simulator uses :class:`VirtualClock`, a discrete-event scheduler
that jumps straight to the next deadline so an 8-hour shift runs in seconds.

This is the only module allowed to read the operating system's time (ruff's
TID251 bans ``time.time``, ``datetime.now`` and ``asyncio.sleep`` elsewhere).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class TimerHandle(ABC):
    @abstractmethod
    def cancel(self) -> None: ...

    @property
    @abstractmethod
    def when(self) -> float: ...


class Clock(ABC):
    """Monotonic seconds for comparisons, UTC wall time for calendars and records."""

    @abstractmethod
    def monotonic(self) -> float: ...

    @abstractmethod
    def wall(self) -> datetime:
        """Timezone-aware UTC time that corresponds to :meth:`monotonic` now."""

    @abstractmethod
    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self.monotonic() + max(0.0, delay), callback)

    def wall_at(self, mono: float) -> datetime:
        """Wall time of a monotonic instant (for storing event times)."""
        return self.wall() + timedelta(seconds=mono - self.monotonic())

    @abstractmethod
    async def sleep(self, delay: float) -> None: ...


# --- real time ---------------------------------------------------------------------


class _LoopTimer(TimerHandle):
    __slots__ = ("_handle",)

    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self._handle = handle

    def cancel(self) -> None:
        self._handle.cancel()

    @property
    def when(self) -> float:
        return self._handle.when()


class RealClock(Clock):
    """The asyncio loop's clock.  Wall time is anchored once, so it never jumps
    backwards within a run even if NTP steps the system clock."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._anchor_mono = self._loop.time()
        self._anchor_wall = datetime.fromtimestamp(time.time(), UTC)

    def monotonic(self) -> float:
        return self._loop.time()

    def wall(self) -> datetime:
        return self.wall_at(self._loop.time())

    def wall_at(self, mono: float) -> datetime:
        # One read of the anchor, not two of a moving clock, so stored event
        # times keep the exact spacing of their monotonic instants.
        return self._anchor_wall + timedelta(seconds=mono - self._anchor_mono)

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return _LoopTimer(self._loop.call_at(when, callback))

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)


def system_wall_clock() -> datetime:
    """Wall time for code outside any engine run (CLI stamps on imports, reports)."""
    return datetime.fromtimestamp(time.time(), UTC)


def perf_counter() -> float:
    """Wall-clock stopwatch for measuring the simulator itself (never engine logic)."""
    return time.perf_counter()


# --- virtual time ------------------------------------------------------------------


class _Scheduled(TimerHandle):
    __slots__ = ("_when", "callback")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self._when = when
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self.callback = None

    @property
    def when(self) -> float:
        return self._when


class VirtualClock(Clock):
    """Discrete-event time: nothing happens between scheduled events, so
    :meth:`step` jumps to the earliest one.  Ties run in insertion order, which
    makes every run with the same inputs reproducible (SimPy's rule)."""

    def __init__(self, start_wall: datetime, start: float = 0.0) -> None:
        if start_wall.tzinfo is None:
            raise ValueError("start_wall must be timezone-aware")
        self._now = start
        self._start = start
        self._start_wall = start_wall.astimezone(UTC)
        # (when, seq, item) tuples: tuple comparison runs in C, and seq breaks ties
        # in insertion order
        self._queue: list[tuple[float, int, _Scheduled]] = []
        self._seq = itertools.count()
        self.events_run = 0

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._start_wall + timedelta(seconds=self._now - self._start)

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        if when < self._now:
            when = self._now
        item = _Scheduled(when, callback)
        heapq.heappush(self._queue, (when, next(self._seq), item))
        return item

    def next_deadline(self) -> float | None:
        q = self._queue
        while q and q[0][2].callback is None:
            heapq.heappop(q)
        return q[0][0] if q else None

    def step(self, until: float | None = None) -> bool:
        """Run the earliest event (if it is not after ``until``); False when none ran."""
        deadline = self.next_deadline()
        if deadline is None or (until is not None and deadline > until):
            if until is not None and until > self._now:
                self._now = until
            return False
        when, _, item = heapq.heappop(self._queue)
        self._now = when
        cb = item.callback
        item.callback = None
        if cb is not None:
            self.events_run += 1
            cb()
        return True

    def run(self, until: float | None = None) -> None:
        while self.step(until):
            pass

    async def sleep(self, delay: float) -> None:
        # Virtual time is advanced by whoever steps the clock; a coroutine that
        # sleeps is resumed by a scheduled callback when its deadline is reached.
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        self.call_later(delay, wake)
        await fut
