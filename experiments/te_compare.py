"""Traffic engineering without BGP tricks (thesis 6.3.2.1): the PA site's DHCPv6-distributed policy table
side by side with the IPv4 way (a PI prefix steered with BGP attributes), in one run.

Target for every row: 70 % of new connections through ISP A, 30 % through ISP B, counted at the ISPs
(nftables SYN counters on each ISP router's interface towards the site).

- PA + ``policy`` add-on (topologies/two-isp-site.yaml, sadr-static): outbound.  The policy splits srv's
  /64 70/30 by prefix (16 slices); h1 and h2 connect to ``--destinations`` random addresses of it.  Then
  the server is given 30/70 and every host's policy client must apply it within the refresh time
  (``refresh_s``, 5 s here); the split is measured again.
- PI + ``pi-bgp`` (topologies/two-isp-site-pi.yaml): outbound with local preference (routes from ISP B at
  200, set live on rb); inbound (srv connecting to h1's PI address) with AS-path prepending on the ISP the
  core prefers, then with the no-export community instead.  "Acts after" is from the vtysh command to the
  best path changing (at ra for outbound, at core for inbound).
- PA + ``dns`` add-on (topologies/dns-two-isp.yaml): inbound by DNS answer order (6.3.2.1.4), the
  measurement of ``experiments/dns_inbound.py`` at x = 70: PowerDNS lists h1's ISP-A address first in 70 %
  of the answers; curl (glibc, RFC 6724 sorting) and a client keeping the DNS order connect to
  ``h1.lab.example`` from behind the core, ISP A and ISP B; SYNs counted at the ISPs.  A change acts
  after the records' TTL (0 s here) once the server has the new zone.

"Global routes" counts the prefixes in core's BGP table that are not an ISP aggregate.  Prints a table and
writes ``te_compare.json`` and ``te_compare.png`` under ``--out``.  Run as root:
``sudo .venv/bin/python experiments/te_compare.py [--destinations 64] [--out reports/te-compare]``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dns_inbound  # noqa: E402

from testbed.addressing import build_plan  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.mechanisms.policy import PolicyOptions, Split, split_slices  # noqa: E402
from testbed.te_runtime import (add_addresses, add_syn_counters, best_nexthop, connect_many, measure_split,  # noqa: E402
                                path_count, push_policy, site_exits, site_routes, vtysh,
                                wait_applied)
from testbed.topology import load_topology  # noqa: E402
from testbed.wait import wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET = {"ispa": 70, "ispb": 30}
REFRESH_S = 5


def pa_lab_file(out: Path) -> tuple[Path, str]:
    """two-isp-site.yaml with the policy add-on splitting srv's /64 70/30."""
    base = ROOT / "topologies" / "two-isp-site.yaml"
    srv_net = str(build_plan(load_topology(base)).segments_of("srv")[0].subnets[0])
    addon = (f"    addons:\n      - mechanism: policy\n        options:\n          refresh_s: {REFRESH_S}\n"
             f"          split: {{dst: '{srv_net}', weights: {{ispa: 70, ispb: 30}}}}\n")
    text = base.read_text().replace("name: twoisp", "name: tepa").replace(
        "    mechanism: sadr-static\n", "    mechanism: sadr-static\n" + addon)
    path = out / "tepa.yaml"
    path.write_text(text)
    return path, srv_net


def row(name: str, direction: str, knob: str, split: dict | None, acts_s: float | None, routes: int | None,
        note: str = "") -> dict:
    return {"row": name, "direction": direction, "knob": knob, "target": dict(TARGET), "achieved": split,
            "acts_after_s": None if acts_s is None else round(acts_s, 2), "global_routes": routes, "note": note}


def in_a(srv_net: str, weights: dict[str, int], dests: list[str]) -> float:
    """Percent of ``dests`` the split's slices hand to ISP A: what the policy itself says."""
    slices = [net for net, isp in split_slices(ipaddress.IPv6Network(srv_net), weights, 4) if isp == "ispa"]
    return 100 * sum(any(ipaddress.IPv6Address(d) in s for s in slices) for d in dests) / len(dests)


