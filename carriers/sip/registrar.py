"""A sans-IO SIP registrar for agents' phones (RFC 3261 §10.3).

Feed REGISTER requests to :meth:`Registrar.handle` with their source address and the
time; it returns the complete response to send back (through the server transaction
that received the request, e.g. :meth:`carriers.sip.endpoint.Endpoint.respond`).
Bindings expire on the registrar's own clock: call :meth:`Registrar.handle_timer` at
:meth:`Registrar.get_timer`.  The owner learns of bindings that appeared, moved or went
away from :meth:`Registrar.next_event`.

Authentication is HTTP Digest through :class:`carriers.sip.auth.DigestServer`
(stateless HMAC nonces).  Failed authentications are counted per source IP, and an IP
that fails too often within a window is refused with 403 without a challenge for a
while, so a password cannot be guessed at line rate.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass

from carriers.sip.auth import DigestServer
from carriers.sip.errors import SipParseError
from carriers.sip.headers import get_param, parse_name_addr, parse_uint, split_list
from carriers.sip.message import Request, Response
from carriers.sip.transaction import response_to
from carriers.sip.uri import SipUri

Addr = tuple[str, int]
_MAX_DELTA = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Binding:
    user: str  # the AOR's user part (the agent's SIP user name)
    contact: str  # the Contact URI as the phone sent it, without params outside <>
    # Where requests for this user go: the Contact's host:port, except when the
    # REGISTER arrived from another address.  Then the phone is behind a NAT (or
    # put a wildcard / unroutable address such as 0.0.0.0 in its Contact), and only
    # the source address reaches it: the same flow its REGISTER used (the common
    # practice of registrars; RFC 5626 formalises it as a "flow").
    addr: Addr
    expires_at: float  # the registrar's clock (monotonic seconds)
    call_id: str
    cseq: int


@dataclass(frozen=True, slots=True)
class BindingAdded:
    """A new binding, or an existing one whose address changed."""

    binding: Binding


@dataclass(frozen=True, slots=True)
class BindingRemoved:
    binding: Binding
    reason: str  # "expired", "unregistered", or "replaced" (evicted by a newer contact)


BindingEvent = BindingAdded | BindingRemoved


class _Refuse(Exception):
    """Abort processing of one REGISTER with ``status`` (RFC 3261 §10.3: atomic)."""

    def __init__(self, status: int, reason: str, min_expires: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.min_expires = min_expires


def _phrase(text: str) -> str:
    """A Reason-Phrase is one line of text: keep printable ASCII, bounded."""
    return "".join(c for c in text if c.isascii() and c.isprintable())[:120] or "Bad Request"


class Registrar:
    def __init__(
        self,
        realm: str,
        users: Mapping[str, str],
        *,
        secret: bytes | None = None,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        algorithm: str = "MD5",
        max_contacts: int = 10,
        max_auth_failures: int = 10,
        failure_window: float = 60.0,
        block_seconds: float = 300.0,
        max_tracked_sources: int = 4096,
    ) -> None:
        if not 0 < min_expires <= max_expires:
            raise ValueError(
                f"need 0 < min_expires <= max_expires, got {min_expires}, {max_expires}"
            )
        self.realm = realm
        self._users = dict(users)
        self._digest = DigestServer(
            realm, secret if secret is not None else secrets.token_bytes(32), algorithm=algorithm
        )
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = min(max(default_expires, min_expires), max_expires)
        self.max_contacts = max_contacts
        self.max_auth_failures = max_auth_failures
        self.failure_window = failure_window
        self.block_seconds = block_seconds
        self.max_tracked_sources = max_tracked_sources
        # user -> contact -> binding; dict order is refresh order (newest last)
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._events: deque[BindingEvent] = deque()
        # source IP -> recent failure times; LRU-bounded so a scan from many
        # addresses cannot grow it without limit
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: OrderedDict[str, float] = OrderedDict()  # IP -> blocked until

    # --- queries -------------------------------------------------------------------
    def lookup(self, user: str, now: float) -> Binding | None:
        """The most recently registered unexpired binding of ``user``."""
        live = [b for b in self._bindings.get(user, {}).values() if b.expires_at > now]
        return live[-1] if live else None

    def bindings(self, now: float) -> list[Binding]:
        return [b for per in self._bindings.values() for b in per.values() if b.expires_at > now]

    def next_event(self) -> BindingEvent | None:
        return self._events.popleft() if self._events else None

    def blocked(self, ip: str, now: float) -> bool:
        until = self._blocked.get(ip)
        return until is not None and until > now

    # --- time ----------------------------------------------------------------------
    def get_timer(self) -> float | None:
        times = [b.expires_at for per in self._bindings.values() for b in per.values()]
        return min(times, default=None)

    def handle_timer(self, now: float) -> None:
        for user, per in list(self._bindings.items()):
            for contact, b in list(per.items()):
                if b.expires_at <= now:
                    del per[contact]
                    self._events.append(BindingRemoved(b, "expired"))
            if not per:
                del self._bindings[user]
        for ip, until in list(self._blocked.items()):
            if until <= now:
                del self._blocked[ip]
        for ip, times in list(self._failures.items()):
            if not times or times[-1] <= now - self.failure_window:
                del self._failures[ip]

    # --- requests ------------------------------------------------------------------
    def handle(self, request: Request, source: Addr, now: float) -> Response:
        """The full response to ``request`` (a REGISTER) that came from ``source``."""
        try:
            return self._handle(request, source, now)
        except _Refuse as exc:
            resp = self._response(request, exc.status, exc.reason)
            if exc.min_expires is not None:
                resp.add("Min-Expires", str(exc.min_expires))
            return resp
        except (SipParseError, ValueError) as exc:  # a header we needed was malformed
            return self._response(request, 400, str(exc))

    def _response(self, request: Request, status: int, reason: str | None = None) -> Response:
        resp = response_to(request, status, None if reason is None else _phrase(reason))
        to = request.get("To")
        if to is not None and ";tag=" not in to.replace(" ", "").lower():
            resp.set("To", f"{to};tag={secrets.token_hex(6)}")
        return resp

    def _handle(self, request: Request, source: Addr, now: float) -> Response:
        if request.method != "REGISTER":
            resp = self._response(request, 405)
            resp.add("Allow", "REGISTER")
            return resp
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            if request.get(name) is None:
                raise _Refuse(400, f"Missing {name} header")
        cseq = request.cseq
        if cseq.method != "REGISTER":
            raise _Refuse(400, f"CSeq method {cseq.method} is not REGISTER")
        call_id = request.call_id
        ip = source[0]
        if self.blocked(ip, now):
            # no challenge: a blocked address learns nothing more, not even a nonce
            raise _Refuse(403, "Forbidden (too many failed authentications)")
        user = self._authenticate(request, ip, now)
        if isinstance(user, Response):
            return user
        to_uri = request.to.uri
        to_user = to_uri.user_unescaped if isinstance(to_uri, SipUri) else None
        if to_user != user:
            raise _Refuse(403, "Forbidden (To user differs from the authenticated user)")
        header_expires = self._expires_header(request)
        contacts = self._contacts(request)
        if contacts is None:  # `Contact: *`
            if header_expires != 0:
                raise _Refuse(400, "Contact * needs Expires: 0")
            self._remove_all(user, call_id, cseq.seq)
        elif contacts:
            self._update(user, contacts, header_expires, source, call_id, cseq.seq, now)
        resp = self._response(request, 200)
        for b in self._bindings.get(user, {}).values():
            if b.expires_at > now:
                resp.add("Contact", f"<{b.contact}>;expires={max(1, round(b.expires_at - now))}")
        return resp

    def _authenticate(self, request: Request, ip: str, now: float) -> str | Response:
        header = request.get("Authorization")
        if header is None:
            return self._challenge(request, now, stale=False)
        verdict = self._digest.verify(header, "REGISTER", self._users, now)
        # The digest uri is not compared with the Request-URI: some phones (pyVoIP)
        # add ";transport=UDP" there only, and the nonce already binds the answer to us.
        if verdict.ok and verdict.username is not None:
            return verdict.username
        if verdict.stale:  # right password, old nonce: not a failure
            return self._challenge(request, now, stale=True)
        self._count_failure(ip, now)
        if verdict.reason in ("unknown user", "wrong credentials"):
            # the same reason for both, so that user names cannot be probed
            raise _Refuse(403, "Forbidden (wrong user name or password)")
        # a nonce from before a restart, another realm or algorithm: try again afresh
        return self._challenge(request, now, stale=False)

    def _challenge(self, request: Request, now: float, *, stale: bool) -> Response:
        resp = self._response(request, 401)
        resp.add("WWW-Authenticate", self._digest.challenge(now, stale=stale))
        return resp

    def _count_failure(self, ip: str, now: float) -> None:
        times = self._failures.pop(ip, None) or deque(maxlen=self.max_auth_failures)
        times.append(now)
        self._failures[ip] = times  # most recent last
        while len(self._failures) > self.max_tracked_sources:
            self._failures.popitem(last=False)
        recent = [t for t in times if t > now - self.failure_window]
        if len(recent) >= self.max_auth_failures:
            self._blocked.pop(ip, None)
            self._blocked[ip] = now + self.block_seconds
            times.clear()
            while len(self._blocked) > self.max_tracked_sources:
                self._blocked.popitem(last=False)

    def _expires_header(self, request: Request) -> int | None:
        values = request.get_all("Expires")
        if not values:
            return None
        if len(values) > 1:
            raise _Refuse(400, "More than one Expires header")
        try:
            return parse_uint(values[0], "Expires", _MAX_DELTA)
        except SipParseError as exc:
            raise _Refuse(400, f"Bad Expires header: {exc.what}") from None

    def _contacts(self, request: Request) -> list[tuple[SipUri, int | None]] | None:
        """The Contact URIs with their expires params; None for `Contact: *`."""
        try:
            raw: list[str] = []
            for key, value in request.headers:
                if key == "Contact":
                    raw += split_list(value, "Contact")
        except SipParseError as exc:
            raise _Refuse(400, f"Bad Contact header: {exc.what}") from None
        if any(v.strip() == "*" for v in raw):
            if len(raw) != 1:
                raise _Refuse(400, "Contact * must be the only Contact")
            return None
        out: list[tuple[SipUri, int | None]] = []
        for value in raw:
            try:
                addr = parse_name_addr(value, "Contact")
                text = get_param(addr.params, "expires")
                expires = None if text is None else parse_uint(text, "Contact", _MAX_DELTA)
            except SipParseError as exc:
                raise _Refuse(400, f"Bad Contact header: {exc.what}") from None
            if not isinstance(addr.uri, SipUri):
                raise _Refuse(400, f"Contact {addr.uri.scheme}: URI is not sip: or sips:")
            out.append((addr.uri, expires))
        return out

    def _remove_all(self, user: str, call_id: str, seq: int) -> None:
        per = self._bindings.get(user, {})
        for b in per.values():
            _check_order(b, call_id, seq)
        for b in per.values():
            self._events.append(BindingRemoved(b, "unregistered"))
        self._bindings.pop(user, None)

    def _update(
        self,
        user: str,
        contacts: list[tuple[SipUri, int | None]],
        header_expires: int | None,
        source: Addr,
        call_id: str,
        seq: int,
        now: float,
    ) -> None:
        per = self._bindings.get(user, {})
        plan: list[tuple[str, SipUri, int]] = []
        for uri, param in contacts:
            expires = param if param is not None else header_expires
            expires = self.default_expires if expires is None else expires
            if 0 < expires < self.min_expires:
                raise _Refuse(423, "Interval Too Brief", self.min_expires)
            key = str(uri)
            old = per.get(key)
            if old is not None:
                _check_order(old, call_id, seq)
            plan.append((key, uri, min(expires, self.max_expires)))
        # every check passed: apply the whole request (§10.3 processing is atomic)
        per = self._bindings.setdefault(user, {})
        for key, uri, expires in plan:
            old = per.pop(key, None)
            if expires == 0:
                if old is not None:
                    self._events.append(BindingRemoved(old, "unregistered"))
                continue
            new = Binding(user, key, _route(uri, source), now + expires, call_id, seq)
            per[key] = new  # re-inserted: now the newest
            if old is None or old.addr != new.addr:
                self._events.append(BindingAdded(new))
        while len(per) > self.max_contacts:
            oldest = min(per, key=lambda k: per[k].expires_at)
            self._events.append(BindingRemoved(per.pop(oldest), "replaced"))
        if not per:
            del self._bindings[user]


def _check_order(old: Binding, call_id: str, seq: int) -> None:
    # RFC 3261 §10.3 step 7: same Call-ID with a CSeq not above the stored one is an
    # old or reordered request; the RFC's answer is 500.
    if old.call_id == call_id and seq <= old.cseq:
        raise _Refuse(500, "Out of order REGISTER (CSeq not above the last one)")


def _route(uri: SipUri, source: Addr) -> Addr:
    port = uri.port if uri.port is not None else (5061 if uri.scheme == "sips" else 5060)
    host = uri.host.strip("[]")
    if (host, port) != (source[0], source[1]):
        return source  # NAT, or a Contact naming an address we cannot reach: see Binding
    return host, port


__all__ = [
    "Binding",
    "BindingAdded",
    "BindingEvent",
    "BindingRemoved",
    "Registrar",
]
