"""Digest auth against the RFC 2617 / RFC 7616 worked examples, and the server side."""

from __future__ import annotations

import pytest

from carriers.sip.auth import (
    AuthError,
    DigestServer,
    authorization,
    digest_response,
    parse_auth_params,
    parse_challenge,
)

RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_rfc2617_example() -> None:
    # RFC 2617 §3.5
    assert (
        digest_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


@pytest.mark.parametrize(
    "alg,expected",
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(alg: str, expected: str) -> None:
    challenge = parse_challenge(RFC7616_CHALLENGE.format(alg=alg))
    assert challenge.qop == ("auth", "auth-int")
    value = authorization(
        challenge,
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce=RFC7616_CNONCE,
    )
    scheme, params = parse_auth_params(value)
    assert scheme == "Digest"
    assert params["response"] == expected
    assert params["nc"] == "00000001" and params["qop"] == "auth"
    assert params["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def test_challenge_without_qop_uses_rfc2069_form() -> None:
    ch = parse_challenge('Digest realm="r", nonce="n"', proxy=True)
    assert ch.answer_header == "Proxy-Authorization" and ch.algorithm == "MD5"
    _, params = parse_auth_params(
        authorization(ch, username="u", password="p", method="INVITE", uri="sip:x@y")
    )
    assert "qop" not in params and "nc" not in params
    assert params["response"] == digest_response(
        algorithm="MD5", username="u", realm="r", password="p", method="INVITE",
        uri="sip:x@y", nonce="n",
    )  # fmt: skip


@pytest.mark.parametrize(
    "value,match",
    [
        ('Basic realm="x"', "scheme"),
        ('Digest realm="x"', "nonce"),
        ('Digest realm="x", nonce="y", algorithm=SHA-512-256', "algorithm"),
        ('Digest realm="x", nonce="y", qop="auth-int"', "qop"),
        ('Digest realm="x", nonce="y", ===', "parameter"),
    ],
)
def test_bad_challenges(value: str, match: str) -> None:
    with pytest.raises(AuthError, match=match):
        parse_challenge(value)


def test_server_round_trip_and_failures() -> None:
    server = DigestServer("dialer.example", b"k" * 32, nonce_lifetime_s=60)
    users = {"agent7": "s3cret"}
    challenge = parse_challenge(server.challenge(now=100.0))
    assert challenge.algorithm == "SHA-256" and challenge.qop == ("auth",)

    def answer(password: str, user: str = "agent7") -> str:
        return authorization(
            challenge, username=user, password=password, method="REGISTER", uri="sip:d.example"
        )

    ok = server.verify(answer("s3cret"), "REGISTER", users, now=110.0)
    assert ok.ok and ok.username == "agent7"
    assert (
        server.verify(answer("wrong"), "REGISTER", users, now=110.0).reason == "wrong credentials"
    )
    assert server.verify(answer("s3cret", "nobody"), "REGISTER", users, 110.0).reason == (
        "unknown user"
    )
    assert not server.verify(answer("s3cret"), "INVITE", users, now=110.0).ok  # method bound
    expired = server.verify(answer("s3cret"), "REGISTER", users, now=200.0)
    assert not expired.ok and expired.stale
    other = DigestServer("dialer.example", b"x" * 32)
    assert other.verify(answer("s3cret"), "REGISTER", users, 110.0).reason == (
        "nonce not issued here"
    )
    assert "stale=true" in server.challenge(0.0, stale=True)
    assert not server.verify("Basic abc", "REGISTER", users, 0.0).ok


def test_a_replayed_nonce_count_is_stale_and_counting_up_is_fine() -> None:
    server = DigestServer("dialer.example", b"k" * 32, nonce_lifetime_s=60)
    users = {"agent7": "s3cret"}
    challenge = parse_challenge(server.challenge(now=100.0))

    def answer(nc: int) -> str:
        return authorization(
            challenge,
            username="agent7",
            password="s3cret",
            method="REGISTER",
            uri="sip:d.example",
            nc=nc,
        )

    first = answer(1)
    assert server.verify(first, "REGISTER", users, 101.0).ok
    # the same answer again (a captured request sent twice): refused, as stale, so a
    # genuine client simply retries with a fresh nonce
    again = server.verify(first, "REGISTER", users, 102.0)
    assert not again.ok and again.stale and again.reason == "nonce count replayed"
    assert server.verify(answer(2), "REGISTER", users, 103.0).ok
    assert not server.verify(answer(2), "REGISTER", users, 104.0).ok
    assert server.verify(answer(7), "REGISTER", users, 105.0).ok  # counts may skip
    # counts are forgotten with their nonce: nothing is kept past its lifetime
    server.verify(authorization(
        parse_challenge(server.challenge(now=300.0)), username="agent7", password="s3cret",
        method="REGISTER", uri="sip:d.example",
    ), "REGISTER", users, 301.0)  # fmt: skip
    assert len(server._counts) == 1


def test_two_challenges_in_one_millisecond_have_different_nonces() -> None:
    server = DigestServer("dialer.example", b"k" * 32)
    a = parse_challenge(server.challenge(now=5.0)).nonce
    b = parse_challenge(server.challenge(now=5.0)).nonce
    assert a != b


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ('nonce="1.\u00e9.x", response="abc"', "nonce not issued here"),
        ('nonce="1.x\u00e9", response="abc"', "nonce not issued here"),
        ('nonce="{nonce}", response="\u00e9\u00e9"', "wrong credentials"),
    ],
)
def test_non_ascii_nonce_or_response_is_refused_not_raised(params: str, reason: str) -> None:
    server = DigestServer("r", b"k" * 32, algorithm="MD5")
    challenge = parse_challenge(server.challenge(now=1.0))
    value = 'Digest username="bob", realm="r", uri="sip:r", algorithm=MD5, ' + params.format(
        nonce=challenge.nonce
    )
    verdict = server.verify(value, "REGISTER", {"bob": "pw"}, 2.0)
    assert not verdict.ok and verdict.reason == reason
    # the same nonce still serves a good answer afterwards
    good = authorization(challenge, username="bob", password="pw", method="REGISTER", uri="sip:r")
    assert server.verify(good, "REGISTER", {"bob": "pw"}, 2.0).ok