def run_pa(out: Path, n: int) -> list[dict]:
    path, srv_net = pa_lab_file(out)
    rows = []
    with Lab.deploy(path, name="tepa") as lab:
        exits = site_exits(lab, "site")
        dests = add_addresses(lab, "srv", srv_net, n)
        hosts = ["h1", "h2"]

        def both():
            for h in hosts:
                connect_many(lab, h, dests, 80)
        split = measure_split(lab, exits, "out", both)
        routes = len(site_routes(lab, "core"))
        rows.append(row("PA + DHCPv6 policy", "outbound", "split 70/30 by prefix (16 slices)", split, None, routes,
                        f"the table sends {in_a(srv_net, TARGET, dests):.1f} % of these destinations to A"))
        flipped = PolicyOptions(refresh_s=REFRESH_S, split=Split(dst=srv_net, weights={"ispa": 30, "ispb": 70}))
        t0, table = push_policy(lab, "site", flipped)
        applied = wait_applied(lab, hosts, table, timeout=3 * REFRESH_S)
        acts = max(applied.values()) - t0
        split2 = measure_split(lab, exits, "out", both)
        rows.append(row("PA + DHCPv6 policy, changed", "outbound", "split changed to 30/70 at the server", split2,
                        acts, routes, f"table: {in_a(srv_net, {'ispa': 30, 'ispb': 70}, dests):.1f} % to A; every host applied it within {acts:.2f} s (refresh {REFRESH_S} s); "
                        f"per host: {', '.join(f'{h} {t - t0:.2f} s' for h, t in applied.items())}"))
    return rows


def run_pi(n: int) -> list[dict]:
    rows = []
    with Lab.deploy(ROOT / "topologies" / "two-isp-site-pi.yaml", name="tepi") as lab:
        exits = site_exits(lab, "site")
        add_syn_counters(lab, exits, "out")
        add_syn_counters(lab, exits, "in")
        pi = lab.plan.addresses("h1")["pi"][0]
        pi_prefix = str(lab.plan.pi_prefixes["site"])
        srv = lab.plan.address("srv")
        routes = len(site_routes(lab, "core"))
        asn = lab.topology.site_asn(lab.topology.sites[0])
        outbound = lambda: connect_many(lab, "h1", [srv] * n, 80, source=pi)  # noqa: E731
        inbound = lambda: connect_many(lab, "srv", [pi] * n, 80)  # noqa: E731
        rows.append(row("PI + BGP", "outbound", "none (BGP's own choice)", measure_split(lab, exits, "out", outbound),
                        None, routes))
        rb_ispb = next(nb.address for nb in lab.net.nodes["rb"].bgp.neighbors if nb.peer == "ispb")
        before = best_nexthop(lab, "ra", "::/0")
        t0 = time.monotonic()
        vtysh(lab, "rb", "configure terminal", "route-map te-in-ispb permit 10", "set local-preference 200", "exit",
              f"router bgp {asn}", "address-family ipv6 unicast", f"neighbor {rb_ispb} route-map te-in-ispb in",
              "end", f"clear bgp ipv6 unicast {rb_ispb} soft in")
        wait_until(lambda: best_nexthop(lab, "ra", "::/0") != before, 30, 0.02, what="ra preferring ISP B's default")
        acts = time.monotonic() - t0
        rows.append(row("PI + BGP", "outbound", "local-pref 200 on ISP B's routes", measure_split(
            lab, exits, "out", outbound), acts, routes, "all or nothing: one best path per prefix"))
        base = measure_split(lab, exits, "in", inbound)
        rows.append(row("PI + BGP", "inbound", "none (core's own choice)", base, None, routes))
        for name, clause in (("prepend x3", f"set as-path prepend {' '.join([str(asn)] * 3)}"),
                             ("no-export", "set community no-export additive")):
            preferred = max(base, key=base.get)  # the knob goes on the ISP the core uses now
            router = next(ex.router for ex in lab.topology.sites[0].exits if ex.isp == preferred)
            peer = next(nb.address for nb in lab.net.nodes[router].bgp.neighbors if nb.peer == preferred)
            before = best_nexthop(lab, "core", pi_prefix)
            t0 = time.monotonic()
            vtysh(lab, router, "configure terminal", f"route-map te-out-{preferred} permit 10", clause, "exit",
                  f"router bgp {asn}", "address-family ipv6 unicast", f"neighbor {peer} route-map te-out-{preferred} out",
                  "end", f"clear bgp ipv6 unicast {peer} soft out")
            wait_until(lambda: best_nexthop(lab, "core", pi_prefix) != before, 30, 0.02,
                       what=f"core moving off {preferred} for {pi_prefix}")
            acts = time.monotonic() - t0
            rows.append(row("PI + BGP", "inbound", f"{name} towards {preferred}", measure_split(lab, exits, "in", inbound),
                            acts, routes, "one external source: all or nothing"))
            vtysh(lab, router, "configure terminal", f"router bgp {asn}", "address-family ipv6 unicast",
                  f"no neighbor {peer} route-map te-out-{preferred} out", "exit", "exit",
                  f"no route-map te-out-{preferred}", "end", f"clear bgp ipv6 unicast {peer} soft out")
            wait_until(lambda: path_count(lab, "core", pi_prefix) == len(exits), 30, 0.02,
                       what=f"core learning {pi_prefix} through every ISP again")
            base = measure_split(lab, exits, "in", inbound)  # BGP keeps the older path: the split may not return
    return rows


