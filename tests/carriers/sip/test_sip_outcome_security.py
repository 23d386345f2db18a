"""Outcome mapping and stateless 400/403 refusals."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.base import CallOutcome
from carriers.sip import Response, parse_message
from carriers.sip.outcome import outcome_for_status
from carriers.sip.security import bad_request_response, forbidden_response


@pytest.mark.parametrize(
    "status,outcome",
    [
        (200, CallOutcome.ANSWERED),
        (486, CallOutcome.BUSY),
        (600, CallOutcome.BUSY),
        (404, CallOutcome.BAD_NUMBER),
        (484, CallOutcome.BAD_NUMBER),
        (604, CallOutcome.BAD_NUMBER),
        (408, CallOutcome.NO_ANSWER),
        (480, CallOutcome.NO_ANSWER),
        (503, CallOutcome.TRUNK_FAILURE),
        (500, CallOutcome.TRUNK_FAILURE),
        (403, CallOutcome.REJECTED),
        (603, CallOutcome.REJECTED),
        (488, CallOutcome.REJECTED),
        (302, CallOutcome.REJECTED),
        (99, CallOutcome.FAILED),
    ],
)
def test_outcome_for_status(status: int, outcome: CallOutcome) -> None:
    assert outcome_for_status(status) is outcome


def test_487_depends_on_who_cancelled() -> None:
    assert outcome_for_status(487, cancelled_by_us=True) is CallOutcome.NO_ANSWER
    assert outcome_for_status(487) is CallOutcome.TRUNK_FAILURE


BROKEN = (
    b"INVITE sip:bob@example.com SIP/7.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-x\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
    b"Call-ID: broken@x\r\nCSeq: 5 INVITE\r\nContent-Length: 99\r\n\r\n"
)


def test_bad_request_echoes_transaction_headers() -> None:
    resp = bad_request_response(BROKEN, "Unsupported SIP version\x00")
    assert resp is not None and resp.status == 400
    assert resp.reason == "Unsupported SIP version"
    again = parse_message(resp.serialise())
    assert isinstance(again, Response)
    assert again.via[0].branch == "z9hG4bK-x" and again.call_id == "broken@x"
    assert again.cseq.seq == 5


@pytest.mark.parametrize(
    "data",
    [
        BROKEN.replace(b"Call-ID: broken@x\r\n", b""),
        BROKEN.replace(b";branch=z9hG4bK-x", b""),
        BROKEN.replace(b"CSeq: 5 INVITE", b"CSeq: 5 ACK"),
        BROKEN + b"Via: SIP/2.0/UDP h;branch=z9hG4bK-2\r\n".join([b"", b""]) + BROKEN,
        b"SIP/2.0 200 OK\r\n" + BROKEN.split(b"\r\n", 1)[1],
        b"\x00\xff garbage",
    ],
)
def test_unanswerable_requests_are_dropped(data: bytes) -> None:
    assert bad_request_response(data) is None
    assert forbidden_response(data) is None


def test_forbidden_for_unknown_source() -> None:
    ok = BROKEN.replace(b"SIP/7.0", b"SIP/2.0").replace(b"99", b"0")
    resp = forbidden_response(ok)
    assert resp is not None and resp.status == 403 and resp.get("Call-ID") == "broken@x"


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400))
def test_refusal_builders_never_crash(noise: bytes) -> None:
    resp = bad_request_response(BROKEN[:60] + noise + BROKEN[60:])
    if resp is not None:
        assert resp.status == 400
        resp.serialise()
