"""Connection set-up cost of the exit path agent on a healthy path: agent off vs on, in the same lab and run.

One lab (two-isp-site, mechanism sadr-static); ``srv`` answers on a whole extra /64 so that every connection can
go to a destination the cache has never seen.  Inside h1 a Python client times ``socket.create_connection``
to port 8080 of a listener that accepts and closes (the kernel's SYN -> SYN-ACK -> connect() returns) for:

- off:        no agent, N distinct destinations;
- on, miss:   the agent runs, N other distinct destinations: every connection races (step 3: the SYN goes
              out once per source address, the first SYN-ACK wins, a copy's win means the flow is rewritten);
- on, hit:    the agent runs, the same destinations again: steps 1-2 (route hint, no race).

Prints median and p95 of each, the RTT (ping) and the extra set-up time of "on" over "off" (target:
<= 1 RTT + 10 ms).  Run as root: ``sudo .venv/bin/python benchmarks/exitpath_setup.py [-n 200]``.
Timings are noisy on a shared machine: repeat and compare medians.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.exitpath.launch import daemon_argv  # noqa: E402
from testbed.lab import Lab  # noqa: E402

EXTRA = ipaddress.IPv6Network("2001:db8:f0ff::/64")  # inside core's aggregate, on no link
TOPOLOGY = Path(__file__).resolve().parent.parent / "topologies" / "two-isp-site.yaml"
# a listener that accepts and closes at once, with a deep queue: the figure is the client's set-up time,
# not the shipped HTTP server's backlog of 5 (which the losing half-open attempts would fill)
SERVER = """
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 8080))
s.listen(4096)
while True:
    s.accept()[0].close()
"""
CLIENT = """
import json, socket, sys, time
out = []
for dst in sys.stdin.read().split():
    t0 = time.perf_counter()
    s = socket.create_connection((dst, 8080), timeout=5)
    out.append((time.perf_counter() - t0) * 1000)
    s.close()
print(json.dumps(out))
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def connect_times(lab: Lab, dsts: list[str]) -> list[float]:
    res = lab["h1"].run([sys.executable, "-c", CLIENT], input=" ".join(dsts), timeout=120, check=True)
    return json.loads(res.stdout)


def rtt(lab: Lab, src: str, dst: str) -> float:
    out = lab["h1"].run(["ping", "-6", "-c", "20", "-i", "0.05", "-I", src, dst], timeout=30).stdout
    times = [float(t.split("time=")[1].split()[0]) for t in out.splitlines() if "time=" in t]
    return statistics.median(times)


def status(lab: Lab) -> dict:
    res = lab["h1"].run([str(Path(sys.executable).with_name("exitpathctl")), "--socket",
                         str(lab["h1"].dir / "exitpath.sock"), "status", "--json"], check=True)
    return json.loads(res.stdout)


def hinted(lab: Lab) -> int:
    return len(lab["h1"].run(["ip", "-6", "route", "show", "proto", "199"]).stdout.splitlines())


def start_agent(lab: Lab, sources: list[str]) -> int:
    h1 = lab["h1"]
    sock, log = h1.dir / "exitpath.sock", h1.dir / "exitpath.out"
    start = log.stat().st_size if log.exists() else 0
    h1.spawn("exitpath", daemon_argv(str(sock), sources, python=sys.executable, seed=1))
    deadline = time.monotonic() + 30
    while not sock.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(log.read_text()[-2000:])
        time.sleep(0.02)
    return json.loads(log.read_text()[start:].splitlines()[0])["pid"]


def stop_agent(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        try:
            if "zombie" in Path(f"/proc/{pid}/status").read_text():
                break
        except OSError:
            break
        time.sleep(0.02)


def row(name: str, values: list[float], base: list[float] | None) -> str:
    med, p95 = statistics.median(values), pct(values, 0.95)
    extra = "" if base is None else (f"{med - statistics.median(base):+8.2f} {p95 - pct(base, 0.95):+8.2f}")
    return f"{name:<12} {len(values):>5} {med:>8.2f} {p95:>8.2f}  {extra}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="connections per case (default %(default)s)")
    ap.add_argument("--name", default="exbench", help="lab name (default %(default)s)")
    args = ap.parse_args()
    lab = Lab.deploy(TOPOLOGY, name=args.name)
    try:
        srv = lab.plan.address("srv")
        # srv answers on a whole /64 (a local route: no neighbour entry per address - the kernel's
        # neighbour table is shared by every namespace of the machine), routed to it by core
        lab["srv"].run(["ip", "-6", "route", "add", "local", str(EXTRA), "dev", "lo"], check=True)
        lab["core"].run(["ip", "-6", "route", "add", str(EXTRA), "via", srv], check=True)
        lab["srv"].popen([sys.executable, "-c", SERVER], name="listener")
        time.sleep(0.5)
        extra = [str(EXTRA.network_address + 0x1000 + i) for i in range(2 * args.n)]
        sources = [lab.plan.address("h1", "ispa"), lab.plan.address("h1", "ispb")]
        connect_times(lab, extra)  # warm the neighbour caches on both paths' last hop
        ping_ms = rtt(lab, sources[0], srv)
        off = connect_times(lab, extra[:args.n])
        pid = start_agent(lab, sources)
        try:
            miss = connect_times(lab, extra[args.n:])
            deadline = time.monotonic() + 60
            while status(lab)["entries"] < args.n or hinted(lab) < args.n:  # the agent programs them
                assert time.monotonic() < deadline, "the agent did not program its entries"
                time.sleep(0.2)
            before = status(lab)["kernel"]["races"]
            hit = connect_times(lab, extra[args.n:])
            stats = status(lab)
            hit_races = stats["kernel"]["races"] - before
        finally:
            stop_agent(pid)
        kernel = stats["kernel"]
        print(f"exit path agent: TCP connection set-up on a healthy path, h1 -> srv:8080 (ms), lab {args.name}")
        print(f"RTT (ping, median of 20): {ping_ms:.3f} ms; target for 'on': extra <= RTT + 10 ms = "
              f"{ping_ms + 10:.1f} ms")
        print(f"{'case':<12} {'n':>5} {'median':>8} {'p95':>8}  {'extra med':>8} {'extra p95':>8}")
        print(row("off", off, None))
        print(row("on, miss", miss, off))
        print(row("on, hit", hit, off))
        print(f"agent: {hit_races} races during the 'hit' case (0 = every connection used its entry)")
        print(f"kernel: races {kernel['races']}, copies {kernel['copies']}, rewritten flows' packets out/in "
              f"{kernel['rewritten_out']}/{kernel['rewritten_in']}, losers dropped {kernel['loser_dropped']}, "
              f"RSTs sent {kernel['resets_sent']}")
    finally:
        lab.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
