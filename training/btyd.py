"""The standard probabilistic customer-base baselines: BG/NBD and Gamma-Gamma (training only).

BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): while alive a
customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after every purchase they drop out
with probability p ~ Beta(a, b). From a customer's repeat purchases x, the time of the last one
t_x and their age T (all measured from the first purchase, here in days) it gives P(alive),
the expected purchases in the next t days and P(no purchase in the next t days).

Gamma-Gamma (Fader, Hardie and Lee 2005, "RFM and CLV"): the spend of one transaction is
Gamma(p, nu) with nu ~ Gamma(q, v) per customer; from x repeat transactions with mean m it
gives the expected spend per transaction, shrunk toward the population mean.

Both are fitted by maximum likelihood (scipy, log-parameters, L-BFGS-B), as `lifetimes`
does; tests/training/test_btyd.py checks parameters and predictions against `lifetimes` on the
apparel data. The server never imports this module (scipy is a training dependency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1


@dataclass(frozen=True)
class BetaGeo:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def _alive_odds(self, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        """a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x) for x > 0, else 0."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_odds = (
                np.log(a)
                - np.log(np.maximum(b + x - 1, 1e-12))
                + (r + x) * np.log((alpha + big_t) / (alpha + t_x))
            )
            return np.where(x > 0, np.exp(log_odds), 0.0)

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        x, t_x, big_t = (np.asarray(v, dtype=np.float64) for v in (x, t_x, big_t))
        return 1.0 / (1.0 + self._alive_odds(x, t_x, big_t))

    def p_no_purchase(
        self, t: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
    ) -> np.ndarray:
        """P(no purchase in (T, T + t]): dead, or alive with no Poisson event in t."""
        x, t_x, big_t = (np.asarray(v, dtype=np.float64) for v in (x, t_x, big_t))
        alive = self.p_alive(x, t_x, big_t)
        quiet = np.exp((self.r + x) * np.log((self.alpha + big_t) / (self.alpha + big_t + t)))
        return 1.0 - alive + alive * quiet

    def expected_purchases(
        self, t: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
    ) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (equation 10 of the paper)."""
        x, t_x, big_t = (np.asarray(v, dtype=np.float64) for v in (x, t_x, big_t))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + big_t + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        ratio = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t)))
        numerator = (a + b + x - 1) / (a - 1) * (1.0 - ratio * hyp)
        return numerator / (1.0 + self._alive_odds(x, t_x, big_t))


def _bgnbd_negative_ll(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, weights: np.ndarray
) -> float:
    """Mean negative log-likelihood (equation 6 of the paper); huge where it is undefined."""
    r, alpha, a, b = np.exp(log_params)
    with np.errstate(all="ignore"):
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + big_t)
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
        ll = a1 + a2 + np.logaddexp(a3, a4)
        value = float(-(weights * ll).sum() / weights.sum())
    return value if np.isfinite(value) else 1e300


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> BetaGeo:
    """Maximum-likelihood BG/NBD on (repeat purchases, time of last, age), one row a customer.

    Identical (x, t_x, T) rows are collapsed with weights, so a large population fits fast.
    """
    data = np.column_stack([x, t_x, big_t]).astype(np.float64)
    rows, weights = np.unique(data, axis=0, return_counts=True)
    x, t_x, big_t = rows[:, 0], rows[:, 1], rows[:, 2]
    weights = weights.astype(np.float64)
    start = np.log([1.0, max(float(np.average(big_t, weights=weights)), 1.0) / 4, 1.0, 1.0])
    best = None
    for method in ("L-BFGS-B", "Nelder-Mead"):
        result = minimize(
            _bgnbd_negative_ll,
            start if best is None else best.x,
            args=(x, t_x, big_t, weights),
            method=method,
            options={"maxiter": 5000},
        )
        if best is None or result.fun <= best.fun:
            best = result
    r, alpha, a, b = np.exp(best.x)
    return BetaGeo(float(r), float(alpha), float(a), float(b))


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "v": self.v}

    def population_mean(self) -> float:
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("nan")

    def expected_spend(self, x: np.ndarray, mean_spend: np.ndarray) -> np.ndarray:
        """E[spend per transaction | x repeat transactions with mean `mean_spend`]; the
        population mean where x == 0."""
        x = np.asarray(x, dtype=np.float64)
        m = np.asarray(mean_spend, dtype=np.float64)
        p, q = self.p, self.q
        weight = p * x / (p * x + q - 1)
        return (1 - weight) * self.population_mean() + weight * np.where(x > 0, m, 0.0)


def _gg_negative_ll(
    log_params: np.ndarray, x: np.ndarray, m: np.ndarray, weights: np.ndarray
) -> float:
    p, q, v = np.exp(log_params)
    px = p * x
    with np.errstate(all="ignore"):
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(px / p * m + v)
        )
    value = float(-(weights * ll).sum() / weights.sum())
    return value if np.isfinite(value) else 1e300


def fit_gamma_gamma(x: np.ndarray, mean_spend: np.ndarray) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma on customers with x > 0 repeat transactions of mean > 0."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(mean_spend, dtype=np.float64)
    use = (x > 0) & (m > 0)
    if use.sum() < 3:
        raise ValueError("gamma-gamma: fewer than 3 customers with repeat purchases of value")
    rows, weights = np.unique(np.column_stack([x[use], m[use]]), axis=0, return_counts=True)
    weights = weights.astype(np.float64)
    best = None
    for method in ("L-BFGS-B", "Nelder-Mead"):
        result = minimize(
            _gg_negative_ll,
            np.zeros(3) if best is None else best.x,
            args=(rows[:, 0], rows[:, 1], weights),
            method=method,
            options={"maxiter": 5000},
        )
        if best is None or result.fun <= best.fun:
            best = result
    p, q, v = np.exp(best.x)
    return GammaGamma(float(p), float(q), float(v))


@dataclass(frozen=True)
class CustomerBase:
    """BG/NBD and Gamma-Gamma fitted on one cutoff's population, with their predictions."""

    bgnbd: BetaGeo
    gamma_gamma: GammaGamma | None

    def as_manifest(self) -> dict[str, object]:
        return {
            "bgnbd": self.bgnbd.as_dict(),
            "gamma_gamma": self.gamma_gamma.as_dict() if self.gamma_gamma else None,
            "time_unit": "days",
        }


