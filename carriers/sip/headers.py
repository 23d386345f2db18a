"""Header names and the structured header values SIP needs (RFC 3261 §7.3, §20, §25.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from carriers.sip.errors import SipParseError
from carriers.sip.uri import SipUri, Uri, parse_port, parse_uri

# Compact forms, RFC 3261 §7.3.3 plus the registered extensions (RFC 3841, 3515, 3892,
# 4028, 3903, 3265).
COMPACT: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "a": "Accept-Contact",
    "b": "Referred-By",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "x": "Session-Expires",
    "r": "Refer-To",
    "o": "Event",
    "u": "Allow-Events",
    "y": "Identity",
}

_KNOWN = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Authentication-Info",
    "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date",
    "Error-Info", "Expires", "From", "In-Reply-To", "Max-Forwards", "MIME-Version",
    "Min-Expires", "Organization", "Priority", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "Record-Route", "Reply-To", "Require", "Retry-After", "Route", "Server",
    "Subject", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning",
    "WWW-Authenticate", "RSeq", "RAck", "Event", "Allow-Events", "Refer-To", "Referred-By",
    "Session-Expires", "Min-SE", "P-Asserted-Identity", "Reason", "Accept-Contact",
    "Reject-Contact", "Request-Disposition", "Identity",
]  # fmt: skip
_CANONICAL = {name.lower(): name for name in _KNOWN}

# Headers whose grammar is a comma-separated list (`#` rule) and so may be split
# or combined.  Others (From, To, Call-ID, CSeq, Date, the auth headers...) must not be.
LIST_HEADERS = frozenset(
    n.lower()
    for n in [
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Call-Info",
        "Contact", "Content-Encoding", "Content-Language", "Error-Info", "In-Reply-To",
        "Proxy-Require", "Record-Route", "Require", "Route", "Supported", "Unsupported", "Via",
        "Warning", "Allow-Events", "P-Asserted-Identity", "Reason",
    ]
)  # fmt: skip


def canonical_name(name: str) -> str:
    """Full, conventionally capitalised header name; unknown names as given."""
    lower = name.lower()
    if lower in COMPACT:
        return COMPACT[lower]
    return _CANONICAL.get(lower, name)


# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_LWS = " \t"


def split_list(value: str, header: str) -> list[str]:
    """Split a `#` list on commas outside quotes and angle brackets.

    Empty elements (``a,,b``) are an error: RFC 3261 has no null list elements.
    """
    items: list[str] = []
    start = 0
    in_quote = in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            items.append(value[start:i].strip(_LWS))
            start = i + 1
        i += 1
    if in_quote:
        raise SipParseError("unterminated quoted string", header=header)
    items.append(value[start:].strip(_LWS))
    if any(not item for item in items):
        raise SipParseError("empty element in list", header=header)
    return items


def parse_quoted(text: str, pos: int, header: str) -> tuple[str, int]:
    """Read a quoted-string starting at ``text[pos] == '"'``; return the unescaped
    content and the index after the closing quote."""
    # quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
    # qdtext         =  LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
    # quoted-pair    =  "\" (%x00-09 / %x0B-0C / %x0E-7F)
    out: list[str] = []
    i = pos + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n" or ord(text[i + 1]) > 0x7F:
                raise SipParseError("bad escape in quoted string", header=header)
            out.append(text[i + 1])
            i += 2
            continue
        if (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            raise SipParseError("control character in quoted string", header=header)
        out.append(ch)
        i += 1
    raise SipParseError("unterminated quoted string", header=header)


def quote(text: str) -> str:
    escaped = "".join("\\" + c if c in '"\\' or ord(c) < 0x20 or c == "\x7f" else c for c in text)
    return f'"{escaped}"'


Params = tuple[tuple[str, str | None], ...]


def parse_params(text: str, header: str) -> Params:
    """``*( SEMI generic-param )`` with LWS allowed around ``;`` and ``=``."""
    # generic-param  =  token [ EQUAL gen-value ]
    # gen-value      =  token / host / quoted-string
    params: list[tuple[str, str | None]] = []
    i = 0
    n = len(text)
    while True:
        i = _skip_lws(text, i)
        if i >= n:
            return tuple(params)
        if text[i] != ";":
            raise SipParseError(f"expected ';' before {text[i : i + 20]!r}", header=header)
        i = _skip_lws(text, i + 1)
        m = TOKEN_RE.match(text, i)
        if not m:
            raise SipParseError("empty or bad parameter name", header=header)
        name = m.group()
        i = _skip_lws(text, m.end())
        if i < n and text[i] == "=":
            i = _skip_lws(text, i + 1)
            if i < n and text[i] == '"':
                inner, i = parse_quoted(text, i, header)
                params.append((name, quote(inner)))
                continue
            vm = _GEN_VALUE_RE.match(text, i)
            if not vm:
                raise SipParseError(f"bad value for parameter {name!r}", header=header)
            params.append((name, vm.group()))
            i = vm.end()
        else:
            params.append((name, None))


_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")


def _skip_lws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _LWS:
        i += 1
    return i


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def get_param(params: Params, name: str) -> str | None:
    for key, value in params:
        if key.lower() == name.lower():
            return "" if value is None else value
    return None


def set_param(params: Params, name: str, value: str | None) -> Params:
    kept = tuple(p for p in params if p[0].lower() != name.lower())
    return (*kept, (name, value))


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From/To/Contact/Route value: ``"Display" <uri>;params`` or ``uri;params``."""

    uri: Uri
    display: str | None = None
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return get_param(self.params, "tag")

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return NameAddr(self.uri, self.display, set_param(self.params, name, value))

    def __str__(self) -> str:
        head = "" if self.display is None else quote(self.display) + " "
        return f"{head}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(text: str, header: str) -> NameAddr:
    # name-addr      =  [ display-name ] LAQUOT addr-spec RAQUOT
    # addr-spec      =  SIP-URI / SIPS-URI / absoluteURI
    # display-name   =  *(token LWS)/ quoted-string
    # from-spec      =  ( name-addr / addr-spec ) *( SEMI from-param )
    text = text.strip(_LWS)
    display: str | None = None
    i = 0
    if text.startswith('"'):
        display, i = parse_quoted(text, 0, header)
        i = _skip_lws(text, i)
        if i >= len(text) or text[i] != "<":
            raise SipParseError("display name not followed by <uri>", header=header)
    lt = text.find("<", i)
    if lt >= 0:
        if display is None:
            words = text[:lt].split()
            if any(not TOKEN_RE.fullmatch(w) for w in words):
                raise SipParseError(
                    f"display name {text[:lt].strip()!r} must be tokens or quoted", header=header
                )
            display = " ".join(words) if words else None
        gt = text.find(">", lt)
        if gt < 0:
            raise SipParseError("missing '>'", header=header)
        inner = text[lt + 1 : gt]
        if inner != inner.strip(_LWS + "\r\n") or not inner:
            raise SipParseError("whitespace inside <addr-spec>", header=header)
        uri = parse_uri(inner, where=header)
        return NameAddr(uri, display, parse_params(text[gt + 1 :], header))
    # addr-spec form: the URI cannot carry ';' params, '?' headers or ',' here.
    semi = text.find(";")
    uri_text = text if semi < 0 else text[:semi]
    uri_text = uri_text.rstrip(_LWS)
    if not uri_text or any(c in uri_text for c in " \t?,"):
        raise SipParseError(
            f"URI {uri_text[:80]!r} with '?', ',' or spaces must be enclosed in <>", header=header
        )
    uri = parse_uri(uri_text, where=header)
    return NameAddr(uri, None, parse_params("" if semi < 0 else text[semi:], header))


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch")

    def with_param(self, name: str, value: str | None) -> Via:
        return Via(self.transport, self.host, self.port, set_param(self.params, name, value))

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


