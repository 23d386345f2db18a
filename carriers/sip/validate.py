"""Checks a UA applies to a message that parsed (RFC 3261 §8.2, §8.1.3.3)."""

from __future__ import annotations

from dataclasses import dataclass

from carriers.sip.errors import SipParseError
from carriers.sip.headers import get_param
from carriers.sip.message import Message, Request
from carriers.sip.uri import SipUri

DEFAULT_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO"})
_SINGLE = ("Call-ID", "From", "To", "CSeq", "Max-Forwards", "Content-Type")
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")
_BROADCAST = ("255.255.255.255",)


@dataclass(frozen=True, slots=True)
class Refusal:
    """How to refuse: ``status`` to answer with, or None to drop silently."""

    status: int | None
    reason: str


def application_check(
    msg: Message,
    *,
    methods: frozenset[str] = DEFAULT_METHODS,
    supported: frozenset[str] = frozenset(),
    body_types: frozenset[str] = frozenset({"application/sdp"}),
    uri_schemes: frozenset[str] = frozenset({"sip", "sips", "tel"}),
) -> Refusal | None:
    """None when a UA may process ``msg``; otherwise the :class:`Refusal`."""
    missing = [name for name in _REQUIRED if msg.get(name) is None]
    if missing:
        return Refusal(400 if isinstance(msg, Request) else None, f"missing {', '.join(missing)}")
    for name in _SINGLE:
        if len(msg.get_all(name)) > 1:
            return Refusal(400 if isinstance(msg, Request) else None, f"more than one {name}")
    if not isinstance(msg, Request):
        try:
            vias = msg.via
        except SipParseError as exc:
            return Refusal(None, str(exc))
        if any(v.host in _BROADCAST or get_param(v.params, "received") in _BROADCAST for v in vias):
            return Refusal(None, "Via names a broadcast address")
        # RFC 3261 §8.1.3.3: a UAC discards a response with more than one Via.
        if len(vias) != 1:
            return Refusal(None, "response with more than one Via")
        return None
    if msg.uri is None or (not isinstance(msg.uri, SipUri) and msg.uri.scheme not in uri_schemes):
        return Refusal(416, "unsupported Request-URI scheme")
    if msg.method not in methods:
        return Refusal(501, f"method {msg.method} not implemented")
    unknown = [t for t in msg.get_all("Require") if t.lower() not in supported]
    if unknown and msg.method not in ("ACK", "CANCEL"):
        return Refusal(420, f"unsupported extension {', '.join(unknown)}")
    for name in ("Authorization", "Proxy-Authorization"):
        value = msg.get(name)
        if value is not None and value.split(" ", 1)[0].lower() != "digest":
            return Refusal(401 if name == "Authorization" else 407, f"unknown {name} scheme")
    if msg.body and msg.content_type not in body_types:
        return Refusal(415, f"unsupported body type {msg.content_type}")
    accept = msg.get_all("Accept")
    if msg.method == "INVITE" and msg.body and accept:
        kinds = {a.split(";")[0].strip().lower() for a in accept}
        if not kinds & {"application/sdp", "application/*", "*/*"}:
            return Refusal(406, "Accept excludes application/sdp")
    return None
