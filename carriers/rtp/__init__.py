"""Sans-IO RTP media core for SIP trunks: no sockets, no event loop, no clock reads.

Every object takes the current time as a float argument (``now``, seconds on the
caller's monotonic clock) and says when it next needs attention via ``get_timer()``.

Typical use by a SIP carrier, one :class:`MediaSession` per call leg::

    leg = MediaSession(payload_type=PT_PCMU, telephone_event_pt=101, rng=generator)
    # UDP datagram arrived:
    leg.receive_datagram(data, now)
    while (ev := leg.next_event()) is not None:
        if isinstance(ev, Frame):      # 160 int16 samples, ev.media_time in seconds
            ...                        # (RTP timestamp / 8000 since the first packet)
        else:                          # DigitEvent: ev.digit, ev.duration_s
            ...
    # Outgoing audio / DTMF:
    leg.play(samples)                  # or leg.play_payloads(prompt.payloads(leg.payload_type))
    leg.send_dtmf("5")
    # Timer: call handle_timer at get_timer(), then send what it produced.
    leg.handle_timer(now)
    for datagram in leg.datagrams_to_send():
        transport.sendto(datagram, remote_addr)
    # leg.queued_frames == 0 means a play() has been fully sent (fire on_done).
    # Bridging two legs (transcodes PCMU<->PCMA, re-sends DTMF): relay(customer, agent)

Modules:

- :mod:`.packet`: :class:`RtpPacket` ``parse(bytes)`` / ``to_bytes()`` (RFC 3550),
  :class:`RtpParseError`, ``seq_delta`` / ``ts_delta`` for 16/32-bit wrap-around.
- :mod:`.g711`: PCMU/PCMA ``encode(samples, pt)``, ``decode(payload, pt)``,
  ``transcode(payload, from_pt, to_pt)`` with numpy lookup tables.
- :mod:`.jitter`: :class:`JitterBuffer` (``push(packet, now)``, ``pop_ready(now)``,
  ``get_timer()``) and :class:`JitterParams`.
- :mod:`.dtmf`: RFC 4733 :class:`TelephoneEvent`, :class:`DtmfReceiver`,
  ``digit_payloads`` for sending.
- :mod:`.session`: :class:`MediaSession`, :class:`MediaParams`, ``relay``.
- :mod:`.prompt`: ``load_wav(path)`` -> :class:`Prompt` (8 kHz int16 plus pre-encoded
  160-byte PCMU/PCMA payloads); :class:`PromptError` names the file.
- :mod:`.rtcp`: minimal RFC 3550 :class:`SenderReport` / :class:`ReceiverReport`
  build and ``parse_compound`` (other RTCP types skipped).  Not wired into
  :class:`MediaSession`; ``MediaSession.stats`` has what an RR block needs.
"""

from carriers.rtp.dtmf import DigitEvent, DtmfParseError, DtmfReceiver, TelephoneEvent
from carriers.rtp.g711 import PT_PCMA, PT_PCMU
from carriers.rtp.jitter import Concealment, Frame, JitterBuffer, JitterParams
from carriers.rtp.packet import RtpExtension, RtpPacket, RtpParseError
from carriers.rtp.prompt import Prompt, PromptError, load_wav
from carriers.rtp.session import MediaEvent, MediaParams, MediaSession, ReceiveStats, relay

__all__ = [
    "PT_PCMA",
    "PT_PCMU",
    "Concealment",
    "DigitEvent",
    "DtmfParseError",
    "DtmfReceiver",
    "Frame",
    "JitterBuffer",
    "JitterParams",
    "MediaEvent",
    "MediaParams",
    "MediaSession",
    "Prompt",
    "PromptError",
    "ReceiveStats",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "TelephoneEvent",
    "load_wav",
    "relay",
]
