"""Fuzzing: whatever the bytes, only SipParseError may escape, within bounded time."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.sip import SipParseError, StreamFramer, parse_message

SEEDS = [p.read_bytes() for p in sorted((Path(__file__).parent / "corpus").glob("*.sip"))]
TORTURE = Path("/work/shared/reference/sip-torture-rfc4475")
if TORTURE.is_dir():
    SEEDS += [p.read_bytes() for p in sorted(TORTURE.glob("*.dat"))]

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

# Bytes that matter to the grammar, so mutations hit interesting paths.
SPECIAL = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b",", b"<", b">", b'"', b"\\", b"%",
     b"@", b"=", b"?", b"[", b"]", b"\x00", b"\xff", b"0", b"99999999999", b"\r\n "]
)  # fmt: skip


def _parse_or_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert str(exc)
        return
    # What parsed must serialise and parse back to itself.
    assert parse_message(msg.serialise()) == msg


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _parse_or_error(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.integers(0, 3))
        if op == 0 and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == 1:
            data[pos:pos] = draw(SPECIAL)
        elif op == 2 and data:
            data[pos] = draw(st.integers(0, 255))
        else:
            data[pos:pos] = draw(st.binary(max_size=16))
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    _parse_or_error(data)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated(), st.lists(st.integers(1, 64), max_size=20))
def test_stream_framer_never_crashes(data: bytes, cuts: list[int]) -> None:
    framer = StreamFramer()
    pos = 0
    try:
        for cut in [*cuts, len(data)]:
            framer.feed(data[pos : pos + cut])
            pos += cut
    except SipParseError:
        pass
    assert framer.pending <= len(data)


ATHERIS_HARNESS = """
import sys, atheris
with atheris.instrument_imports():
    from carriers.sip import SipParseError, parse_message
def one(data):
    try:
        parse_message(data)
    except SipParseError:
        pass
atheris.Setup([sys.argv[0], "-runs=3000", "-max_len=2048"], one)
atheris.Fuzz()
"""


def test_atheris_optional(tmp_path: Path) -> None:
    """Coverage-guided fuzzing when atheris is installed (a short bounded run)."""
    if importlib.util.find_spec("atheris") is None:
        print("atheris not installed: coverage-guided fuzzing skipped", file=sys.stderr)
        pytest.skip("atheris not installed (optional extra)")
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", ATHERIS_HARNESS],
        cwd=root,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
