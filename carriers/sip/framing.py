"""Cut a byte stream (SIP over TCP/TLS) into messages by Content-Length (RFC 3261 §18.3)."""

from __future__ import annotations

import re

from carriers.sip.errors import SipParseError
from carriers.sip.message import Message
from carriers.sip.parser import DEFAULT_LIMITS, ParseLimits, parse_message, split_head

_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.I | re.M)


class StreamFramer:
    """Feed bytes as they arrive; whole messages come out.  On a stream
    Content-Length is mandatory, and a framing error poisons the stream (the
    transport should close the connection)."""

    def __init__(self, limits: ParseLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while True:
            # CRLF keep-alives between messages (RFC 5626 §3.5.1) carry nothing.
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            found = split_head(bytes(self._buffer[: self._limits.max_message_bytes]))
            if found is None:
                if len(self._buffer) >= self._limits.max_message_bytes:
                    raise SipParseError("no end of headers within the size limit")
                return out
            head, body_at = found
            lengths = {int(m) for m in _CONTENT_LENGTH_RE.findall(head)}
            if len(lengths) != 1:
                raise SipParseError(
                    "stream message needs exactly one Content-Length", header="Content-Length"
                )
            end = body_at + lengths.pop()
            if end > self._limits.max_message_bytes:
                raise SipParseError("message over the size limit", header="Content-Length")
            if len(self._buffer) < end:
                return out
            chunk = bytes(self._buffer[:end])
            del self._buffer[:end]
            out.append(parse_message(chunk, self._limits))

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buffer)
