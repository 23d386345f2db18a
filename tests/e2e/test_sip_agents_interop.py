"""The issue's end-to-end bar for SIP agents, with independent SIP stacks: the
engine dials customers at the SIP simulated PBX, and two agents work from the
desktop on their own phones: baresip (alice) and the pyVoIP softphone
`dialer agent-phone` (bob).  Both register with digest authentication, take the
login call, and are bridged to live customers.  Audio is checked both ways by
analysing what each side received: the customer hears the agent's phone's tone,
the agent's phone records the customer's reply tone.  Dispositions are stored.
(The agentless "press 9" half of the bar is `test_sip_demo.py`.)"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.io import wavfile

from dialer.runtime import Runtime
from dialer.store.db import Database
from sim.audio import peak_hz
from sim.sip_pbx import LegEnded, SipPbxParams
from tests.carriers.sip.peers import free_udp_port, tone
from tests.conftest import ROOT, need_tool
from tests.e2e.sip_agents_rig import ContactsWorld, sip_agents_config
from tests.sim.uac import scenario as pbx_scenario
from tests.sim.uac import start_pbx

BARESIP_HZ, PYVOIP_HZ, CUSTOMER_HZ = 700.0, 1200.0, 1000.0
CALLS_EACH = 2

BARESIP_CONFIG = """\
poll_method\tepoll
sip_listen\t127.0.0.1:{port}
sip_transports\tudp
audio_source\taufile,{wav}
audio_alert\taufile,/dev/null
rtp_ports\t{rtp}-{rtp_end}
module_path\t/usr/lib/baresip/modules
snd_path\t{dumps}
module\tg711.so
module\taufile.so
module\tsndfile.so
module_app\taccount.so
module_app\tmenu.so
"""


@contextmanager
def baresip(workdir: Path, engine_port: int, user: str, password: str) -> Iterator[Path]:
    """baresip registered as ``user``, answering by itself, its microphone a tone;
    yields the folder where its sndfile module dumps what it decoded."""
    binary = need_tool("baresip")
    modules = Path("/usr/lib/baresip/modules")
    for mod in ("aufile.so", "sndfile.so"):
        if not (modules / mod).exists():
            pytest.skip(f"baresip's {mod} module is not installed")
    workdir.mkdir()
    dumps = workdir / "dumps"
    dumps.mkdir()
    wav = workdir / "tone.wav"
    wavfile.write(wav, 8000, tone(BARESIP_HZ, 600.0))
    rtp = free_udp_port(even=True)
    (workdir / "config").write_text(
        BARESIP_CONFIG.format(port=free_udp_port(), wav=wav, rtp=rtp, rtp_end=rtp + 20, dumps=dumps)
    )
    (workdir / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{engine_port}>;auth_pass={password};regint=300;"
        "answermode=auto;audio_codecs=PCMU,PCMA\n"
    )
    (workdir / "contacts").write_text("")
    log = workdir / "baresip.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-4", "-n", "127.0.0.1", "-f", str(workdir)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield dumps
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # ends its calls, closing the dumps
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@contextmanager
def pyvoip_phone(
    workdir: Path, engine_port: int, user: str, password: str
) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """`dialer agent-phone` (pyVoIP) registered as ``user``: a tone for a
    microphone and a WAV file for a speaker."""
    pytest.importorskip("pyVoIP", reason="pyVoIP is not installed (pip install -e '.[dev]')")
    record = workdir / f"{user}.wav"
    log = workdir / f"{user}-phone.log"
    args = [
        sys.executable, "-m", "dialer.cli", "agent-phone",
        "--user", user, "--password", password,
        "--server", f"127.0.0.1:{engine_port}", "--local-ip", "127.0.0.1",
        "--tone", str(PYVOIP_HZ), "--record", str(record), "--seconds", "90",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield record, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # hangs up, unregisters, writes the WAV
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def window_peaks(samples: np.ndarray) -> list[float]:
    """The strongest frequency of each 100 ms of a recording (silence skipped)."""
    w = 800
    x = samples.astype(np.float64)
    return [
        peak_hz(samples[i : i + w])
        for i in range(0, len(samples) - w, w)
        if float(np.sqrt(np.mean(x[i : i + w] ** 2))) > 200
    ]


def _wav_or_empty(path: Path) -> np.ndarray:
    """A dump baresip was still writing when it was stopped may lack its data chunk."""
    try:
        return np.asarray(wavfile.read(path)[1])
    except (ValueError, UnboundLocalError):
        return np.zeros(0, dtype=np.int16)


def heard(peaks: list[float], hz: float) -> int:
    return sum(1 for p in peaks if abs(p - hz) < 25)


async def _wait(cond: Any, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_baresip_and_pyvoip_agents_take_bridged_calls(tmp_path: Path) -> None:
    legs: list[LegEnded] = []
    pbx = await start_pbx(
        pbx_scenario(talk='{ kind = "fixed", mean = 2.5 }', ring='{ kind = "fixed", mean = 0.5 }'),
        SipPbxParams(post_dial_delay_s=0.05, reply_tone_hz=CUSTOMER_HZ),
    )
    cfg = sip_agents_config(pbx.addr[1], {"alice": "alice-pw", "bob": "bob-pw"})
    db_path = tmp_path / "interop.db"
    db = Database(f"sqlite+aiosqlite:///{db_path}")
    world = ContactsWorld(pbx_scenario(), 1, cfg.carrier.params())  # type: ignore[union-attr]
    rt = Runtime(cfg, db, world)
    await rt.start()
    assert world._sip is not None and world._sip.registrar is not None
    sip, registrar = world._sip, world._sip.registrar
    port = sip.local_addr[1]
    taken: dict[str, int] = {"alice": 0, "bob": 0}
    try:
        with (
            baresip(tmp_path / "baresip", port, "alice", "alice-pw") as dumps,
            pyvoip_phone(tmp_path, port, "bob", "bob-pw") as (bob_wav, bob_proc),
        ):
            assert rt.clock is not None
            clock = rt.clock
            await _wait(
                lambda: (
                    registrar.lookup("alice", clock.monotonic())
                    and registrar.lookup("bob", clock.monotonic())
                ),
                "both phones to register",
            )
            desk = rt.desks["desk"]
            boxes = {a: desk.attach(a) for a in taken}
            for a in taken:
                desk.login(a)
            await _wait(lambda: all(sip.line_up(a) for a in taken), "both lines to come up")
            for a in taken:
                desk.ready(a)
            # each agent takes calls and dispositions them from the desktop
            deadline = clock.monotonic() + 90
            while min(taken.values()) < CALLS_EACH:
                assert clock.monotonic() < deadline, f"calls taken: {taken}"
                for a, box in boxes.items():
                    while not box.empty():
                        msg = box.get_nowait()
                        if msg.get("type") == "call_ended":
                            taken[a] += 1
                            if taken[a] >= CALLS_EACH:
                                desk.dispose(a, "sale", then_pause="enough")
                            else:
                                desk.dispose(a, "sale" if a == "alice" else "no_sale")
                await asyncio.sleep(0.05)
                assert bob_proc.poll() is None, (tmp_path / "bob-phone.log").read_text()[-2000:]
            legs = list(pbx.ended)
    finally:
        await rt.stop()
        await db.close()
        await pbx.server.stop()
    # the customers heard each agent's phone through the bridge
    heard_hz = [leg.heard_hz for leg in legs if leg.heard_at is not None]
    assert heard(heard_hz, BARESIP_HZ) >= 1 and heard(heard_hz, PYVOIP_HZ) >= 1, heard_hz
    # and each phone heard the customers' reply (baresip's decoder dump, bob's WAV)
    dec = sorted(dumps.glob("dump-*-dec.wav"))
    assert dec, list(dumps.iterdir())
    alice_peaks = [p for f in dec for p in window_peaks(_wav_or_empty(f))]
    assert heard(alice_peaks, CUSTOMER_HZ) >= 5, alice_peaks[:50]
    rate, bob_audio = wavfile.read(bob_wav)
    assert rate == 8000
    assert heard(window_peaks(bob_audio), CUSTOMER_HZ) >= 5
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("select agent, name from attempt_dispositions").fetchall()
        connected = dict(
            conn.execute(
                "select agent, count(*) from attempts where result = 'connected' group by agent"
            ).fetchall()
        )
    assert ("alice", "sale") in rows and ("bob", "no_sale") in rows, rows
    assert connected.get("alice", 0) >= CALLS_EACH and connected.get("bob", 0) >= CALLS_EACH
