"""SipCarrier on real loopback sockets, against raw UDP peers: strangers, junk,
a trunk that never answers, configuration limits.

Every peer here shares 127.0.0.1, so the stranger tests match trunks by IP *and*
port (``match_port``); by IP alone every loopback socket would be the trunk,
which ``test_trunk_may_send_from_another_port`` shows."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from carriers.base import CallOutcome
from carriers.sip import Response, parse_message
from carriers.sip.carrier import SipCarrier, SipCarrierParams, Trunk
from tests.carriers.sip.peers import LOOPBACK, DialRequest, make_carrier

INVITE = (
    "INVITE sip:+15551234567@{host}:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP {host}:{src};branch=z9hG4bK-stranger-1\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:intruder@{host}>;tag=abc\r\n"
    "To: <sip:+15551234567@{host}>\r\n"
    "Call-ID: stranger-call-1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:intruder@{host}:{src}>\r\n"
    "Content-Length: 0\r\n\r\n"
)


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOOPBACK, 0))
    s.setblocking(False)
    yield s
    s.close()


async def _recv(sock: socket.socket, timeout: float = 1.0) -> bytes | None:
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
    except TimeoutError:
        return None


def _endpoint_state(carrier: SipCarrier) -> int:
    # every trunk endpoint's calls and transactions: what a stranger must not create
    total = 0
    for state in carrier._trunks:
        ep = state.endpoint
        assert ep is not None
        total += len(ep.calls) + len(ep._server) + len(ep._client)
    return total


async def test_invite_from_a_stranger_gets_403_and_no_state(peer: socket.socket) -> None:
    trunk_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trunk_sock.bind((LOOPBACK, 0))
    carrier, events, _ = await make_carrier(
        Trunk("t1", LOOPBACK, trunk_sock.getsockname()[1]), match_port=True
    )
    try:
        host, port = carrier.local_addr
        src = peer.getsockname()[1]
        peer.sendto(INVITE.format(host=host, port=port, src=src).encode(), (host, port))
        reply = await _recv(peer)
        assert reply is not None
        msg = parse_message(reply)
        assert isinstance(msg, Response) and msg.status == 403
        assert msg.call_id == "stranger-call-1"
        assert _endpoint_state(carrier) == 0
        assert carrier.transport_stats.forbidden == 1
        assert events.events == []
    finally:
        await carrier.stop()
        trunk_sock.close()


async def test_junk_from_a_stranger_is_dropped_silently(peer: socket.socket) -> None:
    trunk_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trunk_sock.bind((LOOPBACK, 0))
    carrier, _, _ = await make_carrier(
        Trunk("t1", LOOPBACK, trunk_sock.getsockname()[1]), match_port=True
    )
    try:
        addr = carrier.local_addr
        for junk in (b"\x00\xff" * 40, b"SIP/2.0 200 OK\r\n\r\n", b"INVITE nonsense\r\n\r\n"):
            peer.sendto(junk, addr)
        assert await _recv(peer, 0.3) is None
        assert carrier.transport_stats.dropped == 3
        assert _endpoint_state(carrier) == 0
    finally:
        await carrier.stop()
        trunk_sock.close()


async def test_malformed_request_from_a_trunk_gets_400(peer: socket.socket) -> None:
    carrier, _, _ = await make_carrier(Trunk("t1", LOOPBACK, peer.getsockname()[1]))
    try:
        host, port = carrier.local_addr
        src = peer.getsockname()[1]
        bad = INVITE.format(host=host, port=port, src=src).replace(
            "CSeq: 1 INVITE", "CSeq: 1 INVITE\r\nContent-Length: banana"
        )
        peer.sendto(bad.encode(), (host, port))
        reply = await _recv(peer)
        assert reply is not None
        msg = parse_message(reply)
        assert isinstance(msg, Response) and msg.status == 400
    finally:
        await carrier.stop()


async def test_trunk_may_send_from_another_port(peer: socket.socket) -> None:
    """By default a trunk is known by its IP: an OPTIONS from another port of it is
    answered (200), not refused."""
    trunk_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trunk_sock.bind((LOOPBACK, 0))
    carrier, _, _ = await make_carrier(Trunk("t1", LOOPBACK, trunk_sock.getsockname()[1]))
    try:
        host, port = carrier.local_addr
        src = peer.getsockname()[1]
        options = (
            INVITE.format(host=host, port=port, src=src)
            .replace("INVITE sip", "OPTIONS sip")
            .replace("1 INVITE", "1 OPTIONS")
        )
        peer.sendto(options.encode(), (host, port))
        reply = await _recv(peer)
        assert reply is not None
        msg = parse_message(reply)
        assert isinstance(msg, Response) and msg.status == 200
    finally:
        await carrier.stop()
        trunk_sock.close()


async def test_silent_trunk_times_out_then_next_trunk_is_used(peer: socket.socket) -> None:
    """A trunk that never responds (a bound socket that reads nothing) is left after
    ``setup_timeout_s`` and the call goes to the next one."""
    dead = Trunk("dead", LOOPBACK, peer.getsockname()[1], priority=0)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind((LOOPBACK, 0))
    other.setblocking(False)
    alive = Trunk("alive", LOOPBACK, other.getsockname()[1], priority=1)
    carrier, events, _ = await make_carrier(dead, alive, setup_timeout_s=0.3)
    try:
        carrier.dial(DialRequest("c1", "+15551234567"))
        got = await _recv(other, 2.0)  # the INVITE, re-sent through the second trunk
        assert got is not None
        invite = parse_message(got)
        assert getattr(invite, "method", None) == "INVITE"
        assert carrier.stats.failovers == 1
        carrier.hangup("c1")  # no provisional yet: ends at once
        ended = await events.wait("c1", 2.0)
        assert ended.outcome is CallOutcome.NO_ANSWER and not ended.by_remote
        assert ended.extra["tried"] == "dead,alive"
    finally:
        await carrier.stop()
        other.close()


async def test_all_trunks_silent_is_a_trunk_failure(peer: socket.socket) -> None:
    carrier, events, _ = await make_carrier(
        Trunk("dead", LOOPBACK, peer.getsockname()[1]), setup_timeout_s=0.2
    )
    try:
        carrier.dial(DialRequest("c1", "+15551234567"))
        ended = await events.wait("c1", 2.0)
    finally:
        await carrier.stop()
    assert (ended.outcome, ended.sip_status) == (CallOutcome.TRUNK_FAILURE, 408)


async def test_free_channels_follow_concurrency_and_cps(peer: socket.socket) -> None:
    port = peer.getsockname()[1]
    carrier, events, _ = await make_carrier(
        Trunk("a", LOOPBACK, port, max_concurrent=3, max_cps=2),
    )
    try:
        assert carrier.free_channels() == 2  # the calls-per-second burst
        carrier.dial(DialRequest("c1", "+15550000001"))
        carrier.dial(DialRequest("c2", "+15550000002"))
        assert carrier.free_channels() == 0
        carrier.dial(DialRequest("c3", "+15550000003"))  # over the limit: refused
        ended = await events.wait("c3", 1.0)
        assert ended.outcome is CallOutcome.TRUNK_FAILURE
        assert "free channel" in ended.cause
        await asyncio.sleep(0.55)  # one token back
        assert carrier.free_channels() == 1
    finally:
        await carrier.stop()


async def test_unknown_trunk_in_request_fails_cleanly(peer: socket.socket) -> None:
    carrier, events, _ = await make_carrier(Trunk("a", LOOPBACK, peer.getsockname()[1]))
    try:
        carrier.dial(DialRequest("c1", "+15550000001", trunk="nope"))
        ended = await events.wait("c1", 1.0)
    finally:
        await carrier.stop()
    assert ended.outcome is CallOutcome.FAILED and "nope" in ended.cause


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="transport"):
        Trunk("a", LOOPBACK, transport="tcp")
    with pytest.raises(ValueError, match="unique"):
        SipCarrierParams((Trunk("a", LOOPBACK), Trunk("a", "127.0.0.2")))
    with pytest.raises(ValueError, match="at least one"):
        SipCarrierParams(())


async def test_rtp_ports_come_from_the_configured_range() -> None:
    import asyncio as _asyncio

    from carriers.rtp.udp import PortsExhausted, RtpPortPool
    from tests.carriers.sip.peers import free_udp_port

    loop = _asyncio.get_running_loop()
    base = free_udp_port(even=True)
    pool = RtpPortPool(LOOPBACK, base, base + 3)  # room for two even ports
    a = pool.open(loop, lambda data, addr: None)
    b = pool.open(loop, lambda data, addr: None)
    assert {a.local_addr[1], b.local_addr[1]} == {base, base + 2}
    assert pool.free == 0
    with pytest.raises(PortsExhausted):
        pool.open(loop, lambda data, addr: None)
    pool.release(a)
    assert pool.free == 1
    c = pool.open(loop, lambda data, addr: None)
    assert c.local_addr[1] == base
    pool.release(b)
    pool.release(c)


async def test_options_keepalive_reaches_each_trunk(peer: socket.socket) -> None:
    carrier, _, _ = await make_carrier(
        Trunk("a", LOOPBACK, peer.getsockname()[1]), options_interval_s=0.2
    )
    try:
        seen = []
        for _ in range(2):  # the first at start, a new one an interval later
            got = await _recv(peer, 1.0)
            assert got is not None
            msg = parse_message(got)
            seen.append((getattr(msg, "method", None), msg.call_id))
        assert [m for m, _ in seen] == ["OPTIONS", "OPTIONS"]
        assert seen[0][1] != seen[1][1]  # not a retransmission
    finally:
        await carrier.stop()


@pytest.mark.parametrize(
    ("connection", "media", "usable"),
    [
        ("c=IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP 0 101", True),
        ("c=IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP 8", True),
        ("c=IN IP4 media.example.net", "m=audio 4000 RTP/AVP 0", False),  # no DNS per packet
        ("c=IN IP4 127.0.0.1", "m=audio 0 RTP/AVP 0", False),  # declined stream
        ("c=IN IP4 127.0.0.1", "m=audio 4000 RTP/AVP 18", False),  # G.729 only
    ],
)
def test_answer_sdp_usable_for_rtp(connection: str, media: str, usable: bool) -> None:
    from carriers.sip.carrier import _media_of

    sdp = f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n{connection}\r\nt=0 0\r\n{media}\r\n"
    assert (_media_of(sdp.encode()) is not None) is usable
