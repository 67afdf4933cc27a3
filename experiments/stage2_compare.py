"""Stage 2, measured: new connections after an ISP failure, per add-on (thesis 6.3.1.1, 6.3.1.2, 6.3.1.2.1).

One run deploys ``topologies/stage2-site.yaml`` once per variant - routing only (sadr-static, no add-on),
``exit-path`` alone, ``deprecation`` alone, both, and ``dns`` - and in each lab fails ISP A three ways in turn:
``access-link-down`` (ispa-ra down), ``upstream-cut`` (ispa loses core; the site's BGP session stays up)
and ``silent-loss`` (ispa-ra drops every packet, interfaces up: only BFD or probes notice).  h1 prefers
its ISP-A address for srv (an address label, as a host whose RFC 6724 choice is A), and opens a new TCP
connection to srv every 250 ms with the kernel's own source choice (no bind), each with a 1 s timeout.
Per failure it records the share of those connections that succeed after the fault, which source they
used, the time from the fault to the first success, and (deprecation) the time from the fault until no
host of the LAN chooses the ISP-A address (every host's address flagged deprecated) and back after the
fault is undone.

The ``dns`` row measures the other direction (6.3.1.1): the lab gets the ``dns`` add-on (PowerDNS; h1's
ISP-A address first in every answer, the worst case) and a client c1 behind the transit core, which
opens a new connection to ``h1.lab.example`` every 250 ms the ``socket.create_connection`` way (1 s per
address), with the same agent as ``experiments/dns_failover.py``.

With ``--crash`` the deprecation labs also crash exit router rb (every process it runs: FRR, its agent)
with h1 preferring ISP B: rb cannot announce its own death, ra deprecates B when rb falls silent.  With
``--loss-seconds N`` (default 60) the deprecation labs run 5 % random loss on ispa-ra for N s and count
deprecations (hysteresis: none expected).

Writes ``stage2_compare.json`` and ``stage2_compare.png`` under ``--out``.  Run as root:
``sudo .venv/bin/python experiments/stage2_compare.py [--out reports/stage2] [--loss-seconds 60]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pydantic import TypeAdapter  # noqa: E402

from dns_inbound import connects, run_byname  # noqa: E402

from testbed.checks import ping  # noqa: E402
from testbed.faults import prepare  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.procs import stop_all  # noqa: E402
from testbed.scenario.model import Fault  # noqa: E402
from testbed.topology import load_topology  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOPO = ROOT / "topologies" / "stage2-site.yaml"
DEPRECATION = {"mechanism": "deprecation", "options": {"probe_target": "srv"}}
DNS = {"mechanism": "dns", "options": {"weights": {"h1": 100}}}
VARIANTS = {"none": [], "exit-path": ["exit-path"], "deprecation": [DEPRECATION],
            "all": ["exit-path", DEPRECATION], "dns": [DNS]}
INBOUND = {"dns"}  # variants measured inbound: c1 (behind the core) connecting to h1 by name
CLIENT_NODE = "c1"
FAULTS = {
    "access-link-down": {"kind": "link-down", "link": "ispa-ra", "at": 0},
    "upstream-cut": {"kind": "upstream-cut", "isp": "ispa", "at": 0},
    "silent-loss": {"kind": "loss", "link": "ispa-ra", "percent": 100, "at": 0},
}
LAN_HOSTS = ("h1", "h2")
# h1's client: a new connection every EVERY s for SECONDS s, each in its own thread; one JSON line each
CLIENT = r"""
import json, socket, sys, threading, time
dst, every, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
t0 = time.time(); out = []; lock = threading.Lock()
def one(t):
    src, ok = None, False
    try:
        s = socket.create_connection((dst, 80), timeout=1.0); src = s.getsockname()[0]
        s.sendall(b"GET / HTTP/1.0\r\n\r\n"); ok = s.recv(12).startswith(b"HTTP/1."); s.close()
    except OSError as e:
        pass
    with lock: out.append({"t": t, "ok": ok, "src": src, "end": time.time()})
threads = []
while time.time() - t0 < seconds:
    th = threading.Thread(target=one, args=(time.time(),)); th.start(); threads.append(th); time.sleep(every)
for th in threads: th.join()
print(json.dumps(out))
"""


def prefer(lab: Lab, isp: str) -> None:
    """h1 prefers its address from ``isp`` for srv (address labels: RFC 6724 rule 6)."""
    h1 = lab["h1"]
    h1.run(["ip", "addrlabel", "flush"])
    h1.run(["ip", "addrlabel", "add", "prefix", str(lab.plan.site_prefixes["site"][isp]), "label", "20"], check=True)
    h1.run(["ip", "addrlabel", "add", "prefix", str(lab.plan.aggregates["core"]), "label", "20"], check=True)


def deprecated(lab: Lab, host: str, isp: str) -> bool:
    addr = lab.plan.address(host, isp)
    out = json.loads(lab[host].run(["ip", "-j", "-6", "addr", "show"]).stdout or "[]")
    return any(a.get("local") == addr and a.get("deprecated") for link in out for a in link.get("addr_info", []))


def watch(lab: Lab, isp: str, want: bool, t0: float, timeout: float, result: dict, key: str) -> threading.Thread:
    """In the background: the time from t0 until every LAN host's ``isp`` address is (not) deprecated."""
    def run() -> None:
        while time.time() - t0 < timeout:
            if all(deprecated(lab, h, isp) == want for h in LAN_HOSTS):
                result[key] = round(time.time() - t0, 3)
                return
            time.sleep(0.01)
        result[key] = None
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def wait_healthy(lab: Lab, isp: str, timeout: float = 60) -> None:
    src, dst = lab.plan.address("h1", isp), lab.plan.address("srv")
    deadline = time.monotonic() + timeout
    while not ping(lab, "h1", src, dst, count=1, wait=0.5) or any(deprecated(lab, h, isp) for h in LAN_HOSTS):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{lab.name}: {isp} did not come back")
        time.sleep(0.3)


