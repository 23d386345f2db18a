"""Answering machine detection: 20 ms frames of 8 kHz int16 audio in, a verdict out.

Knows nothing of SIP or asyncio.  Every detector is a sans-IO object with
``feed(frame) -> Verdict | None``; :func:`amd.registry.create` builds one from a
profile name (``config/amd/*.toml``: fast, balanced, cautious, asterisk).
:class:`amd.sit.SitDetector` finds SIT tones on early media (a bad number).
NOTSURE verdicts go to an agent by default (``DetectorParams.notsure_to_agent``).
"""

from amd.detector import StreamingDetector
from amd.params import DetectorParams
from amd.registry import create
from amd.sit import SitDetector, SitTone
from amd.types import Detector, Label, Verdict

__all__ = [
    "Detector",
    "DetectorParams",
    "Label",
    "SitDetector",
    "SitTone",
    "StreamingDetector",
    "Verdict",
    "create",
]
