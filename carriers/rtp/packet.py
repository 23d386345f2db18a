"""RTP packets (RFC 3550 section 5.1): a frozen value that parses and serialises.

``RtpPacket.parse(data)`` and ``packet.to_bytes()`` are inverse: a packet with
padding or a header extension serialises back to the same bytes it came from.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
_FIXED = struct.Struct("!BBHII")  # 12-byte fixed header


class RtpParseError(ValueError):
    """The bytes are not a well-formed RTP packet; the message says why."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 5.3.1): 16-bit profile id and 32-bit-word data."""

    profile: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile {self.profile} is not 16-bit")
        if len(self.data) % 4:
            raise ValueError(f"extension data is {len(self.data)} bytes, not a multiple of 4")
        if len(self.data) // 4 > 0xFFFF:
            raise ValueError("extension data longer than 65535 words")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0  # number of padding bytes including the final count byte; 0 = none

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} is not 7-bit")
        if not 0 <= self.sequence <= 0xFFFF:
            raise ValueError(f"sequence {self.sequence} is not 16-bit")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp {self.timestamp} is not 32-bit")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise ValueError(f"ssrc {self.ssrc} is not 32-bit")
        if len(self.csrcs) > 15:
            raise ValueError(f"{len(self.csrcs)} CSRCs, at most 15 allowed")
        for c in self.csrcs:
            if not 0 <= c <= 0xFFFFFFFF:
                raise ValueError(f"csrc {c} is not 32-bit")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding {self.padding} not in 0..255")

    @classmethod
    def parse(cls, data: bytes, keep_extension: bool = True) -> RtpPacket:
        """Parse one datagram; raise :class:`RtpParseError` saying what is wrong.

        With ``keep_extension=False`` a header extension is checked and skipped
        (``extension`` is None), so the result no longer serialises to ``data``.
        """
        n = len(data)
        if n < _FIXED.size:
            raise RtpParseError(f"packet is {n} bytes, shorter than the 12-byte RTP header")
        b0, b1, seq, ts, ssrc = _FIXED.unpack_from(data, 0)
        version = b0 >> 6
        if version != RTP_VERSION:
            raise RtpParseError(f"RTP version is {version}, expected 2")
        has_padding = bool(b0 & 0x20)
        has_ext = bool(b0 & 0x10)
        cc = b0 & 0x0F
        offset = _FIXED.size
        end_csrc = offset + 4 * cc
        if end_csrc > n:
            raise RtpParseError(f"CSRC count {cc} needs {end_csrc} bytes, packet has {n}")
        csrcs = struct.unpack_from(f"!{cc}I", data, offset) if cc else ()
        offset = end_csrc
        extension: RtpExtension | None = None
        if has_ext:
            if offset + 4 > n:
                raise RtpParseError(f"extension header at byte {offset} runs past the end ({n})")
            profile, words = struct.unpack_from("!HH", data, offset)
            ext_end = offset + 4 + 4 * words
            if ext_end > n:
                raise RtpParseError(
                    f"extension of {words} words at byte {offset} runs past the end ({n})"
                )
            if keep_extension:
                extension = RtpExtension(profile, bytes(data[offset + 4 : ext_end]))
            offset = ext_end
        end = n
        pad = 0
        if has_padding:
            if n == offset:
                raise RtpParseError("padding bit set but there is no padding count byte")
            pad = data[n - 1]
            if pad == 0:
                raise RtpParseError("padding bit set but the padding count is 0")
            if pad > n - offset:
                raise RtpParseError(
                    f"padding count {pad} exceeds the {n - offset} bytes after the header"
                )
            end = n - pad
        return cls(
            payload_type=b1 & 0x7F,
            sequence=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(b1 & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
            padding=pad,
        )

    def to_bytes(self) -> bytes:
        b0 = (RTP_VERSION << 6) | len(self.csrcs)
        if self.padding:
            b0 |= 0x20
        if self.extension is not None:
            b0 |= 0x10
        b1 = self.payload_type | (0x80 if self.marker else 0)
        parts = [_FIXED.pack(b0, b1, self.sequence, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            ext = self.extension
            parts.append(struct.pack("!HH", ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            # Padding bytes before the count are zero on the wire (RFC 3550 5.1).
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def seq_delta(a: int, b: int) -> int:
    """Signed distance from sequence ``b`` to ``a`` modulo 2**16, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(a: int, b: int) -> int:
    """Signed distance from timestamp ``b`` to ``a`` modulo 2**32."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000
