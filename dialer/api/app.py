"""REST API, dashboard and streams.  Every request body is validated by pydantic;
errors are 4xx with a message that says what is wrong and where."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select, update
from starlette.routing import Match

from dialer import callbacks, reports
from dialer.api.auth import Principal, require
from dialer.api.desktop import desktop_router
from dialer.api.metrics import Metrics
from dialer.callstate import OPEN_STATES
from dialer.campaign import CampaignSettings
from dialer.clock import system_wall_clock
from dialer.compliance.gate import DialGate, gate_for
from dialer.config import CampaignConfig
from dialer.contacts import (
    ContactFileError,
    ParsedContact,
    RowError,
    decode_bytes,
    normalise_entry,
    normalise_number,
    parse_contacts,
)
from dialer.events import Event
from dialer.ports import OptOut
from dialer.reports.attempts import COLUMNS as ATTEMPT_COLUMNS
from dialer.runtime import Runtime, UnknownCampaign
from dialer.store import callbacks_repo, dnc_repo, repo
from dialer.store.db import Database
from dialer.store.models import (
    Attempt,
    AttemptDisposition,
    Campaign,
    DncEntry,
    DncListRow,
    table_of,
)
from dialer.store.recorder import write_optout
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


class DncEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    value: str = Field(
        min_length=3, max_length=320, description="a number, a prefix ending in * or an e-mail"
    )
    expires_at: datetime | None = Field(
        default=None,
        strict=False,  # an ISO string in JSON
        description="ISO time the entry stops applying (UTC if no offset)",
    )
    reason: str = Field(default="", max_length=200)
    region: str = Field(default="US", min_length=2, max_length=2)
    # only used when the list does not exist yet
    campaigns: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    mandatory: bool = True


class OptOutIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    number: str = Field(min_length=3, max_length=40)
    region: str = Field(default="US", min_length=2, max_length=2)


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_id: int = Field(ge=1, le=2**31 - 1, strict=True)
    at: datetime = Field(
        description="when to call: local time in the contact's zone ('2026-12-02T10:30'), "
        "or a time with a UTC offset"
    )
    timezone: str | None = Field(
        default=None, min_length=1, max_length=64, description="the contact's zone, if not known"
    )
    agent: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="personal callback: only this agent (anyone after the grace period)",
    )
    note: str = Field(default="", max_length=1000)


class DispositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=50)


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
            # only SIP carriers have trunks to probe
            trunk_states = getattr(runtime.world.carrier, "trunk_states", None)
            if callable(trunk_states):
                metrics.update_trunks(trunk_states())
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
            cols = [c for c in ATTEMPT_COLUMNS if c != "campaign"]  # one campaign per file
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

    # ------------------------------------------------------------ compliance
    def _aware(d: datetime | None) -> datetime | None:
        return None if d is None else (d if d.tzinfo else d.replace(tzinfo=UTC))

    async def _campaign_or_404(conn: Any, name: str) -> repo.CampaignRow:
        camp = await repo.get_campaign(conn, name)
        if camp is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no campaign {name!r}")
        return camp

    def _running(name: str) -> Any:
        if runtime is None:
            return None
        return runtime.campaigns.get(name)

    async def _gate(conn: Any, camp: repo.CampaignRow) -> DialGate:
        """The running campaign's own gate, else one built from its stored settings."""
        crt = _running(camp.name)
        if crt is not None and isinstance(crt.engine.gate, DialGate):
            return crt.engine.gate
        settings = CampaignSettings.model_validate(camp.settings)
        index = runtime.dnc if runtime is not None else await dnc_repo.load_index(conn)
        return gate_for(settings, index)

    @app.get("/api/dnc", tags=["dnc"])
    async def dnc_lists(_: Principal = agent) -> list[dict[str, Any]]:
        """Every DNC and suppression list with its scope and number of entries."""
        L, E = table_of(DncListRow), table_of(DncEntry)
        async with db.engine.connect() as conn:
            counts: dict[int, int] = dict(
                (await conn.execute(select(E.c.list_id, func.count()).group_by(E.c.list_id))).all()
            )
            rows = (
                await conn.execute(
                    select(L.c.id, L.c.name, L.c.campaigns, L.c.mandatory).order_by(L.c.name)
                )
            ).all()
        return [
            {
                "name": name,
                "campaigns": (camps or {}).get("names", []),
                "mandatory": bool(mandatory),
                "entries": int(counts.get(lid, 0)),
            }
            for lid, name, camps, mandatory in rows
        ]

    @app.get("/api/dnc/check", tags=["dnc"])
    async def dnc_check(
        number: Annotated[str, Query(min_length=3, max_length=320)],
        campaign: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        region: Annotated[str, Query(min_length=2, max_length=2)] = "US",
        _: Principal = agent,
    ) -> dict[str, Any]:
        """Which lists block a number (or e-mail address) now, for a campaign or
        account-wide lists only when no campaign is given."""
        try:
            value = normalise_entry(number, region)
        except ValueError as exc:
            raise HTTPException(400, f"number: {exc}") from None
        if value.endswith("*"):
            raise HTTPException(400, "number: give a number or e-mail address, not a prefix")
        if runtime is not None:
            index = runtime.dnc
        else:
            async with db.engine.connect() as conn:
                index = await dnc_repo.load_index(conn)
        now = system_wall_clock()
        if "@" in value:
            matches = [
                m
                for lst in index.lists.values()
                if lst.applies_to(campaign)
                for m in [lst.match_email(value, now.timestamp())]
                if m is not None
            ]
        else:
            matches = index.check(value, campaign, now)
        return {
            "number": value,
            "campaign": campaign,
            "blocked": bool(matches),
            "matches": [
                {
                    "list": m.list_name,
                    "entry": m.entry,
                    "expires_at": m.expires_at.isoformat() if m.expires_at else None,
                }
                for m in matches
            ],
        }

    @app.get("/api/dnc/{list_name}/entries", tags=["dnc"])
    async def dnc_entries(
        list_name: str,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
        _: Principal = supervisor,
    ) -> Any:
        """The list's entries with who added each, when and how (source)."""
        async with db.engine.connect() as conn:
            lid = await dnc_repo.list_id(conn, list_name)
            if lid is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no DNC list {list_name!r}")
            rows = await dnc_repo.export_rows(conn, lid)
        return _jsonable_any(rows[offset : offset + limit])

    @app.post("/api/dnc/{list_name}/entries", tags=["dnc"], status_code=201)
    async def dnc_add(
        list_name: str, body: DncEntryIn, who: Principal = supervisor
    ) -> dict[str, Any]:
        """Adds (or refreshes) an entry; a running engine refuses it from its next dial."""
        try:
            value = normalise_entry(body.value, body.region)
        except ValueError as exc:
            raise HTTPException(400, f"value: {exc}") from None
        exp = _aware(body.expires_at)
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            existing = await dnc_repo.list_id(conn, list_name)
            lid = await dnc_repo.ensure_list(conn, list_name, now, body.campaigns, body.mandatory)
            await dnc_repo.add_entries(
                conn, lid, [dnc_repo.EntryIn(value, exp, body.reason, "api", who.name)], now
            )
            camps, mandatory = body.campaigns, body.mandatory
            if existing is not None:
                L = table_of(DncListRow)
                row = (
                    await conn.execute(
                        select(L.c.campaigns, L.c.mandatory).where(L.c.id == existing)
                    )
                ).one()
                camps, mandatory = (row[0] or {}).get("names", []), bool(row[1])
        if runtime is not None:
            runtime.dnc.ensure_list(list_name, frozenset(camps), mandatory).add(value, exp)
        return {
            "list": list_name,
            "value": value,
            "expires_at": exp.isoformat() if exp else None,
            "source": "api",
            "added_by": who.name,
        }

    @app.delete("/api/dnc/{list_name}/entries/{value}", tags=["dnc"])
    async def dnc_remove(
        list_name: str,
        value: str,
        region: Annotated[str, Query(min_length=2, max_length=2)] = "US",
        _: Principal = supervisor,
    ) -> dict[str, Any]:
        try:
            entry = normalise_entry(value, region)
        except ValueError as exc:
            raise HTTPException(400, f"value: {exc}") from None
        async with db.engine.begin() as conn:
            lid = await dnc_repo.list_id(conn, list_name)
            if lid is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no DNC list {list_name!r}")
            if not await dnc_repo.remove_entry(conn, lid, entry):
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"{entry} is not on DNC list {list_name!r}"
                )
        if runtime is not None and list_name in runtime.dnc.lists:
            runtime.dnc.lists[list_name].remove(entry)
        return {"list": list_name, "removed": entry}

    @app.post("/api/campaigns/{name}/opt-out", tags=["dnc"], status_code=201)
    async def opt_out(name: str, body: OptOutIn, who: Principal = agent) -> dict[str, Any]:
        """Records that a person asked not to be called again: the number goes on
        the campaign's opt-out list (``optout_list``) at once."""
        try:
            number = normalise_number(body.number, body.region)
        except ValueError as exc:
            raise HTTPException(400, f"number: {exc}") from None
        crt = _running(name)
        if crt is not None:
            rec = crt.engine.opt_out(number, "api", who.name)
        else:
            async with db.engine.begin() as conn:
                camp = await _campaign_or_404(conn, name)
                st = CampaignSettings.model_validate(camp.settings)
                scope = (name,) if st.optout_scope == "campaign" else ()
                rec = OptOut(
                    number,
                    st.optout_list,
                    name,
                    "api",
                    system_wall_clock(),
                    who.name,
                    None,
                    None,
                    scope,
                )
                await write_optout(conn, rec)
            if runtime is not None:
                runtime.dnc.ensure_list(rec.list_name, frozenset(scope)).add(number)
        return {
            "number": number,
            "list": rec.list_name,
            "source": rec.source,
            "by": rec.by,
            "at": rec.at.isoformat(),
        }

    @app.post("/api/campaigns/{name}/callbacks", tags=["callbacks"], status_code=201)
    async def book_callback(name: str, body: CallbackIn, who: Principal = agent) -> Any:
        """Books a callback at a time in the contact's own zone.  Refused (400) when
        the number is on a DNC list or the time is outside the callable hours; the
        message gives the next callable time.  409 if one is already scheduled."""
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            camp = await _campaign_or_404(conn, name)
            found = await repo.load_leads(conn, camp.id, [body.contact_id], any_status=True)
            if not found:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND,
                    f"contact_id: contact {body.contact_id} is not in campaign {name!r}",
                )
            lead = found[0][0]
            gate = await _gate(conn, camp)
            try:
                when = callbacks.resolve(lead, body.at, body.timezone, gate.rules.campaign_tz)
                callbacks.check(gate, lead, when, now)
            except callbacks.CallbackError as exc:
                raise HTTPException(400, str(exc)) from None
            try:
                cb_id = await callbacks_repo.book(
                    conn,
                    camp.id,
                    callbacks_repo.CallbackIn(
                        body.contact_id,
                        when.due_at,
                        when.local_time,
                        when.timezone,
                        body.agent,
                        "api",
                        who.name,
                        body.note,
                    ),
                    now,
                )
            except callbacks_repo.CallbackConflict as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        crt = _running(name)
        if crt is not None:
            crt.engine.schedule_callback(lead, when.due_at, body.agent)
        async with db.engine.connect() as conn:
            row = await callbacks_repo.get(conn, camp.id, cb_id)
        return _jsonable_any(row)

    @app.get("/api/campaigns/{name}/callbacks", tags=["callbacks"])
    async def list_callbacks(
        name: str,
        status_: Annotated[
            Literal["scheduled", "dialled", "cancelled", "replaced"] | None,
            Query(alias="status"),
        ] = None,
        _: Principal = agent,
    ) -> Any:
        async with db.engine.connect() as conn:
            camp = await _campaign_or_404(conn, name)
            rows = await callbacks_repo.list_callbacks(conn, camp.id, status_)
        return _jsonable_any(rows)

    @app.delete("/api/campaigns/{name}/callbacks/{callback_id}", tags=["callbacks"])
    async def cancel_callback(
        name: str, callback_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], _: Principal = agent
    ) -> dict[str, Any]:
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            camp = await _campaign_or_404(conn, name)
            row = await callbacks_repo.get(conn, camp.id, callback_id)
            if row is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"no callback {callback_id} in campaign {name!r}"
                )
            if not await callbacks_repo.cancel(conn, callback_id, now):
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    f"callback {callback_id} is {row['status']}, not scheduled",
                )
        crt = _running(name)
        if crt is not None:
            crt.engine.cancel_callback(int(row["contact_id"]))
        return {"id": callback_id, "status": "cancelled"}

    @app.get("/api/attempts/{call_id}/dispositions", tags=["dispositions"])
    async def attempt_dispositions(call_id: str, _: Principal = agent) -> Any:
        """The wrap-up codes given to one attempt, oldest first, with their flags."""
        AD, A = table_of(AttemptDisposition), table_of(Attempt)
        async with db.engine.connect() as conn:
            if (await conn.execute(select(A.c.id).where(A.c.call_id == call_id))).first() is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no attempt {call_id!r}")
            cols = [
                "name",
                "agent",
                "source",
                "at",
                "known",
                "success",
                "contact",
                "final",
                "dnc",
                "callback",
            ]
            rows = await conn.execute(
                select(*[AD.c[c] for c in cols]).where(AD.c.call_id == call_id).order_by(AD.c.id)
            )
            out = [dict(zip(cols, r, strict=True)) for r in rows]
        return _jsonable_any(out)

    @app.post("/api/attempts/{call_id}/dispositions", tags=["dispositions"], status_code=201)
    async def set_disposition(
        call_id: str, body: DispositionIn, who: Principal = agent
    ) -> dict[str, Any]:
        """Gives a finished attempt a wrap-up code (a late or corrected one).  The
        code must be configured for the campaign; a ``dnc`` code records an opt-out."""
        AD, A = table_of(AttemptDisposition), table_of(Attempt)
        now = system_wall_clock()
        async with db.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(A.c.campaign_id, A.c.contact_id, A.c.number, A.c.state).where(
                        A.c.call_id == call_id
                    )
                )
            ).first()
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no attempt {call_id!r}")
            campaign_id, contact_id, number, state = row
            if state in {s.value for s in OPEN_STATES}:
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    f"attempt {call_id} is still open ({state}); the agent disposes it at wrap-up",
                )
            C = table_of(Campaign)
            cname, csettings = (
                await conn.execute(select(C.c.name, C.c.settings).where(C.c.id == campaign_id))
            ).one()
            st = CampaignSettings.model_validate(csettings)
            disp = st.dispositions.get(body.name)
            if disp is None:
                raise HTTPException(
                    400,
                    f"name: {body.name!r} is not a disposition of campaign {cname!r} "
                    f"(known: {', '.join(sorted(st.dispositions))})",
                )
            await conn.execute(
                insert(AD).values(
                    call_id=call_id,
                    campaign_id=campaign_id,
                    contact_id=contact_id,
                    name=body.name,
                    agent=who.name[:100],
                    source="api",
                    at=now,
                    known=True,
                    success=disp.success,
                    contact=disp.contact,
                    final=disp.final,
                    dnc=disp.dnc,
                    callback=disp.callback,
                )
            )
            await conn.execute(
                update(A).where(A.c.call_id == call_id).values(disposition=body.name)
            )
        if disp.dnc:
            await opt_out(cname, OptOutIn(number=number), who)
        return {"call_id": call_id, "name": body.name, "flags": disp.model_dump()}

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