def rfm_inputs(features: np.ndarray, names: list[str]) -> tuple[np.ndarray, ...]:
    """(x repeat purchases, t_x, T, mean spend per purchase) from the shared feature matrix."""
    col = {n: features[:, names.index(n)].astype(np.float64) for n in names}
    x = np.maximum(col["frequency"] - 1, 0)
    t_x = col["purchase_span_days"]
    big_t = np.maximum(col["tenure_days"], t_x)
    return x, t_x, big_t, col["avg_basket_value"]


MAX_FIT_CUSTOMERS = 5_000


def fit_customer_base(features: np.ndarray, names: list[str]) -> CustomerBase:
    """Both models on one cutoff's customers (a deterministic sample above MAX_FIT_CUSTOMERS)."""
    if len(features) > MAX_FIT_CUSTOMERS:
        pick = np.random.default_rng(20240601).choice(len(features), MAX_FIT_CUSTOMERS, False)
        features = features[np.sort(pick)]
    x, t_x, big_t, m = rfm_inputs(features, names)
    bgnbd = fit_bgnbd(x, t_x, big_t)
    try:
        gg = fit_gamma_gamma(x, m)
    except ValueError:
        gg = None
    return CustomerBase(bgnbd, gg)


def predict_churn(
    base: CustomerBase, features: np.ndarray, names: list[str], days: float
) -> np.ndarray:
    x, t_x, big_t, _ = rfm_inputs(features, names)
    return base.bgnbd.p_no_purchase(days, x, t_x, big_t)


def churn_by_cutoff(
    cutoffs: np.ndarray,
    features: np.ndarray,
    names: list[str],
    days: float,
    base_at: Callable[[np.datetime64], CustomerBase],
) -> np.ndarray:
    """BG/NBD P(no purchase in `days`) for rows at several cutoffs, each cutoff's rows scored
    by `base_at(cutoff)`: a BG/NBD fitted on that cutoff's own history (nothing after it)."""
    out = np.empty(len(features))
    for cutoff in np.unique(cutoffs):
        rows = cutoffs == cutoff
        out[rows] = predict_churn(base_at(cutoff), features[rows], names, days)
    return out


def predict_spend(
    base: CustomerBase, features: np.ndarray, names: list[str], days: float
) -> np.ndarray:
    """BG/NBD expected purchases in `days` x Gamma-Gamma expected spend per purchase."""
    x, t_x, big_t, m = rfm_inputs(features, names)
    purchases = base.bgnbd.expected_purchases(days, x, t_x, big_t)
    if base.gamma_gamma is None:
        return purchases * np.where(x > 0, m, np.mean(m))
    return purchases * base.gamma_gamma.expected_spend(x, m)
