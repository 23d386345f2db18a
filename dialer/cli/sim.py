"""`dialer sim`: run scenarios under the virtual clock."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dialer.cli.common import db_url, err, out
from dialer.store import repo
from dialer.store.db import Database
from sim.runner import SimOptions, SimResult, run_scenario
from sim.scenario import ScenarioError, load_scenario

app = typer.Typer(help="The discrete-event simulator.", no_args_is_help=True)


def _summary_table(s: dict[str, Any], title: str) -> Table:
    t = Table(title=title, show_header=False)
    t.add_column("figure", style="bold")
    t.add_column("value", justify="right")
    rows = [
        ("policy", s["policy"]),
        ("seed", s["seed"]),
        ("dials", s["dials"]),
        ("live answers", s["live_answers"]),
        ("machine answers", s["machine_answers"]),
        ("connects to agents", s["connects"]),
        ("abandoned", s["abandoned"]),
        (
            "abandon rate (of live answers)",
            f"{s['abandon_rate']:.2%} (target {s['abandon_target']:.2%})",
        ),
        ("agent occupancy", f"{s['occupancy']:.1%}"),
        ("agent wait between calls", f"{s['agent_wait_mean_s']:.1f} s"),
        ("people AMD hung up on (ground truth)", s["amd_false_machine_true"]),
        ("contacts still to dial", s["contacts_left"]),
        ("simulated time", f"{s['sim_seconds'] / 3600:.2f} h"),
        ("wall time", f"{s['wall_seconds']:.2f} s"),
        ("speed-up", f"{s['sim_seconds'] / max(s['wall_seconds'], 1e-9):,.0f}x"),
    ]
    for k, v in rows:
        t.add_row(k, str(v))
    return t


def _run(scenario: Path, opts: SimOptions, quiet: bool) -> SimResult:
    try:
        sc = load_scenario(scenario)
    except ScenarioError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    with Progress(
        TextColumn("[bold]simulating[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    ) as bar:
        task = bar.add_task(sc.name, total=1.0)
        opts.progress = lambda done, total: bar.update(task, completed=done / max(total, 1e-9))
        try:
            return asyncio.run(run_scenario(sc, opts))
        except ValueError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None


@app.command("run")
def run(
    scenario: Path = typer.Argument(..., help="Scenario TOML (see config/scenarios/)."),
    policy: str = typer.Option(None, help="Pacing policy (default: the scenario's)."),
    seed: int = typer.Option(None, help="Random seed (default: the scenario's)."),
    agents: int = typer.Option(None, help="Number of agents (default: the scenario's)."),
    abandon_target: float = typer.Option(None, "--abandon-target", help="Target in percent."),
    hours: float = typer.Option(None, help="Shift length in hours (default: the scenario's)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
    store: bool = typer.Option(False, "--store/--no-store", help="Record everything in --db."),
    campaign: str = typer.Option(None, help="Campaign name in the store (default: scenario name)."),
) -> None:
    """Run a scenario under the virtual clock and print its figures.

    The same seed gives the same numbers."""
    opts = SimOptions(policy, seed, agents, abandon_target, None, campaign, hours)

    async def with_store() -> SimResult:
        db = Database(db_url())
        try:
            opts.db = db
            sc = load_scenario(scenario)
            return await run_scenario(sc, opts)
        finally:
            await db.close()

    if store:
        try:
            res = asyncio.run(with_store())
        except ScenarioError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    else:
        res = _run(scenario, opts, quiet=json_out)
    s = res.summary
    if json_out:
        typer.echo(json.dumps(s, sort_keys=True))
    else:
        out.print(_summary_table(s, f"scenario {scenario.name}"))


@app.command("demo")
def demo(
    scenario: Path = typer.Argument(None, help="Default: demo.toml (demo-sip.toml with --sip)."),
    seed: int = typer.Option(None),
    sip: bool = typer.Option(
        False, "--sip", help="Real time over SIP/RTP on 127.0.0.1 against the SIP simulated PBX."
    ),
    seconds: float = typer.Option(60.0, min=5.0, max=3600.0, help="How long the --sip demo runs."),
) -> None:
    """Run a campaign end to end with every attempt stored, then show where."""
    url = db_url()
    if sip:
        _sip_demo(scenario or Path("config/scenarios/demo-sip.toml"), url, seconds)
        return
    scenario = scenario or Path("config/scenarios/demo.toml")
    try:
        sc = load_scenario(scenario)
    except ScenarioError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def go() -> tuple[SimResult, repo.CampaignCounts, str]:
        db = Database(url)
        try:
            with Progress(
                TextColumn("[bold]dialling[/bold] {task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task(sc.name, total=1.0)
                opts = SimOptions(seed=seed, db=db)
                opts.progress = lambda d, t: bar.update(task, completed=d / max(t, 1e-9))
                res = await run_scenario(sc, opts)
            assert res.campaign_id is not None
            async with db.engine.connect() as conn:
                counts = await repo.campaign_counts(conn, res.campaign_id)
            return res, counts, db.describe()
        finally:
            await db.close()

    res, counts, where = asyncio.run(go())
    out.print(
        _summary_table(
            res.summary, f"campaign {sc.name}: {sc.agents.count} agents, {sc.list_size} contacts"
        )
    )
    t = Table(title="stored attempts by result")
    t.add_column("result")
    t.add_column("attempts", justify="right")
    for k, v in sorted(counts.results.items(), key=lambda kv: -kv[1]):
        t.add_row(k, str(v))
    out.print(t)
    out.print(
        f"database: [bold]{where}[/bold]  ({counts.attempts} attempts stored, "
        f"{counts.open_attempts} open, {counts.live} live answers, {counts.abandoned} abandoned; "
        f"contacts: {counts.contacts})"
    )


def _sip_demo(scenario: Path, url: str, seconds: float) -> None:
    from sim.sip_demo import run_sip_demo

    try:
        load_scenario(scenario)
    except ScenarioError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def go() -> Any:
        with Progress(
            TextColumn("[bold]dialling over SIP[/bold] on 127.0.0.1"),
            BarColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("sip", total=1.0)
            return await run_sip_demo(
                scenario, url, seconds, lambda f: bar.update(task, completed=f)
            )

    res = asyncio.run(go())
    s = res.stats
    t = Table(title=f"{scenario.stem}: {res.seconds:.0f} s in real time over SIP/RTP")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for key in ("dials", "live_answers", "machine_answers", "connects", "abandoned"):
        t.add_row(key, str(s.get(key, "")))
    t.add_row("abandon_rate", f"{float(s.get('abandon_rate', 0.0)):.2%}")
    t.add_row("SIP outcomes at the PBX", ", ".join(f"{k}: {v}" for k, v in sorted(res.pbx.items())))
    t.add_row("bridged to agents' SIP phones", str(res.bridges))
    t.add_row("customers who heard their agent", str(res.heard_agent))
    t.add_row("agents' phones that heard a customer", str(res.agents_heard_customers))
    if res.heard_delays:
        d = sorted(res.heard_delays)
        t.add_row(
            "customer's silence before the agent (median / max)",
            f"{d[len(d) // 2] * 1000:.0f} ms / {d[-1] * 1000:.0f} ms",
        )
    out.print(t)
    c = res.counts
    out.print(
        f"database: [bold]{res.where}[/bold]  ({c.attempts} attempts stored, "
        f"{c.open_attempts} open, {c.live} live answers, {c.abandoned} abandoned; "
        f"results: {dict(sorted(c.results.items()))})"
    )


@app.command("pbx")
def pbx(
    scenario: Path = typer.Option(..., "--scenario", help="Scenario TOML: its called_party."),
    port: int = typer.Option(5060, help="UDP port for SIP (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on and advertise."),
    seed: int = typer.Option(None, help="Random seed (default: the scenario's)."),
    unavailable_rate: float = typer.Option(
        0.0, "--unavailable-rate", min=0.0, max=1.0, help="Share of INVITEs answered 503."
    ),
    patience: bool = typer.Option(
        True,
        "--patience/--no-patience",
        help="A person who hears no audio for their patience hangs up (else talks anyway).",
    ),
    early_media: bool = typer.Option(
        False, "--early-media", help="183 with ringback (and SIT before 404) instead of 180."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="Do not print one line per call."),
) -> None:
    """Run a SIP-speaking simulated PBX in the foreground (Ctrl-C stops it).

    INVITEs to sip:NUMBER@HOST:PORT are answered as the scenario's called parties
    would (ringing, person or machine greetings over RTP, busy, bad number, no
    answer), so a trunk can be pointed at it."""
    import signal

    from sim.sip_pbx import LegEnded, LegStarted, SipPbxParams
    from sim.sip_pbx_server import SipPbxServer

    try:
        sc = load_scenario(scenario)
        params = SipPbxParams(
            channels=sc.channels,
            unavailable_rate=unavailable_rate,
            patience_needs_audio=patience,
            early_media=early_media,
        )
    except (ScenarioError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    def show(ev: LegStarted | LegEnded) -> None:
        if quiet or not isinstance(ev, LegEnded):
            return
        kind = ev.kind.value if ev.kind is not None else "refused"
        line = f"{ev.number or '?'}: {kind}, {ev.status}"
        if ev.answered_at is not None:
            line += f", {ev.at - ev.answered_at:.1f} s answered, hung up by {ev.hung_up_by}"
            line += f", {ev.rtp_sent} RTP packets sent"
        typer.echo(f"{line} ({ev.cause})" if ev.cause else line)

    async def serve() -> None:
        if sc.audio == "corpus":
            err.print("loading greetings (the first run builds the speech corpus; a minute or so)")
        try:
            server = SipPbxServer.from_scenario(
                sc, seed=seed, params=params, host=host, port=port, on_event=show
            )
        except ValueError as exc:
            err.print(f"[red]error:[/red] --host: {exc}")
            raise typer.Exit(2) from None
        try:
            h, p = await server.start()
        except OSError as exc:
            err.print(f"[red]error:[/red] cannot listen on udp:{host}:{port}: {exc.strerror}")
            raise typer.Exit(2) from None
        typer.echo(f"simulated PBX ({sc.name}) listening on udp:{h}:{p}  (sip:NUMBER@{h}:{p})")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.stop()
            counts = ", ".join(f"{k} {v}" for k, v in sorted(server.pbx.counts.items()))
            typer.echo(f"stopped; calls: {counts or 'none'}")
            typer.echo(f"timer lag p99: {server.lag_p99() * 1000:.1f} ms")

    asyncio.run(serve())


@app.command("sweep")
def sweep(
    policies: str = typer.Option(
        "progressive,vicidial-adaptive,predictive,clairvoyant",
        "--policies",
        help=(
            "Comma-separated policies (clairvoyant is the simulator's upper bound; "
            "informed, predictive told when each agent frees, a simulator-only reference)."
        ),
    ),
    scenarios: list[Path] = typer.Option(
        [Path("config/scenarios/research")],
        "--scenarios",
        help="A directory of scenario TOMLs or one file; repeatable.",
    ),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per cell: first-seed .. first-seed+N-1."),
    first_seed: int = typer.Option(1, "--first-seed"),
    targets: str = typer.Option(
        None, "--targets", help="Abandon targets in percent, e.g. 1,3,5 (default: each scenario's)."
    ),
    param: list[str] = typer.Option(
        [], "--param", help="Sweep a policy parameter: POLICY.NAME=v1,v2 (repeatable)."
    ),
    hours: float = typer.Option(None, "--hours", help="Shift length for every run."),
    agent_hours: float = typer.Option(
        None,
        "--agent-hours",
        help="Size each shift to about this many agent-hours (min 0.25 h, max the scenario's).",
    ),
    jobs: int = typer.Option(None, "--jobs", help="Worker processes (default: min(2, cores))."),
    out_dir: Path = typer.Option(
        Path("sweep-out"), "--out", help="Directory for CSV, tables, plots."
    ),
) -> None:
    """Run policies x scenarios x seeds x targets in parallel; write runs.csv,
    summary.md (means, 95% CIs, occupancy as a fraction of clairvoyant's) and plots."""
    from sim import sweep as sw

    try:
        if seeds < 1:
            raise sw.SweepError(f"--seeds: {seeds} must be >= 1")
        pols = sw.parse_policies(policies)
        grid = sw.build_grid(
            sw.find_scenarios(scenarios),
            pols,
            list(range(first_seed, first_seed + seeds)),
            sw.parse_targets(targets),
            sw.parse_params(param, pols),
            hours,
            agent_hours,
        )
        n_jobs = sw.default_jobs() if jobs is None else jobs
        if n_jobs < 1:
            raise sw.SweepError(f"--jobs: {n_jobs} must be >= 1")
    except sw.SweepError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    err.print(f"{len(grid)} runs on {n_jobs} process(es) -> {out_dir}", markup=False)
    with Progress(
        TextColumn("[bold]sweep[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("", total=len(grid))

        def done(spec: sw.RunSpec, row: dict[str, Any]) -> None:
            bar.update(
                task,
                advance=1,
                description=escape(
                    f"{spec.scenario} {spec.label} seed {spec.seed}: "
                    f"occ {row['occupancy']:.3f} abandon {row['abandon_rate']:.2%}"
                ),
            )

        try:
            result = sw.run_grid(grid, n_jobs, done)
        except sw.RunFailed as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None
    try:
        paths = sw.write_outputs(result, out_dir)
    except sw.SweepError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    # policy labels such as predictive[min_gain=0.1] are not markup
    out.print(paths["summary_md"].read_text(encoding="utf-8"), markup=False)
    for what, p in paths.items():
        out.print(f"{what}: {p}", markup=False)
