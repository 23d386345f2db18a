"""Minimal RTCP (RFC 3550 section 6.4): sender and receiver reports.

``parse_compound`` reads a compound RTCP datagram and returns its SR/RR packets,
skipping other types (SDES, BYE, APP, feedback) by their length field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PT_SR = 200
PT_RR = 201
_HDR = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IIIIII")
_SR_INFO = struct.Struct("!IIIII")


class RtcpParseError(ValueError):
    """The bytes are not well-formed RTCP; the message says why."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # lost fraction since the last report, in 1/256
    cumulative_lost: int  # signed 24-bit
    highest_seq: int  # extended highest sequence number received
    jitter: int  # timestamp units
    last_sr: int  # middle 32 bits of the last SR's NTP timestamp
    delay_since_last_sr: int  # 1/65536 s

    def to_bytes(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | lost,
            self.highest_seq,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        )

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fl, hs, jit, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        lost = fl & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, fl >> 24, lost, hs, jit, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP time
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def to_bytes(self) -> bytes:
        return _pack(PT_SR, self.ssrc, self._info() + _blocks(self.reports), len(self.reports))

    def _info(self) -> bytes:
        ntp = self.ntp_timestamp
        return _SR_INFO.pack(
            ntp >> 32, ntp & 0xFFFFFFFF, self.rtp_timestamp, self.packet_count, self.octet_count
        )


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def to_bytes(self) -> bytes:
        return _pack(PT_RR, self.ssrc, _blocks(self.reports), len(self.reports))


RtcpReport = SenderReport | ReceiverReport


def _blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    if len(reports) > 31:
        raise ValueError(f"{len(reports)} report blocks, at most 31 fit one packet")
    return b"".join(r.to_bytes() for r in reports)


def _pack(pt: int, ssrc: int, body: bytes, count: int) -> bytes:
    words = (4 + len(body)) // 4  # length field: 32-bit words minus one, after the header
    return _HDR.pack(0x80 | count, pt, words) + struct.pack("!I", ssrc) + body


def parse_compound(data: bytes) -> list[RtcpReport]:
    out: list[RtcpReport] = []
    offset, n = 0, len(data)
    if n < 4:
        raise RtcpParseError(f"RTCP datagram is {n} bytes, shorter than a header")
    while offset < n:
        if offset + 4 > n:
            raise RtcpParseError(f"truncated RTCP header at byte {offset}")
        b0, pt, words = _HDR.unpack_from(data, offset)
        if b0 >> 6 != 2:
            raise RtcpParseError(f"RTCP version {b0 >> 6} at byte {offset}, expected 2")
        end = offset + 4 * (words + 1)
        if end > n:
            raise RtcpParseError(f"RTCP packet at byte {offset} claims {end - offset} bytes")
        count = b0 & 0x1F
        body = offset + 4
        if pt in (PT_SR, PT_RR):
            fixed = 4 + (_SR_INFO.size if pt == PT_SR else 0)
            if body + fixed + count * _BLOCK.size > end:
                raise RtcpParseError(f"RTCP {pt} at byte {offset} too short for {count} blocks")
            (ssrc,) = struct.unpack_from("!I", data, body)
            first = body + fixed
            blocks = tuple(ReportBlock.parse(data, first + i * _BLOCK.size) for i in range(count))
            if pt == PT_SR:
                hi, lo, rtp_ts, pc, oc = _SR_INFO.unpack_from(data, body + 4)
                out.append(SenderReport(ssrc, (hi << 32) | lo, rtp_ts, pc, oc, blocks))
            else:
                out.append(ReceiverReport(ssrc, blocks))
        offset = end
    return out
