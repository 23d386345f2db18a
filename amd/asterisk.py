"""The classic Asterisk ``AMD()`` decision rules, re-implemented as a baseline.

Follows the published behaviour of ``app_amd.c`` (current releases): a frame is
silence when its mean absolute amplitude is below ``silence_threshold`` (the DSP
silence detector); consecutive silence and voice are counted in ms; a word is a
run of voice of at least ``minimum_word_length`` entered from silence (a silence
counts once it reaches ``between_words_silence``).  Rules, checked per frame in
this order: total time over ``total_analysis_time`` -> NOTSURE ``TOOLONG``;
in silence: initial silence over ``initial_silence`` -> MACHINE
``INITIALSILENCE``, silence after the greeting started over
``after_greeting_silence`` -> HUMAN ``HUMAN``; in voice: a word longer than
``maximum_word_length`` -> MACHINE ``MAXWORDLENGTH``, more than
``maximum_number_of_words`` words -> MACHINE ``MAXWORDS``, total voice over
``greeting`` -> MACHINE ``LONGGREETING``.  The audio ending first is ``HANGUP``.
Causes carry the figures the way Asterisk prints them (``HUMAN-800-800``).
Defaults are the documented ones (amd.conf).  It is here so every evaluation can
show the product's detector beside the field's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from amd.types import FRAME_MS, Label, Verdict


@dataclass(frozen=True, slots=True)
class AsteriskParams:
    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    minimum_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 2
    silence_threshold: int = 256
    maximum_word_length: int = 5000


class AsteriskDetector:
    """Streaming port of the published AMD() state machine."""

    def __init__(self, params: AsteriskParams | None = None) -> None:
        self.p = params or AsteriskParams()
        self._total = 0
        self._last_voice_end = 0
        self._dsp_silence = 0  # consecutive silent ms, as the DSP reports it
        self._silence = 0  # silenceDuration: kept until enough voice resets it
        self._consecutive_voice = 0
        self._voice = 0
        self._words = 0
        self._in_word = False
        self._in_initial_silence = True
        self._in_greeting = False
        self._done: Verdict | None = None

    def _decide(self, label: Label, cause: str) -> Verdict:
        # where the greeting ended: the 2-second connect rule counts from there
        end = self._last_voice_end if self._last_voice_end > 0 else None
        self._done = Verdict(label, self._total, cause, speech_end_ms=end)
        return self._done

    def feed(self, frame: npt.NDArray[np.int16]) -> Verdict | None:
        if self._done is not None:
            return None
        p = self.p
        self._total += FRAME_MS
        if self._total >= p.total_analysis_time:
            return self._decide(Label.NOTSURE, f"TOOLONG-{self._total}")
        level = float(np.abs(frame.astype(np.int32)).mean()) if len(frame) else 0.0
        if level < p.silence_threshold:
            self._dsp_silence += FRAME_MS
            self._silence = self._dsp_silence
            if self._silence >= p.between_words_silence:
                self._in_word = False
                self._consecutive_voice = 0
            if self._in_initial_silence and self._silence >= p.initial_silence:
                return self._decide(
                    Label.MACHINE, f"INITIALSILENCE-{self._silence}-{p.initial_silence}"
                )
            if self._in_greeting and self._silence >= p.after_greeting_silence:
                return self._decide(
                    Label.HUMAN, f"HUMAN-{self._silence}-{p.after_greeting_silence}"
                )
            return None
        self._dsp_silence = 0
        self._consecutive_voice += FRAME_MS
        self._voice += FRAME_MS
        self._last_voice_end = self._total
        if self._consecutive_voice >= p.minimum_word_length and not self._in_word:
            self._words += 1
            self._in_word = True
        if self._consecutive_voice >= p.maximum_word_length:
            return self._decide(Label.MACHINE, f"MAXWORDLENGTH-{self._consecutive_voice}")
        if self._words > p.maximum_number_of_words:
            return self._decide(
                Label.MACHINE, f"MAXWORDS-{self._words}-{p.maximum_number_of_words}"
            )
        if self._in_greeting and self._voice >= p.greeting:
            return self._decide(Label.MACHINE, f"LONGGREETING-{self._voice}-{p.greeting}")
        if self._voice >= p.minimum_word_length:
            self._silence = 0
        if self._consecutive_voice >= p.minimum_word_length and not self._in_greeting:
            self._in_initial_silence = False
            self._in_greeting = True
        return None

    def finish(self) -> Verdict:
        if self._done is not None:
            return self._done
        return self._decide(Label.NOTSURE, "HANGUP")
