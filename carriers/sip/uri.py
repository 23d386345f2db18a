"""SIP and other URIs (RFC 3261 §19.1, §25.1).

Components keep their escaped text as received so that serialising gives the
same bytes back; :meth:`SipUri.user_unescaped` decodes when a caller needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from carriers.sip.errors import SipParseError

# unreserved  =  alphanum / mark
# mark        =  "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
# escaped     =  "%" HEXDIG HEXDIG
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_ESCAPED = r"%[0-9A-Fa-f]{2}"
# user             =  1*( unreserved / escaped / user-unreserved )
# user-unreserved  =  "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+")
# password         =  *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*")
# host             =  hostname / IPv4address / IPv6reference
# hostname         =  *( domainlabel "." ) toplabel [ "." ]
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|\[[0-9A-Fa-f:.]+\]")
# paramchar        =  param-unreserved / unreserved / escaped
# param-unreserved =  "[" / "]" / "/" / ":" / "&" / "+" / "$"
_PARAMCHARS_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})+")
# hname / hvalue   =  *( hnv-unreserved / unreserved / escaped )
# hnv-unreserved   =  "[" / "]" / "/" / "?" / ":" / "+" / "$"
_HNV_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})*")
# scheme           =  ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# uric             =  reserved / unreserved / escaped  (opaque and hier parts)
_URIC_RE = re.compile(rf"(?:[{_UNRESERVED};/?:@&=+$,\[\]]|{_ESCAPED})+")

Param = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class SipUri:
    """``sip:`` / ``sips:`` URI.  ``params`` and ``headers`` keep their order."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: tuple[Param, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` (case-insensitive); '' when present
        without a value, None when absent."""
        for key, value in self.params:
            if key.lower() == name.lower():
                return "" if value is None else value
        return None

    @property
    def user_unescaped(self) -> str | None:
        if self.user is None:
            return None
        return unquote_to_bytes(self.user).decode("utf-8", "surrogateescape")

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.hostport)
        for key, value in self.params:
            out += [";", key] if value is None else [";", key, "=", value]
        if self.headers:
            out += ["?", "&".join(f"{k}={v}" for k, v in self.headers)]
        return "".join(out)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme (tel:, http:, unknown ones): kept opaque."""

    scheme: str
    rest: str = field(default="")

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | AbsoluteUri


def parse_uri(text: str, *, where: str = "URI") -> Uri:
    """Parse a URI; ``where`` names the place for error messages."""
    # SIP-URI          =  "sip:" [ userinfo ] hostport uri-parameters [ headers ]
    # absoluteURI      =  scheme ":" ( hier-part / opaque-part )
    colon = text.find(":")
    if colon <= 0 or not _SCHEME_RE.fullmatch(text[:colon]):
        raise SipParseError(f"URI without a valid scheme: {text[:80]!r}", header=where)
    scheme = text[:colon].lower()
    rest = text[colon + 1 :]
    if scheme not in ("sip", "sips"):
        if not _URIC_RE.fullmatch(rest):
            raise SipParseError(f"bad characters in {scheme}: URI {text[:80]!r}", header=where)
        return AbsoluteUri(scheme, rest)
    return _parse_sip(scheme, rest, where)


def _parse_sip(scheme: str, rest: str, where: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    # userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
    # '@' can appear nowhere else in a SIP URI, so the first one ends userinfo.
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, sep, pw = userinfo.partition(":")
        if sep:
            if not _PASSWORD_RE.fullmatch(pw):
                raise SipParseError("bad characters in URI password", header=where)
            password = pw
        if not _USER_RE.fullmatch(user):
            raise SipParseError(f"bad characters in URI user part {user[:80]!r}", header=where)
    headers_text: str | None = None
    qmark = rest.find("?")
    if qmark >= 0:
        rest, headers_text = rest[:qmark], rest[qmark + 1 :]
    hostport, *param_texts = rest.split(";")
    host, port = _parse_hostport(hostport, where)
    params = tuple(_parse_uri_param(p, where) for p in param_texts)
    headers: tuple[tuple[str, str], ...] = ()
    if headers_text is not None:
        headers = tuple(_parse_uri_header(h, where) for h in headers_text.split("&"))
    return SipUri(host, user, password, port, params, headers, scheme)


def _parse_hostport(text: str, where: str) -> tuple[str, int | None]:
    # hostport = host [ ":" port ]
    if text.startswith("["):
        end = text.find("]")
        host, port_text = text[: end + 1], text[end + 1 :]
        if end < 0 or (port_text and not port_text.startswith(":")):
            raise SipParseError(f"bad IPv6 reference {text[:80]!r}", header=where)
        port_text = port_text[1:] if port_text else ""
        has_port = bool(text[end + 1 :])
    else:
        host, sep, port_text = text.partition(":")
        has_port = bool(sep)
    if not _HOST_RE.fullmatch(host):
        raise SipParseError(f"bad host {host[:80]!r}", header=where)
    if not has_port:
        return host, None
    return host, parse_port(port_text, where)


def parse_port(text: str, where: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise SipParseError(f"bad port {text[:20]!r}", header=where)
    return int(text)


def _parse_uri_param(text: str, where: str) -> Param:
    # uri-parameter = transport-param / user-param / ... / other-param
    # other-param   = pname [ "=" pvalue ]
    name, sep, value = text.partition("=")
    if not _PARAMCHARS_RE.fullmatch(name):
        raise SipParseError(f"bad URI parameter {text[:80]!r}", header=where)
    if not sep:
        return name, None
    if not _PARAMCHARS_RE.fullmatch(value):
        raise SipParseError(f"bad URI parameter value {text[:80]!r}", header=where)
    return name, value


def _parse_uri_header(text: str, where: str) -> tuple[str, str]:
    # header = hname "=" hvalue
    name, sep, value = text.partition("=")
    if not sep or not name or not _HNV_RE.fullmatch(name) or not _HNV_RE.fullmatch(value):
        raise SipParseError(f"bad URI header {text[:80]!r}", header=where)
    return name, value
