"""A live campaign's dial-gate keys in the engine config: accepted and passed
through, or refused with the key named."""

from __future__ import annotations

import pytest

from dialer.config import ConfigError, parse_config
from tests.conftest import ANYTIME_CALLTIMES

BASE = '[[campaigns]]\nname = "c1"\nlist = "l1"\n'


def test_gate_keys_reach_the_campaign_settings() -> None:
    cfg = parse_config(
        BASE + f'calltimes = "{ANYTIME_CALLTIMES}"\ntimezone = "Europe/London"\n'
        "max_attempts_per_day = 2\nabandon_cooldown_h = 24.0\n"
    )
    s = cfg.campaigns[0].settings()
    assert s.calltimes == ANYTIME_CALLTIMES and s.timezone == "Europe/London"
    assert s.max_attempts_per_day == 2 and s.abandon_cooldown_h == 24.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('calltimes = "mars"', "campaigns.0.calltimes: "),
        ('timezone = "Mars/Olympus"', "campaigns.0.timezone: unknown time zone 'Mars/Olympus'"),
        ("max_attempts_per_day = 0", "campaigns.0.max_attempts_per_day: "),
        ('policy = "clairvoyant"', "exists only in the simulator"),
        ('agents = "robots"', "campaigns.0.agents: "),
    ],
)
def test_bad_gate_keys_are_named(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + line + "\n", "engine.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("engine.toml: ")


def test_campaign_line_limit_reaches_pacing() -> None:
    """The campaign's own line limit (beside lines per agent) reaches the settings the
    engine puts in every pacing snapshot (``Limits.max_lines``, applied by ``cap``)."""
    s = parse_config(BASE + "max_lines = 12\nmax_lines_per_agent = 2.5\n").campaigns[0].settings()
    assert s.max_lines == 12 and s.max_lines_per_agent == 2.5
    with pytest.raises(ConfigError, match=r"campaigns\.0\.max_lines"):
        parse_config(BASE + "max_lines = 0\n")
