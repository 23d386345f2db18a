"""A UDP socket on the asyncio loop, without the Protocol/Transport machinery.

The SIP and RTP shells need a socket they can open synchronously (a dial must not
await) and read in batches (an RTP socket gets 50 packets a second per call):
a non-blocking socket watched with ``loop.add_reader`` gives both.  Sends never
block: a full socket buffer drops the datagram, which UDP allows and RTP expects.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

Addr = tuple[str, int]
DatagramHandler = Callable[[bytes, Addr], None]

MAX_DATAGRAM = 65535
MAX_READS_PER_WAKEUP = 64  # so one flooded socket cannot starve the others
# An RTP socket holds one packet per 20 ms: reading it once per wakeup saves the
# failing read (an exception) that finds it empty; after a stall the epoll loop
# (level-triggered) comes back for the rest on its next pass.
RTP_READS_PER_WAKEUP = 1


class UdpSocket:
    """One bound UDP socket; ``on_datagram(data, addr)`` runs for each datagram."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        on_datagram: DatagramHandler,
        reads_per_wakeup: int = MAX_READS_PER_WAKEUP,
    ) -> None:
        self._loop = loop
        self._reads = reads_per_wakeup
        self._sock = sock
        self._on_datagram = on_datagram
        self.closed = False
        self.dropped_sends = 0
        sock.setblocking(False)
        host, port = sock.getsockname()[:2]
        self.local_addr: Addr = (str(host), int(port))
        loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    def bind(
        cls,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        on_datagram: DatagramHandler,
        rcvbuf: int | None = None,
        reads_per_wakeup: int = MAX_READS_PER_WAKEUP,
    ) -> UdpSocket:
        """Bind ``host:port`` (port 0: any free port); raises OSError as bind does."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        return cls(loop, sock, on_datagram, reads_per_wakeup)

    def sendto(self, data: bytes, addr: Addr) -> None:
        if self.closed:
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.dropped_sends += 1
        except OSError:
            # ICMP errors from an earlier send surface here (ECONNREFUSED), and a
            # peer's address may be unusable: the datagram is lost like any other
            # UDP loss, and a call never takes the loop down.
            self.dropped_sends += 1

    def _readable(self) -> None:
        sock = self._sock
        for _ in range(self._reads):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # a queued ICMP error; the next read gets the next datagram
            self._on_datagram(data, (str(addr[0]), int(addr[1])))
            if self.closed:
                return

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
