"""The registrar driven with parsed REGISTER requests, and through two Endpoints."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.sip import Request, Response, parse_message
from carriers.sip.auth import authorization, digest_response, parse_challenge
from carriers.sip.endpoint import (
    Endpoint,
    EndpointConfig,
    IncomingRequest,
    Registered,
    RegistrationFailed,
)
from carriers.sip.registrar import Binding, BindingAdded, BindingRemoved, Registrar

REALM = "dialer.test"
USERS = {"bob": "s3cret", "alice": "wonder"}
PHONE = ("192.0.2.7", 5062)
SERVER = ("192.0.2.1", 5060)


def register(
    user: str = "bob",
    *,
    contacts: tuple[str, ...] = ("<sip:bob@192.0.2.7:5062>",),
    expires: str | None = "600",
    call_id: str = "reg-1@192.0.2.7",
    cseq: int = 1,
    authz: str | None = None,
    to_user: str | None = None,
    method: str = "REGISTER",
) -> Request:
    lines = [
        f"{method} sip:{REALM} SIP/2.0",
        f"Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK{abs(hash(call_id))}x{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{REALM}>;tag=ft{cseq}",
        f"To: <sip:{to_user or user}@{REALM}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authz is not None:
        lines.append(f"Authorization: {authz}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def answer(resp: Response, user: str = "bob", password: str | None = None) -> str:
    """The Authorization our own UAC code computes for a 401 (qop=auth)."""
    challenge = parse_challenge(resp.get("WWW-Authenticate") or "")
    return authorization(
        challenge,
        username=user,
        password=USERS[user] if password is None else password,
        method="REGISTER",
        uri=f"sip:{REALM}",
    )


def login(reg: Registrar, now: float = 0.0, user: str = "bob", **kw: object) -> Response:
    first = reg.handle(register(user, **kw), PHONE, now)  # type: ignore[arg-type]
    assert first.status == 401
    kw = {**kw, "cseq": int(kw.get("cseq", 1)) + 1}  # type: ignore[call-overload]
    return reg.handle(register(user, authz=answer(first, user), **kw), PHONE, now)  # type: ignore[arg-type]


def events(reg: Registrar) -> list[object]:
    out: list[object] = []
    while (e := reg.next_event()) is not None:
        out.append(e)
    return out


def test_unauthenticated_register_is_challenged_and_echoes_the_request() -> None:
    reg = Registrar(REALM, USERS)
    req = register()
    resp = reg.handle(req, PHONE, 0.0)
    assert resp.status == 401
    for name in ("Via", "From", "Call-ID", "CSeq"):
        assert resp.get(name) == req.get(name)
    assert resp.to.tag and resp.to.uri == req.to.uri
    challenge = parse_challenge(resp.get("WWW-Authenticate") or "")
    assert challenge.realm == REALM and challenge.algorithm == "MD5" and "auth" in challenge.qop
    assert reg.bindings(0.0) == [] and events(reg) == []


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_qop_auth_registers_and_lists_the_binding(algorithm: str) -> None:
    reg = Registrar(REALM, USERS, algorithm=algorithm)
    resp = login(reg, 10.0)
    assert resp.status == 200 and resp.to.tag
    [contact] = resp.get_all("Contact")
    assert contact == "<sip:bob@192.0.2.7:5062>;expires=600"
    binding = reg.lookup("bob", 10.0)
    assert binding == Binding("bob", "sip:bob@192.0.2.7:5062", PHONE, 610.0, "reg-1@192.0.2.7", 2)
    assert events(reg) == [BindingAdded(binding)]
    assert reg.lookup("alice", 10.0) is None


def test_digest_without_qop_md5_as_pyvoip_sends_it() -> None:
    # pyVoIP 1.6 ignores qop, puts ";transport=UDP" in the digest uri only, and
    # writes no spaces after the commas.
    reg = Registrar(REALM, USERS)
    first = reg.handle(register(), PHONE, 0.0)
    nonce = parse_challenge(first.get("WWW-Authenticate") or "").nonce
    uri = f"sip:{REALM};transport=UDP"
    response = digest_response(
        algorithm="MD5", username="bob", realm=REALM, password="s3cret",
        method="REGISTER", uri=uri, nonce=nonce,
    )  # fmt: skip
    authz = (
        f'Digest username="bob",realm="{REALM}",nonce="{nonce}",uri="{uri}",'
        f'response="{response}",algorithm=MD5'
    )
    resp = reg.handle(register(cseq=2, authz=authz), PHONE, 0.5)
    assert resp.status == 200


def test_wrong_password_and_unknown_user_get_403_alike() -> None:
    reg = Registrar(REALM, USERS)
    first = reg.handle(register(), PHONE, 0.0)
    wrong = reg.handle(register(cseq=2, authz=answer(first, password="guess")), PHONE, 0.0)
    assert wrong.status == 403
    first = reg.handle(register("mallory"), PHONE, 0.0)
    challenge = parse_challenge(first.get("WWW-Authenticate") or "")
    authz = authorization(
        challenge, username="mallory", password="x", method="REGISTER", uri=f"sip:{REALM}"
    )
    unknown = reg.handle(register("mallory", cseq=2, authz=authz), PHONE, 0.0)
    assert unknown.status == 403 and unknown.reason == wrong.reason
    assert reg.bindings(0.0) == []


def test_to_user_must_be_the_authenticated_user() -> None:
    reg = Registrar(REALM, USERS)
    first = reg.handle(register(), PHONE, 0.0)
    # bob's valid credentials used to bind alice's AOR
    resp = reg.handle(register(to_user="alice", cseq=2, authz=answer(first)), PHONE, 0.0)
    assert resp.status == 403 and "To user" in resp.reason
    assert reg.lookup("alice", 0.0) is None


def test_stale_nonce_is_rechallenged_with_stale_true() -> None:
    reg = Registrar(REALM, USERS)
    first = reg.handle(register(), PHONE, 0.0)
    late = reg.handle(register(cseq=2, authz=answer(first)), PHONE, 1000.0)
    assert late.status == 401
    challenge = parse_challenge(late.get("WWW-Authenticate") or "")
    assert challenge.stale
    again = reg.handle(register(cseq=3, authz=answer(late)), PHONE, 1000.0)
    assert again.status == 200


def test_nonce_from_another_registrar_is_rechallenged() -> None:
    other = Registrar(REALM, USERS, secret=b"other")
    reg = Registrar(REALM, USERS, secret=b"mine")
    first = other.handle(register(), PHONE, 0.0)
    resp = reg.handle(register(cseq=2, authz=answer(first)), PHONE, 0.0)
    assert resp.status == 401 and not parse_challenge(resp.get("WWW-Authenticate") or "").stale


def test_expiry_via_handle_timer() -> None:
    reg = Registrar(REALM, USERS)
    login(reg, 0.0, expires="120")
    events(reg)
    assert reg.get_timer() == 120.0
    reg.handle_timer(119.0)
    assert reg.lookup("bob", 119.0) is not None and events(reg) == []
    assert reg.lookup("bob", 120.0) is None  # unexpired only, even before the timer runs
    reg.handle_timer(120.0)
    [removed] = events(reg)
    assert isinstance(removed, BindingRemoved) and removed.reason == "expired"
    assert reg.get_timer() is None and reg.bindings(120.0) == []


def test_refresh_moves_expiry_without_an_event_and_unregister_removes() -> None:
    reg = Registrar(REALM, USERS)
    login(reg, 0.0)
    events(reg)
    first = reg.handle(register(cseq=3), PHONE, 100.0)
    resp = reg.handle(register(cseq=4, authz=answer(first)), PHONE, 100.0)
    assert resp.status == 200
    assert reg.get_timer() == 700.0 and events(reg) == []
    first = reg.handle(register(cseq=5, expires="0"), PHONE, 200.0)
    resp = reg.handle(register(cseq=6, expires="0", authz=answer(first)), PHONE, 200.0)
    assert resp.status == 200 and resp.get_all("Contact") == []
    [removed] = events(reg)
    assert isinstance(removed, BindingRemoved) and removed.reason == "unregistered"
    assert reg.lookup("bob", 200.0) is None


def test_contact_expires_param_zero_removes_that_binding_only() -> None:
    reg = Registrar(REALM, USERS)
    two = ("<sip:bob@192.0.2.7:5062>", "<sip:bob@192.0.2.7:5064>")
    login(reg, 0.0, contacts=two)
    first = reg.handle(register(cseq=3), PHONE, 1.0)
    resp = reg.handle(
        register(cseq=4, contacts=("<sip:bob@192.0.2.7:5064>;expires=0",), authz=answer(first)),
        PHONE,
        1.0,
    )
    assert resp.get_all("Contact") == ["<sip:bob@192.0.2.7:5062>;expires=599"]


def test_star_with_expires_zero_removes_all() -> None:
    reg = Registrar(REALM, USERS)
    login(reg, 0.0, contacts=("<sip:bob@192.0.2.7:5062>", "<sip:bob@192.0.2.8:5060>"))
    events(reg)
    first = reg.handle(register(cseq=3, contacts=("*",), expires="0"), PHONE, 5.0)
    resp = reg.handle(
        register(cseq=4, contacts=("*",), expires="0", authz=answer(first)), PHONE, 5.0
    )
    assert resp.status == 200 and resp.get_all("Contact") == []
    removed = events(reg)
    assert len(removed) == 2 and all(
        isinstance(e, BindingRemoved) and e.reason == "unregistered" for e in removed
    )
    assert reg.bindings(5.0) == []


def test_star_needs_expires_zero_and_no_other_contact() -> None:
    reg = Registrar(REALM, USERS)
    first = reg.handle(register(contacts=("*",)), PHONE, 0.0)
    resp = reg.handle(register(contacts=("*",), cseq=2, authz=answer(first)), PHONE, 0.0)
    assert resp.status == 400 and "Expires: 0" in resp.reason
    first = reg.handle(register(cseq=3), PHONE, 0.0)
    both = ("*", "<sip:bob@192.0.2.7:5062>")
    resp = reg.handle(register(contacts=both, expires="0", cseq=4, authz=answer(first)), PHONE, 0.0)
    assert resp.status == 400 and "only Contact" in resp.reason


def test_multiple_contacts_lookup_returns_the_newest() -> None:
    reg = Registrar(REALM, USERS)
    login(reg, 0.0, contacts=("<sip:bob@192.0.2.7:5062>",), call_id="desk@x")
    login(reg, 1.0, contacts=("<sip:bob@192.0.2.8:5070>",), call_id="soft@x")
    b = reg.lookup("bob", 2.0)
    assert b is not None and b.contact == "sip:bob@192.0.2.8:5070"
    assert len(reg.bindings(2.0)) == 2
    login(reg, 3.0, contacts=("<sip:bob@192.0.2.7:5062>",), call_id="desk@x", cseq=10)
    b = reg.lookup("bob", 3.0)
    assert b is not None and b.contact == "sip:bob@192.0.2.7:5062"  # refreshed: newest


def test_nat_source_address_wins_over_contact() -> None:
    reg = Registrar(REALM, USERS)
    first = reg.handle(register(contacts=("<sip:bob@10.0.0.5:5060>",)), ("198.51.100.9", 40000), 0)
    resp = reg.handle(
        register(contacts=("<sip:bob@10.0.0.5:5060>",), cseq=2, authz=answer(first)),
        ("198.51.100.9", 40000),
        0.0,
    )
    assert resp.status == 200
    b = reg.lookup("bob", 0.0)
    assert (
        b is not None and b.addr == ("198.51.100.9", 40000) and b.contact.startswith("sip:bob@10")
    )


def test_older_cseq_for_same_call_id_is_refused_with_500() -> None:
    reg = Registrar(REALM, USERS)
    login(reg, 0.0, cseq=5)  # binding stored with CSeq 6
    first = reg.handle(register(cseq=3), PHONE, 1.0)
    resp = reg.handle(register(cseq=4, authz=answer(first)), PHONE, 1.0)
    assert resp.status == 500 and "Out of order" in resp.reason
    # a new Call-ID (the phone restarted) may use any CSeq
    assert login(reg, 2.0, call_id="fresh@x", cseq=1).status == 200


@pytest.mark.parametrize(
    ("header", "value", "words"),
    [
        ("Expires", "soon", "Expires"),
        ("Expires", "-5", "Expires"),
        ("Contact", "<sip:bob@192.0.2.7:5062>;expires=abc", "Contact"),
        ("Contact", "<tel:+15550100>", "tel"),
        ("Contact", "<sip:bob@bad host>", "Contact"),
        ("Contact", "<sip:a@b>,,<sip:c@d>", "Contact"),
    ],
)
def test_malformed_expires_or_contact_gets_400_naming_it(
    header: str, value: str, words: str
) -> None:
    reg = Registrar(REALM, USERS)
    first = reg.handle(register(), PHONE, 0.0)
    req = register(cseq=2, authz=answer(first))
    req.set(header, value)  # past the parser, as a programmatic caller could
    resp = reg.handle(req, PHONE, 0.0)
    assert resp.status == 400 and words in resp.reason, resp.reason
    assert reg.bindings(0.0) == []


def test_too_brief_interval_gets_423_with_min_expires_and_long_ones_are_capped() -> None:
    reg = Registrar(REALM, USERS, min_expires=60, max_expires=1800)
    first = reg.handle(register(expires="30"), PHONE, 0.0)
    resp = reg.handle(register(expires="30", cseq=2, authz=answer(first)), PHONE, 0.0)
    assert resp.status == 423 and resp.get("Min-Expires") == "60"
    resp = login(reg, 0.0, expires="99999", cseq=3)
    assert resp.get_all("Contact") == ["<sip:bob@192.0.2.7:5062>;expires=1800"]


def test_no_expires_at_all_uses_the_default() -> None:
    reg = Registrar(REALM, USERS, default_expires=900)
    assert login(reg, 0.0, expires=None).get_all("Contact")[0].endswith(";expires=900")


def test_query_without_contact_lists_bindings() -> None:
    reg = Registrar(REALM, USERS)
    login(reg, 0.0)
    resp = login(reg, 10.0, contacts=(), cseq=3)
    assert resp.status == 200 and resp.get_all("Contact") == [
        "<sip:bob@192.0.2.7:5062>;expires=590"
    ]


def test_other_methods_get_405_with_allow() -> None:
    reg = Registrar(REALM, USERS)
    resp = reg.handle(register(method="OPTIONS"), PHONE, 0.0)
    assert resp.status == 405 and resp.get("Allow") == "REGISTER" and resp.to.tag


def test_repeated_failures_block_the_source_ip_without_challenge() -> None:
    reg = Registrar(REALM, USERS, max_auth_failures=3, failure_window=60.0, block_seconds=300.0)
    attacker = ("203.0.113.5", 5060)
    for i in range(3):
        first = reg.handle(register(cseq=2 * i + 1), attacker, float(i))
        assert first.status == 401
        resp = reg.handle(register(cseq=2 * i + 2, authz=answer(first, password="g")), attacker, i)
        assert resp.status == 403
    assert reg.blocked("203.0.113.5", 3.0)
    resp = reg.handle(register(cseq=10), attacker, 3.0)
    assert resp.status == 403 and resp.get("WWW-Authenticate") is None
    # the right password does not help while blocked; other addresses are unaffected
    assert login(reg, 3.0, cseq=20).status == 200
    resp = reg.handle(register(cseq=30), attacker, 302.0)
    assert resp.status == 401  # the block has run out


def test_failures_spread_over_more_than_the_window_do_not_block() -> None:
    reg = Registrar(REALM, USERS, max_auth_failures=3, failure_window=60.0)
    for i in range(6):
        now = 40.0 * i
        first = reg.handle(register(cseq=2 * i + 1), PHONE, now)
        reg.handle(register(cseq=2 * i + 2, authz=answer(first, password="typo")), PHONE, now)
    assert not reg.blocked(PHONE[0], 240.0)


def test_failure_memory_is_bounded() -> None:
    reg = Registrar(REALM, USERS, max_tracked_sources=50)
    for i in range(500):
        src = (f"10.{i // 250}.{i % 250}.1", 5060)
        first = reg.handle(register(), src, 0.0)
        reg.handle(register(cseq=2, authz=answer(first, password="x")), src, 0.0)
    assert len(reg._failures) <= 50 and len(reg._blocked) <= 50


def test_too_many_contacts_evict_the_soonest_expiring() -> None:
    reg = Registrar(REALM, USERS, max_contacts=2)
    for i in range(3):
        login(reg, float(i), contacts=(f"<sip:bob@192.0.2.{10 + i}:5060>",), call_id=f"c{i}")
    kinds = [(type(e).__name__, getattr(e, "reason", "")) for e in events(reg)]
    assert kinds.count(("BindingRemoved", "replaced")) == 1
    assert sorted(b.contact for b in reg.bindings(3.0)) == [
        "sip:bob@192.0.2.11:5060",
        "sip:bob@192.0.2.12:5060",
    ]


def _wire(phone: Endpoint, server: Endpoint, reg: Registrar, now: float) -> None:
    """Deliver datagrams both ways; the server answers REGISTERs with the registrar."""
    for _ in range(20):
        moved = False
        for data, _to in phone.datagrams_to_send():
            moved = True
            server.receive_datagram(data, PHONE, now)
        while (ev := server.next_event()) is not None:
            assert isinstance(ev, IncomingRequest)
            server.respond(ev.request, reg.handle(ev.request, ev.addr, now), now)
        for data, _to in server.datagrams_to_send():
            moved = True
            phone.receive_datagram(data, SERVER, now)
        if not moved:
            return


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_endpoint_registers_through_an_endpoint_answered_by_the_registrar(
    algorithm: str,
) -> None:
    reg = Registrar(REALM, USERS, algorithm=algorithm)
    server = Endpoint(EndpointConfig(host=SERVER[0], port=SERVER[1]))
    phone = Endpoint(
        EndpointConfig(host=PHONE[0], port=PHONE[1], user="bob", username="bob", password="s3cret")
    )
    handle = phone.register(f"sip:{REALM}", SERVER, 0.0, expires=300)
    _wire(phone, server, reg, 0.0)
    ev = phone.next_event()
    assert isinstance(ev, Registered) and ev.expires == 300
    b = reg.lookup("bob", 0.0)
    assert b is not None and b.addr == PHONE
    phone.refresh(handle, 1.0, expires=0)
    _wire(phone, server, reg, 1.0)
    assert isinstance(phone.next_event(), Registered)
    assert reg.lookup("bob", 1.0) is None


def test_endpoint_with_wrong_password_fails_registration() -> None:
    reg = Registrar(REALM, USERS)
    server = Endpoint(EndpointConfig(host=SERVER[0], port=SERVER[1]))
    phone = Endpoint(
        EndpointConfig(host=PHONE[0], port=PHONE[1], user="bob", username="bob", password="no")
    )
    phone.register(f"sip:{REALM}", SERVER, 0.0)
    _wire(phone, server, reg, 0.0)
    ev = phone.next_event()
    assert isinstance(ev, RegistrationFailed) and ev.status == 403


_header_values = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=60
) | st.sampled_from(["*", "0", "<sip:bob@h>;expires=", "Digest ", 'Digest nonce="1.x"', "<>"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    name=st.sampled_from(
        ["Contact", "Expires", "Authorization", "To", "From", "CSeq", "Call-ID", "Via"]
    ),
    value=_header_values,
    authed=st.booleans(),
)
def test_handle_never_raises_on_arbitrary_header_values(
    name: str, value: str, authed: bool
) -> None:
    reg = Registrar(REALM, USERS, secret=b"k")
    req = register()
    if authed:
        first = reg.handle(register(), PHONE, 0.0)
        req = register(cseq=2, authz=answer(first))
    req.set(name, value)
    resp = reg.handle(req, PHONE, 0.0)
    assert 200 <= resp.status < 600
    resp.serialise()
