"""VICIdial's adaptive dial level (ADAPT_HARD_LIMIT / ADAPT_TAPERED / ADAPT_AVERAGE),
re-implemented from the published description of AST_VDadapt.pl and
AST_VDauto_dial.pl, as a baseline to compare against.

Assumptions where our engine differs from VICIdial's (each marked ASSUMPTION in
the code):

- one campaign, one server; no blended inbound, no drop-rate groups, no
  dial_level_threshold, no incall_tally_threshold, dl_diff_target_method
  ADAPT_CALC_ONLY (the diff target only enters the level calculation);
- sampling: VICIdial samples once per pass; here one sample per second of
  ``snapshot.now`` (ticks closer than a second apart add no sample);
- agent states: READY = ``agents.ready``; INCALL/QUEUE = ``agents.on_call``;
  our wrap-up is VICIdial's dispositioning pause, so wrap-up agents count in
  the averaged agent total (like PAUSED ones) but not in the dialing count;
  reserved agents are treated as paused;
- waiting_now (LIVE calls in the queue) = ``calls.waiting``;
- drop statistics: "today" is the abandon budget's window (``budget.abandoned``
  over ``budget.live_answers``, the drops-of-answers percentage), calls today is
  ``stats.dials``; both are re-read only every ``drop_refresh_s`` (60 s), as
  VICIdial refreshes them once a minute. The last-minute guard uses the growth of
  those two counts over the previous refresh (clamped at zero, since the window
  can shrink);
- server time for TAPERED: ``shift_start_hhmm`` plus ``snapshot.now`` seconds
  (the engine's clock starts at the shift start);
- calls are placed on every tick (VICIdial's loop runs every 2.5 s) as
  ``round(level * count) - exist``, where exist counts calls dialing, classifying,
  waiting and talking to agents, then through :func:`pacing.types.cap`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from pacing.types import Decision, PacingSnapshot, cap, dial_level

METHODS = ("HARD_LIMIT", "TAPERED", "AVERAGE")


@dataclass(frozen=True, slots=True)
class VicidialParams:
    method: str = "HARD_LIMIT"
    dropped_percentage: float = 3.0  # adaptive_dropped_percentage
    maximum_level: float = 3.0  # adaptive_maximum_level
    intensity: float = 0.0  # adaptive_intensity, -40..40
    dl_diff_target: float = 0.0  # adaptive_dl_diff_target, -40..40
    latest_server_time: int = 2100  # adaptive_latest_server_time, HHMM
    initial_level: float = 1.0  # auto_dial_level when the campaign starts
    shift_start_hhmm: int = 900  # ASSUMPTION: wall time at snapshot.now == 0
    update_s: float = 15.0
    samples: int = 15
    drop_refresh_s: float = 60.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"vicidial method must be one of {METHODS}, got {self.method!r}")
        if not -40 <= self.intensity <= 40 or not -40 <= self.dl_diff_target <= 40:
            raise ValueError(
                "vicidial intensity and dl_diff_target must be in [-40, 40], got "
                f"{self.intensity} and {self.dl_diff_target}"
            )
        if not 1.0 <= self.maximum_level <= 15.0 or self.initial_level < 1.0:
            raise ValueError(
                f"vicidial maximum_level must be in [1, 15] and initial_level >= 1: {self}"
            )
        if self.dropped_percentage < 0 or self.update_s <= 0 or self.samples < 1:
            raise ValueError(f"vicidial parameters out of range: {self}")


def _hhmm_plus(start_hhmm: int, seconds: float) -> int:
    minutes = (start_hhmm // 100) * 60 + start_hhmm % 100 + int(seconds // 60)
    minutes %= 24 * 60
    return (minutes // 60) * 100 + minutes % 60


class VicidialAdaptive:
    name = "vicidial-adaptive"

    def __init__(self, params: VicidialParams | None = None, **overrides: object) -> None:
        if params is None:
            params = VicidialParams(**overrides)  # type: ignore[arg-type]
        elif overrides:
            raise ValueError("give either VicidialParams or keyword overrides, not both")
        self.params = params
        self.level = params.initial_level
        self._ready: deque[float] = deque(maxlen=params.samples)
        self._waiting: deque[float] = deque(maxlen=params.samples)
        self._total: deque[float] = deque(maxlen=params.samples)
        self._last_sample: float | None = None
        self._last_update: float | None = None
        self._drops_at: float | None = None
        self._drop_pct_today = 0.0
        self._calls_today = 0.0
        self._calls_1min = 0.0
        self._drop_pct_1min = 0.0
        self._prev_counts: tuple[float, float] | None = None

    def _sample(self, snap: PacingSnapshot) -> None:
        if self._last_sample is not None and snap.now - self._last_sample < 1.0:
            return
        self._last_sample = snap.now
        ag = snap.agents
        self._ready.append(float(len(ag.ready)))
        self._waiting.append(float(len(snap.calls.waiting)))
        # ASSUMPTION: wrap-up and reserved agents are "paused" (counted in the total)
        self._total.append(float(ag.logged_in))

    def _refresh_drops(self, snap: PacingSnapshot) -> None:
        p = self.params
        if self._drops_at is not None and snap.now - self._drops_at < p.drop_refresh_s:
            return
        self._drops_at = snap.now
        b = snap.budget
        self._drop_pct_today = 100.0 * b.abandoned / max(b.live_answers, 1.0)
        self._calls_today = snap.stats.dials
        counts = (snap.stats.dials, b.abandoned)
        if self._prev_counts is not None:
            calls = max(0.0, counts[0] - self._prev_counts[0])
            drops = max(0.0, counts[1] - self._prev_counts[1])
            self._calls_1min = calls
            # the guard divides by all calls, not answers (appendix A.3/A.4)
            self._drop_pct_1min = 100.0 * drops / calls if calls > 0 else 0.0
        self._prev_counts = counts

    def _update_level(self, snap: PacingSnapshot) -> None:
        p = self.params
        n = len(self._ready)
        ready_avg = sum(self._ready) / n
        waiting_avg = sum(self._waiting) / n
        agents_avg = sum(self._total) / n
        target = ready_avg - waiting_avg + p.dl_diff_target
        m = target / agents_avg if target != 0 and agents_avg != 0 else 0.0
        i = p.intensity / 100.0
        step = m * abs(i - 1.0) if m < 0 else m * (1.0 + i)
        new = round(self.level * (1.0 + step), 3)
        new = max(min(new, p.maximum_level), 1.0)
        if self._calls_1min > 20 and self._drop_pct_1min > 50:
            new /= 2.0
        if self._calls_today > 50 and self._drop_pct_today > p.dropped_percentage:
            if p.method == "HARD_LIMIT":
                new = 1.0
            elif p.method == "AVERAGE":
                new /= 2.0
            else:
                left = p.latest_server_time - _hhmm_plus(p.shift_start_hhmm, snap.now)
                new = 1.0 if left < 0 else new * min(1.0, left / 1000.0)
        self.level = max(new, 1.0)

    def decide(self, snapshot: PacingSnapshot, rng: np.random.Generator) -> Decision:
        self._sample(snapshot)
        self._refresh_drops(snapshot)
        if self._last_update is None:
            self._last_update = snapshot.now
        elif snapshot.now - self._last_update >= self.params.update_s:
            self._last_update = snapshot.now
            self._update_level(snapshot)
        ag = snapshot.agents
        count = len(ag.ready) + len(ag.on_call)
        goal = round(self.level * count)
        exist = snapshot.calls.in_progress + len(ag.on_call)
        n = cap(snapshot, goal - exist)
        return Decision(
            calls=n,
            dial_level=dial_level(snapshot, n),
            expected_free_agents=float(len(ag.ready)),
            reason=f"{self.params.method} level {self.level:.3f}",
        )
