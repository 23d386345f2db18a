from __future__ import annotations

import numpy as np
import pytest
from signals import frames, pcm, run, silence, tone, voice

from amd.detector import StreamingDetector
from amd.params import DetectorParams
from amd.registry import create
from amd.types import Label


def test_short_greeting_then_silence_is_a_person() -> None:
    x = pcm(silence(0.3), voice(0.5), silence(3.0))
    v = run(create("balanced"), x)[0]
    assert v.label is Label.HUMAN
    assert v.cause == "short_greeting_then_silence"
    # decided end_silence_ms after the greeting ended, not at the end of the clip
    assert 800 + 500 <= v.decision_ms <= 800 + 800


def test_long_greeting_is_a_machine_and_beep_end_is_found() -> None:
    x = pcm(silence(0.3), voice(5.0), silence(0.3), tone([1000.0], 0.5), silence(3.0))
    verdicts = run(create("balanced", wait_for_beep=True), x)
    first, end = verdicts[0], verdicts[1]
    assert first.label is Label.MACHINE and first.cause == "long_greeting"
    assert first.beep_ms is None and first.decision_ms < 5000
    assert end.cause == "machine_end_beep"
    assert end.beep_ms is not None and abs(end.beep_ms - 6100) <= 40


@pytest.mark.parametrize(
    ("beep", "length"),
    [
        ([tone([440.0], 0.25)], 0.25),
        ([tone([1950.0], 0.9)], 0.9),
        ([tone([700.0, 1200.0], 0.4)], 0.4),  # dual tone
        ([tone([500.0], 0.1), tone([900.0], 0.1), tone([1300.0], 0.1)], 0.3),  # triple
    ],
)
def test_beep_end_timing_on_synthesised_tones(beep: list[np.ndarray], length: float) -> None:
    x = pcm(silence(0.2), voice(4.0, seed=2), silence(0.4), *beep, silence(3.0))
    true_end = round((0.2 + 4.0 + 0.4 + length) * 1000)
    verdicts = run(create("balanced", wait_for_beep=True), x)
    end = verdicts[-1]
    assert end.label is Label.MACHINE and end.cause == "machine_end_beep"
    assert end.beep_ms is not None and abs(end.beep_ms - true_end) <= 40


def test_short_greeting_then_beep_is_a_machine() -> None:
    x = pcm(silence(0.3), voice(0.9), silence(0.3), tone([850.0], 0.4), silence(3.0))
    verdicts = run(create("balanced", wait_for_beep=True), x)
    assert verdicts[0].label is Label.MACHINE and verdicts[0].cause == "beep"
    assert verdicts[1].beep_ms is not None and abs(verdicts[1].beep_ms - 1900) <= 40


def test_greeting_end_by_silence_without_beep() -> None:
    x = pcm(silence(0.3), voice(5.0), silence(4.0))
    end = run(create("balanced", wait_for_beep=True), x)[-1]
    assert end.cause == "machine_end_silence"
    assert end.beep_ms is not None and abs(end.beep_ms - 5300) <= 100


def test_without_wait_only_one_verdict() -> None:
    x = pcm(silence(0.3), voice(5.0), silence(0.3), tone([1000.0], 0.5), silence(2.0))
    verdicts = run(create("balanced"), x)
    assert [v.cause for v in verdicts] == ["long_greeting", "long_greeting"]
    assert verdicts[0].beep_ms is None


def test_wait_for_beep_method_equals_option() -> None:
    x = pcm(silence(0.3), voice(5.0), silence(0.3), tone([1000.0], 0.5), silence(2.0))
    det = StreamingDetector()
    det.wait_for_beep()
    assert run(det, x)[-1].cause == "machine_end_beep"


def test_dead_air_is_silence() -> None:
    v = run(create("balanced"), pcm(silence(8.0), noise_db=-55))[0]
    assert v.label is Label.SILENCE and v.cause == "initial_silence"
    assert v.decision_ms == DetectorParams().silence_timeout_ms


def test_fax_cng() -> None:
    x = pcm(silence(0.5), tone([1100.0], 0.5), silence(3.0), tone([1100.0], 0.5), silence(1.0))
    v = run(create("balanced"), x)[0]
    assert (v.label, v.cause) == (Label.FAX, "fax_cng")


@pytest.mark.parametrize("flip", [0.0, 0.45])
def test_fax_ced_plain_and_phase_reversed(flip: float) -> None:
    x = pcm(silence(0.5), tone([2100.0], 3.0, phase_flip_s=flip), silence(1.0))
    v = run(create("balanced"), x)[0]
    assert (v.label, v.cause) == (Label.FAX, "fax_ced")
    assert v.decision_ms < 2000


