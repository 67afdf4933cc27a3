"""Stage 1 compared: the source-address-dependent routing variants side by side on the campus labs.

For each lab file and each variant (``none`` - the problem - then sadr-static, tunnel-mesh, sadr-bgp,
sadr-igp; a variant whose mechanism is not registered is listed as missing), one deployment measures:

- routes configured (source-specific routes and rules mhlab wrote into the configs) and installed (kernel
  routes that select by source - ``from`` routes and per-source tables - on the site's routers);
- convergence after deploy (start of the services to the lab being ready);
- reachability: ping + curl to srv from every address of every site host (`mhlab check`), and packets
  that reached the wrong ISP (egress counters at the ISPs, per site prefix);
- path stretch (extra hops of the ISP-B path from the first LAN host over the shortest internal path to
  ISP B's exit) and the path MTU from that address;
- failover after three faults at ISP B - its access link fails, its upstream is cut, its exit router
  crashes (power-off: every process killed, every link down; last, because a variant that does not
  recover from it spoils what follows) - each for 3 s, ``--repeat`` times (medians): how long packets
  from the ISP-B address vanished before the host was told (ICMPv6 unreachable), the longest reply gap of
  the ISP-A address, the time from the repair to the first ISP-B reply, and what nftables rejected with
  ICMPv6 code 5 meanwhile - at the ISPs' ingress filters (a packet that left by the wrong exit) and at
  the exit routers' own egress filters (tunnel-mesh, no exit left).

Prints progress, a Markdown table, writes ``stage1_compare.json``/``.md``/``.png`` under ``--out``.  Timings
come from a shared machine: noisy, hence the medians.
``sudo .venv/bin/python experiments/stage1_compare.py --repeat 3``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

from testbed import egress  # noqa: E402
from testbed.checks import run_all  # noqa: E402
from testbed.faults import prepare  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.mechanisms import discovered  # noqa: E402
from testbed.scenario.model import Fault  # noqa: E402
from testbed.topology import load_topology  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ["none", "sadr-static", "tunnel-mesh", "sadr-bgp", "sadr-igp"]
FAULTS = ["access", "upstream", "crash"]  # crash last: see above
FAULT_S = 3.0
RECOVERY_WAIT_S = 8.0  # after the repair; no ISP-B reply by then = no recovery ("-")
LABELS = {"access": "access link down", "upstream": "upstream cut", "crash": "exit router power-off"}


def labs(given: list[str] | None) -> list[Path]:
    if given:
        return [ROOT / g for g in given]
    campus = [ROOT / "topologies" / f for f in ("campus.yaml", "campus-3isp.yaml")]
    return [p for p in campus if p.exists()] or [ROOT / "topologies" / "campus-mini.yaml"]


def configured(net, site) -> int:
    routers = net.topology.site_routers(site)
    n = 0
    for r in routers:
        node = net.nodes[r]
        n += sum(1 for rt in node.routes if rt.src)
        n += sum(1 for c in node.ip_commands if c.startswith(("rule ", "route ")))
    return n


def installed(lab, site) -> int:
    n = 0
    for r in lab.topology.site_routers(site):
        for line in lab[r].run(["ip", "-6", "route", "show", "table", "all"]).stdout.splitlines():
            table = re.search(r" table (\d+)", line)
            if " from " in line or (table and 100 <= int(table.group(1)) < 253):
                n += 1
    return n


def hops(lab, host: str, src: str, dst: str) -> int | None:
    out = lab[host].run(["traceroute", "-6", "-n", "-q", "1", "-w", "1", "-m", "15", "-s", src, dst], timeout=40).stdout
    lines = [l for l in out.splitlines()[1:] if l.strip()]
    return len(lines) if lines and dst in lines[-1] else None


def shortest(topo, site, start: str, goal_isp: str) -> int:
    goals = {ex.router for ex in site.exits if ex.isp == goal_isp}
    adj: dict[str, set[str]] = {}
    for a, b in topo.internal_links(site):
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    frontier, seen, d = {start}, {start}, 0
    while frontier and not frontier & goals:
        frontier = {m for n in frontier for m in adj.get(n, ())} - seen
        seen |= frontier
        d += 1
    return d


def path_mtu(lab, host: str, src: str, dst: str) -> int:
    lo, hi = 1280, 1500
    while lo < hi:
        mid = (lo + hi + 1) // 2
        ok = lab[host].run(["ping", "-6", "-n", "-q", "-c", "1", "-W", "1", "-M", "do", "-s", str(mid - 48),
                            "-I", src, dst], timeout=10).returncode == 0
        lo, hi = (mid, hi) if ok else (lo, mid - 1)
    return lo


def fault_specs(lab, site, isp: str) -> dict[str, list[dict]]:
    exit_router = next(ex.router for ex in site.exits if ex.isp == isp)
    ports = []
    for link in lab.net.links:
        if exit_router in (link.a, link.b):
            other = link.b if link.a == exit_router else link.a
            ports.append([exit_router, other] if ":" not in other else [exit_router, link.segment])
    crash = [{"kind": "router-crash", "node": exit_router, "at": 0}] + \
            [{"kind": "link-down", "link": p, "at": 0} for p in ports]
    return {"access": [{"kind": "link-down", "link": f"{isp}-{exit_router}", "at": 0}],
            "upstream": [{"kind": "upstream-cut", "isp": isp, "at": 0}], "crash": crash}


def code5_counters(lab) -> dict[str, int]:
    """Packets rejected with ICMPv6 code 5 so far: ``isp`` (the ISPs' ingress filters, ``ingress_*``) and
    ``exit`` (the site's exit routers' egress filters, ``noexit_*``)."""
    out = {"isp": 0, "exit": 0}
    for node in lab.net.routers():
        text = lab[node.name].run(["nft", "list", "counters"]).stdout
        for name, packets in re.findall(r"counter (\w+) \{\s*packets (\d+)", text):
            if name.startswith("ingress_"):
                out["isp"] += int(packets)
            elif name.startswith("noexit_"):
                out["exit"] += int(packets)
    return out


def failover(lab, host: str, a: str, b: str, srv: str, specs: list[dict]) -> dict:
    adapter = TypeAdapter(Fault)
    actions = [prepare(adapter.validate_python(s), lab) for s in specs]
    before = code5_counters(lab)
    with egress.source_pings(lab, host, [a, b], srv) as traces:
        time.sleep(1)
        t0 = time.time()
        for act in actions:
            act.do()
        time.sleep(FAULT_S)
        t1 = time.time()
        for act in reversed(actions):
            act.revert()
        time.sleep(RECOVERY_WAIT_S)
    ob, oa = traces[b].outcome(t0, t1), traces[a].outcome(t0, t1)
    after = code5_counters(lab)
    return {"void_ms": ob["void_ms"], "told_ms": ob["told_ms"], "recovery_ms": ob["recovery_ms"],
            "gap_a_ms": oa["max_gap_ms"], "isp_code5": after["isp"] - before["isp"],
            "exit_code5": after["exit"] - before["exit"]}


def median(values: list) -> int | None:
    """Median with None (never happened: never told, never recovered) as the largest value."""
    ranked = sorted(values, key=lambda v: (v is None, v or 0))
    mid = ranked[len(ranked) // 2] if len(ranked) % 2 else None
    if len(ranked) % 2 == 0:
        lo, hi = ranked[len(ranked) // 2 - 1], ranked[len(ranked) // 2]
        mid = None if None in (lo, hi) else statistics.median([lo, hi])
    return None if mid is None else round(mid)


def repeated(runs: list[dict]) -> dict:
    """The medians of a fault's runs, and the runs themselves."""
    return {**{k: median([r[k] for r in runs]) for k in runs[0]}, "runs": runs}


def measure(path: Path, mech: str, name: str, progress, repeat: int = 1) -> dict:
    topo = load_topology(path).with_mechanism(mech)
    site = topo.sites[0]
    isps = list(dict.fromkeys(ex.isp for ex in site.exits))
    row: dict = {"lab": path.name, "variant": mech}
    t0 = time.monotonic()
    lab = Lab.deploy(topo, name=name, timeout=120)
    try:
        row["deploy_s"] = round(time.monotonic() - t0, 1)
        row["converge_s"] = round(sum(v for k, v in lab.timings.items() if k.startswith(("start services", "wait"))), 1)
        row["configured"], row["installed"] = configured(lab.net, site), installed(lab, site)
        layout = egress.install_egress_counters(lab)
        checks = [c for c in run_all(lab) if c.name.startswith(("ping", "curl"))]
        row["reach"] = f"{sum(c.ok for c in checks)}/{len(checks)}"
        counts = egress.read_egress_counters(lab, layout)
        own = {str(p): isp for isp, p in lab.plan.site_prefixes[site.name].items()}
        row["wrong_exit"] = sum(v for (isp, p), v in counts.items() if own.get(p) != isp)
        lan = site.lans[0]
        host = lan.hosts[0] if isinstance(lan.hosts[0], str) else lan.hosts[0].name
        gw = lan.gateway or topo.lan_routers(site, lan)[0]
        a, b, srv = lab.plan.address(host, isps[0]), lab.plan.address(host, isps[1]), lab.plan.address("srv")
        measured = hops(lab, host, b, srv)
        best = hops_outside = None
        if measured is not None:
            best = shortest(topo, site, gw, isps[1]) + 4  # gateway .. exit, ISP, core, srv
            hops_outside = measured - best
        row["stretch_hops"] = hops_outside
        row["mtu_b"] = path_mtu(lab, host, b, srv)
        for fault, specs in fault_specs(lab, site, isps[1]).items():
            runs = []
            for k in range(repeat):
                progress(f"  {path.name} {mech}: fault {fault} ({k + 1}/{repeat})")
                runs.append(failover(lab, host, a, b, srv, specs))
                if runs[-1]["recovery_ms"] is None:  # it did not come back: more runs measure a broken lab
                    break
            row[fault] = repeated(runs)
    finally:
        lab.destroy()
    return row


def cell(v) -> str:
    return "-" if v is None else str(v)


def fault_cell(m: dict) -> str:
    times = " / ".join(cell(m[k]) for k in ("void_ms", "told_ms", "gap_a_ms", "recovery_ms"))
    runs = f" ({len(m['runs'])} run{'s' if len(m['runs']) > 1 else ''})"
    return f"{times}; {m['isp_code5']} / {m['exit_code5']}{runs}"


def table(rows: list[dict]) -> str:
    head = ("| lab | variant | reach | wrong exit | configured / installed | converge s | stretch | MTU | "
            + " | ".join(f"{f}: void / told / gap A / recovery ms; code 5 ISP / exit" for f in FAULTS) + " |")
    lines = [head, "|" + "---|" * (8 + len(FAULTS))]
    for r in rows:
        if "missing" in r:
            lines.append(f"| {r['lab']} | {r['variant']} | {r['missing']} |" + " |" * (7 + len(FAULTS)))
            continue
        broken = r["reach"].split("/")[0] != r["reach"].split("/")[1]
        faults = " | ".join("n/a (no path before the fault)" if broken else fault_cell(r[f]) for f in FAULTS)
        lines.append(f"| {r['lab']} | {r['variant']} | {r['reach']} | {r['wrong_exit']} | {r['configured']} / "
                     f"{r['installed']} | {r['converge_s']} | {cell(r['stretch_hops'])} | "
                     f"{'-' if broken else r['mtu_b']} | {faults} |")
    return "\n".join(lines)


def plot(rows: list[dict], out: Path) -> None:
    done = [r for r in rows if "missing" not in r and r["reach"].split("/")[0] == r["reach"].split("/")[1]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(1, len(done))
    for k, r in enumerate(done):
        xs = [i + k * width for i in range(len(FAULTS))]
        label = f"{r['variant']} ({r['lab'].removesuffix('.yaml')})"
        axes[0].bar(xs, [r[f]["void_ms"] if r[f]["void_ms"] is not None else FAULT_S * 1000 for f in FAULTS],
                    width, label=label)
        axes[1].bar(xs, [r[f]["recovery_ms"] if r[f]["recovery_ms"] is not None else RECOVERY_WAIT_S * 1000
                         for f in FAULTS], width, label=label)
    for ax, title in zip(axes, ("ISP-B packets lost silently (ms)", "repair to first ISP-B reply (ms)")):
        ax.set_xticks([i + width * (len(done) - 1) / 2 for i in range(len(FAULTS))])
        ax.set_xticklabels([LABELS[f] for f in FAULTS])
        ax.set_title(title)
        ax.set_ylabel("ms")
    axes[0].axhline(FAULT_S * 1000, color="grey", lw=0.8, ls="--")
    axes[0].text(0, FAULT_S * 1000 * 1.01, "whole fault (never told)", fontsize=8, color="grey")
    axes[1].axhline(RECOVERY_WAIT_S * 1000, color="grey", lw=0.8, ls="--")
    axes[1].text(0, RECOVERY_WAIT_S * 1000 * 1.01, "no recovery within the wait", fontsize=8, color="grey")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"Stage 1: source-address-dependent routing variants, faults at ISP B ({FAULT_S:g} s each, medians)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: sudo .venv/bin/python experiments/stage1_compare.py --repeat 3 --out reports/stage1")
    ap.add_argument("--lab", action="append", help="lab file(s), repeatable (default: topologies/campus.yaml and "
                    "campus-3isp.yaml, else campus-mini.yaml)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated mechanisms")
    ap.add_argument("--out", default="reports/stage1-compare", help="report folder")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each fault per deployment (the table shows "
                    "medians; a fault the variant does not recover from is not repeated)")
    ap.add_argument("--prefix", default="s1x", help="lab names are PREFIX<lab><variant> (keep them apart from "
                    "other labs on the machine)")
    args = ap.parse_args(argv)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    known = set(discovered().names())
    rows = []
    for i, path in enumerate(labs(args.lab)):
        for j, mech in enumerate(args.variants.split(",")):
            if mech not in known:
                print(f"{path.name} {mech}: not registered here - skipped", flush=True)
                rows.append({"lab": path.name, "variant": mech, "missing": "mechanism not available"})
                continue
            print(f"{path.name} {mech}: deploying ...", flush=True)
            try:
                rows.append(measure(path, mech, f"{args.prefix}{i}{j}", lambda m: print(m, flush=True), args.repeat))
            except Exception as exc:  # noqa: BLE001 - one variant failing must not lose the others
                print(f"{path.name} {mech}: failed: {exc}", flush=True)
                rows.append({"lab": path.name, "variant": mech, "missing": f"failed: {str(exc)[:120]}"})
    md = table(rows)
    print(md)
    (out / "stage1_compare.md").write_text(md + "\n")
    (out / "stage1_compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, out / "stage1_compare.png")
    print(f"wrote {out}/stage1_compare.{{md,json,png}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
