"""The report figures against what the simulator counted and against counts
made independently from the stored rows."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer import reports as R
from dialer.store.models import AgentEvent, AgentSession, Campaign, GateRefusal
from tests.reports.conftest import Filled


async def test_summary_agrees_with_the_simulator(conn: AsyncConnection, filled: Filled) -> None:
    s = await R.summary(conn, filled.campaign)
    sim = filled.sim
    f = s.figures
    assert f.dials == sim["dials"] > 100
    assert f.contacts == sim["live_answers"] > 0
    assert f.abandons == sim["abandoned"] > 0
    assert f.connects == sim["connects"] > 0
    assert f.machines == sim["machine_answers"] > 0
    assert s.results == sim["results"]
    assert f.abandons_per_contact == pytest.approx(sim["abandon_rate"])
    assert f.contacts_per_dial == f.contacts / f.dials
    assert f.abandons_per_dial == f.abandons / f.dials


async def test_summary_agrees_with_a_count_of_the_attempt_rows(
    conn: AsyncConnection, filled: Filled
) -> None:
    rows = await R.attempt_history(conn, filled.campaign)
    mid = rows[len(rows) // 2]["started_at"]
    for since, until in ((None, None), (None, mid), (mid, None)):
        s = (await R.summary(conn, filled.campaign, since, until)).figures
        sel = [
            r
            for r in rows
            if (since is None or r["started_at"] >= since)
            and (until is None or r["started_at"] < until)
        ]
        assert s.dials == len(sel)
        assert s.contacts == sum(r["live"] for r in sel)
        assert s.abandons == sum(r["abandoned"] for r in sel)
        assert s.connects == sum(r["agent"] is not None for r in sel)
        assert s.machines == sum(r["result"] in ("machine", "message_left", "fax") for r in sel)
    # every abandon is a live answer, every connect too, and they never overlap
    assert not [r for r in rows if r["abandoned"] and (not r["live"] or r["agent"])]


@pytest.mark.parametrize("interval", ["15m", "30m", "1h", "1d", "5m"])
async def test_interval_sums_equal_the_totals(
    conn: AsyncConnection, filled: Filled, interval: str
) -> None:
    total = (await R.summary(conn, filled.campaign)).figures
    rows = await R.intervals(conn, filled.campaign, interval)
    seconds = R.parse_interval(interval)
    for name in ("dials", "contacts", "connects", "abandons", "machines"):
        assert sum(getattr(r.figures, name) for r in rows) == getattr(total, name)
    for r in rows:
        assert r.end - r.start == timedelta(seconds=seconds)
        assert r.start.timestamp() % seconds == 0  # UTC-aligned
    if seconds <= 900:
        assert len(rows) >= 2  # the shift spans several buckets


async def test_each_bucket_holds_exactly_the_attempts_dialled_in_it(
    conn: AsyncConnection, filled: Filled
) -> None:
    rows = await R.attempt_history(conn, filled.campaign)
    for b in await R.intervals(conn, filled.campaign, "15m"):
        inside = [r for r in rows if b.start <= r["started_at"] < b.end]
        assert b.figures.dials == len(inside)
        assert b.figures.contacts == sum(r["live"] for r in inside)


async def test_interval_with_a_range_sums_to_the_ranged_summary(
    conn: AsyncConnection, filled: Filled
) -> None:
    rows = await R.attempt_history(conn, filled.campaign)
    since = rows[len(rows) // 3]["started_at"]
    until = rows[2 * len(rows) // 3]["started_at"]
    ranged = (await R.summary(conn, filled.campaign, since, until)).figures
    buckets = await R.intervals(conn, filled.campaign, "15m", since, until)
    assert sum(b.figures.dials for b in buckets) == ranged.dials
    assert sum(b.figures.abandons for b in buckets) == ranged.abandons


async def test_abandonment_windows_and_drill_down(conn: AsyncConnection, filled: Filled) -> None:
    last = await R.last_activity(conn, filled.campaign)
    assert last is not None
    a = await R.abandonment(conn, filled.campaign, last)
    w = {x.name: x for x in a.windows}
    assert set(w) == {"since_start", "rolling_24h", "rolling_30d", "last_hour"}
    # the whole run is within the last hour of its last dial
    for name in w:
        assert w[name].abandons == filled.sim["abandoned"]
        assert w[name].contacts == filled.sim["live_answers"]
        assert w[name].rate == pytest.approx(filled.sim["abandon_rate"])
        assert w[name].fp_term == 0.0
    assert a.fp_rate == 0.0
    assert "live answers" in a.definition
    assert a.calls_total == len(a.calls) == filled.sim["abandoned"]
    ids = {c.call_id for c in a.calls}
    rows = await R.attempt_history(conn, filled.campaign)
    assert ids == {r["call_id"] for r in rows if r["abandoned"]}
    for c in a.calls:
        assert c.abandoned_at is not None and c.abandoned_at >= c.started_at
        # waited: from "waiting for an agent" to abandoned; never past the 2-s rule
        assert c.waited_s is not None and 0.0 <= c.waited_s <= 2.0 + 1e-6
    # a window ending 20 minutes in holds only what was dialled by then
    early = last - timedelta(minutes=20)
    before = [r for r in rows if r["started_at"] <= early]
    hour = (await R.abandonment(conn, filled.campaign, early)).windows[-1]
    assert hour.contacts == sum(r["live"] for r in before)
    assert hour.abandons == sum(r["abandoned"] for r in before)
    # nothing dialled yet a day before the run
    empty = await R.abandonment(conn, filled.campaign, last - timedelta(days=1))
    assert all(x.contacts == 0 and x.rate == 0.0 for x in empty.windows)
    cut = await R.abandonment(conn, filled.campaign, last, limit=1)
    assert len(cut.calls) == 1 and cut.calls_total == filled.sim["abandoned"]


async def test_abandonment_adds_the_amd_false_positive_term(
    conn: AsyncConnection, filled: Filled
) -> None:
    t = Campaign.__table__
    (settings,) = (await conn.execute(select(t.c.settings).where(t.c.name == "rep"))).one()
    try:
        await conn.execute(
            update(t)
            .where(t.c.name == "rep")
            .values(settings={**settings, "amd_false_positive_rate": 0.1})
        )
        last = await R.last_activity(conn, filled.campaign)
        a = await R.abandonment(conn, filled.campaign, last)
    finally:
        await conn.rollback()
    w = a.windows[0]
    machines = filled.sim["machine_answers"]
    assert a.fp_rate == 0.1
    assert w.machines == machines
    assert w.fp_term == pytest.approx(0.1 * machines)
    expected = (filled.sim["abandoned"] + 0.1 * machines) / (
        filled.sim["live_answers"] + 0.1 * machines
    )
    assert w.rate_with_fp == pytest.approx(expected)
    assert w.as_dict()["numerator_with_fp"] == pytest.approx(
        filled.sim["abandoned"] + 0.1 * machines
    )


async def test_attempt_history_filters_and_csv_round_trip(
    conn: AsyncConnection, filled: Filled
) -> None:
    rows = await R.attempt_history(conn, filled.campaign)
    assert len(rows) == filled.sim["dials"]
    assert [r["started_at"] for r in rows] == sorted(r["started_at"] for r in rows)
    multi = Counter(r["contact_id"] for r in rows).most_common(1)[0][0]
    mine = await R.attempt_history(conn, filled.campaign, contact_id=multi)
    assert mine == [r for r in rows if r["contact_id"] == multi]
    assert {r["campaign"] for r in rows} == {"rep"}
    every = await R.attempt_history(conn, None)
    assert len(every) == filled.sim["dials"] + filled.other["dials"]
    assert Counter(r["campaign"] for r in every) == {
        "rep": filled.sim["dials"],
        "other": filled.other["dials"],
    }
    other = await R.summary(conn, "other")
    assert other.figures.dials == filled.other["dials"]
    assert other.figures.abandons == filled.other["abandoned"]
    page = await R.attempt_history(conn, filled.campaign, limit=10, offset=5)
    assert page == rows[5:15]
    buf = io.StringIO()
    assert R.write_csv(rows, buf, R.ATTEMPT_COLUMNS) == len(rows)
    buf.seek(0)
    back = list(csv.DictReader(buf))
    assert len(back) == len(rows)
    for orig, got in zip(rows, back, strict=True):
        assert list(got) == list(R.ATTEMPT_COLUMNS)
        assert got["call_id"] == orig["call_id"]
        assert datetime.fromisoformat(got["started_at"]) == orig["started_at"]
        assert got["result"] == (orig["result"] or "")
        assert got["live"] == str(orig["live"])
        assert (float(got["ring_s"]) if got["ring_s"] else None) == orig["ring_s"]
        assert got["agent"] == (orig["agent"] or "")


async def _agent_seconds_by_hand(conn: AsyncConnection) -> dict[tuple[str, str], float]:
    """Time in each state walked event by event in Python."""
    ae, s = AgentEvent.__table__, AgentSession.__table__
    q = (
        select(s.c.agent_name, ae.c.session_id, ae.c.at, ae.c.state, s.c.logout_at)
        .join(s, ae.c.session_id == s.c.id)
        .join(Campaign.__table__, s.c.campaign_id == Campaign.__table__.c.id)
        .where(Campaign.__table__.c.name == "rep")
        .order_by(ae.c.session_id, ae.c.at, ae.c.id)
    )
    rows = (await conn.execute(q)).all()
    out: Counter[tuple[str, str]] = Counter()
    for i, r in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) and rows[i + 1].session_id == r.session_id else None
        end = nxt.at if nxt is not None else r.logout_at
        if end is not None and r.state != "logged_out":
            out[(r.agent_name, r.state)] += (end - r.at).total_seconds()
    return dict(out)


async def test_agent_performance(conn: AsyncConnection, filled: Filled) -> None:
    rows = await R.agent_performance(conn, filled.campaign)
    assert len(rows) == 4
    assert sum(r.calls for r in rows) == filled.sim["connects"]
    assert sum(sum(r.dispositions.values()) for r in rows) == filled.sim["connects"]
    by_hand = await _agent_seconds_by_hand(conn)
    cols = {"on_call": "talk_s", "wrap_up": "wrap_s", "ready": "idle_s", "paused": "paused_s"}
    for r in rows:
        for state, col in cols.items():
            assert getattr(r, col) == pytest.approx(by_hand.get((r.agent, state), 0.0), abs=1e-3)
        assert r.talk_s > 0 and r.idle_s > 0
        assert 0.0 < r.occupancy < 1.0
        # the shift is 36 minutes; agents finish the call in hand after it
        assert 0.5 * 2160 < r.logged_in_s < 2160 + 1800
    # time split at any instant adds up to the whole
    t0 = min(r["started_at"] for r in await R.attempt_history(conn, filled.campaign, limit=1))
    cut = t0 + timedelta(minutes=17, seconds=3)
    a = await R.agent_performance(conn, filled.campaign, None, cut)
    b = await R.agent_performance(conn, filled.campaign, cut, None)
    for whole, x, y in zip(rows, a, b, strict=True):
        assert x.talk_s + y.talk_s == pytest.approx(whole.talk_s, abs=1e-3)
        assert x.idle_s + y.idle_s == pytest.approx(whole.idle_s, abs=1e-3)
        assert x.calls + y.calls == whole.calls


async def test_dispositions_breakdown(conn: AsyncConnection, filled: Filled) -> None:
    rows = await R.dispositions(conn, filled.campaign)
    history = await R.attempt_history(conn, filled.campaign)
    expected = Counter(r["disposition"] or "(none)" for r in history if r["agent"])
    assert {r["disposition"]: r["calls"] for r in rows} == dict(expected)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert [r["calls"] for r in rows] == sorted((r["calls"] for r in rows), reverse=True)


async def test_refusals_by_reason(conn: AsyncConnection, filled: Filled) -> None:
    t = GateRefusal.__table__
    camp = Campaign.__table__
    cid = (await conn.execute(select(camp.c.id).where(camp.c.name == "rep"))).scalar_one()
    base = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    rows = [
        {
            "campaign_id": cid,
            "contact_id": c,
            "number": "+1",
            "at": base + timedelta(minutes=m),
            "reason": reason,
            "not_before": None,
        }
        # reasons of this test's own, apart from the gate's real refusals in the run
        for c, m, reason in [
            (1, 1, "t_calling_hours"),
            (1, 2, "t_calling_hours"),
            (2, 3, "t_calling_hours"),
            (3, 4, "t_dnc"),
            (4, 50, "t_max_attempts"),
        ]
    ]
    try:
        await conn.execute(t.insert(), rows)
        got = await R.refusals(conn, filled.campaign)
        ranged = await R.refusals(conn, filled.campaign, base, base + timedelta(minutes=10))
    finally:
        await conn.rollback()
    mine = [r for r in got if r["reason"].startswith("t_")]
    assert [(r["reason"], r["refusals"], r["contacts"]) for r in mine] == [
        ("t_calling_hours", 3, 2),
        ("t_dnc", 1, 1),
        ("t_max_attempts", 1, 1),
    ]
    assert mine[0]["first_at"] == base + timedelta(minutes=1)
    assert mine[0]["last_at"] == base + timedelta(minutes=3)
    assert sum(r["share"] for r in got) == pytest.approx(1.0)
    assert [r["reason"] for r in ranged if r["reason"].startswith("t_")] == [
        "t_calling_hours",
        "t_dnc",
    ]


async def test_unknown_campaign_and_bad_ranges(conn: AsyncConnection) -> None:
    with pytest.raises(R.ReportError, match=r"unknown campaign 'nope'.*rep"):
        await R.summary(conn, "nope")
    t = datetime(2026, 3, 2, tzinfo=UTC)
    with pytest.raises(R.ReportError, match="not before"):
        await R.intervals(conn, "rep", "15m", t, t - timedelta(hours=1))
    with pytest.raises(R.ReportError, match="bad interval"):
        await R.intervals(conn, "rep", "7m")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("30min", 1800),
        ("1h", 3600),
        ("2 hours", 7200),
        ("1d", 86400),
        ("day", 86400),
        ("7d", 7 * 86400),
        ("60s", 60),
        ("90m", 5400),
    ],
)
def test_parse_interval(text: str, seconds: int) -> None:
    assert R.parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "-5m", "7m", "30s", "1.5h", "36h", "15 parsecs"])
def test_parse_interval_rejects(text: str) -> None:
    with pytest.raises(R.ReportError, match="bad interval"):
        R.parse_interval(text)


async def test_intervals_in_a_time_zone(conn: AsyncConnection, filled: Filled) -> None:
    utc = await R.intervals(conn, filled.campaign, "15m")
    assert await R.intervals(conn, filled.campaign, "15m", tz="UTC") == utc
    rows = await R.attempt_history(conn, filled.campaign)
    kolkata = await R.intervals(conn, filled.campaign, "1h", tz="Asia/Kolkata")
    assert sum(b.figures.dials for b in kolkata) == len(rows)
    for b in kolkata:
        assert (b.start.minute, b.start.utcoffset()) == (0, timedelta(hours=5, minutes=30))
        inside = [r for r in rows if b.start <= r["started_at"] < b.end]
        assert b.figures.dials == len(inside)
        assert b.figures.abandons == sum(r["abandoned"] for r in inside)
    with pytest.raises(R.ReportError, match="unknown time zone 'Mars/Base'"):
        await R.intervals(conn, filled.campaign, "1h", tz="Mars/Base")


def test_local_days_follow_daylight_saving() -> None:
    from dialer.reports.results import Figures, IntervalRow, _regroup

    zone = ZoneInfo("America/New_York")
    t0 = datetime(2026, 3, 7, 5, 0, tzinfo=UTC)  # local midnight, EST
    fine = [
        IntervalRow(
            t0 + timedelta(minutes=15 * i),
            t0 + timedelta(minutes=15 * (i + 1)),
            Figures(dials=1),
        )
        for i in range(4 * 24 * 3)
    ]
    days = _regroup(fine, 86400, zone)
    # DST starts on 8 March: that local day has 23 hours
    assert [(d.start.day, d.figures.dials) for d in days] == [
        (7, 96),
        (8, 92),
        (9, 96),
        (10, 4),
    ]
    assert all(d.start.hour == 0 and d.start.tzinfo is zone for d in days)
    real = days[1].end.astimezone(UTC) - days[1].start.astimezone(UTC)
    assert real == timedelta(hours=23)