def run_dns(out: Path, n: int) -> list[dict]:
    """Inbound by DNS order at x = 70: dns_inbound's measurement (every client kind and place), as rows."""
    topo = dns_inbound.with_dns(load_topology(dns_inbound.TOPOLOGY), "tedns", weights={dns_inbound.SITE_HOST: TARGET["ispa"]})
    with Lab.deploy(topo) as lab:
        dns_inbound.install_syn_counters(lab)
        routes = len(site_routes(lab, "core"))
        measured = dns_inbound.measure(lab, TARGET["ispa"], n, 20.0, out)
    rows = []
    for r in measured:
        split = {"ispa": r.pct_a, "ispb": 100 - r.pct_a} if r.via_a + r.via_b else None
        knob = f"order x=70, {r.client} on {r.host} ({r.behind})"
        note = (f"{r.ok}/{r.connections} connections ok; SYNs via A/B {r.via_a}/{r.via_b}"
                + ("; glibc's RFC 6724 rule 9 overrides the order" if r.client == "curl" and r.behind != "core" else ""))
        rows.append(row("PA + DNS ordering", "inbound", knob, split, None, routes, note))
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'row':30} {'dir':8} {'knob':40} {'target A/B':>10} {'achieved A/B':>13} {'acts after':>10} {'routes':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        got = f"{r['achieved']['ispa']:.0f}/{r['achieved']['ispb']:.0f}" if r["achieved"] else "-"
        acts = f"{r['acts_after_s']:.2f} s" if r["acts_after_s"] is not None else "-"
        lines.append(f"{r['row']:30} {r['direction']:8} {r['knob'][:40]:40} {'70/30':>10} {got:>13} {acts:>10} "
                     f"{r['global_routes'] if r['global_routes'] is not None else '-':>6}")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    measured = [r for r in rows if r["achieved"]]
    short = {"PA + DHCPv6 policy": "PA policy", "PA + DNS ordering": "PA DNS"}
    labels = ["\n".join([short.get(r["row"].split(",")[0], r["row"]) + ("," if "," in r["row"] else ""),
                          r["direction"]] + textwrap.wrap(r["knob"], 14)) for r in measured]
    fig, ax = plt.subplots(figsize=(max(11, 1.1 * len(measured)), 5.6))
    xs = range(len(measured))
    ax.bar(xs, [r["achieved"]["ispa"] for r in measured], color="#4c72b0", label="ISP A (achieved)")
    ax.bar(xs, [r["achieved"]["ispb"] for r in measured], bottom=[r["achieved"]["ispa"] for r in measured],
           color="#dd8452", label="ISP B (achieved)")
    ax.axhline(70, color="black", ls="--", lw=1, label="target: 70 % through A")
    ax.axhline(30, color="grey", ls=":", lw=1, label="changed target: 30 % through A")
    ax.set_xticks(list(xs), labels, fontsize=6.5)
    ax.set_ylabel("new connections (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Share of new connections per ISP, counted at the ISPs")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--destinations", type=int, default=128, help="connections per host and measurement")
    ap.add_argument("--out", type=Path, default=Path("reports/te-compare"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_pa(args.out, args.destinations) + run_pi(args.destinations) + run_dns(args.out, args.destinations)
    print(table(rows))
    for r in rows:
        if r["note"]:
            print(f"  {r['row']} / {r['knob']}: {r['note']}")
    (args.out / "te_compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, args.out / "te_compare.png")
    print(f"\nwrote {args.out / 'te_compare.json'} and {args.out / 'te_compare.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
