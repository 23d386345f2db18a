"""The `dialer` command line (typer).  Sub-commands live in one module each."""

from __future__ import annotations

import typer

from dialer.cli.admin import campaigns as campaign_app
from dialer.cli.admin import tokens as token_app
from dialer.cli.agent_phone import agent_phone as agent_phone_command
from dialer.cli.amd import app as amd_app
from dialer.cli.call import call as call_command
from dialer.cli.common import set_db_url
from dialer.cli.contacts import app as contacts_app
from dialer.cli.db import app as db_app
from dialer.cli.dnc import app as dnc_app
from dialer.cli.report import app as report_app
from dialer.cli.run import run as run_command
from dialer.cli.sim import app as sim_app

app = typer.Typer(
    name="dialer",
    help="Predictive dialer engine: contacts, campaigns, the simulator and tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    db: str = typer.Option(
        None,
        "--db",
        help="Database URL (default: $DIALER_DB_URL or sqlite+aiosqlite:///dialer.db).",
    ),
) -> None:
    set_db_url(db)


app.add_typer(contacts_app, name="contacts")
app.add_typer(sim_app, name="sim")
app.add_typer(db_app, name="db")
app.add_typer(dnc_app, name="dnc")
app.add_typer(amd_app, name="amd")
app.add_typer(token_app, name="token")
app.add_typer(campaign_app, name="campaign")
app.command("run")(run_command)
app.command("call")(call_command)
app.command("agent-phone")(agent_phone_command)
app.add_typer(report_app, name="report")


def main() -> None:
    app()
