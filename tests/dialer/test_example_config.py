"""The example engine configuration the README points to is valid as shipped, and
its commented SIP-agents block is valid once uncommented."""

from __future__ import annotations

import re

from dialer.config import SipCarrierConfig, load_config, parse_config
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "engine.example.toml"


def test_example_config_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.campaigns and cfg.carrier.kind == "simulated"


def test_example_sip_block_with_agents_is_valid() -> None:
    text = EXAMPLE.read_text()
    block = text[text.index('# kind = "sip"') : text.index("[[campaigns]]")]
    sip = "\n".join(re.sub(r"^# ?", "", line) for line in block.splitlines())
    cfg = parse_config("[carrier]\n" + sip + '\n[[campaigns]]\nname = "c"\nlist = "l"\n', "example")
    assert isinstance(cfg.carrier, SipCarrierConfig) and cfg.carrier.agents is not None
    assert cfg.carrier.agents.target_for("ann") == "ann"
    assert cfg.carrier.agents.target_for("carl") == "sip:carl@192.0.2.7:5060"
    params = cfg.carrier.params()
    assert params.agents and dict(params.agent_users) == {"ann": "s3cret"}
    assert params.line_rtp_timeout_s == 60.0  # the watchdog is on unless turned off


def test_bad_agent_phones_are_named() -> None:
    base = '[carrier]\nkind = "sip"\n[[carrier.trunks]]\nname = "t"\nhost = "127.0.0.1"\n'
    camp = '[[campaigns]]\nname = "c"\nlist = "l"\n'
    for agents, want in [
        ('phones = { carl = "sip:carl@pbx.example.com" }', "must be an IP address"),
        ('phones = { carl = "tel:+15551234567" }', "is not a sip: URI"),
        ('users = { "ann smith" = "pw" }', "agent ids must be SIP user names"),
        ('users = { ann = " " }', "empty value"),
        ("line_answer_timeout_s = 0", "line_answer_timeout_s"),
        ("rtp_timeout_s = -1", "rtp_timeout_s"),
    ]:
        try:
            parse_config(base + "[carrier.agents]\n" + agents + "\n" + camp, "x.toml")
        except ValueError as exc:
            assert want in str(exc) and "carrier.agents" in str(exc), str(exc)
        else:
            raise AssertionError(f"accepted {agents!r}")


def test_bad_trunk_probe_settings_are_named() -> None:
    base = '[carrier]\nkind = "sip"\n{key}\n[[carrier.trunks]]\nname = "t"\nhost = "127.0.0.1"\n'
    camp = '[[campaigns]]\nname = "c"\nlist = "l"\n'
    for key in ("options_failures = 0", "options_interval_s = -1"):
        try:
            parse_config(base.format(key=key) + camp, "x.toml")
        except ValueError as exc:
            assert key.split(" ")[0] in str(exc) and "carrier" in str(exc), str(exc)
        else:
            raise AssertionError(f"accepted {key!r}")
    # good probe settings reach the carrier
    good = base.format(key="options_interval_s = 30\noptions_failures = 3")
    cfg = parse_config(good + camp, "ok")
    assert isinstance(cfg.carrier, SipCarrierConfig)
    params = cfg.carrier.params()
    assert (params.options_interval_s, params.options_failures) == (30.0, 3)
