"""`dialer agent-phone`: a softphone for one agent, built on pyVoIP.

Registers to the engine's registrar with digest credentials, answers the engine's
call by itself (the nailed-up agent leg) and connects audio: the microphone and
speaker (PyAudio, `pip install 'dialer[audio]'`), or without a device a tone or a
WAV file as the microphone and a WAV recording as the speaker.
"""

from __future__ import annotations

import ipaddress
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from dialer.cli.common import err, out


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}", markup=False)
    return typer.Exit(2)


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "5060"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _fail(f"--server {text!r}: expected HOST:PORT, e.g. 127.0.0.1:5060")
    return host, int(port)


def _port_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or not 1024 <= int(low) <= int(high):
        raise _fail(f"--rtp-ports {text!r}: expected LOW-HIGH within 1024-65535, e.g. 10000-20000")
    if int(high) > 65535:
        raise _fail(f"--rtp-ports {text!r}: ports go up to 65535")
    return int(low), int(high)


def agent_phone(
    user: Annotated[str, typer.Option("--user", help="SIP user name (the agent's).")],
    password: Annotated[
        str,
        typer.Option(
            "--password", envvar="DIALER_AGENT_PASSWORD", help="SIP password (or the env var)."
        ),
    ],
    server: Annotated[str, typer.Option("--server", help="The engine's SIP address, HOST:PORT.")],
    tone: Annotated[
        float | None,
        typer.Option("--tone", help="Send a continuous sine tone of HZ instead of the microphone."),
    ] = None,
    play: Annotated[
        Path | None,
        typer.Option("--play", help="Send this WAV (8 kHz mono 16-bit) instead of the microphone."),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record", help="Write what the phone receives to this WAV, not the speaker."
        ),
    ] = None,
    seconds: Annotated[
        float | None,
        typer.Option(
            "--seconds",
            help="Hang up, unregister and exit N s after registering (default: Ctrl-C).",
        ),
    ] = None,
    local_ip: Annotated[
        str | None,
        typer.Option("--local-ip", help="Address to bind and advertise (default: the route's)."),
    ] = None,
    sip_port: Annotated[
        int, typer.Option("--sip-port", help="Local SIP port (default 0: a free one).")
    ] = 0,
    rtp_ports: Annotated[
        str, typer.Option("--rtp-ports", help="Local RTP port range LOW-HIGH.")
    ] = "10000-20000",
) -> None:
    """A softphone for an agent: register to the engine, auto-answer its call, talk.

    Exit codes: 0 done, 1 registration failed, 2 bad options or no audio device."""
    from dialer.agentphone import (
        AgentPhone,
        AgentPhoneError,
        DeviceAudio,
        PhoneOptions,
        Sink,
        Source,
        ToneSource,
        WavSink,
        WavSource,
        free_udp_port,
        read_wav,
        route_ip,
    )

    host, port = _hostport(server)
    low, high = _port_range(rtp_ports)
    if tone is not None and play is not None:
        raise _fail("--tone and --play both replace the microphone: give one")
    if tone is not None and not 0 < tone < 4000:
        raise _fail(f"--tone {tone}: must be between 0 and 4000 Hz (8 kHz sampling)")
    if seconds is not None and not seconds > 0:
        raise _fail("--seconds must be positive")
    if not 0 <= sip_port < 65536:
        raise _fail(f"--sip-port {sip_port}: not a port")
    if not user or any(c in user for c in " :@<>;\"'"):
        raise _fail(f"--user {user!r}: a SIP user name cannot contain spaces or :@<>;\"'")
    try:
        server_ip = str(ipaddress.IPv4Address(host))
    except ValueError:
        raise _fail(f"--server {host!r}: give an IPv4 address (pyVoIP speaks IPv4 only)") from None
    try:
        ip = local_ip or route_ip((server_ip, port))
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise _fail(f"--local-ip {local_ip!r}: not an IPv4 address") from None
    except AgentPhoneError as exc:
        raise _fail(str(exc)) from None

    closers: list[Any] = []
    try:
        source: Source
        sink: Sink
        device = None
        need_mic = tone is None and play is None
        if need_mic or record is None:
            device = DeviceAudio(mic=need_mic, speaker=record is None)
            closers.append(device)
        if tone is not None:
            source = ToneSource(tone)
        elif play is not None:
            source = WavSource(read_wav(play))
        else:
            assert device is not None
            source = device
        if record is not None:
            sink = WavSink(record)
            closers.append(sink)
        else:
            assert device is not None
            sink = device
        opts = PhoneOptions(
            user, password, (server_ip, port), ip, sip_port or free_udp_port(ip), (low, high)
        )
        code = _run(AgentPhone(opts, source, sink, _say), seconds)
    except AgentPhoneError as exc:
        raise _fail(str(exc)) from None
    finally:
        for c in reversed(closers):
            c.close()
    if code:
        raise typer.Exit(code)


_t0 = time.monotonic()


def _say(message: str) -> None:
    out.print(f"[{time.monotonic() - _t0:7.2f}] {message}", markup=False, highlight=False)


def _run(phone: Any, seconds: float | None) -> int:
    """Register, wait for the end (time or a signal) printing state changes, stop."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    opts = phone.opts
    _say(
        f"registration: registering {opts.user} at {opts.server[0]}:{opts.server[1]} "
        f"from {opts.local_ip}:{opts.sip_port}"
    )
    try:
        phone.start()
        status = _watch(phone, stop, "", opts.register_timeout * 4)
        if status != "registered":
            _say(
                "registration: failed (wrong user name or password, or no registrar "
                f"answering at {opts.server[0]}:{opts.server[1]})"
            )
            phone.stop()
            return 1
        deadline = None if seconds is None else time.monotonic() + seconds
        _watch(phone, stop, status, None, deadline)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    _say("stopping: hanging up and unregistering")
    phone.stop()
    _say(f"registration: {phone.status}")
    return 0


def _watch(
    phone: Any,
    stop: threading.Event,
    status: str,
    until_settled: float | None,
    deadline: float | None = None,
) -> str:
    """Print registration state changes until ``stop``, the deadline, or (with
    ``until_settled``) the state is registered or failed."""
    started = time.monotonic()
    while not stop.is_set():
        now_status = phone.status
        if now_status != status:
            status = now_status
            _say(f"registration: {status}")
        if until_settled is not None and (
            status in ("registered", "failed") or time.monotonic() - started > until_settled
        ):
            return status
        if deadline is not None and time.monotonic() >= deadline:
            return status
        stop.wait(0.1)
    return status
