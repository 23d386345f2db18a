from __future__ import annotations

from pathlib import Path

import pytest

from amd.asterisk import AsteriskDetector, AsteriskParams
from amd.detector import StreamingDetector
from amd.params import DetectorParams
from amd.profiles import ProfileError, load, names, parse
from amd.registry import create


def test_shipped_profiles_load() -> None:
    assert {"fast", "balanced", "cautious", "asterisk"} <= set(names())
    for n in names():
        load(n)
    assert isinstance(load("asterisk"), AsteriskParams)
    assert load("asterisk") == AsteriskParams()  # the documented defaults
    assert isinstance(create("asterisk"), AsteriskDetector)
    assert isinstance(create("cautious"), StreamingDetector)


def test_profiles_are_ordered_by_caution() -> None:
    fast, bal, cau = load("fast"), load("balanced"), load("cautious")
    assert isinstance(fast, DetectorParams) and isinstance(cau, DetectorParams)
    assert isinstance(bal, DetectorParams)
    assert fast.end_silence_ms < bal.end_silence_ms < cau.end_silence_ms
    assert fast.long_greeting_ms < bal.long_greeting_ms < cau.long_greeting_ms


def test_notsure_goes_to_an_agent_by_default() -> None:
    assert DetectorParams().notsure_to_agent is True


def test_unknown_key_is_named() -> None:
    with pytest.raises(ProfileError, match="'end_silence'") as e:
        parse("[detector]\nend_silence = 500\n", "x.toml")
    assert "x.toml" in str(e.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[detector]\nend_silence_ms = "fast"\n', "end_silence_ms"),
        ("[detector]\nend_silence_ms = -5\n", "end_silence_ms"),
        ("[detector]\nvad_mode = 7\n", "vad_mode"),
        ("[detector]\nwait_for_beep = 1\n", "wait_for_beep"),
        ("[detector]\ntone_purity = 2.0\n", "tone_purity"),
        ("[asterisk]\ngreeting = 1.5\n", "greeting"),
    ],
)
def test_bad_values_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ProfileError, match=repr(key)):
        parse(text, "p.toml")


def test_bad_structure_and_syntax() -> None:
    with pytest.raises(ProfileError, match="exactly one table"):
        parse("[detector]\n[asterisk]\n", "p.toml")
    with pytest.raises(ProfileError, match="not valid TOML"):
        parse("[detector\n", "p.toml")
    with pytest.raises(ProfileError, match="no AMD profile 'nope'"):
        load("nope")


def test_profile_from_path_and_overrides(tmp_path: Path) -> None:
    p = tmp_path / "mine.toml"
    p.write_text("[detector]\nend_silence_ms = 900\n")
    params = load(str(p))
    assert isinstance(params, DetectorParams) and params.end_silence_ms == 900
    det = create("balanced", end_silence_ms=750)
    assert isinstance(det, StreamingDetector) and det.p.end_silence_ms == 750
    with pytest.raises(ProfileError, match="'bogus'"):
        create("balanced", bogus=1)
    with pytest.raises(ProfileError, match="'greeting'"):
        create("asterisk", greeting="long")