def connections(lab: Lab, fault_at: float, seconds: float, result: dict) -> threading.Thread:
    """h1's new outbound connections to srv (or, in a lab with c1, c1's new inbound ones to h1 by name)."""
    def run() -> None:
        if CLIENT_NODE in lab.net.nodes:
            tries = inbound_by_name(lab, seconds)
        else:
            res = lab["h1"].run([sys.executable, "-c", CLIENT, lab.plan.address("srv"), "0.25", f"{seconds:g}"],
                                timeout=seconds + 20)
            tries = json.loads(res.stdout or "[]")
        result["attempts"] = [{**a, "t": round(a["t"] - fault_at, 3), "end": round(a["end"] - fault_at, 3)}
                              for a in tries]
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def inbound_by_name(lab: Lab, seconds: float) -> list[dict]:
    """c1 connects to h1.lab.example every 250 ms (sequential client, 1 s per address) for ``seconds``."""
    log = lab[CLIENT_NODE].dir / "stage2-byname.jsonl"
    log.unlink(missing_ok=True)
    run_byname(lab.node(CLIENT_NODE), "sequential", log, count=100_000, every_ms=250, connect_timeout=1.0,
               duration=seconds).wait(timeout=seconds + 20)
    return [{"t": e["started"], "ok": e["ok"], "src": e["remote"], "end": e["started"] + e["total_ms"] / 1000}
            for e in connects(log)]


def run_fault(lab: Lab, fault: dict, isp: str, watch_deprecation: bool, lead: float = 0.5,
              after: float = 4.0) -> dict:
    result: dict = {}
    action = prepare(TypeAdapter(Fault).validate_python(fault), lab)
    start = time.time()
    client = connections(lab, start + lead, lead + after, result)
    time.sleep(lead)
    t0 = time.time()
    action.do()
    watcher = watch(lab, isp, True, t0, after, result, "deprecated_after_s") if watch_deprecation else None
    client.join()
    if watcher:
        watcher.join()
    if fault["kind"] != "router-crash":
        t1 = time.time()
        action.revert()
        if watch_deprecation:
            watch(lab, isp, False, t1, 30, result, "preferred_again_after_s").join()
    after_fault = [a for a in result.get("attempts", []) if a["t"] >= 0]
    result["ok_after"] = sum(a["ok"] for a in after_fault)
    result["tried_after"] = len(after_fault)
    result["first_ok_s"] = min((a["end"] for a in after_fault if a["ok"]), default=None)
    dead = lab.plan.address("h1", isp)
    result["chose_dead_source_after_1s"] = sum(1 for a in after_fault if a["t"] >= 1.0 and a["src"] == dead)
    return result


def crash_exit(lab: Lab, router: str) -> dict:
    """Every process of ``router`` stops at once (FRR and the agent): the data plane keeps its routes."""
    result: dict = {}
    prefer(lab, "ispb")
    wait_healthy(lab, "ispb")
    procs = [p for p in lab.rundir.procs() if p.node == router and p.name not in ("anchor", "shell")]
    start = time.time()
    client = connections(lab, start + 0.5, 4.5, result)
    time.sleep(0.5)
    t0 = time.time()
    stop_all({p.pid: p.start for p in procs}, grace=0.0)
    watch(lab, "ispb", True, t0, 4.0, result, "deprecated_after_s").join()
    client.join()
    after_fault = [a for a in result.get("attempts", []) if a["t"] >= 0]
    result["ok_after"], result["tried_after"] = sum(a["ok"] for a in after_fault), len(after_fault)
    result["first_ok_s"] = min((a["end"] for a in after_fault if a["ok"]), default=None)
    return result


def loss_run(lab: Lab, seconds: float) -> dict:
    """5 % random loss on ispa-ra for ``seconds``: how many times did the site deprecate ISP A?"""
    before = len(events(lab))
    action = prepare(TypeAdapter(Fault).validate_python({"kind": "loss", "link": "ispa-ra", "percent": 5,
                                                          "at": 0}), lab)
    action.do()
    time.sleep(seconds)
    action.revert()
    new = events(lab)[before:]
    return {"seconds": seconds, "deprecations": sum(1 for e in new if e["event"] == "deprecated")}


