"""The built-in softphone behind ``dialer agent-phone``: pyVoIP for SIP and RTP.

pyVoIP (pinned, 1.6.8) runs on threads of its own: a SIP receive loop, a register
timer, and per call an RTP receiver, an RTP transmitter and the thread that runs
our call handler.  This module auto-answers the engine's call (the nailed-up agent
leg) and pumps audio between the call and a source / sink: the microphone and
speaker through PyAudio, or a tone / WAV file and a WAV recording (no device).

pyVoIP 1.6.8's quirks, and what is done about them here:

* Its audio API is 8-bit unsigned linear PCM (G.711 decoded to 8 bits, +128):
  converted to and from int16 here (the 8-bit step costs dynamic range; a tone or
  speech at normal level is unaffected).
* ``read_audio`` / ``write_audio`` are not paced: the receive buffer is addressed
  by RTP timestamp and read at whatever rate it is called, and its blocking read
  spins past silence.  The transmitter sends one packet per 20 ms by relative
  sleeps (it drifts slower than real time), reading silence when nothing is queued.
  So the transmitter is replaced by one on an absolute schedule
  (``_paced_transmitter``), and the pump below runs on its own 20 ms schedule,
  keeps a few frames queued for the transmitter by measuring its queue (the
  source follows the transmitter's real rate, no latency builds up), and plays
  out received audio at the wall clock rate after a 40 ms prebuffer, dropping the
  oldest beyond 200 ms.
* It keeps every byte of both directions in memory (a BytesIO plus a per-packet
  log) for the whole call; a nailed-up agent call lasts a shift, so both buffers
  are trimmed behind their read positions.
* For PCMA it encodes with the mu-law encoder: fixed per call (see ``_fix_pcma``).
* It answers a call 1 s after the INVITE (a Timer), sends every response to the
  registrar's address, ignores CANCEL (answers 200, never 487) and drops OPTIONS.
* A re-INVITE restarts its RTP threads a second time: prevented (``_start_once``).
* Stopping sends BYE and then unregisters reading the next datagram as the answer:
  if that is the 200 to the BYE, it believes it unregistered.  So calls are hung
  up first and the BYE's answer is given time to arrive before unregistering.
* ``pyVoIP.SIP`` cannot be imported before ``pyVoIP.VoIP`` (a circular import).
"""

from __future__ import annotations

import contextlib
import io
import queue
import socket
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FRAME = 160  # samples (and pyVoIP bytes) per 20 ms at 8 kHz
RATE = 8000
TICK = FRAME / RATE
PREBUFFER = 2 * FRAME  # received audio starts playing once this much is queued
MAX_BACKLOG = 10 * FRAME  # further behind than this, drop the oldest to stay live
SEND_AHEAD = 3 * FRAME  # kept queued for pyVoIP's transmitter
TRIM_AFTER = 30 * RATE  # bytes consumed before pyVoIP's buffers are trimmed
TRIM_KEEP = 2 * RATE  # ... keeping this much behind the read position

Int16 = npt.NDArray[np.int16]
Report = Callable[[str], None]


class AgentPhoneError(Exception):
    """Something the user must fix (the text says what); exit code 2."""


class PhoneFailed(Exception):
    """Registration or the phone failed at run time; exit code 1."""


# --- audio: conversion, sources and sinks ---------------------------------------------


def to_u8(samples: Int16) -> bytes:
    """int16 -> pyVoIP's 8-bit unsigned linear (rounded, clipped)."""
    wide = (samples.astype(np.int32) + 128) >> 8
    return bytes((np.clip(wide, -128, 127) + 128).astype(np.uint8).tobytes())


def from_u8(data: bytes) -> Int16:
    """pyVoIP's 8-bit unsigned linear -> int16."""
    u = np.frombuffer(data, dtype=np.uint8).astype(np.int16)
    return ((u - 128) * 256).astype(np.int16)


class Source(Protocol):
    def read(self) -> Int16:
        """The next 20 ms (``FRAME`` samples); never blocks."""

    def close(self) -> None: ...


class Sink(Protocol):
    def write(self, samples: Int16) -> None: ...

    def close(self) -> None: ...


class ToneSource:
    """A continuous sine tone (phase carried over frames)."""

    def __init__(self, hz: float, level: float = 0.3) -> None:
        self._step = 2 * np.pi * hz / RATE
        self._amp = level * 32767
        self._n = 0

    def read(self) -> Int16:
        t = np.arange(self._n, self._n + FRAME)
        self._n += FRAME
        tone: Int16 = np.round(self._amp * np.sin(self._step * t)).astype(np.int16)
        return tone

    def close(self) -> None:
        pass


