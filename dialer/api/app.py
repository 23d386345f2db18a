"""REST API, dashboard and streams.  Every request body is validated by pydantic;
errors are 4xx with a message that says what is wrong and where."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.routing import Match

from dialer import reports
from dialer.api.auth import Principal, require
from dialer.api.desktop import desktop_router
from dialer.api.metrics import Metrics
from dialer.clock import system_wall_clock
from dialer.config import CampaignConfig
from dialer.contacts import (
    ContactFileError,
    ParsedContact,
    RowError,
    decode_bytes,
    normalise_number,
    parse_contacts,
)
from dialer.events import Event
from dialer.runtime import Runtime, UnknownCampaign
from dialer.store import repo
from dialer.store.db import Database
from dialer.store.models import Attempt, Campaign, table_of
from dialer.tokens import Role, create_token

WEB = Path(__file__).resolve().parent.parent / "web"
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class ErrorOut(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the request is understood but not acceptable"},
    401: {"model": ErrorOut, "description": "missing, unknown or revoked API token"},
    403: {"model": ErrorOut, "description": "the token's role may not do this"},
    404: {"model": ErrorOut, "description": "no such campaign or list"},
    409: {"model": ErrorOut, "description": "conflicts with what exists"},
    413: {"model": ErrorOut, "description": "upload too large"},
    503: {"model": ErrorOut, "description": "the engine is not running in this process"},
}


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    value_pct: float = Field(
        ge=0, le=100, description="abandon-rate target, percent of live answers"
    )


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    numbers: list[Annotated[str, Field(min_length=3, max_length=40)]] = Field(
        min_length=1, max_length=10
    )
    fields: dict[str, str] = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=200)
    region: str = Field(default="US", min_length=2, max_length=2)
    top_of_list: bool = False
    timezone: str | None = None


class CampaignPatch(BaseModel):
    """Settings a supervisor may change while a campaign runs."""

    model_config = ConfigDict(extra="forbid", strict=True)
    abandon_target_pct: float | None = Field(default=None, ge=0, le=100)
    power_ratio: float | None = Field(default=None, ge=1, le=15)
    max_lines_per_agent: float | None = Field(default=None, ge=1, le=15)
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    no_answer_timeout_s: float | None = Field(default=None, ge=15, le=300)
    amd_enabled: bool | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Role


def create_app(runtime: Runtime | None, db: Database) -> FastAPI:
    app = FastAPI(
        title="dialer",
        version="0.1.0",
        description="Predictive dialer engine: campaigns, contacts, live figures, events.",
        responses=ERRORS,
    )
    app.state.db = db
    app.state.runtime = runtime
    metrics = Metrics()
    if runtime is not None:
        runtime.hub.add_listener(metrics.observe)
    templates = Jinja2Templates(directory=str(WEB / "templates"))

    def rt() -> Runtime:
        if runtime is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the engine is not running")
        return runtime

    def campaign_rt(name: str) -> Any:
        try:
            return rt().get(name)
        except UnknownCampaign:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no running campaign {name!r}"
            ) from None

    @app.middleware("http")
    async def allow_header(request: Request, call_next: Any) -> Any:
        # a path served by several routes (GET and POST) must name all their
        # methods in a 405's Allow header, not only the first route's
        response = await call_next(request)
        if response.status_code == 405:
            methods: set[str] = set()
            for route in app.routes:
                match, _ = route.matches(
                    {"type": "http", "path": request.url.path, "method": "GET"}
                )
                if match != Match.NONE:
                    methods |= set(getattr(route, "methods", set()) or set())
            if methods:
                response.headers["allow"] = ", ".join(sorted(methods))
        return response

    agent = Depends(require(Role.AGENT))
    supervisor = Depends(require(Role.SUPERVISOR))
    admin = Depends(require(Role.ADMIN))

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, Any]:
        return {"ok": True, "campaigns": sorted(runtime.campaigns) if runtime else []}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        if runtime is not None:
            for name in runtime.campaigns:
                metrics.update_stats(
                    name, runtime.stats(name), runtime.world.carrier.free_channels()
                )
        body, ctype = metrics.render()
        return PlainTextResponse(body, media_type=ctype)

    @app.get("/api/campaigns", tags=["campaigns"])
    async def campaigns(_: Principal = agent) -> list[dict[str, Any]]:
        t = table_of(Campaign)
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(select(t.c.name, t.c.mode, t.c.status, t.c.abandon_target))
            ).all()
        out = []
        for name, mode, st, target in rows:
            live = runtime is not None and name in runtime.campaigns
            out.append(
                {
                    "name": name,
                    "mode": mode,
                    "status": st,
                    "abandon_target": target,
                    "running_here": live,
                }
            )
        return out

    @app.post("/api/campaigns", tags=["campaigns"], status_code=201)
    async def create_campaign(body: CampaignConfig, _: Principal = supervisor) -> dict[str, Any]:
        """Create a campaign on a list and start its engine (dialling if autostart)."""
        async with db.engine.connect() as conn:
            if await repo.get_campaign(conn, body.name) is not None:
                raise HTTPException(409, f"campaign {body.name!r} exists already")
        try:
            await rt().add_campaign(body)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"campaign": body.name, "status": rt().get(body.name).status}

    @app.patch("/api/campaigns/{name}", tags=["campaigns"])
    async def update_campaign(
        name: str, body: CampaignPatch, _: Principal = supervisor
    ) -> dict[str, Any]:
        campaign_rt(name)
        changes = body.model_dump(exclude_none=True)
        if "abandon_target_pct" in changes:
            changes["abandon_target"] = changes.pop("abandon_target_pct") / 100.0
        try:
            settings = await rt().update_campaign(name, changes)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"campaign": name, "settings": settings.model_dump(mode="json")}

    @app.post("/api/campaigns/{name}/start", tags=["campaigns"])
    async def start(name: str, _: Principal = supervisor) -> dict[str, str]:
        campaign_rt(name)
        await rt().resume(name)
        return {"campaign": name, "status": "running"}

    @app.post("/api/campaigns/{name}/stop", tags=["campaigns"])
    async def stop_campaign(name: str, _: Principal = supervisor) -> dict[str, str]:
        """No new dials; calls in progress finish."""
        campaign_rt(name)
        await rt().stop_campaign(name)
        return {"campaign": name, "status": "stopped"}

    @app.get("/api/campaigns/{name}/agents", tags=["agents"])
    async def campaign_agents(name: str, _: Principal = agent) -> list[dict[str, Any]]:
        campaign_rt(name)
        return rt().agents(name)

    @app.get("/api/campaigns/{name}", tags=["campaigns"])
    async def campaign_stats(name: str, _: Principal = agent) -> dict[str, Any]:
        campaign_rt(name)
        return _jsonable(rt().stats(name))

    @app.get("/api/campaigns/{name}/status", tags=["campaigns"])
    async def campaign_status(name: str, _: Principal = agent) -> dict[str, Any]:
        """What limits dialling right now and until when."""
        c = campaign_rt(name)
        clock = rt().clock
        assert clock is not None
        now = clock.monotonic()
        blockers = []
        for b in c.engine.blockers(now):
            until = None
            if b.until is not None:
                until = clock.wall_at(max(b.until, now)).isoformat()
            blockers.append({"code": b.code, "message": b.message, "until": until})
        return {
            "campaign": name,
            "status": c.status,
            "dialling": c.engine.dialing_enabled,
            "blockers": blockers,
        }

    @app.post("/api/campaigns/{name}/pause", tags=["campaigns"])
    async def pause(name: str, _: Principal = supervisor) -> dict[str, str]:
        campaign_rt(name)
        await rt().pause(name)
        return {"campaign": name, "status": "paused"}

    @app.post("/api/campaigns/{name}/resume", tags=["campaigns"])
    async def resume(name: str, _: Principal = supervisor) -> dict[str, str]:
        campaign_rt(name)
        await rt().resume(name)
        return {"campaign": name, "status": "running"}

    @app.put("/api/campaigns/{name}/abandon-target", tags=["campaigns"])
    async def set_target(name: str, body: TargetIn, _: Principal = supervisor) -> dict[str, Any]:
        campaign_rt(name)
        await rt().set_abandon_target(name, body.value_pct / 100.0)
        return {"campaign": name, "abandon_target": body.value_pct / 100.0}

    @app.get(
        "/api/campaigns/{name}/attempts.csv",
        tags=["reports"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}, "description": "one row per attempt"}},
    )
    async def attempts_csv(name: str, _: Principal = supervisor) -> StreamingResponse:
        async with db.engine.connect() as conn:
            camp = await repo.get_campaign(conn, name)
            if camp is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no campaign {name!r}")
            a = table_of(Attempt)
            cols = [
                "call_id",
                "contact_id",
                "number",
                "started_at",
                "ended_at",
                "state",
                "result",
                "live",
                "abandoned",
                "sip_status",
                "amd_label",
                "amd_cause",
                "amd_ms",
                "agent",
                "disposition",
                "ring_s",
                "talk_s",
                "connect_delay_s",
            ]
            rows = (
                await conn.execute(
                    select(*[a.c[c] for c in cols])
                    .where(a.c.campaign_id == camp.id)
                    .order_by(a.c.id)
                )
            ).all()
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        for r in rows:
            w.writerow(
                ["" if v is None else (v.isoformat() if isinstance(v, datetime) else v) for v in r]
            )
        safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)
        return StreamingResponse(
            iter([buf.getvalue()]),
            media_type="text/csv",
            headers={
                "content-disposition": f'attachment; filename="{safe}-attempts.csv"; '
                f"filename*=UTF-8''{quote(name)}-attempts.csv"
            },
        )

    def _when(value: str | None, what: str) -> datetime | None:
        if value is None:
            return None
        try:
            return reports.parse_time(value, what)
        except reports.ReportError as exc:
            raise HTTPException(400, str(exc)) from None

    @app.get("/api/campaigns/{name}/reports/{kind}", tags=["reports"])
    async def report(
        name: str,
        kind: Literal["summary", "intervals", "abandonment", "agents", "dispositions", "refusals"],
        since: Annotated[str | None, Query(min_length=4, max_length=40)] = None,
        until: Annotated[str | None, Query(min_length=4, max_length=40)] = None,
        interval: Annotated[str, Query(min_length=1, max_length=10)] = "30m",
        tz: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        _: Principal = supervisor,
    ) -> Any:
        """Reports built from the stored events (the same as `dialer report`)."""
        t0, t1 = _when(since, "since"), _when(until, "until")
        try:
            async with db.engine.connect() as conn:
                if kind == "summary":
                    out: Any = await reports.summary(conn, name, t0, t1)
                elif kind == "intervals":
                    out = await reports.intervals(conn, name, interval, t0, t1, tz)
                elif kind == "abandonment":
                    out = await reports.abandonment(conn, name, since=t0, until=t1)
                elif kind == "agents":
                    out = await reports.agent_performance(conn, name, t0, t1)
                elif kind == "dispositions":
                    out = await reports.dispositions(conn, name, t0, t1)
                else:
                    out = await reports.refusals(conn, name, t0, t1)
        except reports.ReportError as exc:
            code = 404 if "unknown campaign" in str(exc) else 400
            raise HTTPException(code, str(exc)) from None
        return _jsonable_any(out)

    @app.post("/api/lists/{list_name}/contacts", tags=["contacts"])
    async def upload_contacts(
        list_name: str,
        file: Annotated[UploadFile, File(description="CSV with a header row")],
        region: Annotated[str, Query(min_length=2, max_length=2)] = "US",
        _: Principal = supervisor,
    ) -> dict[str, Any]:
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "file over 50 MiB")
        text, encoding = decode_bytes(data)
        try:
            rows = list(parse_contacts(text, region))
        except ContactFileError as exc:
            raise HTTPException(400, str(exc)) from None
        good = [r for r in rows if isinstance(r, ParsedContact)]
        problems = [r for r in rows if isinstance(r, RowError)]
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            list_id = await repo.ensure_list(conn, list_name, region, now)
            summary = await repo.store_contacts(conn, list_id, good, now)
        if runtime is not None:
            await runtime.refresh_lists(list_name)
        return {
            "list": list_name,
            "encoding": encoding.removesuffix("-sig"),
            "added": summary.added,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
            "rejected": [{"line": p.line, "reason": p.reason} for p in problems if p.fatal],
            "warnings": [{"line": p.line, "reason": p.reason} for p in problems if not p.fatal],
        }

    @app.post("/api/lists/{list_name}/contact", tags=["contacts"], status_code=201)
    async def add_contact(
        list_name: str, body: ContactIn, _: Principal = supervisor
    ) -> dict[str, Any]:
        numbers = []
        for i, raw in enumerate(body.numbers):
            try:
                numbers.append((normalise_number(raw, body.region), f"numbers[{i}]"))
            except ValueError as exc:
                raise HTTPException(400, f"numbers[{i}]: {exc}") from None
        key = (
            f"id:{body.external_id}"
            if body.external_id
            else "tel:" + ",".join(sorted(n for n, _ in numbers))
        )
        prio = 1_000_000 if body.top_of_list else 0
        parsed = ParsedContact(0, key, numbers, body.fields, body.timezone, prio)
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            list_id = await repo.ensure_list(conn, list_name, body.region, now)
            summary = await repo.store_contacts(conn, list_id, [parsed], now)
        queued = await runtime.refresh_lists(list_name) if runtime is not None else 0
        return {
            "list": list_name,
            "added": summary.added,
            "updated": summary.updated,
            "numbers": [n for n, _ in numbers],
            "queued_in_campaigns": queued,
            "top_of_list": body.top_of_list,
        }

    @app.post("/api/tokens", tags=["admin"], status_code=201)
    async def new_token(body: TokenIn, _: Principal = admin) -> dict[str, str]:
        async with db.engine.begin() as conn:
            try:
                token = await create_token(conn, body.name, body.role, system_wall_clock())
            except ValueError as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        return {"name": body.name, "role": body.role.value, "token": token}

    @app.get(
        "/api/campaigns/{name}/events",
        tags=["campaigns"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
    )
    async def events(name: str, request: Request, _: Principal = agent) -> StreamingResponse:
        """Server-Sent Events: stats, alerts, call and agent changes of one campaign."""
        campaign_rt(name)
        sub = rt().hub.subscribe(maxsize=1000)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield _sse(Event("stats", name, system_wall_clock(), rt().stats(name)))
                while not await request.is_disconnected():
                    try:
                        ev = await asyncio.wait_for(sub.get(), timeout=5.0)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if ev.campaign == name:
                        yield _sse(ev)
            finally:
                sub.close()

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    app.include_router(desktop_router(runtime, db, templates))

    @app.get("/campaigns/{name}", response_class=HTMLResponse, tags=["pages"])
    async def dashboard(request: Request, name: str) -> HTMLResponse:
        return templates.TemplateResponse(request, "dashboard.html", {"campaign": name})

    return app


def _jsonable_any(value: Any) -> Any:
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    elif isinstance(value, list):
        value = [v.as_dict() if hasattr(v, "as_dict") else v for v in value]
    return json.loads(json.dumps(value, default=str))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=str))  # type: ignore[no-any-return]


def _sse(ev: Event) -> bytes:
    data = json.dumps(ev.to_json(), default=str)
    return f"event: {ev.kind}\ndata: {data}\n\n".encode()
