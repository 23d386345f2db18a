"""The running totals of the abandon window agree with counting the events."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dialer.ratewindow import RateWindow

steps = st.lists(
    st.tuples(st.floats(0.0, 50.0), st.booleans(), st.floats(0.0, 200.0) | st.none()),
    max_size=60,
)


@given(steps=steps)
def test_counts_match_a_recount(steps: list[tuple[float, bool, float | None]]) -> None:
    win = RateWindow()
    kept: list[tuple[float, bool]] = []
    t = 0.0
    for gap, abandoned, span in steps:
        t += gap
        win.push(t, abandoned)
        kept.append((t, abandoned))
        if span is not None:  # trim to the last ``span`` seconds
            win.trim(t - span)
            kept = [(u, a) for u, a in kept if u >= t - span]
        ab = sum(a for _, a in kept)
        assert win.counts() == (ab, len(kept) - ab)


def test_clear_and_trim_edges() -> None:
    win = RateWindow()
    win.push(1.0, False)
    win.push(2.0, True)
    win.trim(2.0)  # an event exactly at the start stays
    assert win.counts() == (1, 0)  # the abandon of an answer already trimmed
    win.clear()
    assert win.counts() == (0, 0)
