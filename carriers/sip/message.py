"""SIP requests and responses: start line, ordered header fields, body bytes.

Header fields are stored as (canonical name, value text) pairs in arrival order;
structured views (``via``, ``from_``, ``cseq``...) parse on access.  Content-Length
is not stored: it is framing, derived from ``body`` when serialising.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carriers.sip.errors import SipParseError
from carriers.sip.headers import (
    LIST_HEADERS,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    parse_cseq,
    parse_name_addr,
    parse_via,
    split_list,
)
from carriers.sip.uri import Uri

SIP_VERSION = "SIP/2.0"


@dataclass(eq=True, slots=True)
class _Message:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    # --- generic header access -------------------------------------------------
    def get(self, name: str) -> str | None:
        """First field value of ``name`` (any case, compact form accepted)."""
        lower = canonical_name(name).lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """All values of ``name``; list headers are split on commas."""
        lower = canonical_name(name).lower()
        out: list[str] = []
        for key, value in self.headers:
            if key.lower() == lower:
                if lower in LIST_HEADERS:
                    out.extend(split_list(value, key))
                else:
                    out.append(value)
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every field of ``name`` by one (in the first one's place)."""
        name = canonical_name(name)
        lower = name.lower()
        for i, (key, _) in enumerate(self.headers):
            if key.lower() == lower:
                self.headers[i] = (name, value)
                self.headers[i + 1 :] = [h for h in self.headers[i + 1 :] if h[0].lower() != lower]
                return
        self.headers.append((name, value))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        entry = (canonical_name(name), value)
        if first:
            self.headers.insert(0, entry)
        else:
            self.headers.append(entry)

    def remove(self, name: str) -> None:
        lower = canonical_name(name).lower()
        self.headers = [h for h in self.headers if h[0].lower() != lower]

    # --- structured views ------------------------------------------------------
    @property
    def via(self) -> list[Via]:
        return [parse_via(v) for v in self.get_all("Via")]

    @property
    def from_(self) -> NameAddr:
        return parse_name_addr(self._required("From"), "From")

    @property
    def to(self) -> NameAddr:
        return parse_name_addr(self._required("To"), "To")

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        return parse_cseq(self._required("CSeq"))

    @property
    def contact(self) -> list[NameAddr]:
        return [parse_name_addr(v, "Contact") for v in self.get_all("Contact") if v != "*"]

    @property
    def content_type(self) -> str | None:
        value = self.get("Content-Type")
        return None if value is None else value.split(";")[0].strip().lower()

    def _required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header", header=name)
        return value

    def _header_bytes(self) -> list[bytes]:
        lines = [f"{k}: {v}\r\n".encode("utf-8", "surrogateescape") for k, v in self.headers]
        lines.append(f"Content-Length: {len(self.body)}\r\n\r\n".encode())
        return lines


@dataclass(eq=True, slots=True)
class Request(_Message):
    method: str = "OPTIONS"
    uri: Uri | None = None

    def serialise(self) -> bytes:
        start = f"{self.method} {self.uri} {SIP_VERSION}\r\n".encode("utf-8", "surrogateescape")
        return b"".join([start, *self._header_bytes(), self.body])

    def __bytes__(self) -> bytes:
        return self.serialise()


@dataclass(eq=True, slots=True)
class Response(_Message):
    status: int = 200
    reason: str = "OK"

    def serialise(self) -> bytes:
        start = f"{SIP_VERSION} {self.status} {self.reason}\r\n".encode("utf-8", "surrogateescape")
        return b"".join([start, *self._header_bytes(), self.body])

    def __bytes__(self) -> bytes:
        return self.serialise()


Message = Request | Response

REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}  # fmt: skip
