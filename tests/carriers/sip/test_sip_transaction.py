"""RFC 3261 §17 transactions: time starts at 0.0 and jumps to each deadline."""

from __future__ import annotations

from carriers.sip import Request, Response, parse_message
from carriers.sip.transaction import (
    Kind,
    ResponseReceived,
    State,
    TimedOut,
    TimerParams,
    Transaction,
    client_key,
    response_to,
    server_key,
)

P = TimerParams()


def _request(method: str) -> Request:
    msg = parse_message(
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-tx1\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=aa\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: tx@192.0.2.1\r\nCSeq: 1 {method}\r\n"
        "Route: <sip:proxy.example.com;lr>\r\n\r\n".encode()
    )
    assert isinstance(msg, Request)
    return msg


def _reply(req: Request, status: int, tag: str = "bb") -> Response:
    resp = response_to(req, status)
    if status > 100:
        resp.set("To", f"{req.get('To')};tag={tag}")
    return resp


def _run_until_quiet(tx: Transaction) -> list[float]:
    """Jump to each deadline; record when the request was (re)sent."""
    sends: list[float] = []
    while (when := tx.get_timer()) is not None:
        tx.handle_timer(when)
        sends += [when] * len(tx.messages_to_send())
    return sends


def test_invite_client_timer_a_doubles_until_b() -> None:
    inv = _request("INVITE")
    tx = Transaction.client(inv, 0.0, P)
    assert tx.kind is Kind.INVITE_CLIENT and tx.state is State.CALLING
    assert tx.messages_to_send() == [inv]
    sends = _run_until_quiet(tx)
    assert sends == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A: T1, 2T1, 4T1... until B = 64*T1
    assert tx.next_event() == TimedOut("B") and tx.terminated


def test_invite_client_1xx_then_486_sends_ack_and_absorbs_retransmits() -> None:
    inv = _request("INVITE")
    tx = Transaction.client(inv, 0.0, P)
    tx.messages_to_send()
    tx.receive(_reply(inv, 180), 0.2)
    assert tx.state is State.PROCEEDING and tx.get_timer() is None  # no A/B in Proceeding
    busy = _reply(inv, 486)
    tx.receive(busy, 3.0)
    assert tx.state is State.COMPLETED
    [ack] = tx.messages_to_send()
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.cseq.seq == 1 and ack.cseq.method == "ACK"
    assert ack.to.tag == "bb" and ack.via[0].branch == "z9hG4bK-tx1"
    assert ack.get("Route") == "<sip:proxy.example.com;lr>"
    assert ack.uri == inv.uri
    events = [tx.next_event(), tx.next_event(), tx.next_event()]
    assert [e.response.status for e in events if isinstance(e, ResponseReceived)] == [180, 486]
    tx.receive(busy, 4.0)  # retransmitted final: ACK again, not passed up
    assert len(tx.messages_to_send()) == 1 and tx.next_event() is None
    assert tx.get_timer() == 3.0 + P.timer_d
    tx.handle_timer(3.0 + P.timer_d)
    assert tx.terminated


def test_invite_client_2xx_terminates_and_passes_up() -> None:
    inv = _request("INVITE")
    tx = Transaction.client(inv, 0.0, P)
    tx.receive(_reply(inv, 200), 0.1)
    assert tx.terminated and tx.get_timer() is None
    event = tx.next_event()
    assert isinstance(event, ResponseReceived) and event.response.status == 200


