"""Loading a list in one go orders the queue exactly as pushing it lead by lead."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.leadqueue import LeadQueue
from dialer.ports import Lead

leads_st = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.0, 5.0, 20.0])), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(spec=leads_st, pre=leads_st)
def test_extend_pops_in_the_same_order_as_pushes(
    spec: list[tuple[int, float]], pre: list[tuple[int, float]]
) -> None:
    def make(items: list[tuple[int, float]], base: int) -> list[Lead]:
        return [
            Lead(base + i, [f"+1212555{i:04d}"], priority=p, not_before=nb)
            for i, (p, nb) in enumerate(items)
        ]

    one, bulk = LeadQueue(), LeadQueue()
    for lead in make(pre, 1000):  # a queue that already holds leads
        one.push(lead, 0.0)
        bulk.push(lead, 0.0)
    for lead in make(spec, 0):
        one.push(lead, 1.0)
    bulk.extend(make(spec, 0), 1.0)
    assert len(one) == len(bulk)
    for now in (1.0, 6.0, 30.0):
        while True:
            a, b = one.pop_ready(now), bulk.pop_ready(now)
            assert (a and a.contact_id) == (b and b.contact_id)
            if a is None:
                break
    assert len(one) == len(bulk) == 0
