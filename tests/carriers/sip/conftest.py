"""Fixtures for the SIP interop tests: SIPp UASes started on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.carriers.sip.peers import Sipp, StartUas, tone, write_ulaw
from tests.conftest import need_tool


@pytest.fixture
def sipp_bin() -> str:
    return need_tool("sipp")


@pytest.fixture
def uas(sipp_bin: str, tmp_path: Path) -> Iterator[StartUas]:
    """Start SIPp UASes (``uas("scenario.xml")``); all are killed at teardown."""
    started: list[Sipp] = []
    write_ulaw(tmp_path / "audio.ulaw", tone(440, 3.0))
    write_ulaw(tmp_path / "answer.ulaw", tone(440, 3.0))
    write_ulaw(tmp_path / "early.ulaw", tone(300, 1.5))

    def start(scenario: str, calls: int = 1) -> Sipp:
        peer = Sipp(scenario, tmp_path, calls).start(sipp_bin)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.kill()
