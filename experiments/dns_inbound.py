"""Inbound traffic engineering by DNS answer order (thesis 6.3.2.1.4), measured at the ISPs.

The site's authoritative server (the ``dns`` add-on, PowerDNS) lists h1's ISP-A address first in x % of
the answers, for x = 50, 70, 90.  Real clients outside the site open fresh connections to
``h1.lab.example``; the share that enters through each ISP is counted at the ISPs themselves (an
nftables counter of TCP SYNs to h1's ISP-A address on ispa's link to the site, and to its ISP-B
address on ispb's), next to the configured x.

Two clients, each from three places:
- ``curl``: glibc's getaddrinfo, which sorts by RFC 6724.  Rule 9 (longest matching prefix with the
  source address) decides whenever one of h1's addresses shares more leading bits with the client's: a
  client behind ISP A (2001:db8:a000::10) always prefers 2001:db8:a001:1::10 and one behind ISP B the
  ISP-B address, whatever the DNS says.  From behind the core (2001:db8:f000::12) both addresses match
  33 bits: a tie, so the server's order survives.
- ``dnsorder``: asks the server itself and tries addresses in the order received (the client the
  thesis assumes: "most external nodes do not change the order the DNS returns").

Prints a table, writes ``dns_inbound.json`` and ``dns_inbound.png`` under ``--out``.  Run as root:
``sudo .venv/bin/python experiments/dns_inbound.py [--count 200] [--out reports/dns-inbound]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.lab import Lab  # noqa: E402
from testbed.node import NodeHandle  # noqa: E402
from testbed.topology import Addon, Topology, addon_def, load_topology  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "topologies" / "dns-two-isp.yaml"
SITE_HOST, NAME, PORT = "h1", "h1.lab.example", 80
CLIENT_HOSTS = {"c1": "core", "ca": "ISP A", "cb": "ISP B"}
TABLE = "dn_count"


def with_dns(topo: Topology, name: str, **dns_options) -> Topology:
    """The lab with its site's dns add-on options replaced (and another lab name)."""
    site = topo.sites[0]
    addons = [Addon(mechanism="dns", options={**addon_def(a).options, **dns_options})
              if addon_def(a).mechanism == "dns" else a for a in site.addons]
    return topo.variant(name=name, sites=[site.model_copy(update={"addons": addons})])


def run_byname(node: NodeHandle, client: str, log: Path, *, count: int, every_ms: float,
               connect_timeout: float = 2.0, duration: float | None = None) -> subprocess.Popen:
    """Start the byname agent on a node (recorded, so destroying the lab stops it too)."""
    argv = ["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "agents.traffic.byname", "connect",
            "--client", client, "--name", NAME, "--port", str(PORT), "--interval-ms", f"{every_ms:g}",
            "--count", str(count), "--connect-timeout-ms", f"{connect_timeout * 1000:g}", "--log", str(log)]
    if duration is not None:
        argv += ["--duration", f"{duration:g}"]
    return node.popen(argv, name=f"byname-{client}")


def connects(log: Path) -> list[dict]:
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["ev"] == "connect"]


def isp_link(lab: Lab, isp: str, router: str) -> str:
    """The ISP's interface toward the site router."""
    return lab.plan.segment(f"{isp}-{router}").member(isp).ifname


def install_syn_counters(lab: Lab) -> dict[str, str]:
    """On each exit ISP, count TCP SYNs to h1's address from that ISP leaving toward the site; returns
    ISP -> h1's address counted there."""
    counted = {}
    for ex in lab.topology.sites[0].exits:
        addr = lab.plan.address(SITE_HOST, ex.isp)
        rules = (f"table ip6 {TABLE} {{\n counter synsto {{}}\n chain forward_count {{\n"
                 "  type filter hook forward priority -10;\n"
                 f"  oifname \"{isp_link(lab, ex.isp, ex.router)}\" ip6 daddr {addr} tcp dport {PORT} "
                 f"tcp flags & (syn | ack) == syn counter name synsto\n }}\n}}\n")
        lab.node(ex.isp).run(["nft", "-f", "-"], input=rules, check=True)
        counted[ex.isp] = addr
    return counted


