"""The people (and machines) being called: the scenario's called-party model."""

from __future__ import annotations

import numpy as np

from carriers.simulated import PartyBehaviour, PartyKind
from sim.audio import ClipBank
from sim.distributions import sample
from sim.scenario import CalledParty


class Population:
    def __init__(self, model: CalledParty, clips: ClipBank, shift_start: float = 0.0) -> None:
        self.m = model
        self.clips = clips
        self.shift_start = shift_start

    def answer_rate(self, now: float) -> float:
        hour = (now - self.shift_start) / 3600.0
        rate = self.m.answer_rate
        for ch in self.m.changes:
            if ch.at_hour <= hour < ch.until_hour:
                rate *= ch.answer_rate_factor
        return min(rate, 1.0 - self.m.busy_rate - self.m.bad_number_rate)

    def sample(self, number: str, now: float, rng: np.random.Generator) -> PartyBehaviour:
        m = self.m
        u = rng.random()
        ring = sample(m.ring, rng)
        if u < m.bad_number_rate:
            return PartyBehaviour(PartyKind.BAD_NUMBER, ring_s=0.0)
        u -= m.bad_number_rate
        if u < m.busy_rate:
            return PartyBehaviour(PartyKind.BUSY, ring_s=0.0)
        u -= m.busy_rate
        if u >= self.answer_rate(now):
            return PartyBehaviour(PartyKind.NO_ANSWER, ring_s=ring)
        v = rng.random()
        if v < m.fax_share:
            return PartyBehaviour(PartyKind.FAX, ring, self.clips.pick("fax", rng))
        if v < m.fax_share + m.machine_share:
            return PartyBehaviour(PartyKind.MACHINE, ring, self.clips.pick("machine", rng))
        key, key_s = None, 0.0
        if m.ivr is not None:
            key, w = "", rng.random()
            for digit, share in m.ivr.keys.items():
                if w < share:
                    key = digit
                    break
                w -= share
            key_s = sample(m.ivr.press, rng)
        return PartyBehaviour(
            PartyKind.PERSON,
            ring,
            self.clips.pick("human", rng),
            talk_s=sample(m.talk, rng),
            patience_s=sample(m.patience, rng),
            ivr_key=key,
            ivr_key_s=key_s,
        )
