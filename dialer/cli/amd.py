"""``dialer amd ...``: classify recordings, evaluate and sweep profiles, build the corpus."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from amd.profiles import ProfileError
from amd.registry import resolve
from sim.corpus.evaluate import LABELS, Report, classify, evaluate
from sim.corpus.sources import MissingTool, read_pcm16
from sim.corpus.store import build, read_labels

app = typer.Typer(help="Answering machine detection: classify, evaluate, sweep, corpus.")
corpus_app = typer.Typer(help="The generated AMD development corpus.")
app.add_typer(corpus_app, name="corpus")
out = Console()
err = Console(stderr=True)


def _profile(name: str) -> str:
    try:
        resolve(name)
    except ProfileError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    return name


@app.command("classify")
def classify_cmd(
    files: Annotated[list[Path], typer.Argument(help="WAV files (any rate or sample format)")],
    profile: Annotated[str, typer.Option(help="profile name or .toml path")] = "balanced",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Label each recording: human, machine, fax, silence or notsure."""
    _profile(profile)
    failed = 0
    for path in files:
        try:
            samples = read_pcm16(path)
        except ValueError as e:
            typer.echo(f"error: {e}", err=True)
            failed += 1
            continue
        o = classify(samples, profile)
        row = {
            "file": str(path),
            "label": o.label,
            "decision_ms": o.decision_ms,
            "beep_ms": o.beep_ms,
            "cause": o.cause,
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            beep = "-" if o.beep_ms is None else f"{o.beep_ms} ms"
            typer.echo(f"{path}\t{o.label}\t{o.decision_ms} ms\tbeep {beep}\t{o.cause}")
    if failed:
        raise typer.Exit(1)


def _load(directory: Path, labels: Path) -> list[tuple[str, np.ndarray, str, int | None]]:
    try:
        rows = read_labels(labels)
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    items = []
    for name, label, beep in rows:
        try:
            items.append((name, read_pcm16(directory / name), label, beep))
        except ValueError as e:
            typer.echo(f"error: {e} (skipped)", err=True)
    return items


def _run(items: list[tuple[str, np.ndarray, str, int | None]], profiles: list[str]) -> list[Report]:
    reports = []
    with Progress(console=err, transient=True) as bar:
        for name in profiles:
            task = bar.add_task(f"profile {name}", total=len(items))

            def step(task: TaskID = task) -> None:
                bar.advance(task)

            reports.append(evaluate(items, name, progress=step))
    return reports


def _fmt_ms(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.0f}"


def _summary_table(reports: list[Report]) -> Table:
    t = Table(title="AMD evaluation")
    t.add_column("metric")
    for r in reports:
        t.add_column(r.profile, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("clips", [str(r.n) for r in reports]),
        ("accuracy", [f"{r.accuracy:.1%}" for r in reports]),
        ("people as machines", [f"{r.people_as_machines:.1%}" for r in reports]),
        ("machines as people", [f"{r.machines_as_people:.1%}" for r in reports]),
        ("people: median ms", [_fmt_ms(r.latency_stats("human")[0]) for r in reports]),
        ("people: p95 ms", [_fmt_ms(r.latency_stats("human")[1]) for r in reports]),
        ("machines: median ms", [_fmt_ms(r.latency_stats("machine")[0]) for r in reports]),
        ("machines: p95 ms", [_fmt_ms(r.latency_stats("machine")[1]) for r in reports]),
        (
            "beep end within 100 ms",
            [
                "-" if np.isnan(r.beep_within_100ms) else f"{r.beep_within_100ms:.1%}"
                for r in reports
            ],
        ),
        (
            "beep error median |ms|",
            [
                _fmt_ms(float(np.median(np.abs(r.beep_errors)))) if r.beep_errors else "-"
                for r in reports
            ],
        ),
    ]
    for name, vals in rows:
        t.add_row(name, *vals)
    return t


def _confusion_table(r: Report) -> Table:
    t = Table(title=f"confusion ({r.profile}): rows truth, columns verdict")
    t.add_column("truth")
    for lab in LABELS:
        t.add_column(lab, justify="right")
    for truth in LABELS[:4]:
        t.add_row(truth, *(str(r.confusion.get((truth, p), 0)) for p in LABELS))
    return t


def _plot_eval(reports: list[Report], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(reports), figsize=(5 * len(reports), 8), squeeze=False)
    for i, r in enumerate(reports):
        m = np.array([[r.confusion.get((t, p), 0) for p in LABELS] for t in LABELS[:4]])
        ax = axes[0][i]
        ax.imshow(m, cmap="Blues")
        ax.set_xticks(range(len(LABELS)), LABELS, rotation=45)
        ax.set_yticks(range(4), LABELS[:4])
        for (y, x), v in np.ndenumerate(m):
            ax.text(x, y, str(v), ha="center", va="center")
        ax.set_title(f"{r.profile}: confusion")
        ax = axes[1][i]
        for lab in ("human", "machine"):
            if r.latency.get(lab):
                ax.hist(r.latency[lab], bins=30, alpha=0.6, label=lab)
        ax.set_xlabel("decision ms after answer")
        ax.set_title(f"{r.profile}: decision latency")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@app.command("eval")
def eval_cmd(
    directory: Annotated[Path, typer.Argument(help="folder holding the WAV files")],
    labels: Annotated[Path, typer.Option(help="labels.csv: file,label,beep_ms")],
    profile: Annotated[str, typer.Option(help="profile to measure")] = "balanced",
    plot: Annotated[Path | None, typer.Option(help="write confusion/latency plots")] = None,
) -> None:
    """Measure a profile beside the Asterisk baseline on a labelled folder."""
    _profile(profile)
    items = _load(directory, labels)
    names = [profile] if profile == "asterisk" else [profile, "asterisk"]
    reports = _run(items, names)
    out.print(_summary_table(reports))
    for r in reports:
        out.print(_confusion_table(r))
    if plot is not None:
        _plot_eval(reports, plot)
        out.print(f"plot written to {plot}")


_RANGE = re.compile(r"^(\w+)=([-\d.]+):([-\d.]+):([-\d.]+)$")


@app.command("sweep")
def sweep_cmd(
    directory: Annotated[Path, typer.Argument(help="folder holding the WAV files")],
    labels: Annotated[Path, typer.Option(help="labels.csv: file,label,beep_ms")],
    param: Annotated[str, typer.Option(help="NAME=start:stop:step (stop included)")],
    profile: Annotated[str, typer.Option(help="profile the sweep starts from")] = "balanced",
    plot: Annotated[Path | None, typer.Option(help="write the trade-off curve")] = None,
) -> None:
    """Trade-off curve: people called machines vs machines called people vs latency."""
    _profile(profile)
    m = _RANGE.match(param)
    if m is None:
        err.print(f"error: --param must look like NAME=start:stop:step, got {param!r}")
        raise typer.Exit(2)
    key, a, b, step = m.group(1), float(m.group(2)), float(m.group(3)), float(m.group(4))
    if step <= 0 or b < a:
        err.print(f"error: --param {param!r}: need start <= stop and step > 0")
        raise typer.Exit(2)
    values = list(np.arange(a, b + step / 2, step))
    base = resolve(profile)
    is_int = isinstance(getattr(base, key, 0.0), int)
    try:
        params = [resolve(profile, **{key: int(v) if is_int else float(v)}) for v in values]
    except ProfileError as e:
        err.print(f"error: {e}")
        raise typer.Exit(2) from e
    items = _load(directory, labels)
    t = Table(title=f"sweep {key} ({profile})")
    for col in (key, "accuracy", "people as machines", "machines as people", "people median ms"):
        t.add_column(col, justify="right")
    points = []
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("sweep", total=len(values) * len(items))
        for v, p in zip(values, params, strict=True):
            r = evaluate(items, p, progress=lambda: bar.advance(task))
            med = r.latency_stats("human")[0]
            points.append((v, r.people_as_machines, r.machines_as_people, med))
            t.add_row(
                f"{v:g}",
                f"{r.accuracy:.1%}",
                f"{r.people_as_machines:.1%}",
                f"{r.machines_as_people:.1%}",
                _fmt_ms(med),
            )
    out.print(t)
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(11, 4.5))
        xs = [p[0] for p in points]
        ax[0].plot(xs, [p[1] for p in points], "o-", label="people as machines")
        ax[0].plot(xs, [p[2] for p in points], "s-", label="machines as people")
        ax[0].set_xlabel(key)
        ax[0].legend()
        ax[1].plot([p[1] for p in points], [p[3] for p in points], "o-")
        ax[1].set_xlabel("people as machines")
        ax[1].set_ylabel("median ms to decide people")
        fig.tight_layout()
        fig.savefig(plot)
        plt.close(fig)
        out.print(f"plot written to {plot}")


@corpus_app.command("build")
def corpus_build(
    outdir: Annotated[Path, typer.Argument(help="where the WAVs and labels.csv go")],
    n: Annotated[int, typer.Option(help="number of clips")] = 400,
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
    split: Annotated[str, typer.Option(help="dev or heldout")] = "dev",
) -> None:
    """Generate the labelled corpus (espeak-ng voices, Asterisk prompts, sox)."""
    if split not in ("dev", "heldout"):
        err.print(f"error: --split must be dev or heldout, got {split!r}")
        raise typer.Exit(2)
    if n < 1:
        err.print(f"error: --n must be at least 1, got {n}")
        raise typer.Exit(2)
    try:
        with err.status(f"generating {n} clips"):
            clips = build(outdir, n, seed, split)
    except MissingTool as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from e
    out.print(f"wrote {len(clips)} clips and labels.csv to {outdir}")