def test_non_invite_client_timer_e_caps_at_t2() -> None:
    bye = _request("BYE")
    tx = Transaction.client(bye, 0.0, P)
    assert tx.kind is Kind.NON_INVITE_CLIENT and tx.state is State.TRYING
    tx.messages_to_send()
    sends = _run_until_quiet(tx)
    gaps = [b - a for a, b in zip([0.0, *sends], sends, strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and max(gaps) == 4.0
    assert sends[-1] < 32.0
    assert tx.next_event() == TimedOut("F")


def test_non_invite_client_proceeding_resends_every_t2_then_k() -> None:
    bye = _request("BYE")
    tx = Transaction.client(bye, 0.0, P)
    tx.messages_to_send()
    tx.receive(_reply(bye, 100), 0.1)
    assert tx.state is State.PROCEEDING
    tx.handle_timer(0.5)
    assert len(tx.messages_to_send()) == 1
    assert tx.get_timer() == 4.5  # Proceeding: E = T2
    tx.receive(_reply(bye, 200), 5.0)
    assert tx.state is State.COMPLETED and tx.get_timer() == 5.0 + P.t4
    tx.receive(_reply(bye, 200), 6.0)  # absorbed
    assert [type(tx.next_event()), type(tx.next_event()), tx.next_event()] == [
        ResponseReceived,
        ResponseReceived,
        None,
    ]
    tx.handle_timer(10.0)
    assert tx.terminated


def test_invite_server_flow_g_h_and_ack_then_i() -> None:
    inv = _request("INVITE")
    tx = Transaction.server(inv, 0.0, P)
    assert tx.kind is Kind.INVITE_SERVER and tx.state is State.PROCEEDING
    [trying] = tx.messages_to_send()
    assert isinstance(trying, Response) and trying.status == 100
    tx.receive(inv, 0.3)  # retransmitted INVITE: resend the last provisional
    assert tx.messages_to_send() == [trying]
    tx.respond(_reply(inv, 180), 1.0)
    tx.respond(_reply(inv, 486), 2.0)
    assert tx.state is State.COMPLETED
    assert [m.status for m in tx.messages_to_send() if isinstance(m, Response)] == [180, 486]
    tx.handle_timer(2.5)  # G
    tx.handle_timer(3.5)  # G doubled
    assert len(tx.messages_to_send()) == 2
    ack = Request(method="ACK", uri=inv.uri, headers=list(inv.headers))
    ack.set("CSeq", "1 ACK")
    assert server_key(ack) == server_key(inv)
    tx.receive(ack, 4.0)
    assert tx.state is State.CONFIRMED and tx.get_timer() == 4.0 + P.t4
    tx.receive(ack, 4.5)  # absorbed
    assert tx.messages_to_send() == []
    tx.handle_timer(9.0)
    assert tx.terminated


def test_invite_server_timer_h_without_ack() -> None:
    inv = _request("INVITE")
    tx = Transaction.server(inv, 0.0, P)
    tx.respond(_reply(inv, 603), 0.0)
    tx.messages_to_send()
    resends = _run_until_quiet(tx)
    assert resends[:4] == [0.5, 1.5, 3.5, 7.5] and resends[-1] < 32.0
    assert tx.next_event() == TimedOut("H")


def test_invite_server_2xx_hands_retransmission_to_tu() -> None:
    inv = _request("INVITE")
    tx = Transaction.server(inv, 0.0, P)
    tx.respond(_reply(inv, 200), 1.0)
    assert tx.terminated and tx.get_timer() is None


def test_non_invite_server_absorbs_then_resends_final_until_j() -> None:
    opt = _request("OPTIONS")
    tx = Transaction.server(opt, 0.0, P)
    assert tx.state is State.TRYING and tx.messages_to_send() == []
    tx.receive(opt, 0.1)
    assert tx.messages_to_send() == []  # Trying: nothing to resend
    ok = _reply(opt, 200)
    tx.respond(ok, 0.2)
    assert tx.messages_to_send() == [ok] and tx.state is State.COMPLETED
    tx.receive(opt, 1.0)
    assert tx.messages_to_send() == [ok]
    assert tx.get_timer() == 0.2 + 32.0
    tx.handle_timer(32.2)
    assert tx.terminated


def test_keys_match_responses_to_requests() -> None:
    inv = _request("INVITE")
    assert client_key(_reply(inv, 180)) == client_key(inv) == ("z9hG4bK-tx1", "INVITE")
    assert server_key(inv) == ("z9hG4bK-tx1", "192.0.2.1:5060", "INVITE")


def test_timer_params_are_configurable() -> None:
    fast = TimerParams(t1=0.1, t2=0.4, t4=1.0, timer_d=2.0)
    tx = Transaction.client(_request("INVITE"), 0.0, fast)
    tx.messages_to_send()
    assert _run_until_quiet(tx)[-1] < 6.4
