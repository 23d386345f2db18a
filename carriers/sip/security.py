"""Stateless refusals: answer bad or unwanted requests without creating any state."""

from __future__ import annotations

import re

from carriers.sip.message import Response

_HEADER_RE = {
    "Via": re.compile(rb"^(?:via|v)[ \t]*:[ \t]*(.*?)\r?$", re.I | re.M),
    "From": re.compile(rb"^(?:from|f)[ \t]*:[ \t]*(.*?)\r?$", re.I | re.M),
    "To": re.compile(rb"^(?:to|t)[ \t]*:[ \t]*(.*?)\r?$", re.I | re.M),
    "Call-ID": re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(.*?)\r?$", re.I | re.M),
    "CSeq": re.compile(
        rb"^cseq[ \t]*:[ \t]*(\d{1,10}[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)\r?$", re.I | re.M
    ),
}
_REQUIRED = ("Via", "Call-ID", "CSeq")
_MAX_VALUE = 1024
_BRANCH_RE = re.compile(r";[ \t]*branch[ \t]*=", re.I)


def _salvage(data: bytes) -> dict[str, list[str]] | None:
    """Recover the headers a response must echo from a request that did not parse."""
    if data[:4].upper() == b"SIP/":
        return None  # never answer a response
    found: dict[str, list[str]] = {}
    for name, pattern in _HEADER_RE.items():
        values = [m.decode("utf-8", "replace") for m in pattern.findall(data[:65536])]
        values = [v.strip() for v in values if v.strip() and len(v) <= _MAX_VALUE]
        if values:
            found[name] = values
    if any(len(found.get(name, [])) != 1 for name in _REQUIRED):
        return None
    if not _BRANCH_RE.search(found["Via"][0]) or found["CSeq"][0].upper().endswith("ACK"):
        return None  # no way to match a reply, or an ACK (never answered)
    return found


def bad_request_response(data: bytes, reason: str = "Bad Request") -> Response | None:
    """A 400 for a malformed request when Via, Call-ID and CSeq can be recovered
    (exactly one each), else None: drop the datagram silently."""
    found = _salvage(data)
    if found is None:
        return None
    reason = "".join(c for c in reason if c.isprintable())[:120] or "Bad Request"
    resp = Response(status=400, reason=reason)
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in found.get(name, [])[:1]:
            resp.headers.append((name, value))
    return resp


def forbidden_response(data: bytes) -> Response | None:
    """A 403 for a request from an address we do not serve (no transaction kept);
    None when the request lacks what a reply needs."""
    found = _salvage(data)
    if found is None:
        return None
    resp = Response(status=403, reason="Forbidden")
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in found.get(name, [])[:1]:
            resp.headers.append((name, value))
    return resp
