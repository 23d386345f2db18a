"""Engine events out to an MQTT broker, supervisor commands in (aiomqtt).

:class:`MqttBridge` subscribes to an :class:`dialer.events.EventHub` and publishes
every event as JSON.  The full schema with examples is in ``dialer/mqtt_events.md``;
the pydantic models in :mod:`dialer.mqtt_schema` are its executable form.

Topic layout (``prefix`` defaults to ``dialer``; the campaign name is one topic
level, percent-encoded when it holds ``/``, ``+``, ``#`` or other reserved
characters)::

    {prefix}/{campaign}/calls           call-state transitions        (published)
    {prefix}/{campaign}/agents          agent-state changes           (published)
    {prefix}/{campaign}/stats           periodic campaign figures     (published)
    {prefix}/{campaign}/alerts          alerts for supervisors        (published)
    {prefix}/{campaign}/control         commands                      (subscribed)
    {prefix}/{campaign}/control/result  one answer per command        (published)

Event messages (QoS 1 by default, not retained) are ``Event.to_json()``: the
common fields ``kind``, ``campaign``, ``at`` (ISO 8601 UTC) plus

* ``call``:  ``call_id``, ``contact_id`` (int), ``number``, ``from``, ``to``
  (call states), ``detail``, ``agent`` (str or null)
* ``agent``: ``agent``, ``state`` (agent state), ``call_id`` (str or null)
* ``stats``: the engine's figures (``dials``, ``connects``, ``abandoned``,
  ``abandon_rate_window``, ``abandon_target``, ``dial_level``, ``blockers`` …)
* ``alert``: ``code``, ``message``, ``severity`` (info | warning | critical)

Control requests are JSON objects::

    {"token": "...", "action": "set_abandon_target", "value_pct": 2.5}
    {"token": "...", "action": "pause"}
    {"token": "...", "action": "resume"}

with an optional ``request_id`` echoed in the answer.  Each request gets exactly
one answer on ``control/result``: ``{"campaign", "at", "ok", "action",
"request_id", "reason"}``.  A request is refused (``ok: false`` and a reason) when
it is not JSON, not authorised (``authorize(token)`` is false or absent), names an
unknown action, carries an out-of-range value (target is 0..100 %) or the
controller raises; nothing a client sends can stop the bridge.

Delivery: while the broker is unreachable the engine carries on (publishing into
the hub never blocks).  Events wait in the bridge's hub subscription, bounded by
``buffer``; on overflow the oldest are dropped and counted (:attr:`dropped`).
The bridge reconnects with exponential backoff and then publishes what it held,
in order.  Events whose acknowledgement was outstanding when the connection
broke are sent again (QoS 1 is at-least-once: a subscriber may see a duplicate).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiomqtt
from pydantic import ValidationError

from dialer.clock import Clock, RealClock
from dialer.events import Event, EventHub, Subscription
from dialer.mqtt_schema import (
    CONTROL_ACTIONS,
    CONTROL_REQUEST,
    CONTROL_SUFFIX,
    ControlResult,
    Pause,
    Resume,
    SetAbandonTarget,
    campaign_from_segment,
    event_topic,
    result_topic,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Authorize = Callable[[str], bool | Awaitable[bool]]


class Controller(Protocol):
    """What control messages may do to a campaign.  Methods may be plain or async;
    raising (e.g. ``KeyError`` for an unknown campaign) refuses the request."""

    def set_abandon_target(self, campaign: str, fraction: float, /) -> Awaitable[None] | None: ...

    def pause(self, campaign: str, /) -> Awaitable[None] | None: ...

    def resume(self, campaign: str, /) -> Awaitable[None] | None: ...


class _Refused(Exception):
    """A control request that gets ``ok: false`` with this reason."""


class MqttBridge:
    """Publishes a hub's events to a broker and carries out control requests.

    ``authorize(token)`` (plain or async) says whether a token may steer
    campaigns; without it every control request is refused.  ``controller`` is
    what the accepted requests call (the runtime).  ``inflight`` bounds the
    publishes awaiting acknowledgement; ``backoff`` is (first, longest) retry
    delay in seconds; ``timeout`` bounds connecting and each acknowledgement.
    ``sleep`` waits out the backoff (default: the clock's sleep); tests pass
    their own to decide when the bridge may retry.

    Typical use::

        bridge = MqttBridge(hub, host="127.0.0.1", port=1883,
                            authorize=check_token, controller=runtime)
        task = asyncio.create_task(bridge.run())
        ...
        await bridge.stop()   # flushes what it can, then leaves the hub; final
    """

    def __init__(
        self,
        hub: EventHub,
        *,
        host: str,
        port: int,
        prefix: str = "dialer",
        client_id: str | None = None,
        qos: int = 1,
        buffer: int = 10_000,
        authorize: Authorize | None = None,
        controller: Controller | None = None,
        username: str | None = None,
        password: str | None = None,
        inflight: int = 64,
        backoff: tuple[float, float] = (0.1, 5.0),
        timeout: float = 10.0,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        if qos not in (0, 1, 2):
            raise ValueError(f"MQTT qos must be 0, 1 or 2, got {qos!r}")
        if buffer < 1:
            raise ValueError(f"MQTT buffer must hold at least 1 event, got {buffer}")
        if inflight < 1:
            raise ValueError(f"MQTT inflight must be at least 1, got {inflight}")
        if not prefix or any(c in prefix for c in "+#") or prefix.endswith("/"):
            raise ValueError(
                f"MQTT prefix {prefix!r} must be non-empty, without '+' or '#', "
                "and not end with '/'"
            )
        lo, hi = backoff
        if not 0 < lo <= hi:
            raise ValueError(f"MQTT backoff must be 0 < min <= max, got {backoff!r}")
        self.host = host
        self.port = port
        self.prefix = prefix
        self.client_id = client_id
        self.qos = qos
        self._username = username
        self._password = password
        self._authorize = authorize
        self._controller = controller
        self._inflight = inflight
        self._backoff = (lo, hi)
        self._timeout = timeout
        self._clock = clock
        self._sleep = sleep
        # subscribe now, so events published before run() starts are kept too
        self._sub: Subscription = hub.subscribe(maxsize=buffer)
        self._retry: deque[Event] = deque()
        # publishes sent on the current connection and not yet confirmed
        self._window: deque[tuple[Event, asyncio.Future[None]]] = deque()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._published = 0
        self._unserialisable = 0
        self._connects = 0
        self._connected = False
        self.control_accepted = 0
        self.control_rejected = 0
        self.last_error: str | None = None

    # --- figures -----------------------------------------------------------------

    @property
    def published(self) -> int:
        """Events the broker has acknowledged (sent, for QoS 0)."""
        return self._published

    @property
    def dropped(self) -> int:
        """Events lost because the buffer was full (the oldest go first), plus any
        whose payload could not be turned into JSON."""
        return self._sub.dropped + self._unserialisable

    @property
    def buffered(self) -> int:
        """Events waiting to be published."""
        return self._sub.queue.qsize() + len(self._retry)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def connects(self) -> int:
        """Successful connections so far (1 + reconnections)."""
        return self._connects

    # --- life cycle --------------------------------------------------------------

    async def run(self) -> None:
        """Connect, publish and listen until cancelled or :meth:`stop` is called;
        a lost or refused connection is retried with exponential backoff."""
        self._task = asyncio.current_task()
        if self._clock is None:
            self._clock = RealClock()
        sleep = self._sleep or self._clock.sleep
        delay = self._backoff[0]
        while True:
            try:
                async with self._client() as client:
                    self._connected = True
                    self._connects += 1
                    self.last_error = None
                    delay = self._backoff[0]
                    log.info("MQTT connected to %s:%s", self.host, self.port)
                    await self._session(client)
            except* aiomqtt.MqttError as group:
                self.last_error = str(group.exceptions[0])
                log.warning(
                    "MQTT broker %s:%s unavailable (%s); retrying in %.1f s",
                    self.host,
                    self.port,
                    self.last_error,
                    delay,
                )
            except* Exception as group:
                # a bug here must not silence the events for good: report, reconnect
                self.last_error = repr(group.exceptions[0])
                log.error("MQTT bridge failed; reconnecting", exc_info=group)
            finally:
                self._connected = False
                self._idle.clear()
            await sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Publish what is buffered (for up to ``flush_timeout`` seconds, if
        connected), then disconnect and leave the hub."""
        task = self._task
        if task is not None and not task.done():
            if self._connected and flush_timeout > 0:
                try:
                    await asyncio.wait_for(self._drained(), flush_timeout)
                except TimeoutError:
                    log.warning("MQTT stop: %d events not flushed", self.buffered)
            task.cancel()
            # wait() neither raises the task's CancelledError nor swallows our own
            await asyncio.wait({task})
        self._sub.close()

    # --- internals ---------------------------------------------------------------

    async def _drained(self) -> None:
        # the pump sets _idle only when it blocks on an empty hub queue
        while self.buffered or self._window:
            self._idle.clear()
            await self._idle.wait()

    def _client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            username=self._username,
            password=self._password,
            timeout=self._timeout,
            max_inflight_messages=self._inflight,
        )
        # a full window is normal here, not the leak aiomqtt warns about
        client.pending_calls_threshold = self._inflight + 8
        return client

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(f"{self.prefix}/+/{CONTROL_SUFFIX}", qos=1)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._pump(client))
            # the listener also notices a lost connection and ends the session
            tg.create_task(self._listen(client))

    def _next_nowait(self) -> Event | None:
        if self._retry:
            return self._retry.popleft()
        try:
            return self._sub.queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def _pump(self, client: aiomqtt.Client) -> None:
        # Up to `inflight` publishes are outstanding at once; each one's task sends
        # its packet on its first step, and tasks start in creation order, so the
        # wire order is the event order.
        inflight = self._window

        def send(event: Event) -> None:
            try:
                payload = encode(event)
            except (TypeError, ValueError) as exc:
                self._unserialisable += 1
                log.error("MQTT: %s event for %s is not JSON: %s", event.kind, event.campaign, exc)
                return
            topic = event_topic(self.prefix, event.campaign, event.kind)
            publish = client.publish(topic, payload, qos=self.qos, timeout=self._timeout)
            inflight.append((event, asyncio.ensure_future(publish)))

        try:
            while True:
                while len(inflight) < self._inflight:
                    event = self._next_nowait()
                    if event is None:
                        break
                    send(event)
                if inflight:
                    await inflight[0][1]
                    inflight.popleft()
                    self._published += 1
                else:
                    self._idle.set()
                    event = await self._sub.get()
                    self._idle.clear()
                    send(event)
        finally:
            # Everything from the first unconfirmed publish on goes back to the
            # front of the line, in order, for the next connection.
            back: list[Event] = []
            for event, task in inflight:
                if not back and task.done() and not task.cancelled() and not task.exception():
                    self._published += 1
                    continue
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: the connection error is reported once
                task.cancel()
                back.append(event)
            inflight.clear()
            self._retry.extendleft(reversed(back))

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await self._on_control(client, message)

    async def _on_control(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        levels = message.topic.value.split("/")
        campaign = campaign_from_segment(levels[-2]) if len(levels) >= 2 else ""
        action: str | None = None
        request_id: str | None = None
        try:
            body = _parse(message.payload)
            if isinstance(body.get("action"), str):
                action = body["action"]
            if isinstance(body.get("request_id"), str):
                request_id = body["request_id"][:200]
            await self._check_token(body.get("token"))
            reason = await self._apply(campaign, body)
            ok = True
            self.control_accepted += 1
        except _Refused as exc:
            ok, reason = False, str(exc)
            self.control_rejected += 1
            log.info("MQTT control for %r refused: %s", campaign, reason)
        assert self._clock is not None
        result = ControlResult(
            campaign=campaign,
            at=self._clock.wall(),
            ok=ok,
            action=action,
            request_id=request_id,
            reason=reason,
        )
        await client.publish(
            result_topic(self.prefix, campaign),
            result.model_dump_json(),
            qos=1,
            timeout=self._timeout,
        )

    async def _check_token(self, token: object) -> None:
        if self._authorize is None:
            raise _Refused("not authorised: control is disabled on this bridge")
        if not isinstance(token, str) or not token:
            raise _Refused("not authorised: 'token' is missing")
        try:
            verdict = self._authorize(token)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception as exc:
            log.exception("MQTT control: authorize() raised")
            raise _Refused(f"not authorised: token check failed ({type(exc).__name__})") from exc
        if not verdict:
            raise _Refused("not authorised: invalid token or insufficient role")

    async def _apply(self, campaign: str, body: dict[str, Any]) -> str:
        try:
            request = CONTROL_REQUEST.validate_python(body)
        except ValidationError as exc:
            raise _Refused(_explain(exc)) from exc
        if self._controller is None:
            raise _Refused("no controller is attached to this bridge")
        ctl = self._controller
        try:
            if isinstance(request, SetAbandonTarget):
                outcome = ctl.set_abandon_target(campaign, request.value_pct / 100.0)
                done = f"abandon target set to {request.value_pct:g} %"
            elif isinstance(request, Pause):
                outcome = ctl.pause(campaign)
                done = "paused"
            else:
                assert isinstance(request, Resume)
                outcome = ctl.resume(campaign)
                done = "resumed"
            if inspect.isawaitable(outcome):
                await outcome
        except KeyError as exc:
            raise _Refused(f"unknown campaign {campaign!r}") from exc
        except Exception as exc:
            raise _Refused(f"{request.action} failed: {type(exc).__name__}: {exc}") from exc
        return done


def encode(event: Event) -> str:
    """The event as compact JSON.  NaN and infinities (a forecast with no data)
    become null, since JSON has no spelling for them."""
    body = event.to_json()
    try:
        return json.dumps(body, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(body), default=str, separators=(",", ":"), allow_nan=False)


def _finite(value: Any, depth: int = 0) -> Any:
    if depth > 32:
        raise ValueError("payload nested too deeply (circular?)")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, depth + 1) for v in value]
    return value


