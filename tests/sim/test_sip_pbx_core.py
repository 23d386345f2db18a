"""The PBX core without sockets: a UAC Endpoint and the SipPbx exchange datagrams
in memory and time jumps from deadline to deadline, so timings are exact."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from amd.sit import SitDetector
from carriers.base import AudioClip
from carriers.rtp import g711
from carriers.rtp.dtmf import DigitEvent
from carriers.rtp.packet import RtpPacket
from carriers.rtp.session import MediaSession
from carriers.simulated import PartyBehaviour, PartyKind
from carriers.sip.endpoint import (
    Call,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgress,
    Endpoint,
    EndpointConfig,
    EndpointEvent,
)
from carriers.sip.sdp import PCMA, PCMU, Codec, build_offer, parse_sdp, remote_media
from sim.sip_pbx import CloseMedia, LegEnded, OpenMedia, SipPbx, SipPbxParams

UAC = ("127.0.0.1", 5070)
PBX = ("127.0.0.1", 5060)
CLIP = AudioClip("hello", (3000 * np.sin(np.arange(8000) / 5.0)).astype(np.int16), "human")


@dataclass
class Fixed:
    """A called-party model that always does the same thing."""

    behaviour: PartyBehaviour
    seen: list[str] = field(default_factory=list)

    def sample(self, number: str, now: float, rng: np.random.Generator) -> PartyBehaviour:
        self.seen.append(number)
        return self.behaviour


class Wire:
    def __init__(self, behaviour: PartyBehaviour, params: SipPbxParams | None = None) -> None:
        self.model = Fixed(behaviour)
        self.pbx = SipPbx(self.model, np.random.default_rng(1), params or SipPbxParams(), *PBX)
        self.uac = Endpoint(EndpointConfig(*UAC))
        self.now = 0.0
        self.pbx.start(0.0)
        self.events: list[tuple[float, EndpointEvent]] = []
        self.ended: list[LegEnded] = []
        self.rtp: list[tuple[float, str, RtpPacket, tuple[str, int]]] = []
        self.open_media = True  # answer OpenMedia at once
        self.pending_media: list[str] = []
        self.closed: list[str] = []
        self._port = 30000

    def invite(self, number: str = "+15550001", codecs: tuple[Codec, ...] = (PCMU, PCMA)) -> Call:
        offer = build_offer("127.0.0.1", 40000, 1, codecs=codecs).serialise()
        call = self.uac.invite(f"sip:{number}@127.0.0.1", offer, PBX, self.now)
        self.flush()
        return call

    def flush(self) -> None:
        moved = True
        while moved:
            moved = False
            for data, _ in self.uac.datagrams_to_send():
                moved = True
                self.pbx.receive_sip(data, UAC, self.now)
            for data, _ in self.pbx.sip_datagrams_to_send():
                moved = True
                self.uac.receive_datagram(data, PBX, self.now)
            while (ev := self.uac.next_event()) is not None:
                self.events.append((self.now, ev))
            while (pe := self.pbx.next_event()) is not None:
                moved = True
                if isinstance(pe, OpenMedia):
                    if self.open_media:
                        self.media_ready(pe.call_id)
                    else:
                        self.pending_media.append(pe.call_id)
                elif isinstance(pe, CloseMedia):
                    self.closed.append(pe.call_id)
                elif isinstance(pe, LegEnded):
                    self.ended.append(pe)
            for call_id, data, addr in self.pbx.rtp_datagrams_to_send():
                self.rtp.append((self.now, call_id, RtpPacket.parse(data), addr))

    def media_ready(self, call_id: str) -> None:
        self._port += 2
        self.pbx.media_opened(call_id, self._port, self.now)

    def run_until(self, t: float) -> None:
        while True:
            timers = [x for x in (self.pbx.get_timer(), self.uac.get_timer()) if x is not None]
            nxt = min(timers, default=None)
            if nxt is None or nxt > t:
                self.now = t
                return
            self.now = max(self.now, nxt)
            self.pbx.handle_timer(self.now)
            self.uac.handle_timer(self.now)
            self.flush()

    def first(self, kind: type, **match: object) -> tuple[float, EndpointEvent]:
        for t, ev in self.events:
            if isinstance(ev, kind) and all(getattr(ev, k) == v for k, v in match.items()):
                return t, ev
        raise AssertionError(f"no {kind.__name__} {match} in {self.events}")


def person(**kw: float) -> PartyBehaviour:
    args: dict[str, float] = {"ring_s": 2.0, "talk_s": 5.0, "patience_s": 3.0} | kw
    return PartyBehaviour(PartyKind.PERSON, clip=CLIP, **args)


def test_rings_answers_at_the_sampled_time_and_paces_rtp_at_20ms() -> None:
    w = Wire(person())
    w.invite("+15551230000")
    w.run_until(3.0)
    assert w.model.seen == ["+15551230000"]
    assert w.first(CallProgress, status=180)[0] == pytest.approx(0.4)  # post-dial delay
    t_answer, answered = w.first(CallAnswered)
    assert t_answer == pytest.approx(2.0)
    assert isinstance(answered, CallAnswered) and answered.sdp is not None
    assert remote_media(parse_sdp(answered.sdp)).port == 30002
    times = [t for t, *_ in w.rtp]
    assert times[0] == pytest.approx(2.0)
    assert len(w.rtp) == 50  # one second of 20 ms packets, none early, none bunched
    assert np.allclose(np.diff(times), 0.02)
    assert {addr for *_, addr in w.rtp} == {("127.0.0.1", 40000)}
    got = np.concatenate([g711.decode(p.payload, 0) for _, _, p, _ in w.rtp])
    np.testing.assert_array_equal(got, g711.decode(g711.encode(CLIP.samples, 0), 0))
    # After the clip: line noise, low but not digital silence.
    w.run_until(3.5)
    tail = np.concatenate([g711.decode(p.payload, 0) for _, _, p, _ in w.rtp[50:]])
    assert 20 < np.sqrt(np.mean(tail.astype(float) ** 2)) < 150


def test_patience_runs_out_without_audio() -> None:
    w = Wire(person(patience_s=3.0))
    w.invite()
    w.run_until(10.0)
    t_end, ended = w.first(CallEnded)
    assert isinstance(ended, CallEnded) and ended.by_remote
    assert t_end == pytest.approx(5.0)  # answered at 2.0, patience 3.0
    assert [e.hung_up_by for e in w.ended] == ["pbx"]
    assert w.closed == [w.ended[0].call_id]
    n = len(w.rtp)
    w.run_until(11.0)
    assert len(w.rtp) == n, "no RTP after the BYE"
    assert w.pbx.legs == {}


def test_heard_audio_keeps_the_person_for_talk_time() -> None:
    w = Wire(person(patience_s=3.0, talk_s=5.0))
    call = w.invite()
    w.run_until(2.5)
    loud = g711.encode((8000 * np.sin(np.arange(160))).astype(np.int16), 0)
    quiet = g711.encode(np.full(160, 50, dtype=np.int16), 0)
    w.pbx.receive_rtp(call.call_id, RtpPacket(0, 1, 0, 9, quiet).to_bytes(), UAC, 2.5)
    w.pbx.receive_rtp(call.call_id, b"\x00junk", UAC, 2.5)  # not RTP: ignored
    w.run_until(3.0)
    w.pbx.receive_rtp(call.call_id, RtpPacket(0, 2, 160, 9, loud).to_bytes(), UAC, 3.0)
    w.run_until(20.0)
    t_end, _ = w.first(CallEnded)
    assert t_end == pytest.approx(8.0)  # heard at 3.0, talked 5.0
    assert w.ended[0].heard_at == 3.0 and w.ended[0].rtp_received == 2


def test_without_patience_a_person_talks_for_talk_time() -> None:
    w = Wire(person(patience_s=1.0, talk_s=4.0), SipPbxParams(patience_needs_audio=False))
    w.invite()
    w.run_until(20.0)
    assert w.first(CallEnded)[0] == pytest.approx(6.0)


def test_machine_records_for_machine_s_and_pcma() -> None:
    b = PartyBehaviour(PartyKind.MACHINE, ring_s=1.0, clip=CLIP, machine_s=7.0)
    w = Wire(b)
    w.invite(codecs=(PCMA,))
    w.run_until(20.0)
    assert w.first(CallEnded)[0] == pytest.approx(8.0)
    assert {p.payload_type for _, _, p, _ in w.rtp} == {8}


@pytest.mark.parametrize(
    ("kind", "status", "at"), [(PartyKind.BUSY, 486, 2.0), (PartyKind.BAD_NUMBER, 404, 1.5)]
)
def test_refusals_come_after_the_tone_time(kind: PartyKind, status: int, at: float) -> None:
    w = Wire(PartyBehaviour(kind, ring_s=0.0))
    w.invite()
    w.run_until(5.0)
    t, failed = w.first(CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == status and t == pytest.approx(at)
    assert not any(isinstance(ev, CallProgress) for _, ev in w.events)
    assert w.rtp == [] and w.closed == []  # no RTP socket was ever asked for


def test_no_answer_rings_until_cancel_or_the_cap() -> None:
    w = Wire(PartyBehaviour(PartyKind.NO_ANSWER, ring_s=9.0), SipPbxParams(max_ring_s=60.0))
    call = w.invite()
    w.run_until(30.0)
    assert not any(isinstance(ev, CallFailed) for _, ev in w.events)
    w.uac.cancel(call, w.now)
    w.flush()
    assert w.first(CallFailed, status=487)[0] == 30.0
    assert w.ended[0].status == 487 and w.ended[0].cause == "cancelled by caller"
    w.invite()
    w.run_until(200.0)
    assert w.first(CallFailed, status=480)[0] == pytest.approx(30.0 + 0.4 + 60.0)


def test_channels_full_and_unavailable_rate_give_503() -> None:
    w = Wire(person(ring_s=50.0), SipPbxParams(channels=1))
    w.invite()
    w.invite()
    assert len(w.pbx.legs) == 1
    assert w.first(CallFailed, status=503)[0] == 0.0
    w2 = Wire(person(), SipPbxParams(unavailable_rate=1.0))
    w2.invite()
    assert w2.first(CallFailed, status=503)
    assert w2.model.seen == []  # refused before any party was drawn
    assert w2.pbx.counts["503"] == 1


def test_answer_waits_for_the_rtp_socket() -> None:
    w = Wire(person(ring_s=1.0))
    w.open_media = False
    w.invite()
    w.run_until(4.0)
    assert not any(isinstance(ev, CallAnswered) for _, ev in w.events)
    w.media_ready(w.pending_media[0])
    w.flush()
    assert w.first(CallAnswered)[0] == 4.0


def test_media_failure_refuses_the_call() -> None:
    w = Wire(person(ring_s=1.0))
    w.open_media = False
    w.invite()
    w.pbx.media_failed(w.pending_media[0], w.now)
    w.flush()
    assert w.first(CallFailed, status=503)


def test_offers_we_cannot_answer() -> None:
    w = Wire(person())
    w.invite(codecs=(Codec(18, "G729"),))
    assert w.first(CallFailed, status=488)
    w.uac.invite("sip:1@127.0.0.1", b"", PBX, 0.0)  # no offer at all
    w.flush()
    assert len([ev for _, ev in w.events if isinstance(ev, CallFailed)]) == 2
    assert w.model.seen == []


def test_reinvite_moves_the_rtp() -> None:
    w = Wire(person(patience_s=50.0))
    call = w.invite()
    w.run_until(2.5)
    assert call.dialog is not None
    # A session update from the caller with a new RTP port, in the dialog.
    new_offer = build_offer("127.0.0.1", 41000, 1, version=2).serialise()
    req = w.uac._in_dialog(call, "INVITE")
    req.add("Content-Type", "application/sdp")
    req.add("Contact", "<sip:dialer@127.0.0.1:5070>")
    req.body = new_offer
    w.pbx.receive_sip(req.serialise(), UAC, w.now)
    w.flush()
    w.run_until(3.0)
    dests = [addr for t, _, _, addr in w.rtp if t > 2.55]
    assert dests and set(dests) == {("127.0.0.1", 41000)}
    remote = w.pbx.legs[call.call_id].remote
    assert remote is not None and remote.codec.name == "PCMU"


def test_shutdown_hangs_up_everything() -> None:
    w = Wire(person(ring_s=1.0))
    w.invite()
    w.run_until(1.5)
    w2 = Wire(person(ring_s=9.0))
    w2.invite()
    for wire in (w, w2):
        wire.pbx.shutdown(wire.now)
        wire.flush()
    ended = w.first(CallEnded)[1]
    assert isinstance(ended, CallEnded) and ended.by_remote
    assert w2.first(CallFailed, status=503)
    assert w.pbx.legs == {} and w2.pbx.legs == {}


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="unavailable_rate"):
        SipPbxParams(unavailable_rate=1.5)
    with pytest.raises(ValueError, match="channels"):
        SipPbxParams(channels=0)


def test_early_media_ringback_then_the_greeting_on_the_same_sdp() -> None:
    w = Wire(person(ring_s=3.0), SipPbxParams(early_media=True))
    w.invite()
    w.run_until(4.0)
    t183, progress = w.first(CallProgress, status=183)
    assert t183 == pytest.approx(0.4) and isinstance(progress, CallProgress)
    assert progress.sdp is not None
    assert not any(isinstance(ev, CallProgress) and ev.status == 180 for _, ev in w.events)
    t200, answered = w.first(CallAnswered)
    assert t200 == pytest.approx(3.0) and isinstance(answered, CallAnswered)
    assert answered.sdp == progress.sdp  # one answer for the whole session
    early = [p for t, _, p, _ in w.rtp if t < 3.0 - 1e-9]
    assert len(early) == round((3.0 - 0.4) / 0.02)
    ring = np.concatenate([g711.decode(p.payload, 0) for p in early[:100]])  # 2 s tone
    spectrum = np.abs(np.fft.rfft(ring.astype(float)))
    peak = np.fft.rfftfreq(len(ring), 1 / 8000)[np.argmax(spectrum)]
    assert peak == pytest.approx(440, abs=5) or peak == pytest.approx(480, abs=5)
    after = [p for t, _, p, _ in w.rtp if t >= 3.0 - 1e-9]
    got = np.concatenate([g711.decode(p.payload, 0) for p in after[:50]])
    np.testing.assert_array_equal(got, g711.decode(g711.encode(CLIP.samples, 0), 0))


def test_early_media_bad_number_plays_sit_then_404() -> None:
    w = Wire(PartyBehaviour(PartyKind.BAD_NUMBER, ring_s=0.0), SipPbxParams(early_media=True))
    w.invite()
    w.run_until(5.0)
    assert w.first(CallProgress, status=183)[0] == pytest.approx(0.4)
    t404, _ = w.first(CallFailed, status=404)
    assert t404 == pytest.approx(0.4 + 0.928 + 0.2, abs=0.03)
    det = SitDetector()
    found = [det.feed(g711.decode(p.payload, 0)) for _, _, p, _ in w.rtp]
    assert any(f is not None for f in found), "the engine's SIT detector hears it"
    assert w.closed == [w.ended[0].call_id]


@pytest.mark.parametrize("address", ["pbx.example.com", "::1"])
def test_media_address_must_be_an_ip_of_our_family(address: str) -> None:
    w = Wire(person())
    offer = build_offer("127.0.0.1", 40000, 1).serialise().replace(b"127.0.0.1", address.encode())
    w.uac.invite("sip:1@127.0.0.1", offer, PBX, 0.0)
    w.flush()
    assert w.first(CallFailed, status=488)
    assert w.model.seen == []


def test_pbx_address_must_be_an_ip() -> None:
    with pytest.raises(ValueError, match="must be an IP address"):
        SipPbx(Fixed(person()), np.random.default_rng(0), host="localhost")


def test_agentless_person_presses_their_key_after_hearing_the_message() -> None:
    b = PartyBehaviour(
        PartyKind.PERSON, 1.0, CLIP, talk_s=20.0, patience_s=5.0, ivr_key="9", ivr_key_s=0.6
    )
    w = Wire(b)
    call = w.invite()
    w.run_until(2.0)
    loud = g711.encode((8000 * np.sin(np.arange(160))).astype(np.int16), 0)
    w.pbx.receive_rtp(call.call_id, RtpPacket(0, 1, 0, 9, loud).to_bytes(), UAC, 2.0)
    w.run_until(3.5)
    dtmf = [(t, p) for t, _, p, _ in w.rtp if p.payload_type == 101]
    assert dtmf and dtmf[0][0] == pytest.approx(2.6, abs=0.021)
    rx = MediaSession(0, 101)
    for _, _, p, _ in w.rtp:
        rx.receive_datagram(p.to_bytes(), 0.0)
    rx.handle_timer(100.0)
    digits = [e.digit for e in rx.events() if isinstance(e, DigitEvent)]
    assert digits == ["9"]
    w.uac.bye(call, w.now)
    w.flush()
    assert w.ended[0].pressed == "9"


def test_no_key_without_telephone_event_in_the_offer() -> None:
    b = PartyBehaviour(PartyKind.PERSON, 1.0, CLIP, ivr_key="1", ivr_key_s=0.1)
    w = Wire(b)
    offer = build_offer("127.0.0.1", 40000, 1, telephone_event_pt=None).serialise()
    call = w.uac.invite("sip:1@127.0.0.1", offer, PBX, 0.0)
    w.flush()
    w.run_until(1.5)
    loud = g711.encode((8000 * np.sin(np.arange(160))).astype(np.int16), 0)
    w.pbx.receive_rtp(call.call_id, RtpPacket(0, 1, 0, 9, loud).to_bytes(), UAC, 1.5)
    w.run_until(3.0)
    assert {p.payload_type for _, _, p, _ in w.rtp} == {0}
