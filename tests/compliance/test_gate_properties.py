"""The gate never lets through a DNC number, a call outside the window in any of
the number's zones, an attempt beyond the limits, or a call within the cool-down;
and asking again at the ``not_before`` it names does not refuse for the same reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dialer.compliance.dnc import DncIndex, DncList
from dialer.compliance.gate import DialGate, GateRules, RefusalReason
from dialer.compliance.hours import load_calltimes, zones_for
from dialer.ports import Lead

US = load_calltimes("us-tcpa")
# area codes in several zones, a toll-free number (many zones), an unknown area code
# (falls back to the campaign zone) and numbers abroad
NUMBERS = [
    "+12125550100",
    "+13125550101",
    "+13035550102",
    "+17025550103",
    "+18085550104",
    "+19075550105",
    "+18005550106",
    "+15555550107",
    "+442079460958",
    "+33142685300",
    "+61291234567",
]
ZONES = [
    None,
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Kolkata",
    "Pacific/Honolulu",
    "Not/AZone",
]
# instants around the US and EU DST changes of 2026, and ordinary days
ANCHORS = [
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    datetime(2026, 7, 4, 15, 0, tzinfo=UTC),
    datetime(2026, 1, 14, 12, 0, tzinfo=UTC),
]

instants = st.builds(
    lambda a, s: a + timedelta(seconds=s),
    st.sampled_from(ANCHORS),
    st.integers(-3 * 86400, 3 * 86400),
)


@st.composite
def leads(draw: st.DrawFn) -> Lead:
    nums = draw(st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=3, unique=True))
    now = draw(instants)
    log = [
        (now - timedelta(seconds=draw(st.integers(1, 5 * 86400))), draw(st.sampled_from(nums)))
        for _ in range(draw(st.integers(0, 6)))
    ]
    abandon = draw(st.one_of(st.none(), st.integers(1, 5 * 86400)))
    callback = draw(st.one_of(st.none(), st.integers(-86400, 86400)))
    return Lead(
        contact_id=1,
        numbers=nums,
        number_index=draw(st.integers(0, len(nums) - 1)),
        attempts=len(log),
        timezone=draw(st.sampled_from(ZONES)),
        attempt_log=log,
        last_abandon_at=None if abandon is None else now - timedelta(seconds=abandon),
        callback_at=None if callback is None else now + timedelta(seconds=callback),
    )


@st.composite
def dnc_indexes(draw: st.DrawFn) -> DncIndex:
    idx = DncIndex()
    for i in range(draw(st.integers(0, 3))):
        lst = idx.add_list(
            DncList(
                f"l{i}",
                mandatory=True,
                campaigns=draw(
                    st.sampled_from([frozenset(), frozenset({"c"}), frozenset({"other"})])
                ),
            )
        )
        for _ in range(draw(st.integers(0, 4))):
            num = draw(st.sampled_from(NUMBERS))
            entry = draw(st.sampled_from([num, num[:5] + "*", num[:3] + "*"]))
            exp = draw(st.one_of(st.none(), st.integers(-86400, 10 * 86400)))
            lst.add(entry, None if exp is None else ANCHORS[0] + timedelta(seconds=exp))
    return idx


RULES = st.builds(
    GateRules,
    campaign=st.just("c"),
    calltimes=st.just(US),
    campaign_tz=st.sampled_from(["America/New_York", "America/Chicago", "Europe/London"]),
    max_attempts=st.integers(1, 8),
    max_attempts_per_number=st.one_of(st.none(), st.integers(1, 4)),
    max_attempts_per_day=st.one_of(st.none(), st.integers(1, 3)),
    max_attempts_per_24h=st.one_of(st.none(), st.integers(1, 3)),
    abandon_cooldown_s=st.sampled_from([0.0, 72 * 3600.0]),
)


def violations(gate: DialGate, lead: Lead, now: datetime) -> list[str]:
    """Checks written independently of the gate's code: what must never pass."""
    r = gate.rules
    out = []
    if gate.dnc.check(lead.number, r.campaign, now):
        out.append("dnc")
    for z in zones_for(lead.number, lead.timezone, r.campaign_tz):
        local = now.astimezone(z)
        minutes = local.hour * 60 + local.minute
        if US.holiday(local.date()) or not (8 * 60 <= minutes < 21 * 60):
            out.append(f"hours in {z}")
    if lead.attempts >= r.max_attempts:
        out.append("limit")
    if (
        r.max_attempts_per_24h is not None
        and sum(1 for t, _ in lead.attempt_log if t > now - timedelta(hours=24))
        >= r.max_attempts_per_24h
    ):
        out.append("24h")
    if (
        r.max_attempts_per_number is not None
        and sum(1 for _, n in lead.attempt_log if n == lead.number) >= r.max_attempts_per_number
    ):
        out.append("number")
    if lead.last_abandon_at is not None and now < lead.last_abandon_at + timedelta(
        seconds=r.abandon_cooldown_s
    ):
        out.append("cooldown")
    if lead.callback_at is not None and now < lead.callback_at:
        out.append("callback")
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead=leads(), rules=RULES, dnc=dnc_indexes(), now=instants)
def test_gate_never_lets_through_what_it_must_refuse(
    lead: Lead, rules: GateRules, dnc: DncIndex, now: datetime
) -> None:
    gate = DialGate(rules, dnc)
    verdict = gate(lead, now)
    if verdict.allowed:
        assert violations(gate, lead, now) == []
    else:
        assert verdict.reason in {r.value for r in RefusalReason}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead=leads(), rules=RULES, dnc=dnc_indexes(), now=instants)