def read_wav(path: Path) -> Int16:
    """An 8 kHz mono 16-bit WAV file's samples; AgentPhoneError says what is wrong."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            if (rate, channels, width) != (RATE, 1, 2):
                raise AgentPhoneError(
                    f"{path}: need 8000 Hz mono 16-bit PCM, got {rate} Hz, {channels} "
                    f"channel(s), {8 * width}-bit (convert with: "
                    f"sox '{path}' -r 8000 -c 1 -b 16 out.wav)"
                )
            data = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise AgentPhoneError(f"{path}: not a readable WAV file ({exc})") from None
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


class WavSource:
    """A WAV file, once; silence after its end."""

    def __init__(self, samples: Int16) -> None:
        self._samples = samples
        self._pos = 0

    def read(self) -> Int16:
        chunk = self._samples[self._pos : self._pos + FRAME]
        self._pos += FRAME
        if len(chunk) < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), dtype=np.int16)])
        return chunk

    def close(self) -> None:
        pass


class WavSink:
    """Writes what the phone receives to an 8 kHz mono int16 WAV file."""

    def __init__(self, path: Path) -> None:
        try:
            self._w = wave.open(str(path), "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise AgentPhoneError(f"{path}: cannot write ({exc})") from None
        self._w.setnchannels(1)
        self._w.setsampwidth(2)
        self._w.setframerate(RATE)
        self._lock = threading.Lock()
        self._closed = False
        self.samples = 0

    def write(self, samples: Int16) -> None:
        with self._lock:
            if not self._closed:
                self._w.writeframes(samples.astype("<i2").tobytes())
                self.samples += len(samples)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._w.close()


_NO_PYAUDIO = (
    "PyAudio is not installed, so there is no microphone or speaker. Install it with "
    "`pip install 'dialer[audio]'` (on Debian/Ubuntu first `apt install portaudio19-dev`), "
    "or run without a device: --tone HZ or --play WAV instead of the microphone, "
    "--record WAV instead of the speaker."
)


def _pyaudio() -> Any:
    try:
        import pyaudio  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise AgentPhoneError(_NO_PYAUDIO) from None
    return pyaudio


class DeviceAudio:
    """Microphone and/or speaker through PyAudio, in callback mode so that the pump
    never blocks on a device; small queues absorb the device's clock drift."""

    def __init__(self, *, mic: bool, speaker: bool) -> None:
        pyaudio = _pyaudio()
        self._pa = pyaudio.PyAudio()
        self._mic_q: queue.Queue[bytes] = queue.Queue(maxsize=10)
        self._spk_q: queue.Queue[bytes] = queue.Queue(maxsize=10)
        self._streams: list[Any] = []
        try:
            if mic:
                self._pa.get_default_input_device_info()
                self._streams.append(self._open(pyaudio, input=True))
            if speaker:
                self._pa.get_default_output_device_info()
                self._streams.append(self._open(pyaudio, output=True))
        except (OSError, ValueError) as exc:
            self.close()
            kind = "microphone" if mic and not self._streams else "speaker"
            raise AgentPhoneError(
                f"no usable {kind} ({exc}). Run without a device: --tone HZ or --play WAV "
                "instead of the microphone, --record WAV instead of the speaker."
            ) from None

    def _open(self, pyaudio: Any, *, input: bool = False, output: bool = False) -> Any:
        def callback(data: bytes | None, frames: int, _t: object, _s: int) -> tuple[Any, int]:
            if input and data is not None:
                if self._mic_q.full():
                    self._mic_q.get_nowait()  # keep the newest: stay live
                self._mic_q.put_nowait(data)
                return None, pyaudio.paContinue
            try:
                out = self._spk_q.get_nowait()
            except queue.Empty:
                out = bytes(2 * frames)
            return out, pyaudio.paContinue

        return self._pa.open(
            format=pyaudio.paInt16,
            channels=1,
            rate=RATE,
            input=input,
            output=output,
            frames_per_buffer=FRAME,
            stream_callback=callback,
        )

    def read(self) -> Int16:
        try:
            return np.frombuffer(self._mic_q.get_nowait(), dtype="<i2").astype(np.int16)
        except queue.Empty:
            return np.zeros(FRAME, dtype=np.int16)

    def write(self, samples: Int16) -> None:
        if self._spk_q.full():
            self._spk_q.get_nowait()
        self._spk_q.put_nowait(samples.astype("<i2").tobytes())

    def close(self) -> None:
        for s in self._streams:
            s.stop_stream()
            s.close()
        self._streams = []
        self._pa.terminate()


# --- pyVoIP internals we measure and trim (pinned version) ------------------------------


def _pending(pm: Any) -> int:
    """Bytes between a pyVoIP RTPPacketManager's read position and its end."""
    with pm.bufferLock:
        if pm.rebuilding:
            return 0
        buf: io.BytesIO = pm.buffer
        with buf.getbuffer() as view:
            end = view.nbytes
        return end - buf.tell()