def test_noise_floor_keeps_a_noisy_room_from_looking_like_a_long_greeting() -> None:
    rng = np.random.default_rng(5)
    n = int(5.0 * 8000)
    room = rng.normal(0, 10 ** (-32 / 20), n)
    speech = np.concatenate([silence(0.4), voice(0.5, level=0.3), silence(4.1)])
    x = np.clip((room + speech) * 32767, -32768, 32767).astype(np.int16)
    v = run(create("balanced"), x)[0]
    assert v.label is Label.HUMAN


def test_finish_without_decision() -> None:
    det = create("balanced")
    for f in frames(pcm(silence(0.3), voice(0.4))):
        assert det.feed(f) is None
    v = det.finish()
    assert v.label is Label.HUMAN
    assert det.finish() == v


def test_bad_frame_size_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="160 samples"):
        create("balanced").feed(np.zeros(80, dtype=np.int16))


def test_pattern_features() -> None:
    det = StreamingDetector()
    run(det, pcm(silence(0.5), voice(0.6), silence(0.6), voice(0.6), silence(0.2)))
    pat = det.pattern()
    assert 400 <= pat.initial_silence_ms <= 600
    assert pat.utterances >= 1 and pat.speech_ms > 0


def _chords(seconds: float, level: float = 0.1) -> np.ndarray:
    """A music bed: three-note chords changing every 0.5 s."""
    parts = []
    for i in range(int(seconds / 0.5)):
        base = 220.0 * 2 ** ((i * 5 % 12) / 12)
        parts.append(tone([base, base * 1.26, base * 1.5], 0.5, level))
    return np.concatenate(parts)


def test_short_phrase_over_a_music_bed_is_not_called_a_person() -> None:
    # the pause after the phrase holds music, not line silence: the greeting goes on
    speech = np.concatenate([silence(0.3), voice(0.8, seed=4), silence(2.2)])
    x = pcm(speech + _chords(4.0)[: len(speech)], silence(0.3), tone([1000.0], 0.4), silence(1))
    v = run(create("balanced"), x)[0]
    assert v.label is Label.MACHINE and v.cause == "beep"
    # the same phrase with line silence after it is a person
    assert run(create("balanced"), pcm(speech))[0].label is Label.HUMAN


def _smeared_join(f1: float, f2: float) -> np.ndarray:
    # two tones with 20 ms of noise where they meet, as a cheap recorder plays them
    noise = np.random.default_rng(5).normal(0, 0.1, 160)
    return np.concatenate([tone([f1], 0.2), noise, tone([f2], 0.2)])


def test_two_tone_beep_with_a_smeared_join_ends_at_its_second_tone() -> None:
    x = pcm(silence(0.3), voice(5.0), silence(0.3), _smeared_join(600.0, 1400.0), silence(3.0))
    end = run(create("balanced", wait_for_beep=True), x)[1]
    assert end.cause == "machine_end_beep"
    assert end.beep_ms is not None and abs(end.beep_ms - (5600 + 420)) <= 40


def test_a_tone_followed_by_more_speech_is_not_the_greeting_end() -> None:
    # a chime mid-greeting, then the greeting goes on and ends with the real beep
    x = pcm(
        silence(0.3),
        voice(4.5),
        tone([880.0], 0.3),
        voice(1.0, seed=2),
        silence(0.3),
        tone([1000.0], 0.5),
        silence(3.0),
    )
    verdicts = run(create("balanced", wait_for_beep=True), x)
    end = verdicts[1]
    assert end.cause == "machine_end_beep"
    assert end.beep_ms is not None and abs(end.beep_ms - 6900) <= 40


def test_live_rule_believes_a_lone_short_word_after_a_short_silence() -> None:
    x = pcm(silence(0.3), voice(0.5), silence(3.0))
    v = run(create("balanced", live_max_ms=700, live_silence_ms=300), x)[0]
    assert v.label is Label.HUMAN and v.cause == "short_live_greeting"
    assert v.speech_end_ms is not None and abs(v.speech_end_ms - 800) <= 60
    assert v.decision_ms - v.speech_end_ms <= 300 + 220  # the line check runs every 200 ms


