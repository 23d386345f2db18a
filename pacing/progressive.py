"""Progressive dialing: one call per free agent."""

from __future__ import annotations

import numpy as np

from pacing.types import Decision, PacingSnapshot, cap, dial_level, progressive_need


class Progressive:
    """One call per free agent, counting calls already in progress for them: it never
    abandons (unless an agent walks away) and agents wait through every ring."""

    name = "progressive"

    def decide(self, snapshot: PacingSnapshot, rng: np.random.Generator) -> Decision:
        n = cap(snapshot, progressive_need(snapshot))
        return Decision(
            calls=n,
            dial_level=dial_level(snapshot, n),
            expected_free_agents=float(len(snapshot.agents.ready)),
            reason="one call per free agent",
        )
