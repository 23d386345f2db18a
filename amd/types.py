"""Value types shared by every detector."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000


class Label(StrEnum):
    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    FAX = "FAX"
    SILENCE = "SILENCE"
    NOTSURE = "NOTSURE"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A detector's decision.

    ``decision_ms`` is media time since answer when the decision was made.
    ``beep_ms`` is the end of the machine greeting (end of beep or of the long
    silence that ends it) when the detector was asked to wait for it, else None.
    """

    label: Label
    decision_ms: int
    cause: str
    beep_ms: int | None = None
    # end of the last speech heard before deciding: the "completed greeting" the
    # 2-second connect rule counts from (None when no speech was heard)
    speech_end_ms: int | None = None


class Detector(Protocol):
    """Streaming detector: feed 20 ms frames (160 int16 samples) as they arrive."""

    def feed(self, frame: npt.NDArray[np.int16]) -> Verdict | None:
        """Returns the verdict once (the first time it is known), else None."""
        ...

    def finish(self) -> Verdict:
        """The audio ended (hang-up or end of file): decide with what was heard."""
        ...