def test_mid_length_greeting_over_a_music_bed_without_beep_is_a_machine() -> None:
    # three phrases with pauses, music under all of it, then nothing: no beep to wait for
    words = [silence(0.3), voice(0.9, seed=6), silence(0.5), voice(0.9, seed=7)]
    words += [silence(0.5), voice(0.8, seed=8)]
    speech = np.concatenate(words)
    bed = speech + _chords(4.5)[: len(speech)]
    v = run(create("balanced"), pcm(bed, silence(3.0)))[0]
    assert v.label is Label.MACHINE and v.cause == "music_bed"
    # the connect rule counts from the last speech heard (in the third phrase, 3.1-3.9 s)
    assert v.speech_end_ms is not None and 3100 <= v.speech_end_ms <= len(speech) / 8 + 60
    # the same greeting on a quiet line is a person who said a few words
    assert run(create("balanced"), pcm(speech, silence(3.0)))[0].label is Label.HUMAN


def test_balanced_waits_out_a_late_beep_after_a_mid_length_greeting() -> None:
    # a 2.3 s greeting with a pause inside, 1.3 s of silence, then its beep: the person
    # rule for mid-length greetings waits 1.5 s, so the beep decides it
    greeting = [silence(0.3), voice(1.0, seed=3), silence(0.4), voice(0.9, seed=4)]
    x = pcm(*greeting, silence(1.3), tone([1000.0], 0.4), silence(3.0))
    v = run(create("balanced"), x)[0]
    assert v.label is Label.MACHINE and v.cause == "beep"
    # with no beep the same greeting is a person, 1.5 s after it ends
    v = run(create("balanced"), pcm(*greeting, silence(3.0)))[0]
    assert v.label is Label.HUMAN and v.cause == "mid_greeting_then_silence"
    assert v.speech_end_ms is not None and 1500 <= v.decision_ms - v.speech_end_ms <= 1760


def test_balanced_quick_rule_stops_short_of_a_one_phrase_prompt() -> None:
    # "Leave a message." (0.8 s) then a beep 0.65 s later: too long for the quick rule,
    # so the 1 s greeting silence is still running when the beep comes
    x = pcm(silence(0.3), voice(0.8, seed=5), silence(0.65), tone([900.0], 0.3), silence(3.0))
    assert run(create("balanced"), x)[0].label is Label.MACHINE
    # a 0.6 s answer is still called after the quick rule's 0.6 s
    v = run(create("balanced"), pcm(silence(0.3), voice(0.6, seed=5), silence(3.0)))[0]
    assert v.label is Label.HUMAN and v.decision_ms <= 900 + 600 + 220


def test_a_held_vowel_at_the_end_of_a_word_is_not_a_beep() -> None:
    # a word whose last vowel is held on one pitch for 220 ms looks like a tone, but
    # it starts as the word ends: a person, not a machine's beep
    x = pcm(silence(0.3), voice(0.5, seed=9), tone([450.0], 0.22), silence(3.0))
    v = run(create("balanced"), x)[0]
    assert v.label is Label.HUMAN
    # the same tone after a pause is a beep, taken at beep_min_ms
    x = pcm(silence(0.3), voice(0.5, seed=9), silence(0.2), tone([450.0], 0.22), silence(3.0))
    v = run(create("balanced"), x)[0]
    assert v.label is Label.MACHINE and v.cause == "beep"
    assert v.decision_ms <= 1000 + 160 + 40
    # a beep straight after the last word still counts once it outlasts a vowel
    x = pcm(silence(0.3), voice(0.5, seed=9), tone([450.0], 0.5), silence(3.0))
    v = run(create("balanced"), x)[0]
    assert v.label is Label.MACHINE and v.cause == "beep"
    assert v.decision_ms >= 800 + 300


def test_music_after_the_last_word_does_not_end_the_greeting_before_the_beep() -> None:
    # a greeting over a music bed that plays on for 2 s after the last word, then the
    # beep: the greeting ends at the beep, not 1.5 s after the last word
    words = [silence(0.3), voice(1.5, seed=6), silence(0.3), voice(1.5, seed=7)]
    speech = np.concatenate([*words, silence(0.3), voice(1.2, seed=8), silence(2.0)])
    bed = speech + _chords(7.5, 0.05)[: len(speech)]
    x = pcm(bed, silence(0.3), tone([1000.0], 0.4), silence(3.0))
    verdicts = run(create("balanced", wait_for_beep=True), x)
    assert verdicts[0].label is Label.MACHINE
    end = verdicts[1]
    assert end.cause == "machine_end_beep"
    assert end.beep_ms is not None and abs(end.beep_ms - 7800) <= 40
    # on a quiet line the same greeting ends 1.5 s after its last word
    end = run(create("balanced", wait_for_beep=True), pcm(speech, silence(3.0)))[1]
    assert end.cause == "machine_end_silence"
    assert end.beep_ms is not None and abs(end.beep_ms - 5100) <= 60
