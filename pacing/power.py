"""Power (ratio) dialing: a fixed number of lines per free agent."""

from __future__ import annotations

import numpy as np

from pacing.types import MAX_LINES_PER_AGENT, Decision, PacingSnapshot, cap, dial_level


class Power:
    """Keeps ``ratio`` lines in progress per free agent; the ratio is
    ``Limits.power_ratio`` unless given here."""

    name = "power"

    def __init__(self, ratio: float | None = None) -> None:
        if ratio is not None and not 1.0 <= ratio <= MAX_LINES_PER_AGENT:
            raise ValueError(f"power ratio must be in [1, {MAX_LINES_PER_AGENT:g}], got {ratio}")
        self.ratio = ratio

    def decide(self, snapshot: PacingSnapshot, rng: np.random.Generator) -> Decision:
        ratio = self.ratio if self.ratio is not None else snapshot.limits.power_ratio
        goal = int(np.floor(ratio * len(snapshot.agents.ready) + 1e-9))
        n = cap(snapshot, max(0, goal - snapshot.calls.in_progress))
        return Decision(
            calls=n,
            dial_level=dial_level(snapshot, n),
            expected_free_agents=float(len(snapshot.agents.ready)),
            reason=f"ratio {ratio:g} per free agent",
        )
