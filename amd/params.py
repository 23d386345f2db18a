"""The tunable figures of the streaming detector (all times in ms of media).

Profiles in ``config/amd/*.toml`` set these by name; :mod:`amd.profiles` checks
them.  ``NOTSURE`` verdicts go to an agent by default (``notsure_to_agent``): a
machine sent to an agent costs seconds, a person hung up on is an abandoned call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectorParams:
    # Speech segmentation.
    vad_mode: int = 2  # webrtcvad aggressiveness 0-3
    speech_snr_db: float = 6.0  # a VAD frame counts as speech only this far above the noise floor
    floor_rise_db_per_s: float = 0.5  # how fast the noise floor follows louder steady noise
    min_level_dbfs: float = -48.0  # frames quieter than this are silence whatever the VAD says
    min_speech_ms: int = 60  # consecutive speech that starts an utterance
    # Live person: a short greeting followed by silence.
    # A one-word answer ("Hello?") needs only a short pause to be believed; a longer
    # phrase may be the first sentence of a recorded greeting, so it needs a longer one.
    quick_greeting_ms: int = 600  # greeting span (first to last speech) of a one-word answer
    end_silence_ms: int = 600  # silence after a one-word answer
    # A lone short utterance ("Hello?") is believed after a much shorter silence: a
    # recorded greeting rarely stops that early.  0 turns the rule off.
    live_max_ms: int = 0  # longest lone first utterance the rule applies to
    live_silence_ms: int = 200  # silence after it
    # A pause whose energy sits this much in its 6 strongest spectral bins is a music
    # bed, not line silence (no person is called on it; enough of it makes MACHINE).
    music_peakiness: float = 0.7
    human_max_greeting_ms: int = 1600  # longest greeting span still called a person
    greeting_silence_ms: int = 1000  # silence after a greeting of that length
    # Machine: a long greeting.
    long_greeting_ms: int = 4000  # greeting span, pauses shorter than end_silence_ms bridged
    mid_greeting_silence_ms: int = 1200  # silence after a mid-length greeting (no beep): person
    # Nothing heard.
    silence_timeout_ms: int = 5000
    max_analysis_ms: int = 8000  # undecided after this: NOTSURE
    # Tones.
    tone_purity: float = 0.85  # share of frame energy in the one or two strongest peaks
    tone_steady_hz: float = 15.0  # a tone holds its frequency this closely, frame to frame
    beep_min_ms: int = 160
    # a tone that starts within 100 ms of speech (a held vowel looks like one) must
    # last this long to be a beep; a beep after a pause needs only beep_min_ms
    joined_beep_min_ms: int = 300
    fax_cng_ms: int = 400
    fax_ced_ms: int = 600
    # Greeting end (after MACHINE, when wait_for_beep).
    wait_for_beep: bool = False
    greeting_end_silence_ms: int = 1500
    beep_confirm_ms: int = 200  # a beep ends the greeting only if no speech follows this soon
    beep_timeout_ms: int = 30000
    # Policy: NOTSURE goes to an agent (the engine reads this).
    notsure_to_agent: bool = True
