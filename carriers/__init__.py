"""How calls leave the building: one Carrier protocol and its adapters."""

from carriers.base import (
    AgentLegRequest,
    Answered,
    AudioClip,
    CallOutcome,
    Carrier,
    CarrierEvent,
    CarrierListener,
    DialRequest,
    Ended,
    MediaFrames,
    Ringing,
    Scheduler,
)

__all__ = [
    "AgentLegRequest",
    "Answered",
    "AudioClip",
    "CallOutcome",
    "Carrier",
    "CarrierEvent",
    "CarrierListener",
    "DialRequest",
    "Ended",
    "MediaFrames",
    "Ringing",
    "Scheduler",
]
