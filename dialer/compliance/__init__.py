"""Compliance: the dial gate every dial passes through.

* :mod:`dialer.compliance.dnc` — DNC and suppression lists in memory (numbers,
  prefixes, e-mail addresses, expiries), fast enough to check every dial.
* :mod:`dialer.compliance.hours` — callable-time sets evaluated in the contact's own
  time zone(s), holidays, and when a number next becomes callable.
* :mod:`dialer.compliance.gate` — :class:`DialGate`, the single function that says
  whether a number may be dialled now and, if not, why and until when.
"""

from dialer.compliance.dnc import DncIndex, DncList, DncMatch
from dialer.compliance.gate import DialGate, GateRules, RefusalReason
from dialer.compliance.hours import CallTimes, load_calltimes, zones_for

__all__ = [
    "CallTimes",
    "DialGate",
    "DncIndex",
    "DncList",
    "DncMatch",
    "GateRules",
    "RefusalReason",
    "load_calltimes",
    "zones_for",
]
