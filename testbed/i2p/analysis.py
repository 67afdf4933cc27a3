"""Reading the probe's JSON lines: what fraction of requests was answered over time, and how long after
a fault every new request succeeds again."""

from __future__ import annotations

import json
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
