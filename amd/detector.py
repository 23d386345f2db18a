"""The product's streaming answering-machine detector.

Per 20 ms frame it does only cheap work: the frame's energy (one dot product),
a noise-floor update, one webrtcvad call, and a 160-point FFT for tone analysis
on frames loud enough to hold a tone.  Speech frames become utterances (runs of
speech with short pauses bridged); the utterance pattern (initial silence,
greeting span, number of utterances, pause lengths, energy dynamics) is looked
at only when something changes: an utterance ends, a silence grows past a
threshold, the greeting grows past a threshold, a tone run is confirmed.

Features that need more than one frame (is a pause line silence or a music bed?)
are computed only at those decision points, from a ring of the last 0.5 s of frames.

Causes: ``short_live_greeting``, ``short_greeting_then_silence``,
``mid_greeting_then_silence`` (HUMAN), ``long_greeting`` / ``beep`` / ``music_bed``
(MACHINE), ``fax_cng`` / ``fax_ced`` (FAX),
``initial_silence`` (SILENCE), ``too_long`` (NOTSURE).  With ``wait_for_beep``
a MACHINE verdict is followed by a second verdict once the greeting has ended:
``machine_end_beep`` or ``machine_end_silence`` with ``beep_ms`` set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import webrtcvad

from amd.params import DetectorParams
from amd.tones import ToneFrame, analyse
from amd.types import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Label, Verdict

_FULL_SCALE_POWER = 32768.0**2
_RECENT_FRAMES = 25
_PAUSE_LOOK_MS = 200  # how far into a pause its background is looked at
_MUSIC_BELOW_SPEECH_DB = 15.0  # a music bed is played near the level of the voice over it
_JOINED_MS = 100  # a tone starting this soon after a word may be the word's own vowel
_WINDOW = np.hanning(FRAME_SAMPLES)


@dataclass(frozen=True, slots=True)
class Pattern:
    """The utterance pattern heard so far, computed at decision points."""

    initial_silence_ms: int
    greeting_span_ms: int
    speech_ms: int
    utterances: int
    longest_pause_ms: int
    level_spread_db: float  # spread of speech frame levels: live speech varies more


def _near(f: float, target: float, tol: float = 45.0) -> bool:
    return abs(f - target) <= tol


class StreamingDetector:
    """Sans-IO detector: ``feed(frame)`` per 20 ms frame, ``finish()`` at the end."""

    def __init__(self, params: DetectorParams | None = None) -> None:
        self.p = params or DetectorParams()
        self._vad = webrtcvad.Vad(self.p.vad_mode)
        self._snr = 10.0 ** (self.p.speech_snr_db / 10.0)
        self._rise = 10.0 ** (self.p.floor_rise_db_per_s * FRAME_MS / 1000.0 / 10.0)
        self._min_power = _FULL_SCALE_POWER * 10.0 ** (self.p.min_level_dbfs / 10.0)
        self._t = 0  # ms of media fed
        # the last half second of audio, kept for features computed at decision points
        self._recent = np.zeros((_RECENT_FRAMES, FRAME_SAMPLES), dtype=np.float64)
        self._line_checked = -1000  # ms, when a silence was last looked at for music
        self._music_pauses = 0  # pauses in the greeting that held a music bed
        self._music_end = 0  # ms, when music was last heard after a MACHINE verdict
        self._floor = -1.0
        # Utterance tracking.
        self._run = 0  # consecutive speech frames
        self._first_speech = -1  # ms, start of the first utterance
        self._last_speech = -1  # ms, end of the last speech frame
        self._speech_ms = 0
        self._utterances = 0
        self._in_utt = False
        self._longest_pause = 0
        self._levels: list[float] = []
        self._vad_speech_ms = 0  # speech the VAD itself confirmed (not tone onsets)
        self._last_active = -1  # ms, end of the last speech, tone or loud frame
        # Tone tracking.
        self._tone_start = -1
        self._tone_f = 0.0
        self._seg_f = 0.0
        self._seg_len = 0  # frames in the current steady-frequency segment of the run
        self._tone_gap = 0  # non-tonal frames bridged inside the current run
        self._tone_bridged = False  # the run has bridged gaps: not proof of a beep alone
        self._word_end = -1000  # ms, end of the last run of 60 ms or more of non-tonal speech
        self._word_run = 0  # consecutive non-tonal speech frames
        self._tone_end = -1
        self._beep_end: int | None = None
        # Outcome.
        self._verdict: Verdict | None = None
        self._end_verdict: Verdict | None = None
        self._waiting = False

    # -- public ------------------------------------------------------------
    @property
    def verdict(self) -> Verdict | None:
        return self._end_verdict or self._verdict

    def wait_for_beep(self) -> None:
        """Keep listening after MACHINE for the end of the greeting."""
        self._waiting = True

    def pattern(self) -> Pattern:
        spread = float(np.std(self._levels)) if len(self._levels) > 1 else 0.0
        span = self._last_speech - self._first_speech if self._first_speech >= 0 else 0
        return Pattern(
            initial_silence_ms=self._first_speech if self._first_speech >= 0 else self._t,
            greeting_span_ms=span,
            speech_ms=self._speech_ms,
            utterances=self._utterances,
            longest_pause_ms=self._longest_pause,
            level_spread_db=spread,
        )

    def feed(self, frame: npt.NDArray[np.int16]) -> Verdict | None:
        if len(frame) != FRAME_SAMPLES:
            raise ValueError(f"frame must hold {FRAME_SAMPLES} samples, got {len(frame)}")
        if self._verdict is not None and not (self._waiting or self.p.wait_for_beep):
            return None
        if self._end_verdict is not None:
            return None
        self._t += FRAME_MS
        x = self._recent[(self._t // FRAME_MS) % _RECENT_FRAMES]
        x[:] = frame  # the frame as float, kept for the decision-point features
        power = float(np.dot(x, x)) / FRAME_SAMPLES
        if self._floor < 0.0 or power < self._floor:
            self._floor = max(power, 1.0)
        else:
            self._floor *= self._rise  # steady noise becomes the floor; music beds do not
        loud = power >= self._min_power
        tone = analyse(x, self.p.tone_purity) if loud and power > 4.0 * self._floor else None
        tone = self._track_tone(tone)
        speech = False
        if tone is not None and self._tone_end - self._tone_start < self.p.beep_min_ms:
            speech = True  # steady vowels look tonal for a few frames; beeps last longer
            self._word_run = 0
        elif tone is None and loud and power >= self._snr * self._floor:
            speech = self._vad.is_speech(frame.tobytes(), SAMPLE_RATE)
            self._vad_speech_ms += FRAME_MS if speech else 0
            # music beds and other sound the VAD rejects still keep a greeting going
            if self._first_speech >= 0:
                self._last_active = self._t
            # one odd frame (a beep's onset) is not a word
            self._word_run = self._word_run + 1 if speech else 0
            if self._word_run * FRAME_MS >= self.p.min_speech_ms:
                self._word_end = self._t
        else:
            self._word_run = 0
        self._track_speech(speech, power)
        if self._verdict is None:
            return self._decide(tone)
        return self._greeting_end(tone, speech)

    def finish(self) -> Verdict:
        if self._verdict is None:
            if self._first_speech < 0:
                self._verdict = Verdict(Label.SILENCE, self._t, "initial_silence")
            elif self.pattern().greeting_span_ms <= self.p.human_max_greeting_ms:
                self._verdict = Verdict(
                    Label.HUMAN,
                    self._t,
                    "short_greeting_then_hangup",
                    speech_end_ms=self._last_speech,
                )
            else:
                self._verdict = Verdict(Label.NOTSURE, self._t, "hangup")
            return self._verdict
        if (self._waiting or self.p.wait_for_beep) and self._verdict.label is Label.MACHINE:
            if self._end_verdict is None:
                end = self._beep_end
                if (
                    end is None
                    and self._tone_start >= 0
                    and self._tone_end - self._tone_start >= (self.p.beep_min_ms)
                ):
                    end = self._tone_end
                cause = "machine_end_beep" if end is not None else "machine_end_other"
                self._end_verdict = Verdict(Label.MACHINE, self._t, cause, end)
            return self._end_verdict
        return self._verdict

    # -- tracking ------------------------------------------------------------
    def _track_tone(self, tone: ToneFrame | None) -> ToneFrame | None:
        """Extend the run of steady tones; returns the frame's tone if it is part of one.

        A run is consecutive tonal frames whose frequency holds steady for at least
        three frames before it may step to another (two- and three-tone beeps).
        """
        steady = (
            tone is not None
            and self._tone_start >= 0
            and min(abs(tone.f1 - self._seg_f), abs(tone.f2 - self._seg_f)) <= self.p.tone_steady_hz
        )
        if tone is not None:
            self._tone_gap = 0
        if tone is not None and steady:
            self._seg_len += 1
            self._tone_end = self._t
            return tone
        if tone is not None and self._tone_start >= 0 and self._seg_len >= 3:
            self._seg_f, self._seg_len = tone.f1, 1  # the next tone of a multi-tone beep
            self._tone_end = self._t
            return tone
        if tone is None and self._tone_start >= 0 and self._seg_len >= 3 and self._tone_gap < 2:
            # the join between the tones of a multi-tone beep smears a frame or two
            self._tone_gap += 1
            self._tone_bridged = True
            return None
        if self._tone_start >= 0:
            dur = self._tone_end - self._tone_start
            if dur >= self.p.beep_min_ms and self._seg_len >= 3 and self._verdict is not None:
                self._beep_end = self._tone_end
            self._tone_start = -1
        if tone is None:
            self._seg_len = 0
            return None
        self._tone_start = self._t - FRAME_MS
        self._tone_bridged = False
        self._tone_f = self._seg_f = tone.f1
        self._seg_len = 1
        self._tone_end = self._t
        return tone

    def _track_speech(self, speech: bool, power: float) -> None:
        if not speech:
            self._run = 0
            return
        self._run += 1
        start = self._t - self._run * FRAME_MS
        if self._run * FRAME_MS < self.p.min_speech_ms:
            return
        if self._run * FRAME_MS == self.p.min_speech_ms or self._first_speech < 0:
            gap = start - self._last_speech if self._last_speech >= 0 else 0
            if self._first_speech < 0:
                self._first_speech = start
                self._utterances = 1
                self._speech_ms = self._run * FRAME_MS - FRAME_MS
            elif gap >= 250:
                self._utterances += 1
                self._longest_pause = max(self._longest_pause, gap)
                self._speech_ms += self._run * FRAME_MS - FRAME_MS
            else:
                self._speech_ms += self._run * FRAME_MS - FRAME_MS
        self._speech_ms += FRAME_MS
        self._last_speech = self._t
        self._last_active = self._t
        if len(self._levels) < 400:
            self._levels.append(10.0 * math.log10(power + 1.0))

    # -- decisions -------------------------------------------------------------
    def _set(self, label: Label, cause: str) -> Verdict:
        end = self._last_speech if self._last_speech >= 0 else None
        self._verdict = Verdict(label, self._t, cause, speech_end_ms=end)
        return self._verdict

    def _decide(self, tone: ToneFrame | None) -> Verdict | None:
        p = self.p
        if self._tone_start >= 0 and tone is not None and self._seg_len >= 3:
            dur = self._tone_end - self._tone_start
            f = self._tone_f
            if _near(f, 2100.0) and dur >= p.fax_ced_ms:
                return self._set(Label.FAX, "fax_ced")
            quiet_before = self._vad_speech_ms < 200
            if _near(f, 1100.0) and dur >= p.fax_cng_ms and quiet_before:
                return self._set(Label.FAX, "fax_cng")
            far_from_fax = not (_near(f, 2100.0) or (_near(f, 1100.0) and quiet_before))
            # a tone that starts as a word ends is a held vowel until it outlasts one;
            # a machine leaves a gap before its beep
            joined = self._tone_start - self._word_end < _JOINED_MS
            need = max(p.beep_min_ms, p.joined_beep_min_ms) if joined else p.beep_min_ms
            if dur >= need and far_from_fax and not self._tone_bridged:
                return self._set(Label.MACHINE, "beep")
        if self._first_speech < 0:
            if self._t >= p.silence_timeout_ms:
                return self._set(Label.SILENCE, "initial_silence")
            return None
        span = self._last_active - self._first_speech
        silence = self._t - max(self._last_active, self._tone_end)
        if span >= p.long_greeting_ms:
            return self._set(Label.MACHINE, "long_greeting")
        if silence == _PAUSE_LOOK_MS and self._tonal(_PAUSE_LOOK_MS // FRAME_MS):
            # each pause in the greeting: is a music bed playing under it?
            self._music_pauses += 1
        live = self._utterances == 1 and span <= p.live_max_ms and silence >= p.live_silence_ms
        quick = span <= p.quick_greeting_ms and silence >= p.end_silence_ms
        short = span <= p.human_max_greeting_ms and silence >= p.greeting_silence_ms
        mid = silence >= p.mid_greeting_silence_ms
        if mid and not (live or quick or short) and self._music_pauses >= 2:
            # a greeting too long for a one-phrase answer, spoken over music that goes on
            # through its pauses (one tonal pause may be a chime or a radio): a recording
            return self._set(Label.MACHINE, "music_bed")
        if (live or quick or short or mid) and self._quiet_line():
            cause = "short_live_greeting" if live else "short_greeting_then_silence"
            if not (live or quick or short):
                cause = "mid_greeting_then_silence"
            return self._set(Label.HUMAN, cause)
        if self._t >= p.max_analysis_ms:
            return self._set(Label.NOTSURE, "too_long")
        return None

    def _quiet_line(self) -> bool:
        """Is the silence after the greeting line silence rather than a music bed?

        A music bed keeps a few strong spectral peaks going between the words; line
        noise and room noise spread their energy over the band.  Looked at only when a
        rule would call a person, at most every 200 ms: the spectra cost ten FFTs."""
        if self._t - self._line_checked < 200:
            return False
        self._line_checked = self._t
        return not self._tonal(min(self.p.live_silence_ms, 200) // FRAME_MS)

    def _tonal(self, n: int) -> bool:
        """Do the last ``n`` frames hold a music bed: a few strong spectral peaks, near
        the loudness of the speech?  (Line noise spreads over the band; a hum or the
        tail of a vowel is far quieter than the speech.)"""
        now = self._t // FRAME_MS
        idx = [(now - k) % _RECENT_FRAMES for k in range(n)]
        frames = self._recent[idx]
        level = 10.0 * math.log10(float(np.mean(frames**2)) + 1.0)
        if not self._levels or level < float(np.median(self._levels)) - _MUSIC_BELOW_SPEECH_DB:
            return False
        spec = (np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2).mean(axis=0)
        band = spec[5:68]  # 250-3350 Hz: the telephone band, clear of mains hum
        total = float(band.sum())
        if total <= 0.0:
            return False
        top = np.sort(band)[-6:].sum()
        return float(top) / total >= self.p.music_peakiness

    def _greeting_end(self, tone: ToneFrame | None, speech: bool) -> Verdict | None:
        assert self._verdict is not None
        if self._verdict.label is not Label.MACHINE:
            return None
        p = self.p
        if self._beep_end is not None and tone is None:
            if speech or self._last_speech > self._beep_end:
                self._beep_end = None  # a sung or held vowel: the greeting goes on
            elif self._t - self._beep_end >= p.beep_confirm_ms:
                # the recorder listens after the beep: no speech follows it
                self._end_verdict = Verdict(
                    Label.MACHINE, self._t, "machine_end_beep", self._beep_end
                )
                return self._end_verdict
        quiet_since = max(self._last_speech, self._last_active, self._tone_end, self._music_end, 0)
        if tone is None and not speech and self._t - quiet_since >= p.greeting_end_silence_ms:
            # a music bed the VAD does not call speech still plays under the greeting:
            # only line silence ends it (looked at every 200 ms at most)
            if self._t - self._line_checked < _PAUSE_LOOK_MS:
                return None
            self._line_checked = self._t
            if self._tonal(_PAUSE_LOOK_MS // FRAME_MS):
                self._music_end = self._t
                return None
            self._end_verdict = Verdict(Label.MACHINE, self._t, "machine_end_silence", quiet_since)
            return self._end_verdict
        if self._t >= p.beep_timeout_ms:
            self._end_verdict = Verdict(Label.MACHINE, self._t, "machine_end_other")
            return self._end_verdict
        return None
