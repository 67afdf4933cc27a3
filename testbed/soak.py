"""What a long run under a flapping link is judged by (pure: benchmarks/soak_flap.py measures, this decides).

- Loss only inside each flap's window: every gap of a flow, and every failed new-connection attempt, must
  fall inside ``[down - lead, up + recover]`` of one flap - the link was down, and the lab had ``recover``
  seconds after it came back (BGP re-established, TCP's backed-off retransmission, the shim's probes) to
  carry the flow again.  A gap elsewhere, one that outlasts its window, or one never closed is a loss beyond
  the flap.
- No growth of any process's memory beyond noise: the least-squares slope of its RSS over the run, times the
  run's length, against the larger of an absolute floor, a share of its median RSS and three residual
  standard deviations.  Allocator rounding and FRR's table growth at start-up are noise; a leak of a few kB
  per flap over an hour is not.
- No exception in any daemon's or agent's log.

A loss beyond a flap is explained, where it can be, by the routers' BGP sessions (``bgp_outages``: from each
bgpd log's ``%ADJCHANGE`` lines, when each session went down and came back): on a loaded host a session
that takes longer to come back than the link stays up misses the next flap, and the next.
"""

from __future__ import annotations

import calendar
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

NOISE_FLOOR_KB = 512.0  # below this no growth counts: page-granular RSS moves by a few pages at random
NOISE_SHARE = 0.02  # ... nor within 2 % of the process's median RSS
NOISE_SIGMAS = 3.0  # ... nor within three residual standard deviations of the fitted line
PROBLEM = re.compile(r"Traceback \(most recent call last\)|\bException\b|Segmentation fault|core dumped|"
                     r"Received signal \d+|\bBacktrace\b|\bassert(ion)? failed", re.IGNORECASE)
# FRR: "2026/12/01 14:33:50 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 2001:db8:a000::1(ispa) in vrf default Down ..."
ADJCHANGE = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\b.*%ADJCHANGE: neighbor (\S+?)(?:\((\S+)\))? in vrf \S+ "
                       r"(Up|Down)\b")


@dataclass(frozen=True)
class Flap:
    """One down/up cycle of the flapped link, in seconds relative to the run's time 0."""

    down: float
    up: float


@dataclass(frozen=True)
class Excess:
    """A loss that no flap's window explains."""

    flow: str
    start: float
    end: float | None  # None: never recovered
    why: str


@dataclass(frozen=True)
class SessionOutage:
    """One BGP session of one router down (``up`` None: still down when the log ends), in unix seconds
    (bgpd logs whole seconds, in UTC on the lab's hosts)."""

    router: str
    peer: str  # the neighbor's name as bgpd logs it (its description), else its address
    down: float
    up: float | None
    why: str
    address: str = ""  # the neighbor's address (what bgpd's debug lines name it by)


@dataclass(frozen=True)
class OutageStory:
    """What one router's bgpd did for one session while it was down, counted from its neighbour-event
    debug lines (``debug bgp neighbor-events``; all zero without them): why the session stayed down.

    Many ``tries`` each ``abandoned`` by the connect-retry timer, on time, with no ``nht_waits``: bgpd asked
    and no SYN was answered (the link carried nothing).  ``nht_waits`` through the outage: zebra had not yet
    told bgpd the peer was reachable.  Few lines over a long outage: bgpd itself did not run."""

    tries: int  # TCP connects started ("Connect start to")
    abandoned: int  # connect-retry timer expiries: a try abandoned, or the wait after a failed one over
    nht_waits: int  # "Waiting for NHT": the peer not yet reachable in zebra's view
    accepted: int  # connections from the peer accepted
    errors: int  # connects failed outright (no route, refused, unreachable)
    notifications: int  # NOTIFICATIONs sent (e.g. connection collision resolution)
    first_try_s: float | None  # first connect start, seconds after the session went down
    lines: int  # debug lines about this peer during the outage


@dataclass(frozen=True)
class Trend:
    samples: int
    slope_kb_per_min: float
    growth_kb: float  # slope x the sampled span
    noise_kb: float
    grows: bool


def flap_of(t: float, flaps: Sequence[Flap], lead: float, recover: float) -> Flap | None:
    """The latest flap whose window holds instant ``t``, if any (windows overlap when flaps come faster than
    the recovery: a gap that starts as a new flap begins is that flap's)."""
    return next((f for f in reversed(flaps) if f.down - lead <= t <= f.up + recover), None)


def excess_gaps(flow: str, gaps: Iterable[tuple[float, float, bool]], flaps: Sequence[Flap], lead: float,
                recover: float, since: float = 0.0) -> list[Excess]:
    """Gaps ``(start, end, open)`` of one flow not inside one flap's window; gaps that end before ``since``
    (the flows' start-up, before the first flap) are not judged."""
    out = []
    for start, end, is_open in gaps:
        if not is_open and end < since:
            continue
        f = flap_of(start, flaps, lead, recover)
        if is_open:
            out.append(Excess(flow, start, None, "never recovered"))
        elif f is None:
            out.append(Excess(flow, start, end, "no flap explains it"))
        elif end > f.up + recover:
            out.append(Excess(flow, start, end, f"outlasts its flap (up at {f.up:.1f} s) by {end - f.up:.1f} s"))
    return out


