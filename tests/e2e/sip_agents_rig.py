"""What the SIP-agent end-to-end tests share: an engine config with SIP agents
dialling the SIP simulated PBX, and a world with a small generated list."""

from __future__ import annotations

from dialer.config import EngineConfig, SipCarrierConfig, parse_config
from sim.sip_world import SipWorld
from tests.conftest import ANYTIME_CALLTIMES


class ContactsWorld(SipWorld):
    """The real SIP world, with a list to dial (a real one is imported)."""

    contacts = 40

    def fill_list(self, campaign: object) -> list[tuple[str, dict[str, str]]]:
        return [(f"+1212555{i:04d}", {"name": f"Customer {i}"}) for i in range(self.contacts)]


def sip_agents_config(pbx_port: int, users: dict[str, str], extra: str = "") -> EngineConfig:
    """One progressive desktop campaign, AMD off, dialling the PBX; ``users`` are the
    phones that may register; ``extra`` adds top-level keys."""
    table = ", ".join(f'{name} = "{pw}"' for name, pw in users.items())
    cfg = parse_config(
        f"""
stats_interval_s = 0.2
shutdown_grace_s = 2
{extra}
[carrier]
kind = "sip"
bind_port = 0
rtp_port_min = 0
rtp_port_max = 0
[[carrier.trunks]]
name = "pbx"
host = "127.0.0.1"
port = {pbx_port}
max_cps = 20
[carrier.agents]
users = {{ {table} }}
[[campaigns]]
name = "desk"
list = "l1"
mode = "progressive"
agents = "desktop"
amd_enabled = false
no_answer_timeout_s = 15
wrap_up_s = 0
calltimes = "{ANYTIME_CALLTIMES}"
"""
    )
    assert isinstance(cfg.carrier, SipCarrierConfig)
    return cfg
