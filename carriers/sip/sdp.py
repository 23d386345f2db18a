"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for G.711 audio + DTMF events.

The engine only ever needs one audio stream of PCMU (PT 0) or PCMA (PT 8), with
RFC 4733 telephone-event on a dynamic payload type.  Anything else in an offer is
answered with port 0 (declined) as RFC 3264 §6 requires; an offer with no usable
audio raises :class:`SdpNegotiationError` (status 488 upstream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

Attribute = tuple[str, str | None]


class SdpError(ValueError):
    """Malformed SDP; the text names the line."""


class SdpNegotiationError(ValueError):
    """A well-formed offer we cannot accept: answer with ``status`` (488)."""

    status = 488


@dataclass(frozen=True, slots=True)
class Codec:
    payload_type: int
    name: str
    rate: int = 8000

    @property
    def rtpmap(self) -> str:
        return f"{self.payload_type} {self.name}/{self.rate}"


PCMU = Codec(0, "PCMU")
PCMA = Codec(8, "PCMA")
TELEPHONE_EVENT = Codec(101, "telephone-event")
_STATIC = {0: PCMU, 8: PCMA}


@dataclass(frozen=True, slots=True)
class Origin:
    # origin-field = %x6f "=" username SP sess-id SP sess-version SP nettype SP
    #                addrtype SP unicast-address CRLF
    username: str
    session_id: str
    session_version: str
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    # connection-field = [%x63 "=" nettype SP addrtype SP connection-address CRLF]
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Media:
    # media-field = %x6d "=" media SP port ["/" integer] SP proto 1*(SP fmt) CRLF
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    other: tuple[tuple[str, str], ...] = ()  # i=, b=, k= lines, in order
    port_count: int | None = None

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def attributes_named(self, name: str) -> list[str]:
        return [v or "" for k, v in self.attributes if k == name]


@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timing: tuple[str, ...] = ("0 0",)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[Media, ...] = ()
    other: tuple[tuple[str, str], ...] = ()  # i=, u=, e=, p=, b=, z=, k=, r= lines
    version: int = 0

    def serialise(self) -> bytes:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        lines += [f"{k}={v}" for k, v in self.other if k in "iuep"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{k}={v}" for k, v in self.other if k == "b"]
        for t in self.timing:
            lines.append(f"t={t}")
            lines += [f"r={v}" for k, v in self.other if k == "r"]
        lines += [f"{k}={v}" for k, v in self.other if k in "zk"]
        lines += [_attr(a) for a in self.attributes]
        for m in self.media:
            count = "" if m.port_count is None else f"/{m.port_count}"
            lines.append(f"m={m.media} {m.port}{count} {m.proto} {' '.join(m.formats)}")
            lines += [f"{k}={v}" for k, v in m.other if k == "i"]
            if m.connection is not None:
                lines.append(f"c={m.connection}")
            lines += [f"{k}={v}" for k, v in m.other if k != "i"]
            lines += [_attr(a) for a in m.attributes]
        return ("\r\n".join(lines) + "\r\n").encode()


def _attr(a: Attribute) -> str:
    return f"a={a[0]}" if a[1] is None else f"a={a[0]}:{a[1]}"


_LINE_RE = re.compile(r"([a-z])=(.*)")
_MAX_SDP = 16384


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse a session description; raise :class:`SdpError` saying which line is wrong."""
    # session-description = proto-version origin-field session-name-field
    #                       information-field uri-field email-fields phone-fields
    #                       connection-field bandwidth-fields time-fields
    #                       key-field attribute-fields media-descriptions
    if len(data) > _MAX_SDP:
        raise SdpError(f"SDP of {len(data)} bytes is over {_MAX_SDP}")
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [ln for ln in re.split(r"\r?\n", text) if ln != ""]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0 (line 1)")
    origin: Origin | None = None
    session_name: str | None = None
    conn: Connection | None = None
    timing: list[str] = []
    attrs: list[Attribute] = []
    other: list[tuple[str, str]] = []
    media: list[Media] = []
    for number, line in enumerate(lines[1:], 2):
        m = _LINE_RE.fullmatch(line)
        if not m:
            raise SdpError(f"line {number}: expected <type>=<value>, got {line[:40]!r}")
        kind, value = m.group(1), m.group(2)
        try:
            if kind == "m":
                media.append(_parse_media_line(value))
                continue
            if media:
                media[-1] = _add_to_media(media[-1], kind, value)
                continue
            if kind == "o":
                origin = _parse_origin(value)
            elif kind == "s":
                session_name = value
            elif kind == "c":
                conn = _parse_connection(value)
            elif kind == "t":
                timing.append(value)
            elif kind == "a":
                attrs.append(_parse_attr(value))
            elif kind in "iuepbzkr":
                other.append((kind, value))
            else:
                raise SdpError(f"unknown line type {kind!r}")
        except SdpError as exc:
            raise SdpError(f"line {number}: {exc}") from None
    if origin is None or session_name is None:
        raise SdpError("SDP needs o= and s= lines")
    return SessionDescription(
        origin, session_name, conn, tuple(timing) or ("0 0",), tuple(attrs), tuple(media),
        tuple(other),
    )  # fmt: skip


def _parse_origin(value: str) -> Origin:
    parts = value.split(" ")
    if len(parts) != 6:
        raise SdpError(f"o= needs 6 fields, got {value[:60]!r}")
    user, sid, ver, net, addrtype, addr = parts
    return Origin(user, sid, ver, addr, net, addrtype)


def _parse_connection(value: str) -> Connection:
    parts = value.split(" ")
    if len(parts) != 3:
        raise SdpError(f"c= needs 3 fields, got {value[:60]!r}")
    return Connection(parts[2], parts[0], parts[1])


def _parse_attr(value: str) -> Attribute:
    # attribute = (att-field ":" att-value) / att-field
    name, sep, rest = value.partition(":")
    if not name:
        raise SdpError("empty attribute name")
    return (name, rest) if sep else (name, None)


def _parse_media_line(value: str) -> Media:
    parts = value.split(" ")
    if len(parts) < 4:
        raise SdpError(f"m= needs media, port, proto and formats: {value[:60]!r}")
    port_text, _, count_text = parts[1].partition("/")
    if (
        not port_text.isdigit()
        or int(port_text) > 65535
        or (count_text and not count_text.isdigit())
    ):
        raise SdpError(f"bad m= port {parts[1]!r}")
    count = int(count_text) if count_text else None
    return Media(parts[0], int(port_text), parts[2], tuple(parts[3:]), port_count=count)


def _add_to_media(m: Media, kind: str, value: str) -> Media:
    if kind == "c":
        return replace(m, connection=_parse_connection(value))
    if kind == "a":
        return replace(m, attributes=(*m.attributes, _parse_attr(value)))
    if kind in "ibk":
        return replace(m, other=(*m.other, (kind, value)))
    raise SdpError(f"line type {kind!r} not allowed in a media section")


# --- offer / answer ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaParams:
    """What the RTP layer needs from a negotiated description."""

    address: str
    port: int
    codec: Codec
    ptime: int = 20
    telephone_event_pt: int | None = None
    direction: str = "sendrecv"

    @property
    def on_hold(self) -> bool:
        return self.direction in ("sendonly", "inactive") or self.address in ("0.0.0.0", "::")


_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def _codecs_of(m: Media) -> list[Codec]:
    """The formats of an m= line with their rtpmap names (static ones by number)."""
    maps: dict[int, Codec] = {}
    for value in m.attributes_named("rtpmap"):
        pt_text, _, enc = value.partition(" ")
        name, _, rate_text = enc.partition("/")
        rate = rate_text.split("/")[0]
        if pt_text.isdigit() and rate.isdigit():
            maps[int(pt_text)] = Codec(int(pt_text), name, int(rate))
    out = []
    for fmt in m.formats:
        if fmt.isdigit():
            pt = int(fmt)
            codec = maps.get(pt) or _STATIC.get(pt)
            if codec is not None:
                out.append(codec)
    return out


def _same(a: Codec, b: Codec) -> bool:
    return a.name.lower() == b.name.lower() and a.rate == b.rate


def _direction(sdp: SessionDescription, m: Media) -> str:
    for key, _ in (*m.attributes, *sdp.attributes):
        if key in _DIRECTIONS:
            return key
    return "sendrecv"


def _ptime(m: Media) -> int:
    value = m.attribute("ptime")
    return int(value) if value is not None and value.isdigit() and 0 < int(value) <= 200 else 20


def build_offer(
    address: str,
    port: int,
    session_id: int,
    *,
    codecs: tuple[Codec, ...] = (PCMU, PCMA),
    telephone_event_pt: int | None = 101,
    ptime: int = 20,
    direction: str = "sendrecv",
    version: int = 1,
    username: str = "dialer",
) -> SessionDescription:
    """One audio stream offering ``codecs`` in preference order (+ telephone-event)."""
    addrtype = "IP6" if ":" in address else "IP4"
    formats = [str(c.payload_type) for c in codecs]
    attrs: list[Attribute] = [("rtpmap", c.rtpmap) for c in codecs]
    if telephone_event_pt is not None:
        formats.append(str(telephone_event_pt))
        attrs += [
            ("rtpmap", f"{telephone_event_pt} telephone-event/8000"),
            ("fmtp", f"{telephone_event_pt} 0-16"),
        ]
    attrs += [("ptime", str(ptime)), (direction, None)]
    return SessionDescription(
        origin=Origin(username, str(session_id), str(version), address, "IN", addrtype),
        session_name="-",
        connection=Connection(address, "IN", addrtype),
        media=(Media("audio", port, "RTP/AVP", tuple(formats), attributes=tuple(attrs)),),
    )


def build_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    session_id: int,
    *,
    codecs: tuple[Codec, ...] = (PCMU, PCMA),
    ptime: int = 20,
    username: str = "dialer",
) -> tuple[SessionDescription, MediaParams]:
    """Answer ``offer``: the first offered codec we support, on its first audio
    stream; other streams are declined with port 0.  Returns the answer and the
    remote media parameters.  Raises :class:`SdpNegotiationError` if nothing fits."""
    addrtype = "IP6" if ":" in address else "IP4"
    answer_media: list[Media] = []
    chosen: MediaParams | None = None
    for m in offer.media:
        usable = chosen is None and m.media == "audio" and m.port != 0 and m.proto == "RTP/AVP"
        offered = _codecs_of(m) if usable else []
        pick = next((o for o in offered if any(_same(o, c) for c in codecs)), None)
        conn = m.connection or offer.connection
        if pick is None or conn is None:
            answer_media.append(Media(m.media, 0, m.proto, m.formats[:1]))
            continue
        event = next((o for o in offered if o.name.lower() == "telephone-event"), None)
        formats = [str(pick.payload_type)]
        attrs: list[Attribute] = [("rtpmap", pick.rtpmap)]
        if event is not None:
            formats.append(str(event.payload_type))
            attrs += [("rtpmap", event.rtpmap), ("fmtp", f"{event.payload_type} 0-16")]
        remote_dir = _direction(offer, m)
        mine = {"sendonly": "recvonly", "recvonly": "sendonly"}.get(remote_dir, remote_dir)
        attrs += [("ptime", str(ptime)), (mine, None)]
        answer_media.append(Media("audio", port, m.proto, tuple(formats), attributes=tuple(attrs)))
        chosen = MediaParams(
            conn.address,
            m.port,
            pick,
            _ptime(m),
            None if event is None else event.payload_type,
            remote_dir,
        )
    if chosen is None:
        raise SdpNegotiationError("offer has no RTP/AVP audio stream with PCMU or PCMA")
    answer = SessionDescription(
        origin=Origin(username, str(session_id), "1", address, "IN", addrtype),
        connection=Connection(address, "IN", addrtype),
        timing=offer.timing,
        media=tuple(answer_media),
    )
    return answer, chosen


def remote_media(sdp: SessionDescription) -> MediaParams:
    """Where and how to send RTP, from the peer's description (an answer or early media)."""
    for m in sdp.media:
        if m.media != "audio" or m.port == 0:
            continue
        conn = m.connection or sdp.connection
        codecs = _codecs_of(m)
        audio = next((c for c in codecs if c.name.lower() != "telephone-event"), None)
        if conn is None or audio is None:
            continue
        event = next((c for c in codecs if c.name.lower() == "telephone-event"), None)
        return MediaParams(
            conn.address,
            m.port,
            audio,
            _ptime(m),
            None if event is None else event.payload_type,
            _direction(sdp, m),
        )
    raise SdpNegotiationError("description has no active audio stream with a known codec")


__all__ = [
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Codec",
    "Connection",
    "Media",
    "MediaParams",
    "Origin",
    "SdpError",
    "SdpNegotiationError",
    "SessionDescription",
    "build_answer",
    "build_offer",
    "parse_sdp",
    "remote_media",
]
