"""Bytes to :class:`Request` / :class:`Response` (RFC 3261 §7, §25.1).

Any byte string either parses or raises :class:`SipParseError`; work and memory
are bounded by :class:`ParseLimits`.  The headers the transaction and dialog
layers rely on are validated here, so a message that parses is safe to route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carriers.sip.errors import SipParseError
from carriers.sip.headers import (
    TOKEN_RE,
    canonical_name,
    parse_cseq,
    parse_name_addr,
    parse_params,
    parse_uint,
    parse_via,
    split_list,
)
from carriers.sip.message import Message, Request, Response
from carriers.sip.uri import SipUri, parse_uri


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_message_bytes: int = 65536
    max_headers: int = 256
    max_line_bytes: int = 8192


DEFAULT_LIMITS = ParseLimits()
_MAX_DELTA = 2**32 - 1
_CRLF_RE = re.compile(r"\r?\n")
# SIP-Version    =  "SIP" "/" 1*DIGIT "." 1*DIGIT
_VERSION_RE = re.compile(r"SIP/\d+\.\d+", re.IGNORECASE)
# Status-Code    =  3DIGIT
_STATUS_RE = re.compile(r"[1-6]\d\d")
_DATE_RE = re.compile(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT")


def parse_message(data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Message:
    """Parse one datagram.  Bytes after Content-Length are ignored (RFC 3261 §18.3);
    without Content-Length the rest of the datagram is the body."""
    try:
        return _parse(data, limits)
    except SipParseError:
        raise
    except (ValueError, IndexError, OverflowError) as exc:  # defence in depth
        raise SipParseError(f"malformed message: {exc}") from None


def split_head(data: bytes) -> tuple[bytes, int] | None:
    """Return (head, index of the body) or None when no blank line ends the head."""
    # RFC 3261 §7.5: CRLFs before the start line are keep-alives, skipped.
    m = re.search(rb"\r?\n\r?\n", data)
    if m is None:
        return None
    return data[: m.start()], m.end()


def _parse(data: bytes, limits: ParseLimits) -> Message:
    if len(data) > limits.max_message_bytes:
        raise SipParseError(f"message of {len(data)} bytes over {limits.max_message_bytes}")
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    found = split_head(data)
    if found is None:
        # No blank line: all head, no body (a lone final line ending is tolerated).
        head, body_at = data.removesuffix(b"\n").removesuffix(b"\r"), len(data)
    else:
        head, body_at = found
    text = head.decode("utf-8", "surrogateescape")
    lines = _CRLF_RE.split(text)
    for number, line in enumerate(lines, 1):
        if len(line) > limits.max_line_bytes:
            raise SipParseError(f"line over {limits.max_line_bytes} bytes", line=number)
        # NUL may appear escaped in quoted strings (RFC 4475 §3.1.1.2); a bare CR never.
        if "\r" in line:
            raise SipParseError("bare CR in message head", line=number)
    msg = _parse_start_line(lines[0])
    fields = _unfold(lines[1:], limits)
    content_length: int | None = None
    for number, name, value in fields:
        canon = canonical_name(name)
        try:
            _check_header(msg, canon, value)
        except SipParseError as exc:
            raise SipParseError(exc.what, line=number, header=canon, status=exc.status) from None
        if canon == "Content-Length":
            length = parse_uint(value, canon, limits.max_message_bytes)
            if content_length is not None and content_length != length:
                raise SipParseError("conflicting Content-Length values", line=number, header=canon)
            content_length = length
        else:
            msg.headers.append((canon, value))
    rest = data[body_at:]
    if content_length is None:
        msg.body = rest
    elif content_length > len(rest):
        raise SipParseError(
            f"Content-Length {content_length} but only {len(rest)} body bytes",
            header="Content-Length",
        )
    else:
        msg.body = rest[:content_length]
    return msg


def _parse_start_line(line: str) -> Message:
    # Request-Line   =  Method SP Request-URI SP SIP-Version CRLF
    # Status-Line    =  SIP-Version SP Status-Code SP Reason-Phrase CRLF
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        _check_version(version)
        code, _sep, reason = rest.partition(" ")
        if not _STATUS_RE.fullmatch(code):
            raise SipParseError(f"bad status code {code[:20]!r}", line=1)
        if any(ord(c) < 0x20 and c != "\t" for c in reason):
            raise SipParseError("control character in reason phrase", line=1)
        return Response(status=int(code), reason=reason)
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError(
            "request line must be 'METHOD SP Request-URI SP SIP/2.0' with single spaces",
            line=1,
        )
    method, uri_text, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise SipParseError(f"bad method {method[:40]!r}", line=1)
    _check_version(version)
    if "\t" in uri_text or uri_text.startswith("<"):
        raise SipParseError("Request-URI must be a bare URI", line=1)
    try:
        uri = parse_uri(uri_text, where="Request-URI")
    except SipParseError as exc:
        raise SipParseError(exc.what, line=1, header="Request-URI") from None
    if isinstance(uri, SipUri) and uri.headers:
        raise SipParseError("Request-URI must not carry ?headers", line=1, header="Request-URI")
    return Request(method=method, uri=uri)


def _check_version(version: str) -> None:
    if not _VERSION_RE.fullmatch(version):
        raise SipParseError(f"bad SIP version {version[:20]!r}", line=1)
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported SIP version {version!r}", line=1, status=505)


def _unfold(lines: list[str], limits: ParseLimits) -> list[tuple[int, str, str]]:
    """Header lines to (line number, name, value) with folded lines joined."""
    # LWS  =  [*WSP CRLF] 1*WSP ; linear whitespace
    # message-header  =  field-name HCOLON field-value
    # HCOLON  =  *( SP / HTAB ) ":" SWS
    fields: list[tuple[int, str, str]] = []
    for number, line in enumerate(lines, 2):
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipParseError("continuation line before any header", line=number)
            n, name, value = fields[-1]
            joined = value + " " + line.strip(" \t")
            fields[-1] = (n, name, joined.strip(" \t"))
            continue
        name, sep, value = line.partition(":")
        name = name.rstrip(" \t")
        if not sep:
            raise SipParseError(f"header line without ':' {line[:40]!r}", line=number)
        if not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"bad header name {name[:40]!r}", line=number)
        fields.append((number, name, value.strip(" \t")))
        if len(fields) > limits.max_headers:
            raise SipParseError(f"more than {limits.max_headers} headers", line=number)
    return fields


def _check_header(msg: Message, name: str, value: str) -> None:
    """Validate the headers the lower layers depend on."""
    if name == "Via":
        for item in split_list(value, name):
            parse_via(item)
    elif name in ("From", "To"):
        parse_name_addr(value, name)
    elif name in ("Contact", "Route", "Record-Route"):
        if name == "Contact" and value == "*":
            return
        for item in split_list(value, name):
            addr = parse_name_addr(item, name)
            expires = next((v for k, v in addr.params if k.lower() == "expires"), None)
            if expires is not None:
                parse_uint(expires, name, _MAX_DELTA)
    elif name == "CSeq":
        cseq = parse_cseq(value)
        if isinstance(msg, Request) and cseq.method != msg.method:
            raise SipParseError(f"CSeq method {cseq.method!r} differs from {msg.method!r}")
    elif name == "Call-ID":
        # callid  =  word [ "@" word ]
        if not value or any(c in value for c in " \t"):
            raise SipParseError("Call-ID must be one word")
    elif name == "Max-Forwards":
        parse_uint(value, name, 255)
    elif name in ("Expires", "Min-Expires"):
        parse_uint(value, name, _MAX_DELTA)
    elif name == "Retry-After":
        # Retry-After  =  delta-seconds [ comment ] *( SEMI retry-param )
        parse_uint(re.split(r"[ \t;(]", value, maxsplit=1)[0], name, _MAX_DELTA)
    elif name == "Content-Type":
        # media-type  =  m-type SLASH m-subtype *(SEMI m-parameter)
        mtype, _, rest = value.partition(";")
        kind, slash, sub = mtype.partition("/")
        if not slash or not TOKEN_RE.fullmatch(kind.strip()) or not TOKEN_RE.fullmatch(sub.strip()):
            raise SipParseError(f"bad media type {mtype[:40]!r}")
        if rest:
            parse_params(";" + rest, name)
    # SIP-date  =  rfc1123-date ; always GMT
    elif name == "Date" and not _DATE_RE.fullmatch(value):
        raise SipParseError(f"Date must be RFC 1123 in GMT, got {value[:40]!r}")
