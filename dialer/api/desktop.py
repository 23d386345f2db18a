"""The agent desktop: a page at ``/agent`` and its WebSocket at ``/api/agent/ws``.

The socket speaks JSON.  The browser's first message authenticates
(``{"token": "..."}``; browsers cannot set headers on a WebSocket) and the token's
name is the agent's id.  Then it sends actions and receives what happens:

actions  ``login {campaign}``, ``ready``, ``pause {reason}``, ``logout``,
         ``dial`` (preview mode), ``hangup``,
         ``dispose {disposition, callback_at?, callback_personal?, then_pause?}``
messages ``state`` (the agent's state, contact, dispositions), ``preview``,
         ``connected`` (the screen pop, with the contact's history),
         ``call_ended``, ``notice``, ``error {message}``

Every refused action is answered with an ``error`` that says why; the engine
never sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dialer.desktop import DeskError, DesktopAgents
from dialer.runtime import Runtime, UnknownCampaign
from dialer.store import repo
from dialer.store.db import Database
from dialer.tokens import Role, lookup

MAX_MESSAGE = 4096


def desktop_router(runtime: Runtime | None, db: Database, templates: Jinja2Templates) -> APIRouter:
    router = APIRouter()

    @router.get("/agent", response_class=HTMLResponse, tags=["pages"])
    async def desktop_page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "desktop.html", {})

    @router.websocket("/api/agent/ws")
    async def desktop_socket(ws: WebSocket) -> None:
        await ws.accept()
        try:
            first = json.loads(await asyncio.wait_for(ws.receive_text(), 10.0))
            token = str(first.get("token", "")) if isinstance(first, dict) else ""
        except (TimeoutError, ValueError, WebSocketDisconnect):
            await _close(ws, 4401, 'send {"token": ...} first')
            return
        async with db.engine.connect() as conn:
            found = await lookup(conn, token) if token else None
        if found is None:
            await _close(ws, 4401, "unknown or revoked API token")
            return
        agent_id, role = found
        if not role.allows(Role.AGENT):
            await _close(ws, 4403, "this token may not use the agent desktop")
            return
        if runtime is None:
            await _close(ws, 4503, "the engine is not running")
            return
        await _Session(ws, runtime, db, agent_id).run()

    return router


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.send_json({"type": "error", "message": reason})
        await ws.close(code, reason)


class _Session:
    """One open desktop: reads actions, forwards the desk's messages."""

    def __init__(self, ws: WebSocket, runtime: Runtime, db: Database, agent_id: str) -> None:
        self.ws = ws
        self.runtime = runtime
        self.db = db
        self.agent_id = agent_id
        self.desk: DesktopAgents | None = None
        self.box: asyncio.Queue[dict[str, Any]] | None = None
        self.box_changed = asyncio.Event()

    async def run(self) -> None:
        await self.ws.send_json(
            {
                "type": "hello",
                "agent": self.agent_id,
                "campaigns": sorted(self.runtime.desks),
            }
        )
        pump = asyncio.create_task(self._pump())
        try:
            while True:
                try:
                    text = await self.ws.receive_text()
                except WebSocketDisconnect:
                    return
                await self._handle(text)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            if self.desk is not None and self.box is not None:
                self.desk.detach(self.agent_id, self.box)

    async def _pump(self) -> None:
        while True:
            box = self.box
            if box is None:
                await self.box_changed.wait()
                self.box_changed.clear()
                continue
            message = await box.get()
            if message.get("type") == "connected":
                message = {**message, "history": await self._history(message)}
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.ws.send_json(message)

    async def _history(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        contact_id = message.get("contact", {}).get("contact_id")
        if not isinstance(contact_id, int):
            return []
        async with self.db.engine.connect() as conn:
            hist = await repo.contact_history(conn, contact_id)
        if hist is None:
            return []
        # the screen pop shows the earlier calls, newest first, not this one
        rows = [
            {k: _plain(v) for k, v in item.items()}
            for item in hist.get("timeline", [])
            if item.get("kind") == "attempt" and item.get("call_id") != message.get("call_id")
        ]
        return list(reversed(rows))[:20]

    async def _error(self, text: str) -> None:
        await self.ws.send_json({"type": "error", "message": text})

    async def _handle(self, text: str) -> None:
        if len(text) > MAX_MESSAGE:
            await self._error(f"message too long ({len(text)} bytes; at most {MAX_MESSAGE})")
            return
        try:
            msg = json.loads(text)
        except ValueError as exc:
            await self._error(f"not JSON: {exc}")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("action"), str):
            await self._error('expected {"action": ...}')
            return
        action = msg["action"]
        try:
            if action == "login":
                await self._login(str(msg.get("campaign", "")))
                return
            desk = self.desk
            if desk is None:
                raise DeskError("log in to a campaign first")
            if action == "ready":
                desk.ready(self.agent_id)
            elif action == "pause":
                desk.pause(self.agent_id, str(msg.get("reason", "")))
            elif action == "logout":
                desk.logout(self.agent_id)
            elif action == "dial":
                self._engine_says(self._engine().dial_preview(self.agent_id))
            elif action == "hangup":
                self._engine_says(self._engine().agent_hangup(self.agent_id))
            elif action == "dispose":
                await self._dispose(desk, msg)
            else:
                raise DeskError(f"unknown action {action!r}")
        except DeskError as exc:
            await self._error(str(exc))

    def _engine(self) -> Any:
        assert self.desk is not None
        try:
            return self.runtime.get(self.desk.campaign).engine
        except UnknownCampaign:
            raise DeskError(f"campaign {self.desk.campaign!r} is not running") from None

    @staticmethod
    def _engine_says(refusal: str | None) -> None:
        if refusal is not None:
            raise DeskError(refusal)

    async def _login(self, campaign: str) -> None:
        desk = self.runtime.desks.get(campaign)
        if desk is None:
            known = ", ".join(sorted(self.runtime.desks)) or "none"
            raise DeskError(f"no desktop campaign {campaign!r} (desktop campaigns: {known})")
        if self.desk is not None and self.desk is not desk:
            raise DeskError(f"already logged in to {self.desk.campaign!r}; log out first")
        if self.box is None:
            self.desk, self.box = desk, desk.attach(self.agent_id)
            self.box_changed.set()
        desk.login(self.agent_id)

    async def _dispose(self, desk: DesktopAgents, msg: dict[str, Any]) -> None:
        disposition = str(msg.get("disposition", ""))
        callback_at = msg.get("callback_at")
        when: datetime | None = None
        if callback_at not in (None, ""):
            # checked before the wrap-up closes, so a bad date costs nothing; the
            # desk says whether this disposition needs one at all
            if not isinstance(callback_at, str):
                raise DeskError(f"not a date and time: {callback_at!r}")
            try:
                when = datetime.fromisoformat(callback_at)
            except ValueError:
                raise DeskError(f"not a date and time: {callback_at!r}") from None
            if when.tzinfo is None:
                raise DeskError("the callback time needs a time zone offset")
        # the engine books the callback (checked against the gate) from the event
        desk.dispose(
            self.agent_id,
            disposition,
            str(msg.get("then_pause", "")),
            when,
            msg.get("callback_personal") is True,
        )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
