"""Prometheus metrics, fed by the event hub (calls, agents) and live stats."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from dialer.events import Event


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.transitions = Counter(
            "dialer_call_transitions_total",
            "Call-state transitions",
            ["campaign", "to"],
            registry=r,
        )
        self.agent_changes = Counter(
            "dialer_agent_state_changes_total",
            "Agent-state changes",
            ["campaign", "state"],
            registry=r,
        )
        self.dials = Gauge("dialer_dials", "Dials placed by this run", ["campaign"], registry=r)
        self.live = Gauge("dialer_live_answers", "Live answers", ["campaign"], registry=r)
        self.abandoned = Gauge("dialer_abandoned", "Abandoned calls", ["campaign"], registry=r)
        self.abandon_rate = Gauge(
            "dialer_abandon_rate",
            "Abandon rate over the regulatory window",
            ["campaign"],
            registry=r,
        )
        self.target = Gauge(
            "dialer_abandon_target", "Abandon-rate target", ["campaign"], registry=r
        )
        self.dial_level = Gauge(
            "dialer_dial_level", "Lines per working agent", ["campaign"], registry=r
        )
        self.calls = Gauge(
            "dialer_calls_in_progress", "Calls by phase", ["campaign", "phase"], registry=r
        )
        self.agents = Gauge("dialer_agents", "Agents by state", ["campaign", "state"], registry=r)
        self.carrier_free = Gauge(
            "dialer_carrier_free_channels", "Free carrier channels", registry=r
        )
        self.trunk_up = Gauge(
            "dialer_trunk_up",
            "1 while a SIP trunk answers its OPTIONS probes, 0 while it is tried last",
            ["trunk"],
            registry=r,
        )

    def observe(self, ev: Event) -> None:
        if ev.kind == "call":
            self.transitions.labels(ev.campaign, ev.payload.get("to", "")).inc()
        elif ev.kind == "agent":
            self.agent_changes.labels(ev.campaign, ev.payload.get("state", "")).inc()

    def update_stats(self, campaign: str, s: dict[str, Any], carrier_free: int) -> None:
        self.dials.labels(campaign).set(s["dials"])
        self.live.labels(campaign).set(s["live_answers"])
        self.abandoned.labels(campaign).set(s["abandoned"])
        self.abandon_rate.labels(campaign).set(s["abandon_rate_window"])
        self.target.labels(campaign).set(s["abandon_target"])
        self.dial_level.labels(campaign).set(s["dial_level"])
        for phase, n in s["calls"].items():
            self.calls.labels(campaign, phase).set(n)
        for state in ("ready", "reserved", "on_call", "wrap_up", "paused"):
            self.agents.labels(campaign, state).set(s["agents"].get(state, 0))
        self.carrier_free.set(carrier_free)

    def update_trunks(self, states: dict[str, bool]) -> None:
        for name, up in states.items():
            self.trunk_up.labels(name).set(1.0 if up else 0.0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
