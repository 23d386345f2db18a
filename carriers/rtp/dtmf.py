"""RFC 4733 telephone-event: DTMF digits carried as RTP events, not audio.

One event is a run of packets sharing one RTP timestamp (the event start): the
first has the marker bit, updates grow ``duration``, and the end is sent three
times with the E bit for robustness against loss.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from carriers.rtp.packet import RtpPacket

DIGITS = "0123456789*#ABCD"
_EVENT = struct.Struct("!BBH")


class DtmfParseError(ValueError):
    """A telephone-event payload that cannot be read."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-byte payload: event code, end bit, volume (-dBm0, 0..63), duration (samples)."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"event code {self.event} not in 0..255")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} not in 0..63")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"duration {self.duration} not in 0..65535")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise DtmfParseError(f"telephone-event payload is {len(payload)} bytes, need 4")
        event, flags, duration = _EVENT.unpack_from(payload, 0)
        # The R bit (0x40) is reserved: ignored on receipt.
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def to_bytes(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def event_code(digit: str) -> int:
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit (one of {DIGITS})")
    return code


@dataclass(frozen=True, slots=True)
class DigitEvent:
    """One received digit; ``timestamp`` is the RTP timestamp the event started at."""

    digit: str
    duration_s: float
    timestamp: int
    ended: bool = True  # False if its end packets were lost and a later event closed it


class DtmfReceiver:
    """Turns a telephone-event packet stream into one :class:`DigitEvent` per key press."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self._rate = clock_rate
        self._current_ts: int | None = None
        self._current: TelephoneEvent | None = None
        self._done_ts: set[int] = set()

    def receive(self, packet: RtpPacket) -> list[DigitEvent]:
        """Feed one telephone-event packet; return the digits it completes (0, 1 or 2)."""
        ev = TelephoneEvent.parse(packet.payload)
        out: list[DigitEvent] = []
        if packet.timestamp in self._done_ts:
            return out  # redundant end (or straggling update) of a finished event
        if self._current_ts is not None and packet.timestamp != self._current_ts:
            out.extend(self._close(ended=False))
        self._current_ts = packet.timestamp
        if self._current is None or ev.duration >= self._current.duration:
            self._current = ev
        if ev.end:
            out.extend(self._close(ended=True))
        return out

    def flush(self) -> list[DigitEvent]:
        """Report an event whose end packets never came (call on hang-up or timeout)."""
        return self._close(ended=False)

    def _close(self, ended: bool) -> list[DigitEvent]:
        ev, ts = self._current, self._current_ts
        self._current = self._current_ts = None
        if ev is None or ts is None:
            return []
        if len(self._done_ts) > 64:
            self._done_ts.clear()
        self._done_ts.add(ts)
        digit = ev.digit
        if digit is None:
            return []  # a non-DTMF event (flash, tones): not a digit
        return [DigitEvent(digit, ev.duration / self._rate, ts, ended)]


def digit_payloads(
    digit: str,
    duration_s: float = 0.1,
    volume: int = 10,
    packet_samples: int = 160,
    clock_rate: int = 8000,
) -> list[tuple[bytes, bool]]:
    """The payloads (and marker bits) to send one per packet interval, all with one
    timestamp: start with marker, updates, then the end packet three times."""
    code = event_code(digit)
    total = max(packet_samples, round(duration_s * clock_rate))
    if total > 0xFFFF:
        raise ValueError(f"DTMF duration {duration_s} s too long for one event")
    out: list[tuple[bytes, bool]] = []
    d = packet_samples
    while d < total:
        out.append((TelephoneEvent(code, False, volume, d).to_bytes(), not out))
        d += packet_samples
    end = TelephoneEvent(code, True, volume, total).to_bytes()
    out.append((end, not out))
    out.extend([(end, False), (end, False)])
    return out
