"""Dialog state (RFC 3261 §12): the identifiers and sequence numbers of one call leg."""

from __future__ import annotations

from dataclasses import dataclass, field

from carriers.sip.message import Request, Response
from carriers.sip.uri import Uri, parse_uri


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: str  # our From (UAC) / To (UAS) value without tag
    remote_uri: str
    remote_target: Uri  # the peer's Contact
    local_seq: int
    remote_seq: int | None = None
    route_set: list[str] = field(default_factory=list)
    confirmed: bool = False

    @property
    def id(self) -> tuple[str, str, str | None]:
        return self.call_id, self.local_tag, self.remote_tag

    @classmethod
    def as_uac(cls, invite: Request, response: Response) -> Dialog:
        """From our INVITE and a 1xx-with-tag or 2xx (RFC 3261 §12.1.2)."""
        contact = response.contact
        target = contact[0].uri if contact else invite.uri
        assert target is not None
        routes = list(reversed(response.get_all("Record-Route")))
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_.tag or "",
            remote_tag=response.to.tag,
            local_uri=_without_tag(invite.get("From") or ""),
            remote_uri=_without_tag(invite.get("To") or ""),
            remote_target=target,
            local_seq=invite.cseq.seq,
            route_set=routes,
            confirmed=200 <= response.status < 300,
        )

    @classmethod
    def as_uas(cls, invite: Request, local_tag: str) -> Dialog:
        """From an INVITE we answer (RFC 3261 §12.1.1)."""
        contact = invite.contact
        target = contact[0].uri if contact else parse_uri(str(invite.from_.uri))
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_.tag,
            local_uri=_without_tag(invite.get("To") or ""),
            remote_uri=_without_tag(invite.get("From") or ""),
            remote_target=target,
            local_seq=0,
            remote_seq=invite.cseq.seq,
            route_set=list(invite.get_all("Record-Route")),
        )

    def matches(self, msg: Request | Response, *, incoming: bool) -> bool:
        """Does an in-dialog message belong here?  Incoming requests carry our tag in To."""
        if msg.call_id != self.call_id:
            return False
        ours, theirs = (msg.to.tag, msg.from_.tag) if incoming else (msg.from_.tag, msg.to.tag)
        return ours == self.local_tag and (self.remote_tag is None or theirs == self.remote_tag)


def _without_tag(value: str) -> str:
    parts = [p for p in value.split(";") if not p.strip().lower().startswith("tag=")]
    return ";".join(parts).strip()
