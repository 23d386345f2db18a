"""``MediaSession``: the sans-IO media side of one call leg (RTP in, RTP out).

Feed datagrams with :meth:`MediaSession.receive_datagram`; take decoded 20 ms
frames (with their media time, RTP timestamp / 8000 from the first packet) and
DTMF digits from :meth:`MediaSession.next_event`.  Queue audio with
:meth:`play` or :meth:`play_payloads` and digits with :meth:`send_dtmf`; call
:meth:`handle_timer` at :meth:`get_timer` and send :meth:`datagrams_to_send`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from carriers.rtp import g711
from carriers.rtp.dtmf import DigitEvent, DtmfParseError, DtmfReceiver, digit_payloads
from carriers.rtp.jitter import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Frame,
    JitterBuffer,
    JitterParams,
)
from carriers.rtp.packet import RtpPacket, RtpParseError, seq_delta, ts_delta

MediaEvent = Frame | DigitEvent

# G.711 law to law, code by code (through the linear value each code stands for):
# a bridge between a PCMU leg and a PCMA leg translates payload bytes, no arithmetic
_U2A = g711.encode(g711.decode(bytes(range(256)), g711.PT_PCMU), g711.PT_PCMA)
_A2U = g711.encode(g711.decode(bytes(range(256)), g711.PT_PCMA), g711.PT_PCMU)

PTIME = FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class MediaParams:
    jitter: JitterParams = field(default_factory=JitterParams)
    ssrc_switch_after: float = 0.5  # remote silent this long: a new SSRC is a legitimate change
    max_send_lag: float = 0.2  # further behind than this, drop pacing debt instead of bursting
    dtmf_duration: float = 0.1
    dtmf_volume: int = 10


@dataclass(slots=True)
class ReceiveStats:
    received: int = 0  # valid RTP packets from the current remote SSRC (incl. duplicates)
    malformed: int = 0
    foreign: int = 0  # from another SSRC or with an unexpected payload type
    duplicates: int = 0
    late: int = 0
    lost: int = 0  # RFC 3550 cumulative lost: expected - received (unique)
    jitter_samples: float = 0.0  # RFC 3550 A.8 interarrival jitter, timestamp units
    ssrc_changes: int = 0

    @property
    def jitter_s(self) -> float:
        return self.jitter_samples / SAMPLE_RATE


class MediaSession:
    def __init__(
        self,
        payload_type: int = g711.PT_PCMU,
        telephone_event_pt: int | None = 101,
        rng: np.random.Generator | int | None = None,
        local_ssrc: int | None = None,
        params: MediaParams | None = None,
    ) -> None:
        if payload_type not in (g711.PT_PCMU, g711.PT_PCMA):
            raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)")
        if telephone_event_pt is not None and not 96 <= telephone_event_pt <= 127:
            raise ValueError(f"telephone-event payload type {telephone_event_pt} not dynamic")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.payload_type = payload_type
        self.telephone_event_pt = telephone_event_pt
        self.params = params or MediaParams()
        self.local_ssrc = int(gen.integers(0, 2**32)) if local_ssrc is None else local_ssrc
        self._seq = int(gen.integers(0, 2**16))
        self._ts = int(gen.integers(0, 2**32))
        self.stats = ReceiveStats()
        self.sent_packets = 0
        # Receive side.
        self.remote_ssrc: int | None = None
        self._jitter = JitterBuffer(self.params.jitter, self._decode_audio)
        self._dtmf_rx = DtmfReceiver()
        self._base_ts = 0
        self._media_offset = 0.0  # media time carried over an SSRC change
        self._last_arrival = 0.0
        self._last_arrival_media = 0.0  # media time of the latest packet's timestamp
        self._base_seq_ext = 0
        self._highest_ext = 0
        self._unique = 0
        self._transit: float | None = None
        self._seen: set[int] = set()
        self._lost_before = 0  # losses counted on earlier SSRCs of this leg
        self._dup_base = self._late_base = 0
        self._events: deque[MediaEvent] = deque()
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_time = 0.0
        # Send side.
        self._audio: deque[bytes] = deque()
        self._dtmf_tx: deque[tuple[bytes, bool, int]] = deque()
        self._next_send: float | None = None
        self._last_sent_at: float | None = None
        self._talkspurt = True
        self._out: list[bytes] = []
        # relaying (see relay_packet): our timestamp minus the source's, per source SSRC
        self._relay_offset: int | None = None
        self._relay_ssrc: int | None = None

    # -- receiving --------------------------------------------------------

    def receive_datagram(self, data: bytes, now: float) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            self.stats.malformed += 1
            return
        pt = packet.payload_type
        is_dtmf = pt == self.telephone_event_pt
        if not is_dtmf and pt not in (g711.PT_PCMU, g711.PT_PCMA):
            self.stats.foreign += 1
            return
        if packet.ssrc != self.remote_ssrc:
            if self.remote_ssrc is None:
                self._start_stream(packet, now, media_offset=0.0)
            elif now - self._last_arrival >= self.params.ssrc_switch_after:
                self._flush_receive(now)
                gap = now - self._last_arrival
                self._start_stream(packet, now, self._last_arrival_media + gap)
                self.stats.ssrc_changes += 1
            else:
                self.stats.foreign += 1
                return
        self._last_arrival = now
        self._count(packet, now)
        if is_dtmf:
            try:
                self._events.extend(self._dtmf_rx.receive(packet))
            except DtmfParseError:
                self.stats.malformed += 1
        # Event packets share the sequence space: buffering them (as empty frames)
        # keeps the jitter buffer from taking their numbers for lost audio.
        self._jitter.push(packet, now)
        self._emit_frames(self._jitter.pop_ready(now))
        js = self._jitter.stats
        self.stats.duplicates = self._dup_base + js.duplicates
        self.stats.late = self._late_base + js.late

    def _decode_audio(self, packet: RtpPacket) -> npt.NDArray[np.int16]:
        if packet.payload_type in (g711.PT_PCMU, g711.PT_PCMA):
            return g711.decode(packet.payload, packet.payload_type)
        return np.zeros(0, dtype=np.int16)

    def _start_stream(self, packet: RtpPacket, now: float, media_offset: float) -> None:
        self.remote_ssrc = packet.ssrc
        self._dup_base, self._late_base = self.stats.duplicates, self.stats.late
        self._jitter = JitterBuffer(self.params.jitter, self._decode_audio)
        self._dtmf_rx = DtmfReceiver()
        self._base_ts = packet.timestamp
        self._media_offset = media_offset
        self._base_seq_ext = self._highest_ext = packet.sequence
        self._unique = 0
        self._transit = None
        self._seen = set()

    def _count(self, packet: RtpPacket, now: float) -> None:
        self.stats.received += 1
        ext = self._highest_ext + seq_delta(packet.sequence, self._highest_ext & 0xFFFF)
        if ext not in self._seen:
            self._unique += 1
            self._seen.add(ext)
            if len(self._seen) > 4096:
                self._seen = {s for s in self._seen if s > ext - 1024}
        self._highest_ext = max(self._highest_ext, ext)
        expected = self._highest_ext - self._base_seq_ext + 1
        self.stats.lost = max(0, expected - self._unique) + self._lost_before
        # RFC 3550 A.8: transit difference in timestamp units, smoothed by 1/16.
        media_ts = ts_delta(packet.timestamp, self._base_ts)
        self._last_arrival_media = self._media_offset + media_ts / SAMPLE_RATE
        transit = now * SAMPLE_RATE - media_ts
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.stats.jitter_samples += (d - self.stats.jitter_samples) / 16
        self._transit = transit

    def _flush_receive(self, now: float) -> None:
        self._lost_before = self.stats.lost
        self._emit_frames(self._jitter.pop_ready(now + 3600.0))
        self._events.extend(self._dtmf_rx.flush())
        if len(self._pending):
            pad = np.zeros(FRAME_SAMPLES - len(self._pending), dtype=np.int16)
            self._events.append(Frame(self._pending_time, np.concatenate([self._pending, pad])))
            self._pending = np.zeros(0, dtype=np.int16)

    def _emit_frames(self, frames: list[Frame]) -> None:
        # Re-cut to 20 ms frames whatever packet size the far end uses.
        for f in frames:
            if not len(f.samples):
                continue
            t = f.media_time + self._media_offset
            if len(f.samples) == FRAME_SAMPLES and not len(self._pending):
                self._events.append(Frame(t, f.samples, f.concealed) if t != f.media_time else f)
                continue
            if not len(self._pending):
                self._pending_time = t
            self._pending = np.concatenate([self._pending, f.samples])
            while len(self._pending) >= FRAME_SAMPLES:
                chunk, self._pending = (
                    self._pending[:FRAME_SAMPLES],
                    self._pending[FRAME_SAMPLES:],
                )
                self._events.append(Frame(self._pending_time, chunk, f.concealed))
                self._pending_time += PTIME

    def next_event(self) -> MediaEvent | None:
        """The next received frame or DTMF digit, or None."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[MediaEvent]:
        out = list(self._events)
        self._events.clear()
        return out

    def frames(self) -> list[Frame]:
        """Received audio frames only (DTMF digits stay queued for :meth:`next_event`)."""
        frames = [e for e in self._events if isinstance(e, Frame)]
        self._events = deque(e for e in self._events if not isinstance(e, Frame))
        return frames

    # -- sending ----------------------------------------------------------

    def play(self, samples: npt.NDArray[np.int16]) -> None:
        """Queue 8 kHz int16 audio; the last partial frame is padded with silence."""
        arr = np.asarray(samples)
        if arr.dtype != np.int16 or arr.ndim != 1:
            raise TypeError(f"play() takes 1-D int16 samples, got {arr.dtype} {arr.shape}")
        rem = len(arr) % FRAME_SAMPLES
        if rem:
            arr = np.concatenate([arr, np.zeros(FRAME_SAMPLES - rem, dtype=np.int16)])
        data = g711.encode(arr, self.payload_type)
        n = FRAME_SAMPLES
        self.play_payloads([data[i : i + n] for i in range(0, len(data), n)])

    def play_payloads(self, payloads: list[bytes]) -> None:
        """Queue pre-encoded 160-byte payloads in this session's payload type."""
        self._audio.extend(payloads)

    def stop_playing(self) -> None:
        self._audio.clear()

    def trim(self, max_frames: int) -> int:
        """Drop the oldest queued audio frames beyond ``max_frames``; how many went."""
        n = len(self._audio) - max_frames
        for _ in range(n):
            self._audio.popleft()
        return max(0, n)

    @property
    def queued_frames(self) -> int:
        """Audio frames not yet sent (0 means a play has finished)."""
        return len(self._audio)

    def send_dtmf(self, digit: str, duration_s: float | None = None) -> None:
        if self.telephone_event_pt is None:
            raise ValueError("no telephone-event payload type negotiated")
        dur = self.params.dtmf_duration if duration_s is None else duration_s
        payloads = digit_payloads(digit, dur, self.params.dtmf_volume)
        n_slots = len(payloads) - 2  # the last two are redundant ends, not new time
        for i, (p, m) in enumerate(payloads):
            self._dtmf_tx.append((p, m, FRAME_SAMPLES * n_slots if i == len(payloads) - 1 else 0))

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due, or None.  A time in the past (0.0
        right after :meth:`play` or :meth:`send_dtmf` on an idle leg) means "now"."""
        timers = [t for t in (self._jitter.get_timer(),) if t is not None]
        if self._audio or self._dtmf_tx:
            timers.append(0.0 if self._next_send is None else self._next_send)
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        self._emit_frames(self._jitter.pop_ready(now))
        if not (self._audio or self._dtmf_tx):
            return
        if self._next_send is None or now - self._next_send > self.params.max_send_lag:
            self._begin_talkspurt(now)
        assert self._next_send is not None
        while (self._audio or self._dtmf_tx) and now >= self._next_send:
            self._send_one()
            self._next_send += PTIME
        if not (self._audio or self._dtmf_tx):
            self._next_send = None

    def _begin_talkspurt(self, now: float) -> None:
        if self._last_sent_at is not None:
            # Keep the timestamp running in real time across silence (RFC 3550 5.1).
            slots = max(1, round((now - self._last_sent_at) / PTIME))
            self._ts = (self._ts + FRAME_SAMPLES * (slots - 1)) & 0xFFFFFFFF
        self._next_send = now
        self._talkspurt = True

    def _send_one(self) -> None:
        self._relay_offset = None  # our own audio in between: re-anchor the next relay
        if self._dtmf_tx:
            payload, marker, advance = self._dtmf_tx.popleft()
            pt = self.telephone_event_pt
            assert pt is not None
            ts = self._ts
            if advance:
                self._ts = (self._ts + advance) & 0xFFFFFFFF
        else:
            payload, pt, ts = self._audio.popleft(), self.payload_type, self._ts
            marker = self._talkspurt
            self._ts = (self._ts + len(payload)) & 0xFFFFFFFF
        self._talkspurt = False
        pkt = RtpPacket(pt, self._seq, ts, self.local_ssrc, payload, marker=marker)
        self._seq = (self._seq + 1) & 0xFFFF
        self._out.append(pkt.to_bytes())
        self.sent_packets += 1
        assert self._next_send is not None
        self._last_sent_at = self._next_send

    def datagrams_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    @property
    def idle(self) -> bool:
        """Nothing of our own queued to send (no prompt, tone or digit)."""
        return not (self._audio or self._dtmf_tx)

    def relay_packet(self, packet: RtpPacket, src_event_pt: int | None, now: float) -> bytes | None:
        """A packet received on the bridged leg, re-sent at once as ours: our SSRC
        and sequence, its timestamps moved onto our timeline (so its own spacing,
        gaps and DTMF event timestamps are kept), PCMU/PCMA translated to our
        codec.  None for what we cannot carry.  Forwarding as packets arrive, with
        no jitter buffer of ours on the way, is what keeps a bridge's delay and
        cost low; the phone at the end has its own jitter buffer."""
        pt = packet.payload_type
        payload = packet.payload
        if pt == src_event_pt and src_event_pt is not None:
            if self.telephone_event_pt is None:
                return None
            out_pt = self.telephone_event_pt
        elif pt == g711.PT_PCMU or pt == g711.PT_PCMA:
            if pt != self.payload_type:
                payload = payload.translate(_U2A if pt == g711.PT_PCMU else _A2U)
            out_pt = self.payload_type
        else:
            return None
        if self._relay_offset is None or self._relay_ssrc != packet.ssrc:
            self._relay_offset = (self._ts - packet.timestamp) & 0xFFFFFFFF
            self._relay_ssrc = packet.ssrc
        ts = (packet.timestamp + self._relay_offset) & 0xFFFFFFFF
        data = RtpPacket(out_pt, self._seq, ts, self.local_ssrc, payload, packet.marker).to_bytes()
        self._seq = (self._seq + 1) & 0xFFFF
        if out_pt == self.payload_type:
            self._ts = (ts + len(payload)) & 0xFFFFFFFF
        self._last_sent_at = now
        self.sent_packets += 1
        return data


def relay(src: MediaSession, dst: MediaSession) -> int:
    """Bridge: move every event received on ``src`` to ``dst`` for sending.

    Audio is decoded on receipt and re-encoded in ``dst``'s payload type, which is
    exact PCMU<->PCMA transcoding (and lossless when both legs match); digits are
    re-sent as RFC 4733 events.  Returns how many events were moved.
    """
    n = 0
    while (ev := src.next_event()) is not None:
        n += 1
        if isinstance(ev, Frame):
            dst.play(ev.samples)
        elif dst.telephone_event_pt is not None:
            dst.send_dtmf(ev.digit, ev.duration_s)
    return n
