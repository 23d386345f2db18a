from __future__ import annotations

import asyncio
import csv
import io

import httpx
from typer.testing import CliRunner

from dialer.cli import app as cli
from dialer.runtime import Runtime
from tests.conftest import ANYTIME_CALLTIMES


async def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_auth_is_required_and_roles_are_enforced(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/campaigns/c1", headers={"Authorization": ""})
    assert r.status_code == 401 and "missing API token" in r.json()["detail"]
    r = await client.get("/api/campaigns/c1", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "unknown or revoked" in r.json()["detail"]
    r = await client.post("/api/tokens", json={"name": "ann", "role": "agent"})
    assert r.status_code == 201
    agent_token = r.json()["token"]
    as_agent = {"Authorization": f"Bearer {agent_token}"}
    assert (await client.get("/api/campaigns/c1", headers=as_agent)).status_code == 200
    r = await client.put(
        "/api/campaigns/c1/abandon-target", json={"value_pct": 1}, headers=as_agent
    )
    assert r.status_code == 403 and "needs supervisor" in r.json()["detail"]
    r = await client.post("/api/tokens", json={"name": "ann", "role": "agent"})
    assert r.status_code == 409


async def test_target_change_via_api_reaches_the_engine(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    r = await client.put("/api/campaigns/c1/abandon-target", json={"value_pct": 1.5})
    assert r.status_code == 200
    engine = runtime.get("c1").engine
    assert engine.settings.abandon_target == 0.015
    # the next pacing snapshot carries it
    assert engine.snapshot(runtime.clock.monotonic()).budget.target == 0.015  # type: ignore[union-attr]
    r = await client.put("/api/campaigns/c1/abandon-target", json={"value_pct": 120})
    assert r.status_code == 422
    assert "value_pct" in str(r.json()["detail"])
    r = await client.put("/api/campaigns/c1/abandon-target", json={"pct": 1})
    assert r.status_code == 422
    assert (
        await client.put("/api/campaigns/nope/abandon-target", json={"value_pct": 1})
    ).status_code == 404


async def test_target_change_via_cli_reaches_the_engine_within_one_tick(
    runtime: Runtime,
) -> None:
    url = runtime.db.url
    r = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--db", url, "campaign", "set-target", "c1", "0.5"]
    )
    assert r.exit_code == 0, r.output
    engine = runtime.get("c1").engine
    t0 = asyncio.get_running_loop().time()
    await wait_for(lambda: engine.settings.abandon_target == 0.005, timeout=3.0)
    assert asyncio.get_running_loop().time() - t0 <= engine.settings.tick_s + 0.5


async def test_pause_resume_and_status(client: httpx.AsyncClient, runtime: Runtime) -> None:
    engine = runtime.get("c1").engine
    await wait_for(lambda: engine.counters.dials > 0)
    assert (await client.post("/api/campaigns/c1/pause")).json()["status"] == "paused"
    await asyncio.sleep(0.5)  # a dial already committed to the store still goes out
    dials = engine.counters.dials
    await asyncio.sleep(1.5)
    assert engine.counters.dials == dials
    st = (await client.get("/api/campaigns/c1/status")).json()
    assert "paused" in [b["code"] for b in st["blockers"]]
    assert (await client.post("/api/campaigns/c1/resume")).json()["status"] == "running"
    await wait_for(lambda: engine.counters.dials > dials)


async def test_csv_upload_reports_bad_rows_and_json_contact_goes_to_top(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = b"id,name,phone\nx1,A,2125550100\nx2,B,garbage\nx3,C,2125550101\n"
    r = await client.post("/api/lists/l1/contacts", files={"file": ("l.csv", body, "text/csv")})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["added"] == 2
    assert j["rejected"] == [
        {
            "line": 3,
            "reason": "column 'phone': 'garbage' is not a phone number "
            "((1) The string supplied did not seem to be a phone number.)",
        }
    ]
    r = await client.post(
        "/api/lists/l1/contacts", files={"file": ("l.csv", b"name\nx\n", "text/csv")}
    )
    assert r.status_code == 400 and "no phone column" in r.json()["detail"]

    r = await client.post("/api/lists/l1/contact", json={"numbers": ["nonsense"]})
    assert r.status_code == 400 and "numbers[0]" in r.json()["detail"]
    engine = runtime.get("c1").engine
    r = await client.post(
        "/api/lists/l1/contact",
        json={"numbers": ["+1 415 555 0199"], "fields": {"name": "VIP"}, "top_of_list": True},
    )
    assert r.status_code == 201 and r.json()["queued_in_campaigns"] == 1
    dialled: list[str] = []
    engine.on_transition = lambda call, s, d: (
        dialled.append(call.number) if d.value == "dialing" else None
    )
    await wait_for(lambda: bool(dialled))
    assert dialled[0] == "+14155550199"


async def test_exports_metrics_and_openapi(client: httpx.AsyncClient, runtime: Runtime) -> None:
    engine = runtime.get("c1").engine
    await wait_for(lambda: engine.counters.dials >= 3)
    await runtime.campaigns["c1"].recorder.flush()
    r = await client.get("/api/campaigns/c1/attempts.csv")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) >= 3 and rows[0]["number"].startswith("+1")
    m = (await client.get("/metrics")).text
    assert 'dialer_dials{campaign="c1"}' in m and "dialer_call_transitions_total" in m
    spec = (await client.get("/openapi.json")).json()
    assert "/api/campaigns/{name}/abandon-target" in spec["paths"]
    assert (await client.get("/api/campaigns/zzz/attempts.csv")).status_code == 404


async def test_reports_are_served_from_the_store(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    engine = runtime.get("c1").engine
    await wait_for(lambda: engine.counters.dials >= 3, timeout=15)
    await runtime.campaigns["c1"].recorder.flush()
    s = (await client.get("/api/campaigns/c1/reports/summary")).json()
    assert s["dials"] >= 3
    ab = (await client.get("/api/campaigns/c1/reports/abandonment")).json()
    assert "2 s" in ab["definition"] or "2 seconds" in ab["definition"]
    r = await client.get("/api/campaigns/c1/reports/intervals", params={"interval": "7q"})
    assert r.status_code == 400 and "interval" in r.json()["detail"]
    assert (await client.get("/api/campaigns/nope/reports/summary")).status_code == 404
    r = await client.get("/api/campaigns/c1/reports/summary", params={"since": "yesterday-ish"})
    assert r.status_code == 400 and "since" in r.json()["detail"]


async def test_campaign_create_update_start_stop_and_agents(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    r = await client.post(
        "/api/campaigns",
        json={"name": "c2", "list": "l1", "autostart": False, "calltimes": ANYTIME_CALLTIMES},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "created"
    assert (
        await client.post("/api/campaigns", json={"name": "c2", "list": "l1"})
    ).status_code == 409
    r = await client.post(
        "/api/campaigns", json={"name": "c3", "list": "l1", "no_answer_timeout_s": 5}
    )
    assert r.status_code == 422 and "no_answer_timeout_s" in r.text
    r = await client.patch("/api/campaigns/c2", json={"abandon_target_pct": 1.0, "max_attempts": 2})
    assert r.status_code == 200
    assert runtime.get("c2").engine.settings.abandon_target == 0.01
    assert runtime.get("c2").engine.settings.max_attempts == 2
    assert (await client.patch("/api/campaigns/c2", json={"power_ratio": 99})).status_code == 422
    assert (await client.post("/api/campaigns/c2/start")).json()["status"] == "running"
    await wait_for(lambda: runtime.get("c2").engine.counters.dials > 0, timeout=15)
    assert (await client.post("/api/campaigns/c2/stop")).json()["status"] == "stopped"
    assert not runtime.get("c2").engine.dialing_enabled
    agents = (await client.get("/api/campaigns/c1/agents")).json()
    assert len(agents) == 4 and {a["state"] for a in agents} <= {
        "ready",
        "on_call",
        "wrap_up",
        "reserved",
        "paused",
    }
