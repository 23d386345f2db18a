"""Online estimates the predictive policies share: connect rates, durations, free agents.

Everything here is closed-form numpy/scipy.special so that a policy can run every
simulated second for hundreds of agents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from pacing.types import FloatArray

_SQRT2 = float(np.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class LogNormalPrior:
    """A cold-start belief about a duration, worth ``strength`` observed samples."""

    median_s: float
    sigma: float
    strength: float = 10.0

    def __post_init__(self) -> None:
        if not (self.median_s > 0 and self.sigma > 0 and self.strength >= 0):
            raise ValueError(
                f"LogNormalPrior needs median_s > 0, sigma > 0, strength >= 0; got {self}"
            )


@dataclass(frozen=True, slots=True)
class LogNormal:
    mu: float
    sigma: float

    def cdf(self, t: FloatArray) -> FloatArray:
        safe = np.maximum(t, 1e-9)
        z = (np.log(safe) - self.mu) / self.sigma
        out: FloatArray = np.where(t > 0, special.ndtr(z), 0.0)
        return out

    def quantiles(self, qs: FloatArray) -> FloatArray:
        out: FloatArray = np.exp(self.mu + self.sigma * special.ndtri(qs))
        return out

    @property
    def mean(self) -> float:
        return float(np.exp(self.mu + 0.5 * self.sigma**2))


def fit_lognormal(samples: FloatArray, prior: LogNormalPrior) -> LogNormal:
    """Posterior-mean style fit: the prior acts as ``strength`` pseudo-samples.

    A conjugate normal / scaled-inverse-chi-square update on log durations,
    reduced to its point estimate; zero or negative samples (instant hang-ups)
    are floored at 0.1 s so the log stays finite.
    """
    mu0 = float(np.log(prior.median_s))
    k = prior.strength
    n = len(samples)
    if n == 0:
        return LogNormal(mu0, prior.sigma)
    logs = np.log(np.maximum(samples, 0.1))
    m = float(logs.mean())
    ss = float(((logs - m) ** 2).sum())
    mu = (k * mu0 + n * m) / (k + n)
    var = (k * prior.sigma**2 + ss + (k * n / (k + n)) * (m - mu0) ** 2) / (k + n)
    return LogNormal(mu, max(float(np.sqrt(var)), 0.05))


def prob_done_within(dist: LogNormal, elapsed: FloatArray, horizon: FloatArray) -> FloatArray:
    """P(T <= elapsed + h | T > elapsed) for every (agent, horizon) pair.

    ``elapsed`` has shape (a,), ``horizon`` shape (h,); the result is (a, h),
    within [0, 1] and non-decreasing along the horizon axis.
    """
    e = np.asarray(elapsed, dtype=np.float64)[:, None]
    h = np.maximum(np.asarray(horizon, dtype=np.float64), 0.0)[None, :]
    # work with survival functions in the log domain tail-safely: for agents far
    # in the tail, 1 - cdf underflows, and the conditional law is then taken as
    # "will finish within any positive horizon" only as fast as the hazard says
    z0 = (np.log(np.maximum(e, 1e-9)) - dist.mu) / dist.sigma
    z1 = (np.log(np.maximum(e + h, 1e-9)) - dist.mu) / dist.sigma
    if z0.size == 0 or z0.max() < _PLAIN_TAIL_Z:
        # Nobody is deep in the tail, so the plain survival ratio keeps full
        # precision and ndtr costs half of log_ndtr (this runs every tick).
        ratio = special.ndtr(-z1) / special.ndtr(-z0)
        out: FloatArray = 1.0 - np.minimum(ratio, 1.0)
        return out
    log_s0 = special.log_ndtr(-z0)
    log_s1 = special.log_ndtr(-z1)
    # min(.., 0) keeps the ratio <= 1, so the result already lies in [0, 1]
    out = -np.expm1(np.minimum(log_s1 - log_s0, 0.0))
    return out


# Survival at z = 5 is 2.9e-7: a ratio of two such values still has ~9 good
# digits, far more than pacing needs.
_PLAIN_TAIL_Z = 5.0


class FreeCurve:
    """``prob_done_within(dist, e, horizons).mean(axis=1)`` as a function of the
    elapsed time ``e``, tabulated and read by linear interpolation.

    A pacing tick asks it for every busy agent, every second, while the fitted
    laws change only when the engine refreshes its samples.  The grid is fine
    where the curve can bend sharply (0.05 s steps over the first 5 s, 0.25 s
    to 30 s) and
    geometric after (2 % steps), where the conditional law changes on the scale
    of the elapsed time itself: a few hundred points whatever the longest call,
    with an error far below what the estimate can claim (checked in the tests).
    """

    FINE_S = 0.25
    FINE_UNTIL_S = 30.0
    RATIO = 1.02

    def __init__(self, dist: LogNormal, horizons: FloatArray) -> None:
        self.dist = dist
        self.horizons = np.asarray(horizons, dtype=np.float64)
        self._grid: FloatArray = np.zeros(0)
        self._table: FloatArray = np.zeros(0)

    @classmethod
    def grid(cls, top: float) -> FloatArray:
        # the first seconds need the finest steps: a wide law peaks near zero
        finest = np.arange(0.0, 5.0, 0.05)
        fine = np.concatenate([finest, np.arange(5.0, cls.FINE_UNTIL_S, cls.FINE_S)])
        n = max(
            1,
            int(np.ceil(np.log(max(top, cls.FINE_UNTIL_S) / cls.FINE_UNTIL_S) / np.log(cls.RATIO)))
            + 2,
        )
        coarse = cls.FINE_UNTIL_S * cls.RATIO ** np.arange(n)
        out: FloatArray = np.concatenate([fine, coarse])
        return out

    def __call__(self, elapsed: FloatArray) -> FloatArray:
        e = np.asarray(elapsed, dtype=np.float64)
        if e.size == 0:
            return np.zeros(0)
        top = float(e.max())
        if not len(self._grid) or top >= self._grid[-1]:
            # doubling the reach costs only ~35 more points on the geometric part
            self._grid = self.grid(max(2.0 * top, 600.0))
            self._table = prob_done_within(self.dist, self._grid, self.horizons).mean(axis=1)
        out: FloatArray = np.interp(e, self._grid, self._table)
        return out


def _survival(sorted_samples: FloatArray, t: FloatArray) -> FloatArray:
    """Empirical P(T > t), with one pseudo-observation beyond every t so that it
    never reaches zero (a ratio of two of these stays finite)."""
    n = len(sorted_samples)
    still = n - np.searchsorted(sorted_samples, t, side="right")
    out: FloatArray = (still + 1.0).astype(np.float64) / (n + 1.0)
    return out


def live_given_still_dialing(
    p_live: float,
    ended_sorted: FloatArray,
    ages: FloatArray,
    answered_live_sorted: FloatArray,
    ring_live: LogNormal,
) -> FloatArray:
    """P(a call still dialing ``age`` seconds after it was placed reaches a person).

    A call that has rung for a while is less likely to be a person than a new one:
    most people answer within seconds, while no-answers ring to the timeout.  By
    Bayes, P(live | still dialing at a) = p_live * S_live(a) / S_all(a), with
    S_live the survival of the dial-to-answer time of calls that reached a person
    (``answered_live_sorted``; without samples, the dial-to-live-verdict fit
    ``ring_live``, which runs a little later and so errs towards fewer dials) and
    S_all the empirical survival of the dialing phase of every call
    (``ended_sorted``: dial-to-end-of-dialing times).  Both arrays are sorted.
    Treating every call in flight as a new one doubled the expected demand on a
    500-agent floor (measured against the simulator's foresight: 100 predicted
    live answers where 47 came).
    """
    ratio = still_dialing_ratio(ended_sorted, ages, answered_live_sorted, ring_live)
    out: FloatArray = np.minimum(1.0, p_live * ratio)
    return out


def still_dialing_ratio(
    ended_sorted: FloatArray,
    ages: FloatArray,
    answered_live_sorted: FloatArray,
    ring_live: LogNormal,
) -> FloatArray:
    """S_live(a) / S_all(a) of :func:`live_given_still_dialing` (1 without samples)."""
    a = np.asarray(ages, dtype=np.float64)
    if len(ended_sorted) == 0:
        return np.ones(len(a))
    s_all = _survival(ended_sorted, a)
    if len(answered_live_sorted):
        s_live = _survival(answered_live_sorted, a)
    else:
        s_live = 1.0 - ring_live.cdf(a)
    out: FloatArray = s_live / s_all
    return out


class DialingCurve:
    """:func:`still_dialing_ratio` tabulated every 0.1 s up to the longest dialing
    phase seen (and flat beyond it), read by interpolation: the samples change
    only when the engine refreshes them, the ages every tick."""

    STEP_S = 0.1

    def __init__(
        self, ended_sorted: FloatArray, answered_live_sorted: FloatArray, ring_live: LogNormal
    ) -> None:
        top = max(float(ended_sorted[-1]) if len(ended_sorted) else 0.0, 30.0) + 1.0
        self._grid = np.arange(0.0, top + self.STEP_S, self.STEP_S)
        self._table = still_dialing_ratio(ended_sorted, self._grid, answered_live_sorted, ring_live)

    def __call__(self, p_live: float, ages: FloatArray) -> FloatArray:
        out: FloatArray = np.minimum(1.0, p_live * np.interp(ages, self._grid, self._table))
        return out


@dataclass(slots=True)
class DecayingRate:
    """Beta-binomial estimate of a success probability with exponential forgetting.

    Fed cumulative counts (as in OutcomeStats); forgets with ``half_life_s`` so that a
    drift such as lunchtime shows within minutes, and, with ``half_life_n``, also
    after that many new outcomes, so that a large campaign, which sees thousands of
    outcomes a minute, follows a change within seconds rather than a quarter of an
    hour while a small one keeps its longer memory.  Counts that go backwards (the
    engine discounts or resets them) restart the tracking from the new values.
    """

    prior_p: float
    prior_strength: float
    half_life_s: float
    half_life_n: float | None = None
    succ: float = 0.0
    fail: float = 0.0
    _last_succ: float = 0.0
    _last_total: float = 0.0
    _last_now: float | None = None

    def update(self, now: float, succ_total: float, total: float) -> float:
        if self._last_now is not None:
            dt = max(0.0, now - self._last_now)
            d_s = succ_total - self._last_succ
            d_t = total - self._last_total
            if d_s < 0 or d_t < 0 or d_s > d_t + 1e-9:
                self.succ, self.fail = succ_total, max(0.0, total - succ_total)
            else:
                decay = 0.5 ** (dt / self.half_life_s) if self.half_life_s > 0 else 1.0
                if self.half_life_n is not None and self.half_life_n > 0:
                    decay *= 0.5 ** (d_t / self.half_life_n)
                self.succ = self.succ * decay + d_s
                self.fail = self.fail * decay + max(0.0, d_t - d_s)
        else:
            self.succ, self.fail = succ_total, max(0.0, total - succ_total)
        self._last_now, self._last_succ, self._last_total = now, succ_total, total
        return self.estimate()

    def estimate(self) -> float:
        a = self.prior_p * self.prior_strength + self.succ
        b = (1.0 - self.prior_p) * self.prior_strength + self.fail
        return a / (a + b) if a + b > 0 else self.prior_p


def poisson_binomial_pmf(p: FloatArray) -> FloatArray:
    """Exact pmf of a sum of independent Bernoullis for small groups, a
    discretised normal with the same mean and variance for large ones."""
    n = len(p)
    if n == 0:
        return np.ones(1)
    if n <= 8:
        return _poisson_binomial_dp(p)
    if n <= 48:
        # Exact as well, through the characteristic function at the n+1 roots of
        # unity and one FFT (Hong 2013): a handful of array operations instead of
        # one per probability, about 4x faster from 20 calls on; errors ~1e-16.
        m = n + 1
        z = np.exp(2j * np.pi * np.arange(m) / m)
        cf = np.prod(1.0 - p[:, None] + p[:, None] * z[None, :], axis=0)
        pmf: FloatArray = np.maximum(np.fft.fft(cf).real / m, 0.0)
        pmf /= pmf.sum()
        return pmf
    mean = float(p.sum())
    sd = float(np.sqrt(max((p * (1.0 - p)).sum(), 1e-12)))
    edges = (np.arange(n + 2) - 0.5 - mean) / sd
    cdf = special.ndtr(edges)
    out: FloatArray = np.diff(cdf)
    out /= out.sum()
    return out


def _poisson_binomial_dp(p: FloatArray) -> FloatArray:
    """The textbook recursion, one probability at a time (exact; the reference)."""
    n = len(p)
    pmf = np.zeros(n + 1)
    pmf[0] = 1.0
    for i, pi in enumerate(p):
        pmf[1 : i + 2] = pmf[1 : i + 2] * (1.0 - pi) + pmf[0 : i + 1] * pi
        pmf[0] *= 1.0 - pi
    return pmf


_LOG_FACT: FloatArray = special.gammaln(np.arange(1025, dtype=np.float64) + 1.0)


def _log_factorials(n: int) -> FloatArray:
    global _LOG_FACT
    if n >= len(_LOG_FACT):
        _LOG_FACT = special.gammaln(np.arange(2 * n + 1, dtype=np.float64) + 1.0)
    return _LOG_FACT


def binom_pmf(n: int, p: float) -> FloatArray:
    """Binomial pmf on 0..n from a log-factorial table (scipy.stats is too slow per tick)."""
    if n <= 0:
        return np.ones(1)
    if p <= 0.0 or p >= 1.0:
        out = np.zeros(n + 1)
        out[n if p >= 1.0 else 0] = 1.0
        return out
    lf = _log_factorials(n)
    k = np.arange(n + 1, dtype=np.float64)
    logp = lf[n] - lf[: n + 1] - lf[n::-1] + k * np.log(p) + (n - k) * np.log1p(-p)
    pmf: FloatArray = np.exp(logp)
    return pmf


def binom_pmf_rows(ns: list[int], p: float) -> FloatArray:
    """``binom_pmf(n, p)`` for several ``n`` at once, one row each, zero-padded to
    the largest: one set of array operations instead of one per ``n``."""
    top = max(ns)
    if not 0.0 < p < 1.0 or min(ns) <= 0:
        out = np.zeros((len(ns), top + 1))
        for i, n in enumerate(ns):
            row = binom_pmf(n, p)
            out[i, : len(row)] = row
        return out
    lf = _log_factorials(top)
    n_col = np.asarray(ns, dtype=np.int64)[:, None]
    k = np.arange(top + 1, dtype=np.int64)[None, :]
    rest = np.maximum(n_col - k, 0)
    logp = lf[n_col] - lf[k] - lf[rest] + k * np.log(p) + rest * np.log1p(-p)
    rows: FloatArray = np.where(k <= n_col, np.exp(logp), 0.0)
    return rows


def expected_shortfall_curve(supply_pmf: FloatArray, length: int) -> FloatArray:
    """g[d] = E[(d - S)+] for d = 0..length-1: live callers left without an agent."""
    n = len(supply_pmf)
    d = np.arange(length, dtype=np.float64)
    # P(S < d) and E[S; S < d], with a leading zero so that d = 0 reads "nothing"
    cdf = np.zeros(n + 1)
    np.cumsum(supply_pmf, out=cdf[1:])
    first = np.zeros(n + 1)
    np.cumsum(supply_pmf * np.arange(n, dtype=np.float64), out=first[1:])
    idx = np.minimum(np.arange(length), n)
    out: FloatArray = np.maximum(d * cdf[idx] - first[idx], 0.0)
    return out
