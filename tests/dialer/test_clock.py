from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from dialer.clock import RealClock, VirtualClock

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_virtual_clock_jumps_to_each_deadline_in_order() -> None:
    clock = VirtualClock(T0)
    seen: list[tuple[str, float]] = []
    clock.call_at(30.0, lambda: seen.append(("b", clock.monotonic())))
    clock.call_at(5.0, lambda: seen.append(("a", clock.monotonic())))
    clock.call_later(3600.0, lambda: seen.append(("c", clock.monotonic())))
    clock.run()
    assert seen == [("a", 5.0), ("b", 30.0), ("c", 3600.0)]
    assert clock.wall() == T0 + timedelta(hours=1)


def test_ties_run_in_insertion_order_and_cancel_works() -> None:
    clock = VirtualClock(T0)
    seen: list[int] = []
    handles = [clock.call_at(1.0, lambda i=i: seen.append(i)) for i in range(5)]
    handles[2].cancel()
    clock.run()
    assert seen == [0, 1, 3, 4]
    assert clock.events_run == 4


def test_callbacks_can_schedule_more_and_past_deadlines_run_now() -> None:
    clock = VirtualClock(T0)
    seen: list[float] = []
    runs = 0

    def again() -> None:
        nonlocal runs
        runs += 1
        seen.append(clock.monotonic())
        if runs < 3:
            clock.call_later(10.0, again)
        clock.call_at(-5.0, lambda: seen.append(-clock.monotonic()))  # in the past: now

    clock.call_at(0.0, again)
    clock.run()
    assert seen == [0.0, -0.0, 10.0, -10.0, 20.0, -20.0]


def test_run_until_stops_and_advances_time() -> None:
    clock = VirtualClock(T0)
    seen: list[float] = []
    clock.call_at(50.0, lambda: seen.append(50.0))
    clock.run(until=20.0)
    assert seen == [] and clock.monotonic() == 20.0
    assert clock.next_deadline() == 50.0
    clock.run()
    assert seen == [50.0]


def test_virtual_clock_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2026, 1, 1))


def test_eight_hour_shift_of_timers_runs_fast() -> None:
    clock = VirtualClock(T0)
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if clock.monotonic() < 8 * 3600:
            clock.call_later(1.0, tick)

    clock.call_at(0.0, tick)
    clock.run()
    assert count == 8 * 3600 + 1
    assert clock.monotonic() == 8 * 3600


async def test_real_clock_fires_callbacks_and_wall_moves_with_monotonic() -> None:
    clock = RealClock()
    fired = asyncio.Event()
    start_m, start_w = clock.monotonic(), clock.wall()
    clock.call_later(0.02, fired.set)
    await asyncio.wait_for(fired.wait(), 2.0)
    end_m = clock.monotonic()
    assert end_m - start_m >= 0.02
    # monotonic() and wall() are separate reads of a moving clock, so compare
    # through wall_at(), which maps one instant; timedelta rounds to 1 us.
    dw = (clock.wall_at(end_m) - clock.wall_at(start_m)).total_seconds()
    assert abs((end_m - start_m) - dw) < 2e-6
    # The two live reads still agree to well under a millisecond.
    assert abs((clock.wall() - start_w).total_seconds() - (clock.monotonic() - start_m)) < 1e-3
    assert clock.wall().tzinfo is not None
    await clock.sleep(0.001)


async def test_virtual_sleep_resumes_when_clock_reaches_deadline() -> None:
    clock = VirtualClock(T0)
    done: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(120.0)
        done.append(clock.monotonic())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    clock.run()
    await task
    assert done == [120.0]