def _parse(payload: object) -> dict[str, Any]:
    if isinstance(payload, bytes | bytearray):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(f"bad JSON: payload is not UTF-8 ({exc})") from exc
    if not isinstance(payload, str):
        raise _Refused("bad JSON: empty payload")
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise _Refused(f"bad JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _Refused(f"bad JSON: expected an object, got {type(body).__name__}")
    return body


def _explain(exc: ValidationError) -> str:
    """One line per problem, naming the field and the value given."""
    expected = ", ".join(CONTROL_ACTIONS)
    parts: list[str] = []
    for err in exc.errors():
        kind = err["type"]
        if kind == "union_tag_invalid":
            parts.append(f"unknown action {err['input'].get('action')!r} (expected {expected})")
            continue
        if kind == "union_tag_not_found":
            parts.append(f"'action' is missing (expected {expected})")
            continue
        field = ".".join(str(p) for p in err["loc"][1:]) or "request"
        if field == "value_pct" and kind in ("less_than_equal", "greater_than_equal"):
            parts.append(f"value_pct must be between 0 and 100 (percent), got {err['input']!r}")
            continue
        detail = err["msg"]
        if kind != "missing":
            detail += f", got {err['input']!r}"
        parts.append(f"{field}: {detail}")
    return "; ".join(parts)
