"""SipCarrier against SIPp acting as the far end (a trunk), over real loopback UDP.

Each test runs its own SIPp with a scenario from ``sipp/`` and asserts both
sides: the events the engine would see, and SIPp's exit status (0 only when every
message it expected arrived, in order: our ACKs, CANCEL, BYE, the 200 to its BYE).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carriers.base import CallOutcome
from tests.carriers.sip.peers import (
    Answered,
    DialRequest,
    MediaFrames,
    Ringing,
    Sipp,
    StartUas,
    hang_up_after,
    make_carrier,
    peak_hz,
    tone,
)


async def _sipp_ok(peer: Sipp) -> None:
    rc = await peer.finished()
    assert rc == 0, f"SIPp {peer.scenario} exited {rc}:\n{peer.errors()}"


async def test_answer_streams_decoded_audio(uas: StartUas) -> None:
    peer = uas("uas_answer_audio.xml")
    carrier, events, clock = await make_carrier(peer.trunk("t1"))
    hang_up_after(carrier, clock, events, 1.5)
    try:
        carrier.dial(DialRequest("c1", "+15551230001"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert events.kinds("c1") == ["Ringing", "Answered", "Ended"]
    assert ended.outcome is CallOutcome.ANSWERED and ended.sip_status == 200
    assert not ended.by_remote
    audio = events.audio("c1")
    # 1.5 s of the call at 20 ms a frame, less loopback start-up slack
    assert len(audio) >= 60 * 160
    assert abs(peak_hz(audio) - 440) < 10  # SIPp's PCMU stream, decoded
    frames = events.of("c1", MediaFrames)
    assert frames[0].media_time == pytest.approx(0.0, abs=0.05)  # type: ignore[attr-defined]
    await _sipp_ok(peer)


@pytest.mark.parametrize(
    ("scenario", "outcome", "status"),
    [
        ("uas_486.xml", CallOutcome.BUSY, 486),
        ("uas_404.xml", CallOutcome.BAD_NUMBER, 404),
    ],
)
async def test_final_failure_maps_to_outcome(
    uas: StartUas, scenario: str, outcome: CallOutcome, status: int
) -> None:
    peer = uas(scenario)
    carrier, events, _ = await make_carrier(peer.trunk("t1"))
    try:
        carrier.dial(DialRequest("c1", "+15551230002"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert (ended.outcome, ended.sip_status, ended.by_remote) == (outcome, status, True)
    assert not events.of("c1", Answered)
    await _sipp_ok(peer)  # SIPp saw our ACK


async def test_503_fails_over_to_the_next_trunk(uas: StartUas) -> None:
    down = uas("uas_503.xml")
    up = uas("uas_answer_audio.xml")
    carrier, events, clock = await make_carrier(
        down.trunk("primary", priority=0), up.trunk("backup", priority=1)
    )
    hang_up_after(carrier, clock, events, 0.5)
    try:
        carrier.dial(DialRequest("c1", "+15551230003"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert ended.outcome is CallOutcome.ANSWERED
    assert ended.extra["tried"] == "primary,backup" and ended.extra["trunk"] == "backup"
    assert carrier.stats.failovers == 1
    await _sipp_ok(down)
    await _sipp_ok(up)


async def test_503_on_the_only_trunk_is_a_trunk_failure(uas: StartUas) -> None:
    down = uas("uas_503.xml")
    carrier, events, _ = await make_carrier(down.trunk("only"))
    try:
        carrier.dial(DialRequest("c1", "+15551230004"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert (ended.outcome, ended.sip_status) == (CallOutcome.TRUNK_FAILURE, 503)
    await _sipp_ok(down)


async def test_early_media_then_answer(uas: StartUas) -> None:
    peer = uas("uas_183_early.xml")
    carrier, events, clock = await make_carrier(peer.trunk("t1"))
    hang_up_after(carrier, clock, events, 1.2)
    try:
        carrier.dial(DialRequest("c1", "+15551230005"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    ringing = events.of("c1", Ringing)
    assert ringing and ringing[0].early_media  # type: ignore[attr-defined]
    assert events.kinds("c1") == ["Ringing", "Answered", "Ended"]
    assert ended.outcome is CallOutcome.ANSWERED
    # The engine hears the answer's audio (440 Hz), not the early media (300 Hz),
    # with media time restarting at the answer.
    audio = events.audio("c1")
    assert len(audio) >= 40 * 160
    assert abs(peak_hz(audio) - 440) < 10
    first = events.of("c1", MediaFrames)[0]
    assert first.media_time < 0.1  # type: ignore[attr-defined]
    await _sipp_ok(peer)


async def test_answer_without_sdp_keeps_the_early_media_stream(uas: StartUas) -> None:
    peer = uas("uas_183_then_200_no_sdp.xml")
    carrier, events, clock = await make_carrier(peer.trunk("t1"))
    hang_up_after(carrier, clock, events, 1.2)
    try:
        carrier.dial(DialRequest("c1", "+15551230012"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert events.kinds("c1") == ["Ringing", "Answered", "Ended"]
    assert ended.outcome is CallOutcome.ANSWERED
    audio = events.audio("c1")
    assert len(audio) >= 40 * 160
    assert abs(peak_hz(audio) - 440) < 10  # the answer's audio, on the early stream
    await _sipp_ok(peer)


async def test_no_answer_timeout_cancels_and_487_is_no_answer(uas: StartUas) -> None:
    peer = uas("uas_ring_no_answer.xml")
    carrier, events, clock = await make_carrier(peer.trunk("t1"))
    try:
        t0 = clock.monotonic()
        carrier.dial(DialRequest("c1", "+15551230006", timeout_s=1.0))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert events.kinds("c1") == ["Ringing", "Ended"]
    assert (ended.outcome, ended.sip_status) == (CallOutcome.NO_ANSWER, 487)
    assert ended.at - t0 >= 1.0
    await _sipp_ok(peer)  # SIPp got the CANCEL and the ACK for its 487


async def test_engine_hangup_while_ringing_sends_cancel(uas: StartUas) -> None:
    peer = uas("uas_ring_no_answer.xml")
    carrier, events, _ = await make_carrier(peer.trunk("t1"))
    original = events.on_carrier_event

    def on_event(event: object) -> None:
        original(event)  # type: ignore[arg-type]
        if isinstance(event, Ringing):
            carrier.hangup(event.call_id)

    events.on_carrier_event = on_event  # type: ignore[method-assign]
    try:
        carrier.dial(DialRequest("c1", "+15551230007"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert (ended.outcome, ended.sip_status, ended.by_remote) == (
        CallOutcome.NO_ANSWER,
        487,
        False,
    )
    await _sipp_ok(peer)


async def test_remote_bye_mid_call(uas: StartUas) -> None:
    peer = uas("uas_remote_bye.xml")
    carrier, events, _ = await make_carrier(peer.trunk("t1"))
    try:
        carrier.dial(DialRequest("c1", "+15551230008"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    assert ended.outcome is CallOutcome.ANSWERED and ended.by_remote
    assert ended.cause == "remote BYE"
    assert len(events.audio("c1")) >= 25 * 160  # audio flowed until the BYE
    await _sipp_ok(peer)  # SIPp got our 200 to its BYE


@pytest.mark.parametrize("scenario", ["uas_auth_401.xml", "uas_auth_407.xml"])
async def test_digest_challenge_is_answered(uas: StartUas, scenario: str) -> None:
    peer = uas(scenario)
    carrier, events, clock = await make_carrier(
        peer.trunk("t1", username="alice", password="s3cret")
    )
    hang_up_after(carrier, clock, events, 0.3)
    try:
        carrier.dial(DialRequest("c1", "+15551230009"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
    # SIPp answers 200 only when its verifyauth accepted our digest (else 403)
    assert ended.outcome is CallOutcome.ANSWERED, ended
    await _sipp_ok(peer)


async def test_challenge_without_credentials_is_rejected(uas: StartUas) -> None:
    peer = uas("uas_auth_401.xml")
    carrier, events, _ = await make_carrier(peer.trunk("t1"))
    try:
        carrier.dial(DialRequest("c1", "+15551230010"))
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
        peer.kill()  # it waits for a retried INVITE that never comes
    assert (ended.outcome, ended.sip_status) == (CallOutcome.REJECTED, 401)


async def test_play_reaches_the_far_end_paced(uas: StartUas, tmp_path: Path) -> None:
    """play() sends 20 ms RTP frames paced on the clock; on_done fires after the last."""
    peer = uas("uas_answer_audio.xml")
    carrier, events, clock = await make_carrier(peer.trunk("t1"))
    from carriers.base import AudioClip

    done_at: list[float] = []
    started: list[float] = []
    original = events.on_carrier_event

    def on_event(event: object) -> None:
        original(event)  # type: ignore[arg-type]
        if isinstance(event, Answered):
            started.append(clock.monotonic())
            clip = AudioClip("prompt", tone(1000, 0.6))

            def done() -> None:
                done_at.append(clock.monotonic())
                carrier.hangup(event.call_id)

            carrier.play(event.call_id, clip, done)

    events.on_carrier_event = on_event  # type: ignore[method-assign]
    try:
        carrier.dial(DialRequest("c1", "+15551230011"))
        await events.wait("c1")
    finally:
        await carrier.stop()
    assert done_at, "on_done never ran"
    # 30 frames of 20 ms: paced, so about 0.58 s from the first to the last
    assert 0.5 <= done_at[0] - started[0] <= 1.5
    await _sipp_ok(peer)


def test_tone_helper_is_sane() -> None:
    assert abs(peak_hz(tone(440, 1.0)) - 440) < 2
    assert np.max(np.abs(tone(440, 0.1))) > 7000


async def test_full_trunk_sends_the_call_to_the_next(uas: StartUas) -> None:
    first = uas("uas_answer_audio.xml")
    second = uas("uas_answer_audio.xml")
    carrier, events, clock = await make_carrier(
        first.trunk("small", priority=0, max_concurrent=1), second.trunk("big", priority=5)
    )
    hang_up_after(carrier, clock, events, 0.4)
    try:
        carrier.dial(DialRequest("c1", "+15551230021"))
        carrier.dial(DialRequest("c2", "+15551230022"))
        e1, e2 = await events.wait("c1"), await events.wait("c2")
    finally:
        await carrier.stop()
    assert (e1.extra["trunk"], e2.extra["trunk"]) == ("small", "big")
    assert e2.extra["tried"] == "small:full,big"
    assert e1.outcome is e2.outcome is CallOutcome.ANSWERED
    await _sipp_ok(first)
    await _sipp_ok(second)


async def test_junk_flood_does_not_disturb_a_call(uas: StartUas) -> None:
    """Thousands of junk datagrams at the SIP port during a call: all dropped by the
    transport (no replies, no state) while the call's audio keeps flowing."""
    import socket

    peer = uas("uas_answer_audio.xml")
    carrier, events, clock = await make_carrier(peer.trunk("t1"), match_port=True)
    hang_up_after(carrier, clock, events, 1.5)
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    junk.bind(("127.0.0.1", 0))
    junk.setblocking(False)
    sent = 0

    def flood() -> None:
        nonlocal sent
        for i in range(100):
            try:
                junk.sendto(b"\x16\x03\x01 not sip %d" % i, carrier.local_addr)
                sent += 1
            except BlockingIOError:
                pass
        if sent < 3000 and "c1" not in events.ended:
            clock.call_later(0.02, flood)

    try:
        carrier.dial(DialRequest("c1", "+15551230031"))
        flood()
        ended = await events.wait("c1")
    finally:
        await carrier.stop()
        junk.close()
    assert ended.outcome is CallOutcome.ANSWERED
    stats = carrier.transport_stats
    assert stats.dropped >= 1000 and stats.forbidden == 0  # type: ignore[attr-defined]
    audio = events.audio("c1")
    assert len(audio) >= 65 * 160  # ~1.5 s of audio despite the flood
    await _sipp_ok(peer)
