"""AMD quality on the generated corpus: every profile beside the Asterisk baseline.

Builds (or reuses) the held-out split (different voices, prompts and parameter
ranges from the development split the profiles were tuned on) and prints the
figures the bars are stated in.

    .venv/bin/python bench/amd_eval.py [--n 400] [--seed 11] [--split heldout] [--dir DIR]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import numpy as np

from sim.corpus.evaluate import classify, evaluate
from sim.corpus.generate import Clip
from sim.corpus.store import build


def people_timing(clips: list[Clip]) -> None:
    """When people finish their first utterance (the generator's own figure), and how
    long after that each detector calls them: a detector that confirms a person on the
    silence after their greeting cannot decide sooner than the first of these."""
    people = [c for c in clips if c.label == "human" and c.first_speech_end_ms is not None]
    ends = np.array([c.first_speech_end_ms for c in people], dtype=float)
    print(
        f"people: first utterance ends {np.median(ends):.0f} ms after answer (median), "
        f"{np.mean(ends <= 1000):.1%} of people have finished it by 1000 ms"
    )
    for profile in ("balanced", "asterisk"):
        gaps = []
        for c in people:
            out = classify(c.samples, profile)
            if out.label == "human":
                assert c.first_speech_end_ms is not None
                gaps.append(out.decision_ms - c.first_speech_end_ms)
        if gaps:
            print(
                f"  {profile}: people called HUMAN {np.median(gaps):.0f} ms (median) after "
                f"their first utterance ends"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    out = args.dir or Path(tempfile.mkdtemp(prefix="amd_eval_"))
    clips = build(out, args.n, args.seed, args.split)
    kinds = {c.name: c.kind for c in clips}
    items = [(c.name, c.samples, c.label, c.beep_ms) for c in clips]
    print(f"corpus: {args.split} split, n={args.n}, seed={args.seed}, in {out}")
    print(
        f"{'profile':10s} {'acc':>6s} {'ppl->mach':>9s} {'mach->ppl':>9s} "
        f"{'ppl med/p95 ms':>15s} {'mach med/p95 ms':>16s} "
        f"{'beep<=100ms':>11s} {'beep |err| med':>14s}"
    )
    for profile in ("fast", "balanced", "cautious", "asterisk"):
        r = evaluate(items, profile)
        hm, hp = r.latency_stats("human")
        mm, mp = r.latency_stats("machine")
        be = f"{np.median(np.abs(r.beep_errors)):.0f}" if r.beep_errors else "-"
        print(
            f"{profile:10s} {r.accuracy:6.1%} {r.people_as_machines:9.1%} "
            f"{r.machines_as_people:9.1%} {hm:7.0f}/{hp:<7.0f} {mm:8.0f}/{mp:<7.0f} "
            f"{r.beep_within_100ms:11.1%} {be:>14s}"
        )
        misses = collections.Counter((kinds[m[0]], m[2]) for m in r.misses)
        print("           misses (kind -> verdict):", dict(misses.most_common(8)))
    people_timing(clips)


if __name__ == "__main__":
    main()
