"""Which ISP a site's packets leave by, and what a host sees while the exit of its source's ISP fails.

Source-address-dependent routing is right when every packet from Pref_i reaches ISP i and no other, and
when, once ISP i cannot be reached, the host is told (ICMPv6 unreachable: the route was withdrawn, or the
ISP answered code 5) instead of its packets vanishing.  Three measurements on a running lab:

- :func:`egress_counters`: nftables counters at each ISP's customer interfaces, one per site prefix,
  counting every packet that arrives (before the ingress filter decides);
- :func:`source_pings`: fast pings (``ping -D -O``, 10 ms) from chosen source addresses while a fault is
  applied and undone, parsed into :class:`PingTrace` events;
- :meth:`PingTrace.outcome`: the figures - how long packets went into the void before the host was told,
  the longest gap of replies, and the time from undoing the fault to the first reply.
"""

from __future__ import annotations

import re
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

TABLE = "mhlab_egress"
LINE = re.compile(r"^\[(?P<t>\d+\.\d+)\] (?P<rest>.*)$")
SEQ = re.compile(r"icmp_seq=(\d+)")


def install_egress_counters(lab) -> dict[str, list[tuple[str, str, str]]]:
    """At every ISP with customer interfaces: one counter per (interface, site prefix).  Returns ISP ->
    [(counter, interface, prefix)]."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    prefixes = [str(p) for site in lab.plan.site_prefixes.values() for p in site.values()]
    for node in lab.net.routers():
        if not node.ingress:
            continue
        rows, lines = [], [f"table ip6 {TABLE} {{"]
        for k, (ifname, _) in enumerate(node.ingress.items()):
            for j, p in enumerate(prefixes):
                name = f"c{k}_{j}"
                rows.append((name, ifname, p))
                lines.append(f"  counter {name} {{ }}")
        lines.append("  chain pre { type filter hook prerouting priority -400; policy accept;")
        lines += [f'    iifname "{i}" ip6 saddr {p} counter name {c}' for c, i, p in rows]
        lines += ["  }", "}"]
        lab[node.name].run(["nft", "delete", "table", "ip6", TABLE])
        lab[node.name].run(["nft", "-f", "-"], input="\n".join(lines) + "\n", check=True)
        out[node.name] = rows
    return out


def read_egress_counters(lab, layout: dict[str, list[tuple[str, str, str]]]) -> dict[tuple[str, str], int]:
    """(ISP, site prefix) -> packets that arrived at that ISP from that prefix."""
    counts: dict[tuple[str, str], int] = {}
    for isp, rows in layout.items():
        text = lab[isp].run(["nft", "list", "table", "ip6", TABLE]).stdout
        for name, _, prefix in rows:
            m = re.search(rf"counter {name} {{\s*packets (\d+)", text)
            counts[(isp, prefix)] = counts.get((isp, prefix), 0) + (int(m.group(1)) if m else 0)
    return counts


@dataclass
class PingTrace:
    """What one ``ping -D -O`` saw: (time, "reply" | "error" | "lost", seq) events."""

    src: str
    events: list[tuple[float, str, int]] = field(default_factory=list)

    @classmethod
    def parse(cls, src: str, text: str) -> "PingTrace":
        trace = cls(src)
        for line in text.splitlines():
            m = LINE.match(line.strip())
            if not m:
                continue
            seq = SEQ.search(m["rest"])
            kind = "reply" if "bytes from" in m["rest"] else "lost" if "no answer" in m["rest"] else "error"
            trace.events.append((float(m["t"]), kind, int(seq.group(1)) if seq else -1))
        return trace

    def times(self, kind: str) -> list[float]:
        return [t for t, k, _ in self.events if k == kind]

    def outcome(self, fault_at: float, undone_at: float) -> dict[str, Any]:
        """Figures for a fault applied at ``fault_at`` and undone at ``undone_at`` (epoch seconds):
        ``told_ms`` (first ICMP error after the fault; None = never told), ``void_ms`` (how long packets
        vanished silently: ``told_ms``, or the whole fault when never told, 0 when replies went on),
        ``max_gap_ms`` (longest silence between replies around the fault), ``recovery_ms`` (undo to the
        first reply after it; None = none)."""
        replies = self.times("reply")
        errors = [t for t in self.times("error") if fault_at <= t <= undone_at]
        during = [t for t in replies if fault_at + 0.05 <= t <= undone_at]
        told = round((errors[0] - fault_at) * 1000) if errors else None
        if during and not errors:
            void = 0
        else:
            void = told if told is not None else round((undone_at - fault_at) * 1000)
        window = [t for t in replies if fault_at - 1 <= t]
        gaps = [b - a for a, b in zip(window, window[1:])]
        after = [t for t in replies if t > undone_at]
        return {"told_ms": told, "void_ms": void, "max_gap_ms": round(max(gaps, default=0) * 1000),
                "recovery_ms": round((after[0] - undone_at) * 1000) if after else None,
                "replies": len(replies), "errors": len(self.times("error"))}


@contextmanager
def source_pings(lab, host: str, sources: list[str], dst: str, interval: float = 0.01) -> Iterator[dict]:
    """Ping ``dst`` from each source address of ``host`` until the block ends; yields a dict that holds,
    afterwards, source -> PingTrace."""
    procs, files, result = [], [], {}
    for k, src in enumerate(sources):
        path = lab[host].dir / f"egress-ping-{k}.txt"
        f = open(path, "w")
        files.append((src, path, f))
        procs.append(lab[host].popen(["ping", "-6", "-n", "-D", "-O", "-i", str(interval), "-W", "1",
                                      "-I", src, dst], name=f"egress-ping-{k}", stdout=f))
    try:
        time.sleep(0.5)
        yield result
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=5)
            except Exception:  # noqa: BLE001 - a ping that will not stop is killed
                p.kill()
        for src, path, f in files:
            f.close()
            result[src] = PingTrace.parse(src, path.read_text())
