"""`dialer token` and `dialer campaign`: operator commands on the store.

Changes made here reach a running engine within one pacing tick (it watches the
campaigns table)."""

from __future__ import annotations

import typer
from sqlalchemy import update

from dialer.cli.common import err, out, with_db
from dialer.clock import system_wall_clock
from dialer.store import repo
from dialer.store.db import Database
from dialer.store.models import Campaign, table_of
from dialer.tokens import Role, create_token, revoke_token

tokens = typer.Typer(help="API tokens (stored hashed).", no_args_is_help=True)
campaigns = typer.Typer(help="Campaigns in the store.", no_args_is_help=True)


@tokens.command("create")
def token_create(
    name: str,
    role: Role = typer.Option(Role.SUPERVISOR, help="admin, supervisor or agent"),
) -> None:
    """Create a token; it is printed once and only its hash is kept."""

    async def go(db: Database) -> str:
        async with db.engine.begin() as conn:
            return await create_token(conn, name, role, system_wall_clock())

    try:
        token = with_db(go)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(token, markup=False)


@tokens.command("revoke")
def token_revoke(name: str) -> None:
    async def go(db: Database) -> bool:
        async with db.engine.begin() as conn:
            return await revoke_token(conn, name)

    if not with_db(go):
        err.print(f"error: no token named {name!r}", markup=False)
        raise typer.Exit(1)
    out.print(f"revoked {name}", markup=False)


def _update(name: str, **values: object) -> None:
    async def go(db: Database) -> bool:
        async with db.engine.begin() as conn:
            camp = await repo.get_campaign(conn, name)
            if camp is None:
                return False
            t = table_of(Campaign)
            await conn.execute(update(t).where(t.c.id == camp.id).values(**values))
            return True

    if not with_db(go):
        err.print(f"error: no campaign named {name!r}", markup=False)
        raise typer.Exit(1)


@campaigns.command("set-target")
def set_target(name: str, pct: float = typer.Argument(..., min=0.0, max=100.0)) -> None:
    """Set the abandon-rate target (percent of live answers)."""
    _update(name, abandon_target=pct / 100.0)
    out.print(
        f"{name}: abandon target {pct:g}% (a running engine applies it at its next tick)",
        markup=False,
    )


@campaigns.command("pause")
def pause(name: str) -> None:
    _update(name, status="paused")
    out.print(f"{name}: paused", markup=False)


@campaigns.command("resume")
def resume(name: str) -> None:
    _update(name, status="running")
    out.print(f"{name}: running", markup=False)


@campaigns.command("status")
def status_cmd(
    name: str,
    api: str = typer.Option(None, help="URL of a running engine, e.g. http://127.0.0.1:8080"),
    token: str = typer.Option(None, envvar="DIALER_TOKEN", help="API token for --api."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Why is it (not) dialling?  What the store says (contacts due now, when the
    next ones become callable and why they wait, gate refusals), and with --api
    what the running engine says (agents, abandon budget, carrier)."""

    async def go(db: Database) -> repo.DialOutlook | None:
        async with db.engine.connect() as conn:
            camp = await repo.get_campaign(conn, name)
            if camp is None:
                return None
            return await repo.dial_outlook(conn, camp.id, system_wall_clock())

    outlook = with_db(go)
    if outlook is None:
        err.print(f"error: no campaign named {name!r}", markup=False)
        raise typer.Exit(1)
    live: dict[str, object] | None = None
    if api:
        live = _fetch_live(api, name, token)
    reasons: list[str] = []
    if outlook.status in ("paused", "stopped"):
        reasons.append(f"campaign is {outlook.status}")
    if outlook.pending_due == 0 and outlook.pending_later == 0:
        reasons.append("list exhausted: no contact left to dial")
    elif outlook.pending_due == 0:
        when = outlook.next_due_at.isoformat() if outlook.next_due_at else "unknown"
        reasons.append(f"no contact callable now; next at {when}")
    for b in (live or {}).get("blockers", []):  # type: ignore[attr-defined]
        msg = f"{b['message']}" + (f" (until {b['until']})" if b.get("until") else "")
        if msg not in reasons:
            reasons.append(msg)
    if json_out:
        import json

        out.print_json(
            json.dumps(
                {
                    "campaign": name,
                    "status": outlook.status,
                    "pending_due_now": outlook.pending_due,
                    "pending_later": outlook.pending_later,
                    "next_due_at": outlook.next_due_at.isoformat() if outlook.next_due_at else None,
                    "waiting_by_reason": {
                        k: {"contacts": n, "earliest": f.isoformat() if f else None}
                        for k, (n, f) in outlook.later_by_reason.items()
                    },
                    "done_by_reason": outlook.done_by_reason,
                    "gate_refusals": {
                        k: {"count": n, "latest_not_before": f.isoformat() if f else None}
                        for k, (n, f) in outlook.refusals.items()
                    },
                    "limits_now": reasons,
                    "live": live,
                }
            )
        )
        return
    from rich.table import Table

    out.print(f"campaign {name}: {outlook.status}", markup=False)
    out.print(
        "limits now: " + ("; ".join(reasons) if reasons else "none: dialling freely"), markup=False
    )
    t = Table(title="contacts waiting, by why")
    t.add_column("reason")
    t.add_column("contacts", justify="right")
    t.add_column("earliest callable")
    t.add_row("due now", str(outlook.pending_due), "now")
    for k, (n, f) in sorted(outlook.later_by_reason.items()):
        t.add_row(k, str(n), f.isoformat() if f else "-")
    out.print(t)
    if outlook.refusals:
        r = Table(title="gate refusals")
        r.add_column("reason")
        r.add_column("count", justify="right")
        r.add_column("latest not-before")
        for k, (n, f) in sorted(outlook.refusals.items()):
            r.add_row(k, str(n), f.isoformat() if f else "never")
        out.print(r)


def _fetch_live(api: str, name: str, token: str | None) -> dict[str, object]:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        f"{api.rstrip('/')}/api/campaigns/{name}/status",
        headers={"Authorization": f"Bearer {token or ''}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            data: dict[str, object] = json.load(resp)
            return data
    except urllib.error.HTTPError as exc:
        err.print(
            f"error: {api}: HTTP {exc.code}: {exc.read().decode(errors='replace')}", markup=False
        )
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(f"error: cannot reach {api}: {exc}", markup=False)
        raise typer.Exit(1) from None
