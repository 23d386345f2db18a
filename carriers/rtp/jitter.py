"""A small sans-IO jitter buffer for one RTP stream of 8 kHz G.711 audio.

Packets are keyed by extended (unwrapped) sequence number.  The next packet in
sequence is released as soon as it is present; a missing one is waited for until
its playout deadline (arrival time of the first packet + its media time +
``playout_delay``) and then concealed with silence or a repeat of the last frame,
but only once a later packet proves the gap (a sender that pauses is not a loss).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from carriers.rtp import g711
from carriers.rtp.packet import RtpPacket, seq_delta, ts_delta

SAMPLE_RATE = 8000  # G.711 RTP clock (carriers.base.SAMPLE_RATE; not imported to stay sans-deps)
FRAME_SAMPLES = 160

Int16Array = npt.NDArray[np.int16]


class Concealment(StrEnum):
    SILENCE = "silence"
    REPEAT = "repeat"  # repeat the last good frame (once per gap frame)


@dataclass(frozen=True, slots=True)
class JitterParams:
    playout_delay: float = 0.06  # how long to wait for a missing packet past its due time
    max_packets: int = 50  # buffered packets beyond this force the gap closed (1 s of audio)
    concealment: Concealment = Concealment.SILENCE
    resync_gap: int = 500  # a sequence jump this large is a new stream, not a loss


@dataclass(frozen=True, slots=True)
class Frame:
    """Decoded audio with its media time: RTP timestamp / 8000 relative to the first packet."""

    media_time: float
    samples: Int16Array
    concealed: bool = False


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0  # frames concealed or skipped because their packet never came
    resyncs: int = 0


def _decode(packet: RtpPacket) -> Int16Array:
    return g711.decode(packet.payload, packet.payload_type)


class JitterBuffer:
    def __init__(
        self,
        params: JitterParams | None = None,
        decode: Callable[[RtpPacket], Int16Array] = _decode,
    ) -> None:
        self.params = params or JitterParams()
        self.stats = JitterStats()
        self._decode = decode
        self._packets: dict[int, RtpPacket] = {}
        self._released: deque[int] = deque(maxlen=128)
        self._released_set: set[int] = set()
        self._started = False
        self._t0 = 0.0
        self._base_ts = 0
        self._highest = 0  # highest extended sequence seen
        self._next = 0  # extended sequence of the next frame to release
        self._next_ts = 0  # expected timestamp offset (samples from base) of that frame
        self._last: Int16Array = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._ready: list[Frame] = []

    def __len__(self) -> int:
        return len(self._packets)

    def push(self, packet: RtpPacket, now: float) -> None:
        if not self._started:
            self._started = True
            self._t0 = now
            self._base_ts = packet.timestamp
            self._highest = self._next = packet.sequence
            self._next_ts = 0
        ext = self._highest + seq_delta(packet.sequence, self._highest & 0xFFFF)
        self.stats.received += 1
        if ext in self._packets or ext in self._released_set:
            self.stats.duplicates += 1
            return
        if abs(ext - self._next) > self.params.resync_gap:
            # A sender restart (same SSRC, new sequence base) forward or backward.
            self._resync(packet, ext, now)
        elif ext < self._next:
            self.stats.late += 1
            return
        self._highest = max(self._highest, ext)
        self._packets[ext] = packet
        while len(self._packets) > self.params.max_packets:
            # Overfull: give up on the gap and release what we have.
            self._skip_to(min(self._packets))
            self._release_present()

    def _resync(self, packet: RtpPacket, ext: int, now: float) -> None:
        self._release_all()
        self.stats.resyncs += 1
        self._highest = self._next = ext
        self._next_ts = ts_delta(packet.timestamp, self._base_ts)
        self._t0 = now - self._next_ts / SAMPLE_RATE

    def _release_all(self) -> None:
        while self._packets:
            self._skip_to(min(self._packets))
            self._release_present()

    def _skip_to(self, ext: int) -> None:
        self.stats.lost += ext - self._next
        self._next = ext
        self._next_ts = ts_delta(self._packets[ext].timestamp, self._base_ts)

    def _release_present(self) -> None:
        while self._next in self._packets:
            packet = self._packets.pop(self._next)
            samples = self._decode(packet)
            ts = ts_delta(packet.timestamp, self._base_ts)
            self._ready.append(Frame(ts / SAMPLE_RATE, samples))
            if len(samples):
                self._last = samples
            self._mark_released(self._next)
            self._next += 1
            self._next_ts = ts + max(len(samples), 1)

    def _mark_released(self, ext: int) -> None:
        if len(self._released) == self._released.maxlen:
            self._released_set.discard(self._released[0])
        self._released.append(ext)
        self._released_set.add(ext)

    def _deadline(self) -> float:
        return self._t0 + self._next_ts / SAMPLE_RATE + self.params.playout_delay

    def get_timer(self) -> float | None:
        """When a missing packet will be given up on, or None when nothing is waiting."""
        if self._packets and self._next not in self._packets:
            return self._deadline()
        return None

    def pop_ready(self, now: float) -> list[Frame]:
        """Frames playable at ``now``, in order, concealing overdue gaps."""
        self._release_present()
        while self._packets and now >= self._deadline():
            n = len(self._last)
            if self.params.concealment is Concealment.REPEAT:
                samples = self._last.copy()
            else:
                samples = np.zeros(n, dtype=np.int16)
            self._ready.append(Frame(self._next_ts / SAMPLE_RATE, samples, concealed=True))
            self.stats.lost += 1
            self._next += 1
            self._next_ts += n
            self._release_present()
        out, self._ready = self._ready, []
        return out
