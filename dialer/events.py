"""Engine events for everyone who watches: the dashboard, MQTT, metrics, tests.

The engine publishes synchronously into an :class:`EventHub`; each subscriber
gets its own bounded queue, so a slow consumer (a stalled browser, a broker that
is down) loses its oldest events instead of slowing the engine down.

Event kinds and their payloads (JSON-ready dicts):

* ``call``  — one call-state transition: ``call_id``, ``contact_id``, ``number``,
  ``from``, ``to``, ``detail``, ``agent``
* ``agent`` — one agent-state change: ``agent``, ``state``, ``call_id``
* ``stats`` — periodic campaign figures (see :func:`dialer.engine.Engine.stats`)
* ``alert`` — something a supervisor must look at: ``code``, ``message``
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # call | agent | stats | alert
    campaign: str
    at: datetime
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "campaign": self.campaign,
            "at": self.at.isoformat(),
            **self.payload,
        }


class Subscription:
    def __init__(self, hub: EventHub, maxsize: int, kinds: frozenset[str] | None) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.kinds = kinds
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if self.kinds is not None and event.kind not in self.kinds:
            return
        if self.queue.full():
            self.queue.get_nowait()  # keep the newest: the oldest is the least useful
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._hub.unsubscribe(self)


class EventHub:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._sync: list[Callable[[Event], None]] = []
        self.published = 0

    def subscribe(self, maxsize: int = 10_000, kinds: set[str] | None = None) -> Subscription:
        sub = Subscription(self, maxsize, frozenset(kinds) if kinds else None)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """A synchronous listener (metrics counters); must be cheap and not raise."""
        self._sync.append(fn)

    def publish(self, event: Event) -> None:
        self.published += 1
        for fn in self._sync:
            fn(event)
        for sub in self._subs:
            sub.offer(event)
