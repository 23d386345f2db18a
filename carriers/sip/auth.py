"""HTTP Digest for SIP (RFC 3261 §22, RFC 7616, RFC 8760): MD5 and SHA-256, qop=auth.

Client side: :func:`parse_challenge` then :func:`authorization`.  Server side
(agents registering to the engine): :class:`DigestServer` issues stateless,
HMAC-signed nonces carrying their issue time and verifies answers to them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from carriers.sip.headers import quote

_HASHES = {"MD5": "md5", "SHA-256": "sha256"}


class AuthError(ValueError):
    """A challenge or credentials header we cannot use; the text says why."""


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False  # from Proxy-Authenticate: answer with Proxy-Authorization

    @property
    def answer_header(self) -> str:
        return "Proxy-Authorization" if self.proxy else "Authorization"


# challenge         =  ("Digest" LWS digest-cln *(COMMA digest-cln)) / other-challenge
# auth-param        =  auth-param-name EQUAL ( token / quoted-string )
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9\-_.]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|$)')


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Scheme k=v, k="v"`` into the scheme and its (lower-cased) params."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM_RE.match(rest, pos)
        if not m or m.end() == pos:
            raise AuthError(f"bad auth parameter at {rest[pos : pos + 30]!r}")
        raw = m.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[m.group(1).lower()] = raw
        pos = m.end()
    return scheme, params


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge:
    """Parse a WWW-Authenticate (or, with ``proxy``, Proxy-Authenticate) value."""
    scheme, params = parse_auth_params(value)
    if scheme.lower() != "digest":
        raise AuthError(f"unsupported auth scheme {scheme!r}")
    if "realm" not in params or "nonce" not in params:
        raise AuthError("Digest challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm.removesuffix("-SESS") not in _HASHES:
        raise AuthError(f"unsupported digest algorithm {algorithm!r}")
    qop = tuple(q.strip() for q in params.get("qop", "").split(",") if q.strip())
    if qop and "auth" not in qop:
        raise AuthError(f"no supported qop in {qop!r}")
    return Challenge(
        params["realm"],
        params["nonce"],
        algorithm,
        qop,
        params.get("opaque"),
        params.get("stale", "").lower() == "true",
        proxy,
    )


def _h(algorithm: str, text: str) -> str:
    name = _HASHES[algorithm.upper().removesuffix("-SESS")]
    return hashlib.new(name, text.encode("utf-8")).hexdigest()


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1)."""
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


def authorization(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge``."""
    qop = "auth" if "auth" in challenge.qop else None
    cnonce = cnonce if cnonce is not None else secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
    )
    parts = [
        f"username={quote(username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote(cnonce)}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    username: str | None
    reason: str
    stale: bool = False  # right password, expired nonce: re-challenge with stale=true


class DigestServer:
    """Issues and checks Digest challenges.

    A nonce is ``<issue time>.<salt>.<hmac(key, time:salt:realm)>`` (the salt
    keeps two challenges of one millisecond apart); verification recomputes
    the HMAC and checks its age against ``nonce_lifetime_s``, so issuing keeps no
    state.  Answers with ``qop=auth`` must count up (``nc``, RFC 7616 §3.4): the
    highest count accepted per nonce is kept for the nonce's lifetime, and a count
    seen before is a replay, answered as stale (a genuine client retries with a
    fresh nonce; a replayer cannot).  Answers without qop carry no count and are
    not tracked.
    """

    def __init__(
        self,
        realm: str,
        key: bytes,
        *,
        algorithm: str = "SHA-256",
        nonce_lifetime_s: float = 300.0,
    ) -> None:
        if algorithm.upper() not in _HASHES:
            raise AuthError(f"unsupported digest algorithm {algorithm!r}")
        self.realm = realm
        self.algorithm = algorithm.upper()
        self._key = key
        self._lifetime = nonce_lifetime_s
        # nonce -> (issue time ms, highest nc accepted), oldest first
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def _nonce(self, issued_ms: int, salt: str) -> str:
        msg = f"{issued_ms}:{salt}:{self.realm}".encode()
        mac = hmac.new(self._key, msg, "sha256").hexdigest()
        return f"{issued_ms:x}.{salt}.{mac[:32]}"

    def challenge(self, now: float, *, stale: bool = False) -> str:
        """A WWW-Authenticate / Proxy-Authenticate value."""
        nonce = self._nonce(int(now * 1000), secrets.token_hex(4))
        text = (
            f"Digest realm={quote(self.realm)}, nonce={quote(nonce)}, "
            f'algorithm={self.algorithm}, qop="auth"'
        )
        return text + (", stale=true" if stale else "")

    def verify(
        self, header_value: str, method: str, passwords: dict[str, str], now: float
    ) -> Verdict:
        """Check an Authorization value; ``passwords`` maps usernames to secrets."""
        try:
            scheme, p = parse_auth_params(header_value)
        except AuthError as exc:
            return Verdict(False, None, str(exc))
        if scheme.lower() != "digest":
            return Verdict(False, None, f"unsupported scheme {scheme!r}")
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
        if missing:
            return Verdict(False, None, f"missing {', '.join(missing)}")
        user = p["username"]
        if p["realm"] != self.realm:
            return Verdict(False, user, "wrong realm")
        if p.get("algorithm", "MD5").upper() != self.algorithm:
            return Verdict(False, user, "wrong algorithm")
        issued_text, _, rest = p["nonce"].partition(".")
        salt = rest.partition(".")[0]
        try:
            issued_ms = int(issued_text, 16)
        except ValueError:
            return Verdict(False, user, "malformed nonce")
        # compared as bytes: compare_digest refuses str with non-ASCII characters
        if not hmac.compare_digest(self._nonce(issued_ms, salt).encode(), p["nonce"].encode()):
            return Verdict(False, user, "nonce not issued here")
        password = passwords.get(user)
        if password is None:
            return Verdict(False, user, "unknown user")
        qop = p.get("qop")
        if qop is not None and (qop != "auth" or "nc" not in p or "cnonce" not in p):
            return Verdict(False, user, "bad qop/nc/cnonce")
        expected = digest_response(
            algorithm=self.algorithm,
            username=user,
            realm=self.realm,
            password=password,
            method=method,
            uri=p["uri"],
            nonce=p["nonce"],
            qop=qop,
            nc=p.get("nc", ""),
            cnonce=p.get("cnonce", ""),
        )
        if not hmac.compare_digest(expected.encode(), p["response"].lower().encode()):
            return Verdict(False, user, "wrong credentials")
        if now * 1000 - issued_ms > self._lifetime * 1000:
            return Verdict(False, user, "nonce expired", stale=True)
        if qop is not None:
            try:
                nc = int(p["nc"], 16)
            except ValueError:
                return Verdict(False, user, "bad nc")
            self._forget_expired(now)
            seen = self._counts.get(p["nonce"])
            if seen is not None and nc <= seen[1]:
                return Verdict(False, user, "nonce count replayed", stale=True)
            self._counts[p["nonce"]] = (issued_ms, nc)
        return Verdict(True, user, "ok")

    def _forget_expired(self, now: float) -> None:
        limit = now * 1000 - self._lifetime * 1000
        counts = self._counts
        while counts:
            nonce, (issued_ms, _) = next(iter(counts.items()))
            if issued_ms >= limit:
                break
            del counts[nonce]
