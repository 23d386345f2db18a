"""The asyncio shell around :class:`MediaSession`: one UDP socket per RTP stream.

:class:`RtpPortPool` hands out sockets from a configured port range (even ports,
RFC 3550 §11; a port range of 0 lets the OS choose, which tests use so parallel
runs never collide).  :class:`RtpStream` feeds received datagrams to the session,
sends what it produces, and keeps one timer armed at the session's deadline on
the scheduler it was given.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from carriers.base import Scheduler, cancel_timer
from carriers.rtp.dtmf import DigitEvent
from carriers.rtp.jitter import Frame
from carriers.rtp.packet import RtpPacket, RtpParseError
from carriers.rtp.session import MediaSession
from carriers.udp import RTP_READS_PER_WAKEUP, Addr, UdpSocket

FramesHandler = Callable[[list[Frame], float], None]
DigitsHandler = Callable[[list[DigitEvent], float], None]
Receiver = Callable[[bytes, float, object], None]  # (datagram, arrival time, tag)


class PortsExhausted(OSError):
    """No RTP port of the range could be bound."""


class RtpPortPool:
    """RTP sockets bound on ``host`` with even ports in ``[port_min, port_max]``."""

    def __init__(self, host: str, port_min: int = 0, port_max: int = 0) -> None:
        if port_min and (port_max < port_min or port_min < 1024 or port_max > 65534):
            raise ValueError(f"RTP port range {port_min}-{port_max} is not within 1024-65534")
        self.host = host
        self.ephemeral = port_min == 0
        first = port_min + (port_min % 2)
        self._free: deque[int] = deque(range(first, port_max + 1, 2)) if port_min else deque()
        self._size = len(self._free)
        self.in_use = 0

    @property
    def free(self) -> int:
        return 1_000_000 if self.ephemeral else len(self._free)

    def open(
        self, loop: asyncio.AbstractEventLoop, on_datagram: Callable[[bytes, Addr], None]
    ) -> UdpSocket:
        if self.ephemeral:
            sock = UdpSocket.bind(
                loop, self.host, 0, on_datagram, reads_per_wakeup=RTP_READS_PER_WAKEUP
            )
            self.in_use += 1
            return sock
        # A port another program holds is skipped (and tried again later).
        for _ in range(min(len(self._free), 64)):
            port = self._free.popleft()
            try:
                sock = UdpSocket.bind(
                    loop, self.host, port, on_datagram, reads_per_wakeup=RTP_READS_PER_WAKEUP
                )
            except OSError:
                self._free.append(port)
                continue
            self.in_use += 1
            return sock
        raise PortsExhausted(f"no free RTP port in the range on {self.host}")

    def release(self, sock: UdpSocket) -> None:
        port = sock.local_addr[1]
        sock.close()
        self.in_use -= 1
        if not self.ephemeral:
            self._free.append(port)


class ReceiveQueue:
    """Spreads received RTP over several loop passes.

    A far end that sends all its streams on one 20 ms tick makes hundreds of RTP
    sockets readable at once, and asyncio runs every ready callback of a pass
    before any due timer (SIP retransmissions, the engine's pacing).  Socket
    callbacks only read and queue here; the queue is worked off in chunks (``chunk``
    packets, or a quarter of the backlog if that is more) one per pass, so timers get
    their turn between chunks and the backlog stays a few passes' worth.  Arrival times are taken
    at read time, so jitter and media-time figures are unchanged.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, chunk: int = 64) -> None:
        self._loop = loop
        self._chunk = chunk
        self._queue: deque[tuple[Receiver, bytes, float, object]] = deque()
        self._scheduled = False
        self.peak = 0  # deepest the queue has been

    def put(self, handler: Receiver, data: bytes, now: float, tag: object) -> None:
        self._queue.append((handler, data, now, tag))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        queue = self._queue
        self.peak = max(self.peak, len(queue))
        # At least a quarter of the backlog per pass: the reads of one pass (one
        # packet per ready socket) can outnumber a fixed chunk, and a queue drained
        # slower than it fills grows without bound when the process is short of CPU.
        for _ in range(min(len(queue), max(self._chunk, len(queue) // 4))):
            handler, data, now, tag = queue.popleft()
            handler(data, now, tag)
        if queue:
            self._loop.call_soon(self._drain)
        else:
            self._scheduled = False


class RtpStream:
    """One call leg's media: a socket, a :class:`MediaSession`, and its timer.

    Datagrams that arrive before :meth:`start` (or from another address than the
    peer's media address) are counted and dropped.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        pool: RtpPortPool,
        loop: asyncio.AbstractEventLoop,
        on_frames: FramesHandler,
        queue: ReceiveQueue | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._queue = queue
        self._pool = pool
        self.on_frames = on_frames
        self.on_digits: DigitsHandler | None = None  # RFC 4733 key presses
        self.sock = pool.open(loop, self._datagram)
        self.session: MediaSession | None = None
        self.remote: Addr | None = None
        self.ignored = 0  # datagrams with no session yet or from a stranger
        self.frames_received = 0
        self.last_received_at: float | None = None  # the peer's last RTP packet, accepted
        self.forward_dropped = 0  # relayed frames dropped to bound the bridge's delay
        # a bridge: packets received here are re-sent at once on that stream, as long
        # as it has nothing of its own queued (then they are decoded and queued)
        self.relay_to: RtpStream | None = None
        self.relayed = 0  # packets re-sent that way
        # told once when the next RTP packet leaves (a bridge times its connect delay)
        self.on_first_sent: Callable[[float], None] | None = None
        self._timer: object | None = None
        self._timer_at: float | None = None
        self._given = 0  # frames handed to the session for sending
        self._waiting: deque[tuple[int, Callable[[], None]]] = deque()
        self.closed = False

    @property
    def local_addr(self) -> Addr:
        return self.sock.local_addr

    def start(self, session: MediaSession, remote: Addr) -> None:
        """Use ``session`` from now on (a new one at answer restarts media time)."""
        self.session = session
        self.remote = remote
        self._given = 0
        self._waiting.clear()
        self._arm()

    def _barge_in(self, session: MediaSession) -> None:
        # A new prompt replaces the one playing (an IVR key interrupts the
        # message); the replaced prompt's on_done never runs.
        session.stop_playing()
        self._waiting.clear()
        self._given = 0

    def play(self, payloads: list[bytes] | tuple[bytes, ...], on_done: Callable[[], None]) -> None:
        """Send pre-encoded 20 ms payloads paced on the clock; ``on_done`` runs when
        the last one has left."""
        if self.session is None or self.closed:
            return
        self._barge_in(self.session)
        self.session.play_payloads(list(payloads))
        self._given += len(payloads)
        self._waiting.append((self._given, on_done))
        self._arm()

    def play_samples(self, samples: npt.NDArray[np.int16], on_done: Callable[[], None]) -> None:
        if self.session is None or self.closed:
            return
        self._barge_in(self.session)
        before = self.session.queued_frames
        self.session.play(samples)
        self._given += self.session.queued_frames - before
        self._waiting.append((self._given, on_done))
        self._arm()

    def forward(self, samples: npt.NDArray[np.int16], max_queued: int = 25) -> None:
        """Relay audio from a bridged leg: queued behind what is playing (the
        connect tone), no ``on_done``.  The two legs' clocks drift; past
        ``max_queued`` frames (0.5 s) the oldest are dropped, so the delay
        through the bridge stays bounded instead of growing for the whole call."""
        session = self.session
        if session is None or self.closed:
            return
        before = session.queued_frames
        session.play(samples)
        self._given += session.queued_frames - before
        dropped = session.trim(max_queued)
        self._given -= dropped
        self.forward_dropped += dropped
        self._arm()

    def forward_digit(self, digit: str, duration_s: float) -> None:
        """Relay a key pressed on the bridged leg as an RFC 4733 event."""
        session = self.session
        if session is None or self.closed or session.telephone_event_pt is None:
            return
        session.send_dtmf(digit, duration_s)
        self._arm()

    def _datagram(self, data: bytes, addr: Addr) -> None:
        remote = self.remote
        if self.session is None or remote is None or addr[0] != remote[0]:
            self.ignored += 1
            return
        now = self._scheduler.monotonic()
        if self._queue is not None:
            self._queue.put(self._receive, data, now, self.session)
        else:
            self._receive(data, now, self.session)

    def _receive(self, data: bytes, now: float, read_for: object) -> None:
        session = self.session
        # a packet read for the early-media session is not the answer's audio
        if session is None or read_for is not session or self.closed:
            return
        self.last_received_at = now
        dst = self.relay_to
        if dst is not None and dst.session is not None and dst.session.idle and not dst.closed:
            self._relay(session, dst, dst.session, data, now)
            return
        session.receive_datagram(data, now)
        self._deliver(session, now)
        if session.get_timer() is not None:
            self._arm()

    def _relay(
        self, session: MediaSession, dst: RtpStream, out: MediaSession, data: bytes, now: float
    ) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            session.stats.malformed += 1
            return
        session.stats.received += 1
        relayed = out.relay_packet(packet, session.telephone_event_pt, now)
        if relayed is None or dst.remote is None:
            session.stats.foreign += 1
            return
        if dst.on_first_sent is not None:
            dst._first_sent(now)
        dst.sock.sendto(relayed, dst.remote)
        self.relayed += 1

    def _first_sent(self, now: float) -> None:
        tell, self.on_first_sent = self.on_first_sent, None
        if tell is not None:
            tell(now)

    def _deliver(self, session: MediaSession, now: float) -> None:
        events = session.events()
        frames = [e for e in events if isinstance(e, Frame)]
        if frames:
            self.frames_received += len(frames)
            self.on_frames(frames, now)
        if len(frames) < len(events) and self.on_digits is not None:
            digits = [e for e in events if isinstance(e, DigitEvent)]
            if digits:
                self.on_digits(digits, now)

    def _arm(self) -> None:
        session = self.session
        if session is None or self.closed:
            return
        when = session.get_timer()
        if when is None:
            return
        if self._timer_at is not None and self._timer_at <= when:
            return  # the armed timer comes first; it re-arms after running
        self._cancel_timer()
        self._timer_at = when
        self._timer = self._scheduler.call_at(when, self._fire)

    def _cancel_timer(self) -> None:
        cancel_timer(self._timer)
        self._timer = None
        self._timer_at = None

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        session, remote = self.session, self.remote
        if session is None or remote is None or self.closed:
            return
        now = self._scheduler.monotonic()
        session.handle_timer(now)
        datagrams = session.datagrams_to_send()
        if datagrams and self.on_first_sent is not None:
            self._first_sent(now)
        for datagram in datagrams:
            self.sock.sendto(datagram, remote)
        while self._waiting and self._waiting[0][0] <= self._given - session.queued_frames:
            # re-read each time: an on_done that plays again (barge-in) resets the count
            _, on_done = self._waiting.popleft()
            on_done()
            if self.closed or self.session is not session:
                return
        self._deliver(session, now)
        if not self.closed:
            self._arm()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._cancel_timer()
        self._waiting.clear()
        self._pool.release(self.sock)
