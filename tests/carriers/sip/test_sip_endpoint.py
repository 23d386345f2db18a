"""Two sans-IO endpoints calling each other through an in-memory wire."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.base import CallOutcome
from carriers.sip import Request, Response, parse_message
from carriers.sip.auth import DigestServer
from carriers.sip.endpoint import (
    AuthRequired,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgress,
    CallState,
    Endpoint,
    EndpointConfig,
    EndpointEvent,
    IncomingCall,
    OptionsAnswered,
)
from carriers.sip.transaction import response_to

A = ("192.0.2.1", 5060)
B = ("192.0.2.2", 5060)
SDP_A = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)
SDP_B = SDP_A.replace(b"192.0.2.1", b"192.0.2.2").replace(b"4000", b"5000")


def _pair(**kw: str) -> tuple[Endpoint, Endpoint]:
    return (
        Endpoint(EndpointConfig(host=A[0], port=A[1], **kw)),  # type: ignore[arg-type]
        Endpoint(EndpointConfig(host=B[0], port=B[1], user="agent")),
    )


def _pump(a: Endpoint, b: Endpoint, now: float, log: list[bytes] | None = None) -> None:
    """Deliver datagrams both ways until the wire is quiet."""
    for _ in range(50):
        moved = False
        for src, dst, addr in ((a, b, A), (b, a, B)):
            for data, _to in src.datagrams_to_send():
                moved = True
                if log is not None:
                    log.append(data)
                dst.receive_datagram(data, addr, now)
        if not moved:
            return


def _events(ep: Endpoint) -> list[EndpointEvent]:
    out = []
    while (e := ep.next_event()) is not None:
        out.append(e)
    return out


def _methods(log: list[bytes]) -> list[str]:
    out = []
    for data in log:
        msg = parse_message(data)
        out.append(msg.method if isinstance(msg, Request) else str(msg.status))
    return out


def test_call_ring_early_media_answer_ack_bye() -> None:
    uac, uas = _pair()
    log: list[bytes] = []
    call = uac.invite("sip:+15550100@192.0.2.2", SDP_A, B, 0.0)
    _pump(uac, uas, 0.0, log)
    [incoming] = _events(uas)
    assert isinstance(incoming, IncomingCall) and incoming.sdp == SDP_A
    uas.ring(incoming.call, 0.1, 183, SDP_B)
    _pump(uac, uas, 0.1, log)
    [progress] = _events(uac)
    assert isinstance(progress, CallProgress) and progress.status == 183
    assert progress.sdp == SDP_B and call.state is CallState.EARLY
    uas.answer(incoming.call, SDP_B, 2.0)
    _pump(uac, uas, 2.0, log)
    [answered] = _events(uac)
    assert isinstance(answered, CallAnswered) and answered.sdp == SDP_B
    assert call.state is CallState.CONFIRMED and incoming.call.ok_next is None  # ACK arrived
    assert _methods(log) == ["INVITE", "100", "183", "200", "ACK"]
    uac.bye(call, 5.0)
    _pump(uac, uas, 5.0, log)
    assert _events(uac) == [CallEnded(call, by_remote=False)]
    assert _events(uas) == [CallEnded(incoming.call, by_remote=True)]
    assert _methods(log)[-2:] == ["BYE", "200"]
    assert uac.calls == [] and uas.calls == []


def test_busy_is_acked_and_mapped() -> None:
    uac, uas = _pair()
    log: list[bytes] = []
    call = uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0)
    _pump(uac, uas, 0.0)
    [incoming] = _events(uas)
    uas.reject(incoming.call, 486, 1.0)
    _pump(uac, uas, 1.0, log)
    [failed] = _events(uac)
    assert isinstance(failed, CallFailed) and failed.outcome is CallOutcome.BUSY
    assert failed.call is call and failed.status == 486
    assert _methods(log) == ["486", "ACK"]
    assert uas.get_timer() is not None  # INVITE server in Confirmed until Timer I


def test_cancel_waits_for_provisional_then_487_is_no_answer() -> None:
    uac, uas = _pair()
    log: list[bytes] = []
    call = uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0)
    first = uac.datagrams_to_send()
    uac.cancel(call, 0.1)  # nothing heard yet: CANCEL is held (RFC 3261 §9.1)
    assert uac.datagrams_to_send() == []
    for data, _ in first:
        uas.receive_datagram(data, A, 0.2)
    _pump(uac, uas, 0.2, log)  # the 100 Trying releases the CANCEL
    sent = _methods(log)
    assert sent[:2] == ["100", "CANCEL"] and sorted(sent[2:4]) == ["200", "487"]
    assert sent[4:] == ["ACK"]
    [failed] = _events(uac)
    assert isinstance(failed, CallFailed) and failed.status == 487
    assert failed.outcome is CallOutcome.NO_ANSWER
    [ended] = [e for e in _events(uas) if isinstance(e, CallEnded)]
    assert ended.by_remote


def test_timer_b_without_any_response_is_trunk_failure() -> None:
    uac, _ = _pair()
    call = uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0)
    sends = len(uac.datagrams_to_send())
    while (when := uac.get_timer()) is not None:
        uac.handle_timer(when)
        sends += len(uac.datagrams_to_send())
    assert sends == 7  # initial + 6 Timer A retransmissions before B at 32 s
    [failed] = _events(uac)
    assert isinstance(failed, CallFailed) and failed.call is call
    assert failed.outcome is CallOutcome.TRUNK_FAILURE


def test_invite_retried_with_digest_credentials() -> None:
    uac = Endpoint(EndpointConfig(host=A[0], username="trunkuser", password="pw"))
    server = DigestServer("trunk.example", b"key" * 8)
    uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0)
    [(data, _)] = uac.datagrams_to_send()
    first = parse_message(data)
    assert isinstance(first, Request)
    challenge = response_to(first, 407)
    challenge.set("To", f"{first.get('To')};tag=t1")
    challenge.add("Proxy-Authenticate", server.challenge(0.0))
    uac.receive_datagram(challenge.serialise(), B, 0.1)
    out = [parse_message(d) for d, _ in uac.datagrams_to_send()]
    assert [m.method for m in out if isinstance(m, Request)] == ["ACK", "INVITE"]
    retry = out[1]
    assert isinstance(retry, Request) and retry.cseq.seq == first.cseq.seq + 1
    assert retry.call_id == first.call_id and retry.via[0].branch != first.via[0].branch
    verdict = server.verify(
        retry.get("Proxy-Authorization") or "", "INVITE", {"trunkuser": "pw"}, 1.0
    )
    assert verdict.ok
    # A second challenge is not retried: the call fails with the auth status.
    again = response_to(retry, 407)
    again.add("Proxy-Authenticate", server.challenge(1.0))
    uac.receive_datagram(again.serialise(), B, 1.1)
    events = _events(uac)
    assert isinstance(events[0], AuthRequired)
    assert isinstance(events[1], CallFailed) and events[1].status == 407


def test_uas_resends_2xx_until_ack_then_gives_up_with_bye() -> None:
    uac, uas = _pair()
    uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0)
    _pump(uac, uas, 0.0)
    [incoming] = _events(uas)
    uas.answer(incoming.call, SDP_B, 1.0)
    uas.datagrams_to_send()  # the 200 is lost
    resent = []
    while (when := uas.get_timer()) is not None and when < 100:
        uas.handle_timer(when)
        resent += [parse_message(d) for d, _ in uas.datagrams_to_send()]
    oks = [m for m in resent if isinstance(m, Response) and m.status == 200]
    assert len(oks) >= 6
    assert any(isinstance(m, Request) and m.method == "BYE" for m in resent)
    assert CallEnded(incoming.call, by_remote=True) in _events(uas)


def test_options_answered_and_reinvite_gets_same_sdp() -> None:
    uac, uas = _pair()
    log: list[bytes] = []
    uac.options("sip:192.0.2.2", B, 0.0)
    _pump(uac, uas, 0.0, log)
    ok = parse_message(log[-1])
    assert isinstance(ok, Response) and ok.status == 200 and "INVITE" in (ok.get("Allow") or "")
    call = uac.invite("sip:x@192.0.2.2", SDP_A, B, 1.0)
    _pump(uac, uas, 1.0)
    [incoming] = _events(uas)
    uas.answer(incoming.call, SDP_B, 1.5)
    _pump(uac, uas, 1.5)
    _events(uac)
    reinvite = uac._in_dialog(call, "INVITE")
    reinvite.add("Contact", "<sip:dialer@192.0.2.1>")
    reinvite.body = SDP_A
    log.clear()
    uas.receive_datagram(reinvite.serialise(), A, 3.0)
    replies = [parse_message(d) for d, _ in uas.datagrams_to_send()]
    final = [m for m in replies if isinstance(m, Response) and m.status >= 200]
    assert final and final[0].status == 200 and final[0].body == SDP_B


def test_options_answer_and_silence_are_reported() -> None:
    uac, uas = _pair()
    req = uac.options("sip:192.0.2.2", B, 0.0)
    _pump(uac, uas, 0.0)
    assert _events(uac) == [OptionsAnswered(req, 200, "OK")]
    # a probe nobody answers: retransmitted, then 408 from Timer F (64 x T1)
    lost = uac.options("sip:192.0.2.2", B, 10.0)
    uac.datagrams_to_send()
    t = 10.0
    while t < 10.0 + 64 * 0.5 + 1:
        t += 0.5
        uac.handle_timer(t)
        uac.datagrams_to_send()
    assert _events(uac) == [OptionsAnswered(lost, 408, "No response (Timer F)")]


def test_garbage_gets_400_when_answerable_and_silence_otherwise() -> None:
    _, uas = _pair()
    bad = (
        b"INVITE sip:x@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-g\r\n"
        b"Call-ID: g@x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 999\r\n\r\n"
    )
    uas.receive_datagram(bad, ("192.0.2.9", 5060), 0.0)
    [(data, addr)] = uas.datagrams_to_send()
    reply = parse_message(data)
    assert isinstance(reply, Response) and reply.status == 400 and addr == ("192.0.2.9", 5060)
    uas.receive_datagram(b"\x00garbage", ("192.0.2.9", 5060), 0.0)
    assert uas.datagrams_to_send() == [] and uas.calls == []


def test_bye_with_wrong_tag_gets_481_and_keeps_call() -> None:
    uac, uas = _pair()
    call = uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0)
    _pump(uac, uas, 0.0)
    [incoming] = _events(uas)
    uas.answer(incoming.call, SDP_B, 0.5)
    _pump(uac, uas, 0.5)
    bye = uac._in_dialog(call, "BYE")
    bye.set("From", (bye.get("From") or "").replace("tag=", "tag=x"))
    uas.receive_datagram(bye.serialise(), A, 1.0)
    [reply] = [parse_message(d) for d, _ in uas.datagrams_to_send()]
    assert isinstance(reply, Response) and reply.status == 481
    assert incoming.call in uas.calls


FUZZ_SEEDS: list[bytes] = []


def _record_seeds() -> list[bytes]:
    if not FUZZ_SEEDS:
        uac, uas = _pair()
        log: list[bytes] = []
        uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0)
        _pump(uac, uas, 0.0, log)
        [incoming] = _events(uas)
        uas.answer(incoming.call, SDP_B, 0.5)
        _pump(uac, uas, 0.5, log)
        FUZZ_SEEDS.extend(log)
    return FUZZ_SEEDS


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_endpoint_survives_mutated_traffic(data: st.DataObject) -> None:
    seeds = _record_seeds()
    uac, uas = _pair()
    uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0)
    _pump(uac, uas, 0.0)
    for step in range(data.draw(st.integers(1, 4))):
        raw = bytearray(data.draw(st.sampled_from(seeds)))
        for _ in range(data.draw(st.integers(0, 4))):
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos : pos + data.draw(st.integers(0, 8))] = data.draw(st.binary(max_size=8))
        target = data.draw(st.sampled_from([uac, uas]))
        target.receive_datagram(bytes(raw), B if target is uac else A, 1.0 + step)
        target.datagrams_to_send()
        while target.next_event() is not None:
            pass
    for ep in (uac, uas):
        when = ep.get_timer()
        if when is not None:
            ep.handle_timer(when)
        assert isinstance(ep.datagrams_to_send(), list)


def test_register_with_digest_retry() -> None:
    from carriers.sip.endpoint import Registered, RegistrationFailed

    ua = Endpoint(EndpointConfig(host=A[0], username="agent7", password="s3cret"))
    registrar = DigestServer("dialer.example", b"k" * 32)
    reg = ua.register("sip:dialer.example", B, 0.0, expires=300)
    [(data, addr)] = ua.datagrams_to_send()
    first = parse_message(data)
    assert isinstance(first, Request) and first.method == "REGISTER" and addr == B
    assert first.get("Expires") == "300" and first.contact
    challenge = response_to(first, 401)
    challenge.add("WWW-Authenticate", registrar.challenge(0.0))
    ua.receive_datagram(challenge.serialise(), B, 0.1)
    [(data, _)] = ua.datagrams_to_send()
    second = parse_message(data)
    assert isinstance(second, Request) and second.cseq.seq == first.cseq.seq + 1
    verdict = registrar.verify(
        second.get("Authorization") or "", "REGISTER", {"agent7": "s3cret"}, 0.2
    )
    assert verdict.ok and verdict.username == "agent7"
    ok = response_to(second, 200)
    ok.add("Contact", f"{second.get('Contact')};expires=120")
    ua.receive_datagram(ok.serialise(), B, 0.3)
    assert ua.next_event() == Registered(reg, 120)
    ua.refresh(reg, 100.0, expires=0)
    [(data, _)] = ua.datagrams_to_send()
    removal = parse_message(data)
    assert removal.get("Expires") == "0"
    ua.receive_datagram(response_to(removal, 403).serialise(), B, 100.1)  # type: ignore[arg-type]
    failed = ua.next_event()
    assert isinstance(failed, RegistrationFailed) and failed.status == 403


def test_unsupported_extension_and_body_type_are_refused() -> None:
    uac, uas = _pair()
    uac.invite("sip:x@192.0.2.2", SDP_A, B, 0.0, headers=(("Require", "foo"),))
    [(data, _)] = uac.datagrams_to_send()
    uas.receive_datagram(data, A, 0.1)
    replies = [parse_message(d) for d, _ in uas.datagrams_to_send()]
    assert [r.status for r in replies if isinstance(r, Response)] == [100, 420]
    assert replies[1].get("Unsupported") == "foo"
    uas.receive_datagram(data, A, 0.2)  # a retransmission gets the same answer
    assert [parse_message(d).get("Unsupported") for d, _ in uas.datagrams_to_send()] == ["foo"]
    assert uas.calls == [] and uas.next_event() is None
    uac.invite("sip:x@192.0.2.2", b"\x00bin", B, 1.0, headers=(("Content-Type", "x/y"),))
    [(data, _)] = uac.datagrams_to_send()
    bad = parse_message(data)
    bad.remove("Content-Type")
    bad.add("Content-Type", "x/y")
    uas.receive_datagram(bad.serialise(), A, 1.1)
    [_, reply] = [parse_message(d) for d, _ in uas.datagrams_to_send()]
    assert isinstance(reply, Response) and reply.status == 415
    assert reply.get("Accept") == "application/sdp"
