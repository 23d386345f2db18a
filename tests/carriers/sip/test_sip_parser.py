"""Parser, serialiser and stream framer behaviour on hand-made messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.sip import (
    AbsoluteUri,
    NameAddr,
    ParseLimits,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    parse_message,
    parse_name_addr,
    parse_uri,
    split_list,
)

CORPUS = Path(__file__).parent / "corpus"
VALID = sorted(p for p in CORPUS.glob("*.sip") if not p.name.startswith("invalid_"))
INVALID = sorted(CORPUS.glob("invalid_*.sip"))

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@example.com>\r\n"
    b"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.1>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def test_request_fields() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri(host="example.com", user="bob")
    assert msg.via[0].branch == "z9hG4bK776asdhds"
    assert msg.via[0].port == 5060
    assert ("rport", None) in msg.via[0].params
    assert msg.from_.display == "Alice" and msg.from_.tag == "1928301774"
    assert msg.to.tag is None
    assert msg.call_id == "a84b4c76e66710@pc33.example.com"
    assert msg.body == b"v=0\n"


def test_round_trip_of_built_messages() -> None:
    req = Request(method="BYE", uri=parse_uri("sip:b@example.com;transport=udp"))
    req.add("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1")
    req.add("From", str(NameAddr(parse_uri("sip:a@example.com"), 'A "q"', (("tag", "x"),))))
    req.add("To", "<sip:b@example.com>;tag=y")
    req.add("Call-ID", "rt@x")
    req.add("CSeq", "2 BYE")
    req.body = b"\x00\xff binary"
    req.add("Content-Type", "application/octet-stream")
    assert parse_message(req.serialise()) == req
    resp = Response(status=486, reason="Busy Here", headers=list(req.headers))
    assert parse_message(bytes(resp)) == resp
    assert parse_message(bytes(resp)).from_.display == 'A "q"'


def test_case_insensitive_and_compact_names() -> None:
    msg = parse_message(INVITE.replace(b"Call-ID:", b"i:").replace(b"To:", b"tO:"))
    assert msg.get("call-id") == msg.get("I") == "a84b4c76e66710@pc33.example.com"
    assert msg.headers[2][0] == "To"
    assert msg.to.uri == SipUri(host="example.com", user="bob")


def test_line_folding_joins_with_one_space() -> None:
    msg = parse_message(INVITE.replace(b"Max-Forwards: 70", b"Subject: one\r\n\t two"))
    assert msg.get("Subject") == "one two"


def test_missing_content_length_takes_rest_of_datagram() -> None:
    data = INVITE.replace(b"Content-Length: 4\r\n", b"") + b"tail"
    assert parse_message(data).body == b"v=0\ntail"


def test_content_length_cuts_body_and_too_large_is_an_error() -> None:
    assert parse_message(INVITE + b"garbage").body == b"v=0\n"
    with pytest.raises(SipParseError, match="Content-Length 40 but only 4"):
        parse_message(INVITE.replace(b"Content-Length: 4", b"Content-Length: 40"))


def test_error_names_line_and_header() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: x INVITE"))
    assert info.value.line == 7 and info.value.header == "CSeq"
    assert "line 7" in str(info.value) and "CSeq" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_limits_bound_work() -> None:
    limits = ParseLimits(max_message_bytes=1000, max_headers=5, max_line_bytes=60)
    with pytest.raises(SipParseError, match="more than 5 headers"):
        parse_message(INVITE, ParseLimits(max_headers=5))
    with pytest.raises(SipParseError, match="line over 60"):
        parse_message(INVITE, ParseLimits(max_line_bytes=60))
    with pytest.raises(SipParseError, match="over 1000"):
        parse_message(INVITE + b"x" * 1000, limits)


def test_split_list_respects_quotes_and_angles() -> None:
    value = '"a, b" <sip:x@y;p=1,2>;q=1, <sip:z@w>, tok'
    assert split_list(value, "Contact") == ['"a, b" <sip:x@y;p=1,2>;q=1', "<sip:z@w>", "tok"]
    with pytest.raises(SipParseError, match="empty element"):
        split_list("a,,b", "Allow")
    with pytest.raises(SipParseError, match="unterminated"):
        split_list('"abc, d', "Contact")


def test_quoted_display_name_with_escapes() -> None:
    addr = parse_name_addr(r'"A \"B\" \\ C" <sip:a@b>;tag=1', "From")
    assert addr.display == 'A "B" \\ C'
    assert parse_name_addr(str(addr), "From") == addr


def test_addr_spec_params_belong_to_header() -> None:
    addr = parse_name_addr("sip:a@b;tag=5;user=phone", "To")
    assert addr.uri == SipUri(host="b", user="a")
    assert addr.params == (("tag", "5"), ("user", "phone"))
    inner = parse_name_addr("<sip:a@b;user=phone>;tag=5", "To")
    assert inner.uri == SipUri(host="b", user="a", params=(("user", "phone"),))


def test_sip_uri_components() -> None:
    uri = parse_uri("sips:al%20ice:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&X=%3C")
    assert isinstance(uri, SipUri)
    assert uri.scheme == "sips" and uri.user == "al%20ice" and uri.user_unescaped == "al ice"
    assert uri.password == "pw" and uri.host == "[2001:db8::1]" and uri.port == 5061
    assert uri.param("TRANSPORT") == "tls" and uri.param("lr") == ""
    assert uri.headers == (("Subject", "hi"), ("X", "%3C"))
    assert parse_uri(str(uri)) == uri
    assert parse_uri("tel:+1-555-0100") == AbsoluteUri("tel", "+1-555-0100")
    for bad in ("sip:a@", "sip:a@b:x", "sip:a b@c", "sip:a@b;=x", "nocolon", "sip:a@b?noeq"):
        with pytest.raises(SipParseError):
            parse_uri(bad)


def test_response_parsing_and_reason() -> None:
    msg = parse_message(b"SIP/2.0 183 Session Progress\r\nCSeq: 1 INVITE\r\n\r\n")
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.cseq.method) == (183, "Session Progress", "INVITE")
    for bad in (b"SIP/2.0 99 x\r\n\r\n", b"SIP/2.0 1000 x\r\n\r\n", b"SIP/2.0 2xx OK\r\n\r\n"):
        with pytest.raises(SipParseError, match="status code"):
            parse_message(bad)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_corpus_valid(path: Path) -> None:
    msg = parse_message(path.read_bytes())
    again = parse_message(msg.serialise())
    assert again == msg


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_corpus_invalid(path: Path) -> None:
    with pytest.raises(SipParseError):
        parse_message(path.read_bytes())


def test_corpus_compact_details() -> None:
    msg = parse_message((CORPUS / "compact_folded.sip").read_bytes())
    assert [v.host for v in msg.via] == ["192.0.2.10", "proxy.example.com", "[2001:db8::1]"]
    assert msg.via[2].port == 5070
    assert msg.from_.display == 'Dialer "one", inc'
    assert [c.uri.scheme for c in msg.contact] == ["sip", "sips"]
    assert msg.get_all("Supported") == ["timer", "100rel"]
    assert msg.body == b"v=0\n"
    no_cl = parse_message((CORPUS / "no_content_length.sip").read_bytes())
    assert no_cl.body == b"v=0\r\nrest-of-datagram\r\n"


def test_stream_framer_whole_and_byte_by_byte() -> None:
    stream = b"\r\n\r\n" + INVITE + INVITE.replace(b"314159", b"314160")
    whole = StreamFramer().feed(stream)
    assert [m.cseq.seq for m in whole] == [314159, 314160]
    framer = StreamFramer()
    out = []
    for i in range(len(stream)):
        out += framer.feed(stream[i : i + 1])
    assert out == whole and framer.pending == 0


def test_stream_framer_requires_content_length_and_bounds_buffer() -> None:
    with pytest.raises(SipParseError, match="Content-Length"):
        StreamFramer().feed(INVITE.replace(b"Content-Length: 4\r\n", b""))
    framer = StreamFramer(ParseLimits(max_message_bytes=100))
    with pytest.raises(SipParseError, match="size limit"):
        framer.feed(b"INVITE " + b"x" * 200)


def test_message_header_editing() -> None:
    msg = parse_message(INVITE)
    msg.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp", first=True)
    assert msg.via[0].host == "proxy.example.com"
    msg.set("Via", "SIP/2.0/TCP h;branch=z9hG4bKq")
    assert [v.transport for v in msg.via] == ["TCP"]
    msg.remove("v")
    assert msg.via == []


_TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)
_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"),
    max_size=40,
).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    method=_TOKEN.map(str.upper),
    user=st.text(alphabet="abcxyz0123456789-_.!~*'()&=+$,;?/", min_size=1, max_size=12),
    extra=st.lists(st.tuples(_TOKEN.map(lambda t: "X-" + t), _VALUE), max_size=6),
    body=st.binary(max_size=64),
    status=st.integers(100, 699),
)
def test_built_messages_round_trip(
    method: str, user: str, extra: list[tuple[str, str]], body: bytes, status: int
) -> None:
    req = Request(method=method, uri=SipUri(host="example.com", user=user))
    req.add("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKrt")
    req.add("CSeq", f"7 {method}")
    for name, value in extra:
        req.add(name, value)
    req.body = body
    assert parse_message(req.serialise()) == req
    resp = Response(status=status, reason="Whatever Reason", headers=list(req.headers), body=body)
    assert parse_message(resp.serialise()) == resp
