"""The `kind = "sip"` carrier in the engine config: trunks validated, errors name the key."""

from __future__ import annotations

import pytest

from dialer.config import CarrierConfig, ConfigError, SipCarrierConfig, parse_config

CAMPAIGN = '[[campaigns]]\nname = "c"\nlist = "l"\n'
SIP = '[carrier]\nkind = "sip"\n'
TRUNK = '[[carrier.trunks]]\nname = "{name}"\nhost = "127.0.0.1"\n{extra}\n'


def _parse(text: str) -> object:
    return parse_config(text + CAMPAIGN, "engine.toml").carrier


def test_sip_carrier_with_trunks_builds_params() -> None:
    carrier = _parse(
        SIP
        + "bind_port = 0\n"
        + TRUNK.format(name="a", extra='priority = 1\nusername = "u"\npassword = "p"')
        + TRUNK.format(name="b", extra="max_cps = 0.5\nmax_concurrent = 2")
    )
    assert isinstance(carrier, SipCarrierConfig)
    params = carrier.params()
    assert [t.name for t in params.trunks] == ["a", "b"]
    assert params.trunks[0].username == "u" and params.trunks[1].max_cps == 0.5
    assert params.bind_port == 0


def test_no_kind_is_the_simulator() -> None:
    assert isinstance(_parse("[carrier]\nseed = 3\n"), CarrierConfig)
    assert isinstance(_parse(""), CarrierConfig)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (SIP, "engine.toml: carrier.trunks: required key is missing"),
        (SIP + TRUNK.format(name="a", extra="port = 70000"), "carrier.trunks.0.port"),
        (SIP + TRUNK.format(name="a", extra='transport = "tcp"'), "carrier.trunks.0.transport"),
        (SIP + TRUNK.format(name="a", extra="colour = 1"), "carrier.trunks.0.colour: unknown key"),
        (SIP + TRUNK.format(name="a", extra='username = "u"'), "username and password go together"),
        (SIP + TRUNK.format(name="a", extra="") * 2, "trunk names must be unique"),
        (
            SIP + "rtp_port_min = 100\nrtp_port_max = 200\n" + TRUNK.format(name="a", extra=""),
            "within 1024-65534",
        ),
        ('[carrier]\nkind = "pstn"\n', "carrier.kind: unknown kind 'pstn'"),
        (
            SIP + 'bind_host = "0.0.0.0"\n' + TRUNK.format(name="a", extra=""),
            "public_host is required",
        ),
    ],
)
def test_bad_sip_config_names_the_key(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        _parse(text)
    assert where in str(err.value)