_VIA_RE = re.compile(
    r"(?P<name>[^\s/]+)[ \t]*/[ \t]*(?P<ver>[^\s/]+)[ \t]*/[ \t]*(?P<tr>[^\s/;]+)[ \t]+"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:;\[]+)(?:[ \t]*:[ \t]*(?P<port>[^\s;]*))?"
)


def parse_via(text: str) -> Via:
    # via-parm          =  sent-protocol LWS sent-by *( SEMI via-params )
    # sent-protocol     =  protocol-name SLASH protocol-version SLASH transport
    # sent-by           =  host [ COLON port ]
    m = _VIA_RE.match(text)
    if not m or not all(TOKEN_RE.fullmatch(m[g]) for g in ("name", "ver", "tr")):
        raise SipParseError(f"malformed Via {text[:80]!r}", header="Via")
    host = m["host"]
    if not re.fullmatch(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+", host):
        raise SipParseError(f"bad Via host {host[:80]!r}", header="Via")
    port = None if m["port"] is None else parse_port(m["port"], "Via")
    params = parse_params(text[m.end() :], "Via")
    return Via(m["tr"].upper(), host, port, params)


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    # CSeq  =  "CSeq" HCOLON 1*DIGIT LWS Method
    parts = text.split()
    if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit():
        raise SipParseError(f"malformed CSeq {text[:40]!r}", header="CSeq")
    if len(parts[0]) > 10 or int(parts[0]) >= 2**31:
        raise SipParseError("CSeq number must be below 2**31", header="CSeq")
    if not TOKEN_RE.fullmatch(parts[1]):
        raise SipParseError(f"bad CSeq method {parts[1][:40]!r}", header="CSeq")
    return CSeq(int(parts[0]), parts[1])


def parse_uint(text: str, header: str, limit: int) -> int:
    """``1*DIGIT`` with an upper bound (delta-seconds, Max-Forwards...)."""
    text = text.strip(_LWS)
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) > limit:
        raise SipParseError(f"expected a number up to {limit}, got {text[:40]!r}", header=header)
    return int(text)


def sip_uri_of(value: NameAddr) -> SipUri | None:
    return value.uri if isinstance(value.uri, SipUri) else None