def events(lab: Lab) -> list[dict]:
    out = (lab["ra"].dir / "deprecation.out").read_text().splitlines()
    return [json.loads(line) for line in out if line.startswith("{")]


def run_variant(name: str, addons: list, args) -> dict:
    topo = load_topology(TOPO)
    site = type(topo.sites[0]).model_validate({**topo.sites[0].model_dump(), "addons": addons})
    changes: dict = {"name": f"dp{name.replace('-', '')}"[:10], "sites": [site]}
    if name in INBOUND:  # a client outside the site, behind the transit core (the core is isps[0])
        core = topo.isps[0]
        changes["isps"] = [core.model_copy(update={"hosts": [*core.hosts, CLIENT_NODE]}), *topo.isps[1:]]
    topo = topo.variant(**changes)
    has_dep = any(isinstance(a, dict) and a.get("mechanism") == "deprecation" for a in addons)
    out: dict = {"variant": name, "faults": {}}
    with Lab.deploy(topo) as lab:
        prefer(lab, "ispa")
        for fname, fault in FAULTS.items():
            wait_healthy(lab, "ispa")
            out["faults"][fname] = run_fault(lab, fault, "ispa", has_dep)
            print(f"  {name:<12} {fname:<17} {_cell(out['faults'][fname], has_dep)}", flush=True)
        if has_dep and args.loss_seconds > 0:
            wait_healthy(lab, "ispa")
            out["loss"] = loss_run(lab, args.loss_seconds)
            print(f"  {name:<12} 5 % loss {args.loss_seconds:g} s: {out['loss']['deprecations']} deprecations",
                  flush=True)
        if has_dep and args.crash:
            out["crash"] = crash_exit(lab, "rb")
            print(f"  {name:<12} {'crash of rb':<17} {_cell(out['crash'], True)}", flush=True)
    return out


def _cell(r: dict, dep: bool) -> str:
    text = f"{r['ok_after']}/{r['tried_after']}"
    if r.get("first_ok_s") is not None:
        text += f", first ok {r['first_ok_s'] * 1000:.0f} ms"
    if dep and r.get("deprecated_after_s") is not None:
        text += f", deprecated {r['deprecated_after_s'] * 1000:.0f} ms"
    if dep and r.get("preferred_again_after_s") is not None:
        text += f", back {r['preferred_again_after_s']:.1f} s"
    return text


def table(results: list[dict]) -> str:
    dep = {r["variant"]: any(k in r for k in ("loss", "crash")) or "deprecation" in r["variant"] or r["variant"] == "all"
           for r in results}
    head = ["add-ons"] + list(FAULTS)
    rows = [[r["variant"] + (" (inbound, by name)" if r["variant"] in INBOUND else "")]
            + [_cell(r["faults"][f], dep[r["variant"]]) for f in FAULTS] for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in rows])


def plot(results: list[dict], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - optional plotting dependency, loaded only when plotting
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    faults = list(FAULTS)
    fig, axes = plt.subplots(1, len(faults), figsize=(4.2 * len(faults), 3.6), sharey=True)
    colors = {"none": "#999999", "exit-path": "#1f77b4", "deprecation": "#ff7f0e", "all": "#2ca02c", "dns": "#9467bd"}
    for ax, fault in zip(axes, faults):
        names = [r["variant"] for r in results]
        share = [100 * r["faults"][fault]["ok_after"] / max(1, r["faults"][fault]["tried_after"]) for r in results]
        bars = ax.bar(names, share, color=[colors.get(n, "#555") for n in names])
        for bar, r in zip(bars, results):
            d = r["faults"][fault].get("deprecated_after_s")
            label = f"{bar.get_height():.0f} %" + (f"\n{d * 1000:.0f} ms" if d is not None else "")
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 2, label, ha="center", fontsize=7)
        ax.set_title(fault)
        ax.set_ylim(0, 125)
        ax.tick_params(axis="x", labelsize=8)
    axes[0].set_ylabel("new connections that succeed\nin the 4 s after the fault (%)")
    fig.suptitle("Stage 2: new connections after ISP A fails - outbound from h1 (prefers its ISP-A address); "
                 "dns: inbound to h1 by name\n(above a bar: the share, and when ISP A's prefix was deprecated)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/stage2", help="folder for stage2_compare.json and .png")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--loss-seconds", type=float, default=60, help="5 %% loss run in the deprecation labs (0: skip)")
    p.add_argument("--no-crash", dest="crash", action="store_false", help="skip the crash of exit router rb")
    args = p.parse_args(argv)
    wanted = [v for v in args.variants.split(",") if v]
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results = [run_variant(v, VARIANTS[v], args) for v in wanted]
    (out / "stage2_compare.json").write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    for r in results:
        if "loss" in r:
            print(f"{r['variant']}: 5 % loss on ispa-ra for {r['loss']['seconds']:g} s -> "
                  f"{r['loss']['deprecations']} deprecations")
        if "crash" in r:
            print(f"{r['variant']}: crash of exit router rb -> {_cell(r['crash'], True)}")
    plot(results, out / "stage2_compare.png")
    print(f"\nwrote {out / 'stage2_compare.json'} and {out / 'stage2_compare.png'} in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