def _trim(pm: Any) -> None:
    """Drop what lies well behind the read position (pyVoIP keeps it all)."""
    with pm.bufferLock:
        buf: io.BytesIO = pm.buffer
        pos = buf.tell()
        if pm.rebuilding or pos < TRIM_AFTER:
            return
        cut = pos - TRIM_KEEP
        with buf.getbuffer() as view:
            rest = bytes(view[cut:])
        fresh = io.BytesIO(rest)
        fresh.seek(pos - cut)
        pm.buffer = fresh
        pm.offset += cut  # positions are (timestamp or write offset) - offset
        pm.log = {k: v for k, v in pm.log.items() if k >= pm.offset}


def _fix_pcma(client: Any, pcma: Any) -> None:
    # pyVoIP 1.6.8's RTPClient.encode_packet uses encode_pcmu for PCMA too, so a
    # PCMA call would send mu-law bytes labelled PT 8.  Its transmitter calls
    # self.encode_packet, so an instance attribute overrides it for this client.
    if client.preference == pcma:
        client.encode_packet = client.encode_pcma


def _paced_transmitter(client: Any) -> Callable[[], None]:
    """A replacement for pyVoIP's RTPClient.trans that sends on an absolute 20 ms
    schedule.  pyVoIP's own sleeps 20 ms minus the work after each packet, so every
    oversleep adds up: it sends about 1 % slower than real time (bench/agent_phone.py),
    which the far end's jitter buffer sees as a gap every two seconds or so."""
    pause = threading.Event()  # never set: a sleep that ruff's clock rule allows

    def trans() -> None:
        next_send = time.monotonic()
        while client.NSD:
            payload = client.encode_packet(client.pmout.read(FRAME))
            header = (
                bytes([0x80, int(client.preference) & 0x7F])
                + (client.outSequence & 0xFFFF).to_bytes(2, "big")
                + (client.outTimestamp & 0xFFFFFFFF).to_bytes(4, "big")
                + (client.outSSRC & 0xFFFFFFFF).to_bytes(4, "big")
            )
            with contextlib.suppress(OSError):  # closed on hang-up, or unreachable
                client.sout.sendto(header + payload, (client.outIP, client.outPort))
            client.outSequence = (client.outSequence + 1) & 0xFFFF
            client.outTimestamp = (client.outTimestamp + len(payload)) & 0xFFFFFFFF
            next_send += TICK
            delay = next_send - time.monotonic()
            if delay < -0.2:
                next_send = time.monotonic()  # not scheduled for a while: no burst
            elif delay > 0:
                pause.wait(delay)

    return trans


def _start_once(client: Any) -> None:
    # pyVoIP answers a re-INVITE (session refresh, hold) through gen_ms(), which
    # calls start() on each RTP client again: a second socket and a second pair of
    # receive/transmit threads, so the far end gets twice the packets.  Once the
    # call is answered, later starts are no-ops (renegotiate still updates the
    # far end's address and port).
    client.start = lambda: None


# --- the phone ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhoneOptions:
    user: str
    password: str
    server: tuple[str, int]
    local_ip: str
    sip_port: int
    rtp_ports: tuple[int, int] = (10000, 20000)
    register_timeout: int = 5  # s; pyVoIP's default of 30 makes a typo wait 90 s


@dataclass(slots=True)
class CallStats:
    received_frames: int = 0
    silent_frames: int = 0  # nothing (yet) received at a tick: silence played out
    dropped_frames: int = 0  # too far behind: oldest dropped
    sent_frames: int = 0


@dataclass(slots=True)
class _Active:
    call: Any
    done: threading.Event = field(default_factory=threading.Event)


