"""Reading the probe's JSON lines: what fraction of requests was answered over time, and how long after
a fault every new request succeeds again."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Request:
    seq: int
    sent: float
    ok: bool
    rtt_ms: float | None


def read_requests(path: Path) -> list[Request]:
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if ev.get("ev") == "request":
            out.append(Request(int(ev["seq"]), float(ev["sent"]), bool(ev["ok"]), ev.get("rtt_ms")))
    return sorted(out, key=lambda r: r.sent)


def answered_fraction(requests: list[Request], start: float, end: float, width: float) -> list[tuple[float, float]]:
    """(bin start relative to ``start``, fraction answered) for requests sent in each bin."""
    bins = []
    t = start
    while t < end:
        inside = [r for r in requests if t <= r.sent < t + width]
        if inside:
            bins.append((round(t - start, 3), sum(r.ok for r in inside) / len(inside)))
        t += width
    return bins


def recovery_time(requests: list[Request], fault_at: float) -> float | None:
    """Seconds from the fault until the first request after which every request sent succeeded
    (0 when none failed); None when requests were still failing at the end."""
    after = [r for r in requests if r.sent >= fault_at]
    if not after:
        return None
    if after[-1].ok is False:
        return None
    last_bad = max((i for i, r in enumerate(after) if not r.ok), default=None)
    if last_bad is None:
        return 0.0
    return round(after[last_bad + 1].sent - fault_at, 3)


def fraction_ok(requests: list[Request], start: float, end: float) -> float | None:
    inside = [r for r in requests if start <= r.sent < end]
    return sum(r.ok for r in inside) / len(inside) if inside else None


# -- telling two distributions of a LeaseSet statistic apart (distinct gateways per LeaseSet) --------

def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with ``df`` degrees of freedom (regularised upper gamma,
    series for small x, continued fraction otherwise; Numerical Recipes 6.2)."""
    if x <= 0:
        return 1.0
    a, z = df / 2.0, x / 2.0
    if z < a + 1:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= z / n
            total += term
        return max(0.0, 1.0 - total * math.exp(-z + a * math.log(z) - math.lgamma(a)))
    b, c, d = z + 1 - a, 1e300, 1.0 / (z + 1 - a)
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h * math.exp(-z + a * math.log(z) - math.lgamma(a))


@dataclass(frozen=True)
class Homogeneity:
    statistic: float
    df: int
    p_value: float


def chi2_homogeneity(a: Counter[int], b: Counter[int]) -> Homogeneity:
    """Chi-square test that two samples of a discrete statistic come from one distribution."""
    cats = sorted(set(a) | set(b))
    na, nb = sum(a.values()), sum(b.values())
    stat = 0.0
    for cat in cats:
        col = a[cat] + b[cat]
        for obs, n in ((a[cat], na), (b[cat], nb)):
            exp = n * col / (na + nb)
            stat += (obs - exp) ** 2 / exp
    df = max(1, len(cats) - 1)
    return Homogeneity(round(stat, 2), df, chi2_sf(stat, df))


# noncentrality a chi-square test needs for power 0.8 at alpha 0.05, by degrees of freedom (Cohen 1988)
LAMBDA_80 = {1: 7.85, 2: 9.64, 3: 10.90, 4: 11.94, 5: 12.83}


def observations_needed(observed: Counter[int], reference: Counter[int]) -> float:
    """LeaseSets an observer must see to tell ``observed`` from ``reference`` with a chi-square goodness
    of fit test (alpha 0.05, power 0.8): lambda / w^2, w^2 = sum (p1 - p0)^2 / p0. A value the
    reference never shows is given the reference probability 1/(n+1) (one pseudo-count), so the
    answer stays finite."""
    cats = sorted(set(observed) | set(reference))
    n0, n1 = sum(reference.values()), sum(observed.values())
    p0 = {c: (reference[c] + (1 if reference[c] == 0 else 0)) / (n0 + sum(1 for k in cats if reference[k] == 0)) for c in cats}
    w2 = sum((observed[c] / n1 - p0[c]) ** 2 / p0[c] for c in cats)
    df = max(1, len(cats) - 1)
    return math.inf if w2 == 0 else LAMBDA_80.get(df, 13.0) / w2


def permutation_p(a: Counter[int], b: Counter[int], rounds: int = 4000, seed: int = 140) -> float:
    """Monte-Carlo p-value of :func:`chi2_homogeneity`'s statistic: the share of random relabellings
    of the pooled sample that give a statistic at least as large (exact in the limit, and honest for the
    small histograms of 10 runs, where the chi-square approximation is not). ``seed`` makes the report
    reproducible; the generator is local."""
    pooled = [c for c, k in a.items() for _ in range(k)] + [c for c, k in b.items() for _ in range(k)]
    na = sum(a.values())
    observed = chi2_homogeneity(a, b).statistic
    rng = random.Random(seed)
    hits = 0
    for _ in range(rounds):
        rng.shuffle(pooled)
        if chi2_homogeneity(Counter(pooled[:na]), Counter(pooled[na:])).statistic >= observed - 1e-9:
            hits += 1
    return (hits + 1) / (rounds + 1)


def smoothed(counts: Counter[int], support: list[int], pseudo: float = 0.5) -> dict[int, float]:
    """Probabilities over ``support`` with ``pseudo`` counts added to every value (Jeffreys): a value a
    sample of 10 never showed is unlikely, not impossible."""
    total = sum(counts.values()) + pseudo * len(support)
    return {c: (counts[c] + pseudo) / total for c in support}


def kl_divergence(p: dict[int, float], q: dict[int, float]) -> float:
    """Kullback-Leibler divergence D(p || q) in nats (q > 0 wherever p > 0)."""
    return sum(pc * math.log(pc / q[c]) for c, pc in p.items() if pc > 0)


def sprt_observations(observed: Counter[int], reference: Counter[int], alpha: float = 0.05,
                      beta: float = 0.05) -> float:
    """LeaseSets an observer needs, on average, to tell ``observed`` from ``reference`` with Wald's
    sequential probability ratio test (errors alpha and beta): it reads one LeaseSet after another and
    stops when the likelihood ratio leaves [beta / (1 - alpha), (1 - beta) / alpha]; when the LeaseSets
    do come from ``observed``, E[N] = ((1 - beta) ln((1 - beta) / alpha) + beta ln(beta / (1 - alpha)))
    / D(observed || reference). Both laws are the smoothed histograms (:func:`smoothed`), so a
    reference that never showed a value does not make one LeaseSet enough."""
    support = sorted(set(observed) | set(reference))
    d = kl_divergence(smoothed(observed, support), smoothed(reference, support))
    numerator = (1 - beta) * math.log((1 - beta) / alpha) + beta * math.log(beta / (1 - alpha))
    return math.inf if d <= 0 else numerator / d


def sprt_floor(reference: Counter[int], n_observed: int, rounds: int = 400, seed: int = 140) -> float:
    """The median of :func:`sprt_observations` when *both* samples (``n_observed`` and as many as
    ``reference`` holds) are drawn from ``reference``'s own histogram: what small samples give by chance
    for two laws that are the same. A policy's figure near this floor is not told apart at this sample
    size; one well below it is."""
    values = [c for c, k in reference.items() for _ in range(k)]
    rng = random.Random(seed)
    out = sorted(sprt_observations(Counter(rng.choices(values, k=n_observed)), Counter(rng.choices(values, k=len(values))))
                 for _ in range(rounds))
    return out[len(out) // 2]