def test_at_not_before_the_same_reason_no_longer_holds(
    lead: Lead, rules: GateRules, dnc: DncIndex, now: datetime
) -> None:
    gate = DialGate(rules, dnc)
    first = gate(lead, now)
    assume(not first.allowed and first.not_before is not None)
    assert first.not_before > now
    again = gate(lead, first.not_before)
    assert again.allowed or again.reason != first.reason


def test_multi_zone_number_is_callable_only_where_all_zones_are_open() -> None:
    gate = DialGate(GateRules("c", US))
    toll_free = Lead(1, ["+18005550106"])
    zones = zones_for("+18005550106", None, "America/New_York")
    assert len(zones) > 5
    # 13:00 UTC: 08:00 in New York, but 03:00 in Honolulu
    v = gate(toll_free, datetime(2026, 1, 14, 13, 0, tzinfo=UTC))
    assert not v.allowed and v.reason == "outside_hours"
    assert v.not_before is not None
    for z in zones:
        local = v.not_before.astimezone(z)
        assert 8 <= local.hour < 21


def test_window_is_read_in_local_time_across_dst() -> None:
    gate = DialGate(GateRules("c", US))
    ny = Lead(1, ["+12125550100"])
    # 12:30 UTC is 07:30 EST on Saturday 7 March, 08:30 EDT on Monday 9 March
    assert not gate(ny, datetime(2026, 3, 7, 12, 30, tzinfo=UTC)).allowed
    assert gate(ny, datetime(2026, 3, 9, 12, 30, tzinfo=UTC)).allowed
    v = gate(ny, datetime(2026, 3, 8, 6, 0, tzinfo=UTC))  # 01:00 EST, the change is at 02:00
    assert v.not_before == datetime(2026, 3, 8, 8, 0, tzinfo=ZoneInfo("America/New_York"))


def test_holiday_and_dnc_reasons_and_expiry() -> None:
    dnc = DncIndex([DncList("optouts")])
    dnc.lists["optouts"].add("+12125550100", datetime(2026, 2, 1, tzinfo=UTC))
    dnc.lists["optouts"].add("+1312*")
    gate = DialGate(GateRules("c", US), dnc)
    v = gate(Lead(1, ["+12125550100"]), datetime(2026, 1, 14, 16, 0, tzinfo=UTC))
    assert (v.allowed, v.reason, v.not_before) == (False, "dnc", datetime(2026, 2, 1, tzinfo=UTC))
    assert "optouts:+12125550100" in v.detail
    v = gate(Lead(1, ["+13125550101"]), datetime(2026, 1, 14, 16, 0, tzinfo=UTC))
    assert (v.allowed, v.reason, v.not_before) == (False, "dnc", None)
    v = gate(Lead(1, ["+12125550100"]), datetime(2026, 7, 4, 16, 0, tzinfo=UTC))
    assert (v.allowed, v.reason) == (False, "holiday")
    assert (
        v.not_before is not None
        and v.not_before.astimezone(ZoneInfo("America/New_York")).date().isoformat() == "2026-07-05"
    )
