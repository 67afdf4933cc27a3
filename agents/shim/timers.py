"""Timer profiles: the RFC defaults and a "tuned" profile for fast labs and classrooms.

RFC values as we read RFC 5533 section 16 (establishment, update) and RFC 5534 section 6
(REAP).  The thesis names two more: T, the window without received packets after which a
locator pair is no longer known reachable (here: ``send_timeout``), and Ti, how long a pair
stays unreachable before it is retried (``unreachable_hold``).  ``context_lifetime`` is the
thesis's soft-state lifetime (6.4.3.4); ``max_parallel_probes`` its bound on how many pairs are
explored at once.  ``tcp_rto_min`` is not a shim timer but the host's TCP minimum
retransmission timeout (``net.ipv4.tcp_rto_min_us`` of the host's namespace, 0 = leave the
kernel's 200 ms): TCP's first RTO is the upper-layer failure signal (thesis 6.4.3.3.1), and
its second is when the data goes again on the new pair.  Every value can be overridden from
the daemon's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class TimerProfile:
    name: str = "rfc"
    # context establishment (RFC 5533)
    i1_timeout: float = 4.0
    i1_retries_max: int = 4
    i2_timeout: float = 4.0
    i2_retries_max: int = 2
    i2bis_timeout: float = 4.0
    i2bis_retries_max: int = 2
    no_r1_holddown: float = 60.0
    icmp_holddown: float = 600.0
    validator_lifetime: float = 30.0
    update_timeout: float = 4.0
    max_update_timeout: float = 120.0
    # failure detection and exploration (RFC 5534)
    send_timeout: float = 15.0
    keepalive_timeout: float = 10.0
    initial_probe_timeout: float = 0.5
    initial_probes: int = 4
    max_probe_timeout: float = 60.0
    max_parallel_probes: int = 4
    # thesis 6.4.3.4 / 6.4.3.5
    unreachable_hold: float = 30.0
    context_lifetime: float = 600.0
    # upper-layer feedback (thesis 6.4.3.3.1)
    tcp_rto_min: float = 0.0

    @property
    def keepalive_interval(self) -> float:
        """RFC 5534: keepalives go out at a third of the Keepalive Timeout."""
        return self.keepalive_timeout / 3

    def with_overrides(self, overrides: dict[str, Any]) -> "TimerProfile":
        known = {f.name: f.type for f in fields(self)}
        unknown = set(overrides) - set(known)
        if unknown:
            raise ValueError(f"unknown timer(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


RFC = TimerProfile()
TUNED = TimerProfile(
    name="tuned",
    i1_timeout=1.0,
    i2_timeout=1.0,
    i2bis_timeout=1.0,
    no_r1_holddown=10.0,
    icmp_holddown=30.0,
    validator_lifetime=10.0,
    update_timeout=1.0,
    max_update_timeout=8.0,
    send_timeout=3.0,
    keepalive_timeout=2.0,
    initial_probe_timeout=0.2,
    max_probe_timeout=4.0,
    unreachable_hold=10.0,
    context_lifetime=120.0,
    tcp_rto_min=0.03,
)
PROFILES = {p.name: p for p in (RFC, TUNED)}


def backoff(base: float, attempt: int, ceiling: float | None = None) -> float:
    """Binary exponential backoff: base, 2*base, 4*base ... capped at ``ceiling``."""
    value = base * (2**attempt)
    return value if ceiling is None else min(value, ceiling)
