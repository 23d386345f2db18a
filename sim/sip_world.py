"""`dialer run` over real SIP trunks while agents are still simulated.

Calls leave through :class:`carriers.sip.carrier.SipCarrier` (the trunks of the
config); agents follow the scenario's team, as in :class:`sim.world.SimWorld`,
until SIP agent legs exist.  Real worlds bring their own contacts, so an empty
list stays empty (import one with `dialer contacts import`).
"""

from __future__ import annotations

import numpy as np

from carriers.base import Carrier
from carriers.sip.carrier import SipCarrier, SipCarrierParams
from dialer.clock import Clock
from dialer.config import CampaignConfig
from sim.scenario import Scenario
from sim.world import SimWorld


class SipWorld(SimWorld):
    def __init__(self, scenario: Scenario, seed: int, params: SipCarrierParams) -> None:
        super().__init__(scenario, seed)
        self.params = params
        self._sip: SipCarrier | None = None

    def bind(self, clock: Clock) -> None:
        self._clock = clock
        (rng,) = self.root.spawn(1)
        self._sip = SipCarrier(clock, self.params, np.random.default_rng(rng))

    @property
    def carrier(self) -> Carrier:
        if self._sip is None:
            raise RuntimeError("SipWorld.bind(clock) must be called first")
        return self._sip

    def fill_list(self, campaign: CampaignConfig) -> list[tuple[str, dict[str, str]]]:
        return []