def excess_failures(flow: str, attempts: Iterable[tuple[float, bool]], flaps: Sequence[Flap], lead: float,
                    recover: float, since: float = 0.0) -> list[Excess]:
    """Failed new-connection attempts ``(t, ok)`` started outside every flap's window."""
    return [Excess(flow, t, t, "a new connection failed outside every flap's window")
            for t, ok in attempts if not ok and t >= since and flap_of(t, flaps, lead, recover) is None]


def trend(minutes: Sequence[float], rss_kb: Sequence[float]) -> Trend:
    """Least-squares growth of one process's RSS and whether it exceeds the noise (see the module doc)."""
    n = len(minutes)
    if n < 3:
        return Trend(n, 0.0, 0.0, 0.0, False)
    mt, mr = statistics.fmean(minutes), statistics.fmean(rss_kb)
    sxx = sum((t - mt) ** 2 for t in minutes)
    slope = sum((t - mt) * (r - mr) for t, r in zip(minutes, rss_kb)) / sxx if sxx else 0.0
    resid = [r - (mr + slope * (t - mt)) for t, r in zip(minutes, rss_kb)]
    sigma = statistics.pstdev(resid)
    growth = slope * (max(minutes) - min(minutes))
    noise = max(NOISE_FLOOR_KB, NOISE_SHARE * statistics.median(rss_kb), NOISE_SIGMAS * sigma)
    return Trend(n, round(slope, 2), round(growth, 1), round(noise, 1), growth > noise)


def bgp_outages(router: str, lines: Iterable[str]) -> list[SessionOutage]:
    """Every time one of ``router``'s BGP sessions went down, and when it was next up (a session is down
    from its first Down line until its next Up line; Down lines in between - one per reason - are one
    outage)."""
    out: list[SessionOutage] = []
    down: dict[str, tuple[float, str]] = {}
    address: dict[str, str] = {}
    for line in lines:
        m = ADJCHANGE.match(line)
        if not m:
            continue
        t = float(calendar.timegm(time.strptime(m[1], "%Y/%m/%d %H:%M:%S")))
        peer, state = m[3] or m[2], m[4]
        address[peer] = m[2]
        if state == "Down":
            down.setdefault(peer, (t, line[m.end():].strip()))
        elif peer in down:
            since, why = down.pop(peer)
            out.append(SessionOutage(router, peer, since, t, why, address[peer]))
    out += [SessionOutage(router, peer, since, None, why, address[peer]) for peer, (since, why) in down.items()]
    return sorted(out, key=lambda o: o.down)


_STAMP = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\b")
_CONNECT_ERROR = re.compile(r"No route to host|Connection refused|Network is unreachable|connect failed", re.I)


def outage_story(lines: Iterable[str], outage: SessionOutage) -> OutageStory:
    """Count what bgpd logged about ``outage``'s peer while the session was down (see :class:`OutageStory`)."""
    addr, end = outage.address, outage.up if outage.up is not None else float("inf")
    counts = dict.fromkeys(("tries", "abandoned", "nht_waits", "accepted", "errors", "notifications", "lines"), 0)
    first: float | None = None
    for line in lines:
        m = _STAMP.match(line)
        if not m or not addr or addr not in line:
            continue
        t = float(calendar.timegm(time.strptime(m[1], "%Y/%m/%d %H:%M:%S")))
        if not outage.down <= t <= end:
            continue
        counts["lines"] += 1
        if f"Connect start to {addr}" in line:
            counts["tries"] += 1
            first = t - outage.down if first is None else first
        elif "connect timer expire" in line:
            counts["abandoned"] += 1
        elif "Waiting for NHT" in line:
            counts["nht_waits"] += 1
        elif f"connection from host {addr}" in line:
            counts["accepted"] += 1
        elif "%NOTIFICATION: sent" in line:
            counts["notifications"] += 1
        elif _CONNECT_ERROR.search(line):
            counts["errors"] += 1
    return OutageStory(first_try_s=first, **counts)


def outages_during(start: float, end: float | None, outages: Iterable[SessionOutage]) -> list[SessionOutage]:
    """The session outages overlapping ``[start, end]`` (end None: open)."""
    return [o for o in outages if o.down <= (end if end is not None else float("inf"))
            and (o.up is None or o.up >= start)]


def log_problems(paths: Iterable[Path], limit: int = 20) -> list[str]:
    """``file:line: text`` of every line that reports an exception or a crash (at most ``limit``)."""
    out: list[str] = []
    for path in sorted(paths):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for i, line in enumerate(lines, 1):
            if PROBLEM.search(line):
                out.append(f"{path}:{i}: {line.strip()[:200]}")
                if len(out) >= limit:
                    return out
    return out
