"""Numbers in, numbers out: how many calls to start now.

Pure numpy/scipy, no I/O.  A policy takes a frozen :class:`PacingSnapshot` and an
explicit ``numpy.random.Generator`` and returns a :class:`Decision`.  Policies are
registered by name in :mod:`pacing.registry`.
"""

from pacing.types import AgentView, CallView, Decision, Limits, PacingSnapshot, Policy

__all__ = ["AgentView", "CallView", "Decision", "Limits", "PacingSnapshot", "Policy"]
