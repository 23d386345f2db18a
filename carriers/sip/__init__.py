"""Sans-IO SIP (RFC 3261 over UDP): bytes and time in; bytes, deadlines and events out.

Nothing here opens a socket or reads a clock.  The layers, bottom up:

* :func:`parse_message` turns one datagram into a :class:`Request` or
  :class:`Response`, or raises :class:`SipParseError` (a ``ValueError``) whose text
  says what is wrong and on which line / header; ``err.status`` is the response
  code a UAS should answer with (400, 505).  Work is bounded by :class:`ParseLimits`.
  ``msg.serialise()`` gives the bytes back (Content-Length is always written from
  the body); ``parse_message(m.serialise()) == m`` for messages built here.
* :class:`StreamFramer` cuts a byte stream (TCP) into messages by Content-Length.
* Header helpers: :class:`NameAddr`, :class:`Via`, :class:`CSeq`, :class:`SipUri`
  and their ``parse_*`` functions; structured views on messages (``msg.via``,
  ``msg.from_``, ``msg.to``, ``msg.cseq``, ``msg.call_id``, ``msg.contact``).
* :func:`application_check` flags requests that parse but that a UA must refuse
  (missing headers, unsupported URI scheme / extension / body type), as a status.
* :mod:`carriers.sip.sdp`: ``parse_sdp``, ``build_offer``, ``build_answer`` (first
  common codec of PCMU/PCMA, telephone-event kept; ``SdpNegotiationError`` -> 488),
  ``remote_media`` -> :class:`MediaParams` (address, port, codec, ptime, event PT).
* :mod:`carriers.sip.auth`: ``parse_challenge`` + ``authorization`` (MD5/SHA-256,
  qop=auth) for the client; :class:`DigestServer` (stateless HMAC nonces) to
  challenge and ``verify`` registering agents.
* :mod:`carriers.sip.transaction`: the four RFC 3261 §17 machines, one table each;
  ``Transaction.client(req, now, TimerParams())`` / ``Transaction.server(...)``, then
  ``receive(msg, now)``, ``respond(resp, now)``, ``handle_timer(now)``,
  ``get_timer()``, ``messages_to_send()``, ``next_event()``.
* :mod:`carriers.sip.endpoint`: :class:`Endpoint` owns transactions and dialogs.
  Typical use by a transport::

      ep = Endpoint(EndpointConfig(host="192.0.2.10", port=5060,
                                   username="trunkuser", password="secret"))
      call = ep.invite("sip:+15551234567@trunk.example", offer_bytes, trunk_addr, now)
      for data, addr in ep.datagrams_to_send(): sock.sendto(data, addr)
      # on a datagram: ep.receive_datagram(data, addr, now)
      # at ep.get_timer(): ep.handle_timer(now)
      while (event := ep.next_event()) is not None: ...

  Events: ``CallProgress`` (1xx; ``sdp`` set = early media), ``CallAnswered``,
  ``CallFailed`` (status, reason, :class:`carriers.base.CallOutcome`), ``CallEnded``,
  ``IncomingCall`` (answer with ``answer``/``ring``/``reject``), ``IncomingRequest``
  (``respond``), ``AuthRequired``.  Commands: ``cancel`` (held until a provisional
  arrives, per RFC 3261 §9.1), ``bye``, ``options``.
* :mod:`carriers.sip.registrar`: :class:`Registrar` answers agents' REGISTERs
  (``handle(request, source, now) -> Response``, sent with ``Endpoint.respond``),
  keeps their bindings (``lookup(user, now)``: the newest), expires them at
  ``get_timer()`` and reports ``BindingAdded`` / ``BindingRemoved`` events.
* :func:`carriers.sip.outcome.outcome_for_status` maps final responses to outcomes;
  :mod:`carriers.sip.security` builds stateless 400/403 replies (or None: drop).
"""

from carriers.sip.errors import SipParseError
from carriers.sip.framing import StreamFramer
from carriers.sip.headers import (
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    parse_cseq,
    parse_name_addr,
    parse_via,
    split_list,
)
from carriers.sip.message import REASONS, Message, Request, Response
from carriers.sip.parser import DEFAULT_LIMITS, ParseLimits, parse_message
from carriers.sip.uri import AbsoluteUri, SipUri, Uri, parse_uri
from carriers.sip.validate import application_check

__all__ = [
    "DEFAULT_LIMITS",
    "REASONS",
    "AbsoluteUri",
    "CSeq",
    "Message",
    "NameAddr",
    "ParseLimits",
    "Request",
    "Response",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "Uri",
    "Via",
    "application_check",
    "canonical_name",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "split_list",
]
