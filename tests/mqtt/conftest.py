"""A private Mosquitto per test (its own port, no persistence), so tests can stop
and restart the broker without touching the shared one on 1883."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.conftest import need_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, exe: str, conf_dir: Path, password_file: Path | None = None) -> None:
        self.exe = exe
        self.port = free_port()
        self.conf = conf_dir / "mosquitto.conf"
        auth = (
            f"allow_anonymous false\npassword_file {password_file}\n"
            if password_file
            else "allow_anonymous true\n"
        )
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n{auth}persistence false\n"
            "log_dest none\nmax_queued_messages 0\n"
            # started as root, mosquitto would switch to its own user, which cannot
            # read the password file in pytest's private temporary directory
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"mosquitto exited: {err}") from None
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within 5 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(need_tool("mosquitto"), tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def stopped_broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(need_tool("mosquitto"), tmp_path)
    yield b
    b.stop()


class Collector:
    """A real subscriber: every message it sees, as (topic, decoded JSON)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def add(self, topic: str, payload: Any) -> None:
        self.messages.append((topic, payload))
        self._changed.set()

    def on(self, suffix: str) -> list[Any]:
        return [p for t, p in self.messages if t.endswith(suffix)]

    async def wait_for(self, n: int, suffix: str = "", timeout: float = 10.0) -> list[Any]:
        async def enough() -> None:
            while len(self.on(suffix)) < n:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {n} messages on *{suffix}, got {len(self.on(suffix))} in {timeout} s"
            ) from None
        return self.on(suffix)


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that admits only user ``bridge`` with password ``s3cret``."""
    pw = tmp_path / "passwd"
    subprocess.run(
        [need_tool("mosquitto_passwd"), "-b", "-c", str(pw), "bridge", "s3cret"],
        check=True,
        timeout=10,
        capture_output=True,
    )
    b = Broker(need_tool("mosquitto"), tmp_path, password_file=pw)
    b.start()
    yield b
    b.stop()


@contextlib.asynccontextmanager
async def subscriber(
    port: int, topic: str, username: str | None = None, password: str | None = None
) -> AsyncIterator[tuple[Collector, aiomqtt.Client]]:
    col = Collector()
    async with aiomqtt.Client(
        "127.0.0.1", port, timeout=5, username=username, password=password
    ) as client:
        await client.subscribe(topic, qos=1)

        async def read() -> None:
            async for msg in client.messages:
                raw = msg.payload
                assert isinstance(raw, bytes)
                col.add(msg.topic.value, json.loads(raw))

        task = asyncio.create_task(read())
        try:
            yield col, client
        finally:
            task.cancel()
            await asyncio.wait({task})
