"""The asyncio shell around :class:`Endpoint`: one UDP socket for all SIP traffic.

Each configured peer (a trunk) has its own sans-IO :class:`Endpoint` (its own
credentials and From user); datagrams are routed to it by source address: IP and
port, else the IP alone when only one peer has it and ``match_port`` is off
(trunks often send requests from another port than the one they listen on).  A
request from any other address gets a stateless 403 (no transaction, no parse
beyond the headers a reply must echo) and anything else from a stranger is
dropped, so junk from the network costs a dictionary lookup and a regex, and
never touches the calls in progress.

With SIP agents there is one more endpoint, the *default*: it takes REGISTER
from anywhere (agents' phones register with digest authentication) and
everything from the addresses of agents' phones, which are *pinned* to it by
exact address so a phone on a trunk's host is not mistaken for the trunk.
Requests from other strangers still go to the default endpoint, which refuses
what is not a REGISTER.  Timers are one ``call_at`` per endpoint,
re-armed at ``get_timer()`` after every input (aioquic's pattern).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from carriers.base import Scheduler, cancel_timer
from carriers.sip.endpoint import Endpoint
from carriers.sip.security import forbidden_response
from carriers.udp import Addr, UdpSocket


@dataclass(slots=True)
class TransportStats:
    received: int = 0
    sent: int = 0
    forbidden: int = 0  # requests from strangers answered 403
    dropped: int = 0  # datagrams from strangers not worth an answer


@dataclass(eq=False, slots=True)
class _Peer:
    endpoint: Endpoint
    addr: Addr
    timer: object | None = None
    timer_at: float | None = None


class SipTransport:
    """``on_input(endpoint)`` runs after an endpoint took input (a datagram or a
    timer), so the owner can read its events; then its output is sent."""

    def __init__(
        self,
        scheduler: Scheduler,
        on_input: Callable[[Endpoint], None],
        match_port: bool = False,
    ) -> None:
        self._scheduler = scheduler
        self._match_port = match_port
        self._on_input = on_input
        self._by_addr: dict[Addr, _Peer] = {}
        self._by_ip: dict[str, _Peer | None] = {}  # None: several peers share the IP
        self._by_endpoint: dict[int, _Peer] = {}
        self._pinned: dict[Addr, _Peer] = {}
        self._default: _Peer | None = None
        self.sock: UdpSocket | None = None
        self.stats = TransportStats()

    def bind(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> Addr:
        self.sock = UdpSocket.bind(loop, host, port, self._datagram, rcvbuf=4 << 20)
        return self.sock.local_addr

    @property
    def local_addr(self) -> Addr:
        assert self.sock is not None, "bind() first"
        return self.sock.local_addr

    def add_peer(self, addr: Addr, endpoint: Endpoint) -> None:
        peer = _Peer(endpoint, addr)
        self._by_addr[addr] = peer
        self._by_ip[addr[0]] = None if addr[0] in self._by_ip else peer
        self._by_endpoint[id(endpoint)] = peer

    def set_default(self, endpoint: Endpoint) -> None:
        """The endpoint for REGISTER and for pinned or unknown addresses (agents)."""
        peer = _Peer(endpoint, ("", 0))
        self._default = peer
        self._by_endpoint[id(endpoint)] = peer

    def pin(self, addr: Addr) -> None:
        """Route datagrams from exactly ``addr`` (an agent's phone) to the default endpoint."""
        if self._default is not None:
            self._pinned[addr] = self._default

    def unpin(self, addr: Addr) -> None:
        self._pinned.pop(addr, None)

    def _peer_for(self, addr: Addr, data: bytes) -> _Peer | None:
        peer = self._by_addr.get(addr)
        if peer is not None:
            return peer
        if self._default is not None and (addr in self._pinned or data[:9].upper() == b"REGISTER "):
            return self._default
        if not self._match_port:
            # A trunk may answer from another port of the same host.
            peer = self._by_ip.get(addr[0])
        return peer if peer is not None else self._default

    def _datagram(self, data: bytes, addr: Addr) -> None:
        self.stats.received += 1
        peer = self._peer_for(addr, data)
        if peer is None:
            self._stranger(data, addr)
            return
        peer.endpoint.receive_datagram(data, addr, self._scheduler.monotonic())
        self._on_input(peer.endpoint)
        self.flush(peer.endpoint)

    def _stranger(self, data: bytes, addr: Addr) -> None:
        reply = None if data[:4].upper() == b"SIP/" else forbidden_response(data)
        if reply is None:
            self.stats.dropped += 1
            return
        self.stats.forbidden += 1
        self._send(reply.serialise(), addr)

    def _send(self, data: bytes, addr: Addr) -> None:
        if self.sock is not None:
            self.stats.sent += 1
            self.sock.sendto(data, addr)

    def flush(self, endpoint: Endpoint) -> None:
        """Send what ``endpoint`` has queued and re-arm its timer."""
        for data, addr in endpoint.datagrams_to_send():
            self._send(data, addr)
        peer = self._by_endpoint.get(id(endpoint))
        if peer is None:
            return
        when = endpoint.get_timer()
        if when is None or (peer.timer_at is not None and peer.timer_at <= when):
            return
        cancel_timer(peer.timer)
        peer.timer_at = when
        peer.timer = self._scheduler.call_at(when, lambda: self._fire(peer))

    def _fire(self, peer: _Peer) -> None:
        peer.timer = None
        peer.timer_at = None
        if self.sock is None:
            return
        peer.endpoint.handle_timer(self._scheduler.monotonic())
        self._on_input(peer.endpoint)
        self.flush(peer.endpoint)

    def close(self) -> None:
        for peer in self._by_endpoint.values():
            cancel_timer(peer.timer)
            peer.timer = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