def syn_count(lab: Lab, isp: str) -> int:
    out = lab.node(isp).run(["nft", "-j", "list", "counter", "ip6", TABLE, "synsto"], check=True).stdout
    return next(int(i["counter"]["packets"]) for i in json.loads(out)["nftables"] if "counter" in i)


@dataclass
class Row:
    x: int
    client: str
    host: str
    behind: str
    connections: int
    ok: int
    via_a: int
    via_b: int

    @property
    def pct_a(self) -> float:
        total = self.via_a + self.via_b
        return 100.0 * self.via_a / total if total else float("nan")


def measure(lab: Lab, x: int, count: int, every_ms: float, out: Path) -> list[Row]:
    isps = [ex.isp for ex in lab.topology.sites[0].exits]
    rows = []
    for client in ("curl", "dnsorder"):
        for host, behind in CLIENT_HOSTS.items():
            before = {isp: syn_count(lab, isp) for isp in isps}
            log = out / f"x{x}-{client}-{host}.jsonl"
            log.unlink(missing_ok=True)
            run_byname(lab.node(host), client, log, count=count, every_ms=every_ms).wait(timeout=count * every_ms
                                                                                           / 1000 + 60)
            after = {isp: syn_count(lab, isp) for isp in isps}
            events = connects(log)
            rows.append(Row(x, client, host, behind, len(events), sum(e["ok"] for e in events),
                            after[isps[0]] - before[isps[0]], after[isps[1]] - before[isps[1]]))
            print(f"  x={x} {client:8} from {host} ({behind}): {rows[-1].pct_a:5.1f} % via {isps[0]} "
                  f"({rows[-1].via_a}/{rows[-1].via_a + rows[-1].via_b} SYNs, {rows[-1].ok}/{len(events)} ok)",
                  flush=True)
    return rows


def table(rows: list[Row]) -> str:
    head = "| configured x (ISP A first) | client | from | connections ok | SYNs via ISP A / ISP B | via ISP A |"
    lines = [head, "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.x} % | {r.client} | {r.host} (behind {r.behind}) | {r.ok}/{r.connections} | "
                     f"{r.via_a} / {r.via_b} | {r.pct_a:.1f} % |")
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the plot needs it (optional for the measurement)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    xs = sorted({r.x for r in rows})
    fig, axes = plt.subplots(1, len(CLIENT_HOSTS), figsize=(12, 4), sharey=True)
    for ax, (host, behind) in zip(axes, CLIENT_HOSTS.items()):
        ax.plot(xs, xs, "k--", label="configured x")
        for client, style in (("curl", "o-"), ("dnsorder", "s-")):
            ys = [next(r.pct_a for r in rows if r.x == x and r.host == host and r.client == client) for x in xs]
            label = "curl (glibc, RFC 6724)" if client == "curl" else "client keeping DNS order"
            ax.plot(xs, ys, style, label=label)
        ax.set_title(f"clients on {host} (behind {behind})")
        ax.set_xlabel("x: % of answers listing ISP A first")
        ax.set_xticks(xs)
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("new connections entering via ISP A (%)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Inbound traffic engineering by DNS answer order: SYNs counted at the ISPs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200, help="connections per client and place (default 200)")
    ap.add_argument("--every", type=float, default=20.0, help="ms between connection starts (default 20)")
    ap.add_argument("--weights", default="50,70,90", help="values of x to run (default 50,70,90)")
    ap.add_argument("--out", default="reports/dns-inbound", help="output folder")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = load_topology(TOPOLOGY)
    rows: list[Row] = []
    t0 = time.monotonic()
    for x in (int(v) for v in args.weights.split(",")):
        with Lab.deploy(with_dns(base, f"dnte{x}", weights={SITE_HOST: x})) as lab:
            install_syn_counters(lab)
            rows += measure(lab, x, args.count, args.every, out)
    print()
    print(table(rows))
    (out / "dns_inbound.json").write_text(json.dumps([{**asdict(r), "pct_a": r.pct_a} for r in rows], indent=2))
    plot(rows, out / "dns_inbound.png")
    print(f"\nwrote {out / 'dns_inbound.json'} and {out / 'dns_inbound.png'} ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
