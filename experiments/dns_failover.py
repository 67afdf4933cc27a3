"""New inbound connections across an ISP failure with every address in the DNS (thesis 6.3.1.1).

h1 is published with both its addresses and the server lists ISP A's first in every answer (weight
100: the worst case, every client starts with the address that dies).  Four unmodified clients behind
the core connect to ``h1.lab.example`` by name every 250 ms: ``curl`` (tries addresses in turn, the first
one gets half its 2 s ``--connect-timeout``), ``sequential`` (the ``socket.create_connection`` loop,
2 s per address), ``happy`` (RFC 8305, asyncio: next address after 250 ms) and ``dnsorder``
(server order, 2 s per address).  At t = 2 s ISP A fails, one way per run:

- ``access-link-down``: the ispa-ra link goes down (ispa falls back to the null route of its aggregate:
  the packets are dropped silently; no ICMP);
- ``upstream-cut``: ispa loses its link to the core; the core withdraws ISP A's aggregate and answers
  with ICMPv6 "no route" at once;
- ``upstream-cut-no-icmp``: the same with the core's ICMPv6 errors dropped (an operator filtering them);
- ``silent-loss``: ispa-ra drops every packet, interfaces and BGP stay up;
- ``exit-router-crash``: every routing daemon of ra is killed (its kernel keeps forwarding).

For each client kind: the share of connections started after the fault that succeed, the time from the
fault to the first success, and the median connect time of the successes (the fallback's cost).
Prints a table, writes ``dns_failover.json`` under ``--out``.  Run as root:
``sudo .venv/bin/python experiments/dns_failover.py [--after 10] [--out reports/dns-failover]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import TypeAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dns_inbound import SITE_HOST, TOPOLOGY, connects, run_byname, with_dns  # noqa: E402

from testbed.faults import Action, prepare  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.scenario.model import Fault  # noqa: E402
from testbed.topology import load_topology  # noqa: E402

CLIENTS = ("curl", "sequential", "happy", "dnsorder")
CLIENT_NODE = "c1"
FAULT_AT_S = 2.0
EVERY_MS = 250.0
FAULTS = {
    "access-link-down": {"kind": "link-down", "link": ["ispa", "ra"]},
    "upstream-cut": {"kind": "upstream-cut", "isp": "ispa"},
    "upstream-cut-no-icmp": {"kind": "upstream-cut", "isp": "ispa"},
    "silent-loss": {"kind": "loss", "link": ["ispa", "ra"], "percent": 100},
    "exit-router-crash": {"kind": "router-crash", "node": "ra"},
}
NO_ICMP = "table ip6 dn_noicmp {\n chain out {\n  type filter hook output priority 0;\n" \
          "  icmpv6 type destination-unreachable drop\n }\n}\n"


@dataclass
class Row:
    failure: str
    client: str
    after: int
    ok: int
    first_success_s: float | None
    median_connect_ms: float | None
    via: str


def fault_action(lab: Lab, failure: str) -> Action:
    action = prepare(TypeAdapter(Fault).validate_python({**FAULTS[failure], "at": FAULT_AT_S}), lab)
    if failure != "upstream-cut-no-icmp":
        return action

    def do() -> None:
        lab.node("core").run(["nft", "-f", "-"], input=NO_ICMP, check=True)
        action.apply()

    return Action(action.name, action.describe + "; the core's ICMPv6 errors dropped", do, action.undo)


def summarise(failure: str, client: str, events: list[dict], fault_t: float, addresses: dict[str, str]) -> Row:
    after = [e for e in events if e["started"] >= fault_t]
    good = [e for e in after if e["ok"]]
    first = min((e["started"] + e["total_ms"] / 1000 for e in good), default=None)
    isp_of = {a: isp for isp, a in addresses.items()}
    via = sorted({isp_of.get(e["remote"], str(e["remote"])) for e in good})
    return Row(failure, client, len(after), len(good), None if first is None else round(first - fault_t, 3),
               round(statistics.median(e["total_ms"] for e in good), 1) if good else None, ", ".join(via) or "-")


def run_failure(failure: str, after_s: float, out: Path) -> list[Row]:
    topo = with_dns(load_topology(TOPOLOGY), "dnfail", weights={SITE_HOST: 100})
    with Lab.deploy(topo) as lab:
        action = fault_action(lab, failure)
        logs = {c: out / f"{failure}-{c}.jsonl" for c in CLIENTS}
        procs = []
        for client, log in logs.items():
            log.unlink(missing_ok=True)
            procs.append(run_byname(lab.node(CLIENT_NODE), client, log, count=10_000, every_ms=EVERY_MS,
                                    duration=FAULT_AT_S + after_s))
        t_start = time.time()
        time.sleep(FAULT_AT_S)
        fault_t = time.time()
        action.do()
        for proc in procs:
            proc.wait(timeout=after_s + 30)
        print(f"  {failure}: fault at +{fault_t - t_start:.2f} s", flush=True)
        addresses = {isp: lab.plan.address(SITE_HOST, isp) for isp in ("ispa", "ispb")}
        return [summarise(failure, c, connects(log), fault_t, addresses) for c, log in logs.items()]


def table(rows: list[Row]) -> str:
    lines = ["| failure | client | new connections ok after the fault | first success after the fault | "
             "median connect time (ok) | answered via |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        first = "never" if r.first_success_s is None else f"{r.first_success_s:.2f} s"
        median = "-" if r.median_connect_ms is None else f"{r.median_connect_ms:.0f} ms"
        lines.append(f"| {r.failure} | {r.client} | {r.ok}/{r.after} | {first} | {median} | {r.via} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--after", type=float, default=10.0, help="seconds measured after the fault (default 10)")
    ap.add_argument("--failures", default=",".join(FAULTS), help=f"comma-separated subset of {', '.join(FAULTS)}")
    ap.add_argument("--out", default="reports/dns-failover", help="output folder")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for failure in args.failures.split(","):
        rows += run_failure(failure, args.after, out)
    print()
    print(table(rows))
    (out / "dns_failover.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    print(f"\nwrote {out / 'dns_failover.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