def route_ip(server: tuple[str, int]) -> str:
    """The local address that reaches ``server`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(server)
            return str(s.getsockname()[0])
        except OSError as exc:
            raise AgentPhoneError(f"cannot reach {server[0]}:{server[1]} ({exc})") from None


def free_udp_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, 0))
        except OSError as exc:
            raise AgentPhoneError(f"cannot bind a UDP port on {ip} ({exc})") from None
        return int(s.getsockname()[1])


class AgentPhone:
    """Registers, auto-answers one call at a time, and pumps audio while it lasts."""

    def __init__(self, opts: PhoneOptions, source: Source, sink: Sink, report: Report) -> None:
        import pyVoIP.VoIP as voip  # before pyVoIP.SIP: a circular import otherwise
        from pyVoIP.RTP import PayloadType

        self._voip = voip
        self._pcma = PayloadType.PCMA
        self.opts = opts
        self.source = source
        self.sink = sink
        self.report = report
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._active: _Active | None = None
        self.calls_answered = 0
        self.last_stats: CallStats | None = None
        low, high = opts.rtp_ports
        self.phone = voip.VoIPPhone(
            opts.server[0],
            opts.server[1],
            opts.user,
            opts.password,
            myIP=opts.local_ip,
            callCallback=self._on_call,
            sipPort=opts.sip_port,
            rtpPortLow=low,
            rtpPortHigh=high,
        )
        self.phone.sip.register_timeout = opts.register_timeout

    @property
    def status(self) -> str:
        return str(self.phone.get_status().value).lower()

    def _thread_failed(self, args: threading.ExceptHookArgs) -> None:
        # pyVoIP's receive threads die with a traceback when it closes their socket
        # on stop or after failing to register: expected then, reported otherwise.
        if self._stop.is_set() or self.status in ("failed", "inactive", "deregistering"):
            return
        name = args.thread.name if args.thread is not None else "?"
        self.report(f"pyVoIP thread {name!r} failed: {args.exc_type.__name__}: {args.exc_value}")

    def start(self) -> None:
        threading.excepthook = self._thread_failed
        try:
            self.phone.start()
        except OSError as exc:
            raise AgentPhoneError(
                f"cannot open SIP port {self.opts.local_ip}:{self.opts.sip_port} ({exc})"
            ) from None

    def stop(self) -> None:
        """Hang up, then unregister (in that order: see the module notes)."""
        self._stop.set()
        with self._lock:
            active = self._active
        if active is not None:
            try:
                if active.call.state == self._voip.CallState.ANSWERED:
                    active.call.hangup()
                    self.report("call: hung up")
            except self._voip.InvalidStateError:
                pass
            active.done.wait(2.0)
            # the 200 to our BYE must reach pyVoIP's receive loop, not the
            # unregistration that reads the next datagram as its answer
            threading.Event().wait(0.3)
        self.phone.stop()

    # pyVoIP's call-handler thread: it must live as long as the call (pyVoIP forgets
    # a call whose handler thread has ended).
    def _on_call(self, call: Any) -> None:
        caller = call.request.headers.get("From", {}).get("raw", "?")
        with self._lock:
            busy = self._active is not None or self._stop.is_set()
            if not busy:
                self._active = _Active(call)
        if busy:
            self.report(f"call: second call from {caller} refused (busy)")
            with contextlib.suppress(self._voip.InvalidStateError):
                call.deny()
            return
        try:
            self._answer_and_pump(call, caller)
        except Exception as exc:  # a thread of pyVoIP's: report instead of dying silently
            self.report(f"call: failed ({type(exc).__name__}: {exc})")
        finally:
            with self._lock:
                active, self._active = self._active, None
            if active is not None:
                active.done.set()

    def _answer_and_pump(self, call: Any, caller: str) -> None:
        if not call.RTPClients:
            self.report(f"call from {caller}: no usable audio in the offer; refusing")
            call.deny()
            return
        for client in call.RTPClients:
            _fix_pcma(client, self._pcma)
            client.trans = _paced_transmitter(client)  # start() runs self.trans
        self.report(f"call: incoming from {caller}, answering")
        call.answer()
        for client in call.RTPClients:
            _start_once(client)
        self.calls_answered += 1
        codec = call.RTPClients[0].preference
        self.report(f"call: answered ({codec})")
        stats = self._pump(call)
        self.last_stats = stats
        ended = "hung up by us" if self._stop.is_set() else "ended by the far end"
        self.report(
            f"call: {ended}; received {stats.received_frames} frames "
            f"({stats.silent_frames} silent ticks, {stats.dropped_frames} dropped), "
            f"sent {stats.sent_frames}"
        )

    def _pump(self, call: Any) -> CallStats:
        client = call.RTPClients[0]
        answered = self._voip.CallState.ANSWERED
        stats = CallStats()
        silence = np.zeros(FRAME, dtype=np.int16)
        primed = False
        # pyVoIP's threads pace themselves with time.monotonic; so does this pump
        next_tick = time.monotonic()
        n = 0
        while call.state == answered and not self._stop.is_set():
            queued = _pending(client.pmout)
            while queued < SEND_AHEAD:
                client.write(to_u8(self.source.read()))
                stats.sent_frames += 1
                queued += FRAME
            avail = _pending(client.pmin)
            primed = primed or avail >= PREBUFFER
            if primed and avail >= FRAME:
                while avail > MAX_BACKLOG:
                    client.pmin.read(FRAME)
                    stats.dropped_frames += 1
                    avail -= FRAME
                self.sink.write(from_u8(client.pmin.read(FRAME)))
                stats.received_frames += 1
            else:
                self.sink.write(silence)
                stats.silent_frames += 1
            n += 1
            if n % 500 == 0:  # every 10 s
                _trim(client.pmin)
                _trim(client.pmout)
            next_tick += TICK
            delay = next_tick - time.monotonic()
            if delay < -0.2:
                next_tick = time.monotonic()  # we were not scheduled for a while: resync
            elif delay > 0:
                self._stop.wait(delay)
        return stats
