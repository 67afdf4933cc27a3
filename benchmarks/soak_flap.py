"""Soak under a flapping link: a lab's access link goes down and up every few seconds for N minutes while a
long TCP connection (tcpseq), new connections (probe) and pings run across it; every agent's and daemon's
memory is sampled along the way.

Two labs, one after the other (``--labs``):
- ``default``: topologies/two-isp-site.yaml (sadr-static), ``ispa-ra`` flaps under flows from h1's ISP-A
  address (which it cuts) and ISP-B address (which it must not disturb) to srv;
- ``shim``: topologies/two-sites-shim.yaml (shim agents), ``ispa1-ra1`` and ``ispa2-ra2`` flap in turn
  under flows hA -> hB between the ULIDs and from the A2 address: the shim stays on the locator pair that
  works, so every flap after the first takes its path down and it must detect that and switch.

Judged (testbed.soak): loss only inside each flap's window (from the link going down until ``recover`` s
after it is back up), no connection broken, no process restarted by the supervisor, no exception or crash in
any daemon's or agent's log, no growth of anonymous RSS beyond noise of any daemon or agent (least squares over the
samples from minute 1 on; the soak's own flow processes are sampled and shown, not judged).
A loss beyond a flap names the BGP sessions that were down meanwhile (each router's bgpd log).
Written to ``--out`` (default reports/soak-flap): soak-flap.json (every sample, flap, gap, BGP session
outage and verdict) and one PNG per lab (RSS of every process over the run).  Prints the figures; exit
status 0 only if all hold.  Two labs can run at the same time as two processes (``--labs default`` and
``--labs shim``, each with its own ``--out``).

Run as root: `sudo .venv/bin/python benchmarks/soak_flap.py --minutes 60 [--labs default,shim]
[--sample-s 60] [--period-s 10 --down-s 3] [--prefix rbfl]`.  ``--minutes`` is per lab.  On a shared
machine timings are noisy: the windows below have margin for a loaded 2-core box.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testbed.faults import prepare  # noqa: E402
from testbed.kinds import load_lab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.procs import is_alive  # noqa: E402
from testbed.scenario.model import LinkDown  # noqa: E402
from testbed.scenario.run import run_scenario  # noqa: E402
from testbed.soak import (Flap, bgp_outages, excess_failures, excess_gaps, flap_of, log_problems,  # noqa: E402
                          outage_story, outages_during, trend)
from testbed.supervise import restarts  # noqa: E402

WARMUP_S = 5.0  # traffic runs this long before the first flap
GAP_TCP_MS = 1000  # a TCP stream silent this long was retransmitting (a shorter stall is the loaded scheduler)
GAP_PING_MS = 250  # two echo replies in a row missing
TREND_FROM_MIN = 1.0  # RSS samples before this minute are start-up (FRR's and the agents' tables filling)
LEAD_S = 2.0  # a gap starts at the last delivery before it; a probe started this long before a flap may fail


@dataclass(frozen=True)
class SoakLab:
    key: str
    topology: str  # relative to the repository
    links: tuple[str, ...]  # flapped in turn, one at a time
    traffic: tuple[dict, ...]
    recover_s: float  # after the link is back: BGP re-established and the site's prefix re-announced


def _tcp(name, frm, to, src, dst=None):
    return {"name": name, "kind": "tcpseq", "from": frm, "to": to, "src": {"isp": src},
            **({"dst": {"isp": dst}} if dst else {}), "interval_ms": 20, "gap_threshold_ms": GAP_TCP_MS}


def _probe(name, frm, to, src, dst=None):
    return {"name": name, "kind": "probe", "from": frm, "to": to, "src": {"isp": src},
            **({"dst": {"isp": dst}} if dst else {}), "interval_ms": 500, "connect_timeout_ms": 1000,
            "max_time_ms": 1500}


def _ping(name, frm, to, src, dst=None):
    return {"name": name, "kind": "ping", "from": frm, "to": to, "src": {"isp": src},
            **({"dst": {"isp": dst}} if dst else {}), "interval_ms": 100, "gap_threshold_ms": GAP_PING_MS}


LABS = {
    "default": SoakLab("default", "topologies/two-isp-site.yaml", ("ispa-ra",), (
        _tcp("est_a", "h1", "srv", "ispa"), _probe("new_a", "h1", "srv", "ispa"),
        _probe("new_b", "h1", "srv", "ispb"), _ping("echo_a", "h1", "srv", "ispa"),
        _ping("echo_b", "h1", "srv", "ispb")), recover_s=6.0),
    # the shim stays on the pair that works: flapping one link would hit it once; in turn, every flap after
    # the first takes down the path the shim is on, so each one is detected and switched away from
    "shim": SoakLab("shim", "topologies/two-sites-shim.yaml", ("ispa1-ra1", "ispa2-ra2"), (
        _tcp("est", "hA", "hB", "ispa1", "ispb1"), _probe("new_a1", "hA", "hB", "ispa1", "ispb1"),
        _probe("new_a2", "hA", "hB", "ispa2", "ispb1"), _ping("echo", "hA", "hB", "ispa1", "ispb1")),
        recover_s=6.0),
}


def load_average() -> float:
    """The host's 1-minute load average: how loaded the 2 cores were while the soak ran."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def rss_kb(pid: int) -> int | None:
    """The process's anonymous resident memory (``RssAnon``, kB): what a leak grows.  Its file-backed pages
    (libraries, Python's mapped modules) are not counted: the host reclaims them under memory pressure and the
    process faults them back, which moved VmRSS by 5-10 MB at once in a loaded soak while nothing leaked."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def sample(lab: Lab) -> dict[str, int]:
    """Anonymous RSS (kB) of every live process of the lab but the namespace anchors, by ``node/name``."""
    out: dict[str, int] = {}
    for rec in lab.rundir.procs():
        if rec.name in ("anchor", "shell") or not is_alive(rec):
            continue
        kb = rss_kb(rec.pid)
        if kb is not None:
            key = label(rec.node, rec.name, rec.argv)
            out[key if key not in out else f"{key}.{rec.pid}"] = kb
    return out


def debug_bgp(lab: Lab) -> list[str]:
    """Turn on bgpd's neighbour-event debugging on every router of the lab, logged to its bgpd.log (FSM
    transitions, connect attempts and their failures: why a session stays down after its link is back).
    Returns the routers it is on."""
    routers = sorted({rec.node for rec in lab.rundir.procs() if rec.name == "bgpd" and is_alive(rec)})
    for router in routers:
        node = lab.node(router)
        log = node.dir / "bgpd.log"
        node.run(["vtysh", "--vty_socket", str(node.dir), "-c", "configure terminal", "-c",
                  f"log file {log} debugging", "-c", "end", "-c", "debug bgp neighbor-events"], check=True)
    return routers


def keep_bgpd_logs(lab: Lab, dest: Path) -> None:
    """Every router's bgpd.log, copied out of the run folder before destroy removes it."""
    dest.mkdir(parents=True, exist_ok=True)
    for log in lab.rundir.path.glob("nodes/*/bgpd.log"):
        shutil.copyfile(log, dest / f"{log.parent.name}.log")


def label(node: str, name: str, argv: tuple[str, ...]) -> str:
    """``node/name``; a flow's client or server (recorded by its launcher's name) by the flow's log file."""
    logs = [Path(a).name for a in argv if "/logs/" in a and a.endswith(".jsonl")]
    return f"{node}/flow {logs[0][:-len('.jsonl')]}" if logs else f"{node}/{name}"


class Soak:
    """One lab's run: the scenario in this thread, flapping and sampling in two others, on one time 0."""

    def __init__(self, spec: SoakLab, lab: Lab, minutes: float, sample_s: float, period_s: float,
                 down_s: float) -> None:
        self.spec, self.lab, self.duration = spec, lab, minutes * 60
        self.sample_s, self.period_s, self.down_s = sample_s, period_s, down_s
        self.started, self.done = threading.Event(), threading.Event()
        self.t0 = 0.0
        self.flaps: list[tuple[float, float]] = []  # absolute unix times
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.loads: list[tuple[float, float]] = []  # (unix time, 1-minute load average) at every sample
        self.errors: list[str] = []

    def progress(self, msg: str) -> None:
        if msg.startswith("t=0") and not self.started.is_set():
            self.t0 = time.time()
            self.started.set()

    def flapper(self) -> None:
        try:
            actions = [prepare(LinkDown(kind="link-down", link=link, at=0, name=f"flap-{link}"), self.lab)
                       for link in self.spec.links]
            self.started.wait()
            end = self.t0 + self.duration - (self.spec.recover_s + self.period_s)
            nxt = self.t0 + WARMUP_S
            while not self.done.wait(max(0.0, nxt - time.time())) and time.time() < end:
                action = actions[len(self.flaps) % len(actions)]
                down = time.time()
                action.do()
                self.done.wait(self.down_s)
                action.revert()
                up = time.time()
                self.flaps.append((down, up))
                # the next flap after the link's full up time: on a loaded host `ip link set up` on both ends
                # can take seconds, and counting the period from the down would leave the lab less time up
                # than its recovery window
                nxt = up + self.period_s - self.down_s
        except Exception as exc:  # noqa: BLE001 - reported as the soak's failure, the run goes on
            self.errors.append(f"flapping {' and '.join(self.spec.links)}: {exc}")

    def sampler(self) -> None:
        self.started.wait()
        k = 0
        while True:
            due = self.t0 + k * self.sample_s
            if self.done.wait(max(0.0, due - time.time())):
                break
            self.samples.append((time.time(), sample(self.lab)))
            self.loads.append((time.time(), load_average()))
            k += 1
        self.samples.append((time.time(), sample(self.lab)))
        self.loads.append((time.time(), load_average()))

    def run(self, out: Path) -> dict:
        scenario = {"name": f"soak-flap-{self.spec.key}", "description": f"{' and '.join(self.spec.links)} flap",
                    "lab": str(REPO / self.spec.topology), "duration": self.duration,
                    "traffic": [dict(f) for f in self.spec.traffic]}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=out, delete=False) as f:
            yaml.safe_dump(scenario, f)
        threads = [threading.Thread(target=fn, daemon=True) for fn in (self.flapper, self.sampler)]
        for t in threads:
            t.start()
        try:
            outcome = run_scenario(f.name, out / self.spec.key, lab=self.lab, progress=self.progress)
        finally:
            self.done.set()
            self.started.set()
            for t in threads:
                t.join(timeout=30)
            Path(f.name).unlink(missing_ok=True)
        return self.judge(outcome.result, out / self.spec.key)

    def judge(self, result, report_dir: Path) -> dict:
        t0 = result.t0
        flaps = [Flap(round(d - t0, 3), round(u - t0, 3)) for d, u in self.flaps]
        rec = self.spec.recover_s
        sessions = self.session_outages(t0)
        excess, flows = [], []
        for fr in result.flows:
            gaps = [(g.start, g.end, g.open) for g in fr.gaps]
            ex = excess_gaps(fr.name, gaps, flaps, LEAD_S, rec, since=WARMUP_S - LEAD_S)
            ex += excess_failures(fr.name, fr.attempts, flaps, LEAD_S, rec, since=WARMUP_S - LEAD_S)
            excess += [{**asdict(e), "bgp_down": sessions_down(e, sessions, t0)} for e in ex]
            worst = {}
            for g in fr.gaps:  # the longest gap each flap caused: the flow's measured outage per flap
                fl = flap_of(g.start, flaps, LEAD_S, rec)
                if fl is not None:
                    worst[flaps.index(fl)] = max(worst.get(flaps.index(fl), 0.0), g.duration)
            flows.append({"name": fr.name, "kind": fr.kind, "src": fr.src, "dst": fr.dst, "gaps": len(fr.gaps),
                          "max_gap_ms": round(fr.max_gap_ms, 1), "lost": fr.lost, "sent": fr.sent,
                          "connections_broken": fr.connections_broken, "attempts_ok": fr.attempts_ok,
                          "attempts_total": fr.attempts_total,
                          "outage_per_flap_s": [round(worst.get(i, 0.0), 3) for i in range(len(flaps))]})
            if fr.kind == "tcpseq" and fr.connections_broken:
                excess.append({"flow": fr.name, "start": None, "end": None,
                               "why": f"{fr.connections_broken} connection(s) broke"})
        series: dict[str, list[tuple[float, int]]] = {}
        for t, values in self.samples:
            for proc, kb in values.items():
                series.setdefault(proc, []).append((round((t - t0) / 60, 3), kb))
        trends = {}
        for proc, points in sorted(series.items()):
            use = [p for p in points if p[0] >= TREND_FROM_MIN]  # the first minute: still warming up
            trends[proc] = asdict(trend([p[0] for p in use], [p[1] for p in use]))
        rd = self.lab.rundir.path
        logs = [*rd.glob("nodes/*/*.log"), *rd.glob("nodes/*/*.out"), *rd.glob("*.out"),
                *report_dir.glob("logs/*.stderr")]
        restarted = {f"{n}/{s}": c for (n, s), c in restarts(self.lab.rundir).items()}
        loads = sorted(v for _, v in self.loads)
        return {"lab": self.spec.key, "lab_name": self.lab.name, "topology": self.spec.topology,
                "bgp_timers": self.lab_timers(),
                "load": {"min": loads[0], "median": loads[len(loads) // 2], "max": loads[-1]} if loads else {},
                "load_series": [(round((t - t0) / 60, 3), v) for t, v in self.loads],
                "links": list(self.spec.links), "minutes": self.duration / 60, "period_s": self.period_s,
                "down_s": self.down_s, "recover_s": rec, "lead_s": LEAD_S, "flaps": [asdict(f) for f in flaps],
                "flows": flows, "excess": excess, "restarts": restarted, "log_problems": log_problems(logs),
                "errors": self.errors, "series": series, "trends": trends,
                "bgp_outages": [{**asdict(o), "down": round(o.down - t0, 1),
                                 "up": None if o.up is None else round(o.up - t0, 1),
                                 **({"story": asdict(story)} if story else {})} for o, story in self.stories(sessions)],
                "growing": [p for p, t in trends.items() if t["grows"] and not is_flow(p)],
                "growing_flows": [p for p, t in trends.items() if t["grows"] and is_flow(p)]}

    def lab_timers(self) -> dict:
        timers = getattr(self.lab.topology, "bgp", None)
        return timers.model_dump() if timers is not None else {}

    def stories(self, sessions):
        """Each outage with, when it outlasted the link's down time plus the recovery window, what its
        router's bgpd did meanwhile (from its neighbour-event debug lines, see ``--debug-bgp``)."""
        longest = self.down_s + self.spec.recover_s
        logs: dict[str, list[str]] = {}
        for o in sessions:
            if o.up is not None and o.up - o.down <= longest:
                yield o, None
                continue
            if o.router not in logs:
                log = self.lab.rundir.path / "nodes" / o.router / "bgpd.log"
                logs[o.router] = log.read_text(errors="replace").splitlines() if log.exists() else []
            yield o, outage_story(logs[o.router], o)

    def session_outages(self, t0: float):
        """Every BGP session outage of the lab's routers since traffic started (their bgpd logs, read before
        the lab is destroyed): what a loss beyond a flap is checked against."""
        out = []
        for node in sorted(self.lab.net.nodes):
            log = self.lab.rundir.path / "nodes" / node / "bgpd.log"
            if log.exists():
                out += [o for o in bgp_outages(node, log.read_text(errors="replace").splitlines()) if o.down >= t0 - 1]
        return out


def sessions_down(e, sessions, t0: float) -> list[str]:
    """The BGP sessions down during a loss beyond a flap, as ``router-peer DOWN..UP s`` (since time 0)."""
    end = None if e.end is None else t0 + e.end
    return [f"{o.router}-{o.peer} {o.down - t0:.0f}..{'?' if o.up is None else round(o.up - t0)} s"
            for o in outages_during(t0 + e.start, end, sessions)]


def session_summary(res: dict) -> list[str]:
    """Per BGP session that went down: how often, median and longest outage, and how many outlasted the link's
    down time plus the recovery window."""
    by: dict[str, list[float | None]] = {}
    for o in res.get("bgp_outages", []):
        by.setdefault(f"{o['router']}-{o['peer']}", []).append(None if o["up"] is None else o["up"] - o["down"])
    lines = []
    for session, spans in sorted(by.items()):
        closed = sorted(s for s in spans if s is not None)
        med = closed[len(closed) // 2] if closed else 0.0
        longer = sum(1 for s in spans if s is None or s > res["down_s"] + res["recover_s"])
        lines.append(f"{session:<14} {len(spans):>5} {med:>8.0f} {max(closed, default=0.0):>7.0f} {longer:>14}"
                     f"{'  (still down)' if None in spans else ''}")
    return lines


def is_flow(proc: str) -> bool:
    """A traffic generator of the soak itself (shown and reported, not judged: the lab's agents and daemons
    are what must not leak)."""
    return proc.split("/", 1)[1].startswith("flow ")


def plot(res: dict, path: Path) -> None:
    """RSS of every process sampled in most samples: FRR daemons left, agents and the rest right."""
    n = max((len(v) for v in res["series"].values()), default=0)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharex=True)
    for ax in axes:  # 20 distinct colours: a lab has up to ~20 processes per panel
        ax.set_prop_cycle(color=plt.cm.tab20.colors)
    for proc, points in sorted(res["series"].items()):
        if len(points) < max(2, n // 2):
            continue
        ax = axes[0] if proc.split("/")[1] in ("zebra", "bgpd", "staticd", "bfdd", "ospf6d") else axes[1]
        ax.plot([p[0] for p in points], [p[1] / 1024 for p in points], marker=".", label=proc,
                linestyle="--" if proc in res["growing"] + res["growing_flows"] else "-")
    for ax, title in zip(axes, ("FRR daemons", "agents, servers, flows")):
        ax.set_title(title)
        ax.set_xlabel("minutes since traffic started")
        ax.set_ylabel("anonymous RSS (MB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(0, -0.15))
    fig.suptitle(f"{res['lab']} lab ({res['topology']}): {' / '.join(res['links'])} in turn down {res['down_s']:g} s every "
                 f"{res['period_s']:g} s, {len(res['flaps'])} flaps in {res['minutes']:g} min "
                 f"(dashed: grows beyond noise)"
                 + (f"\nhost load average {res['load']['min']:g}-{res['load']['max']:g} (median {res['load']['median']:g}), "
                    f"BGP connect retry {res['bgp_timers'].get('connect')} s" if res.get("load") else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def passed(res: dict, check_trend: bool) -> bool:
    return bool(res["flaps"]) and not (res["excess"] or res["restarts"] or res["log_problems"] or res["errors"]
                                       or (check_trend and res["growing"]))


def report(res: dict) -> None:
    print(f"\n== {res['lab']} lab ({res['lab_name']}): {' / '.join(res['links'])} in turn down {res['down_s']:g} s every "
          f"{res['period_s']:g} s, {len(res['flaps'])} flaps in {res['minutes']:g} min; window: down - "
          f"{res['lead_s']:g} s .. up + {res['recover_s']:g} s")
    ld, tm = res.get("load", {}), res.get("bgp_timers", {})
    if ld:
        print(f"load average (1 min, at each sample): {ld['min']:g}-{ld['max']:g}, median {ld['median']:g}; "
              f"BGP keepalive/hold/connect {tm.get('keepalive')}/{tm.get('hold')}/{tm.get('connect')} s")
    print(f"{'flow':<8} {'kind':<7} {'gaps':>5} {'max gap ms':>10} {'median outage/flap s':>21} "
          f"{'lost/sent':>11} {'attempts ok':>12} {'broken':>6}")
    for f in res["flows"]:
        outages = sorted(f["outage_per_flap_s"])
        med = outages[len(outages) // 2] if outages else 0.0
        ls = f"{f['lost']}/{f['sent']}" if f["sent"] is not None else "-"
        att = f"{f['attempts_ok']}/{f['attempts_total']}" if f["attempts_total"] else "-"
        print(f"{f['name']:<8} {f['kind']:<7} {f['gaps']:>5} {f['max_gap_ms']:>10.0f} {med:>21.2f} {ls:>11} "
              f"{att:>12} {f['connections_broken']:>6}")
    print(f"{'process':<26} {'samples':>7} {'first MB':>8} {'last MB':>8} {'kB/min':>8} {'growth kB':>9} "
          f"{'noise kB':>8}  verdict")
    for proc, t in res["trends"].items():
        pts = res["series"][proc]
        if t["samples"] < 3:
            continue
        print(f"{proc:<26} {t['samples']:>7} {pts[0][1] / 1024:>8.1f} {pts[-1][1] / 1024:>8.1f} "
              f"{t['slope_kb_per_min']:>8.1f} {t['growth_kb']:>9.0f} {t['noise_kb']:>8.0f}  "
              f"{('grows (flow, not judged)' if is_flow(proc) else 'GROWS') if t['grows'] else 'flat'}")
    sessions = session_summary(res)
    if sessions:
        print(f"{'BGP session':<14} {'downs':>5} {'median s':>8} {'max s':>7} {'> down+recover':>14}")
        print("\n".join(sessions))
    long = [o for o in res.get("bgp_outages", []) if "story" in o]
    if long:
        print(f"BGP outages longer than down + recover ({len(long)}), what the router's bgpd did meanwhile: "
              f"tries / abandoned / NHT waits / accepted / errors / NOTIFICATIONs, first try s after down")
    for o in long[:12]:
        st = o["story"]
        print(f"  {o['router']}-{o['peer']} {o['down']:.0f}..{'?' if o['up'] is None else round(o['up'])} s: "
              f"{st['tries']} / {st['abandoned']} / {st['nht_waits']} / {st['accepted']} / {st['errors']} / "
              f"{st['notifications']}, first try {st['first_try_s']}")
    for e in res["excess"][:10]:
        print(f"LOSS BEYOND A FLAP: {e}")
    for p in res["log_problems"][:10]:
        print(f"LOG: {p}")
    for what in ("restarts", "errors"):
        if res[what]:
            print(f"{what.upper()}: {res[what]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: sudo .venv/bin/python benchmarks/soak_flap.py --minutes 60 "
                                        "(about 2 h: both labs); --minutes 0.5 --labs default --no-trend: a minute")
    ap.add_argument("--minutes", type=float, default=60.0, help="minutes of traffic per lab (default 60)")
    ap.add_argument("--labs", default="default,shim", help=f"comma-separated, of: {', '.join(LABS)}")
    ap.add_argument("--sample-s", type=float, default=60.0, help="seconds between RSS samples (default 60)")
    ap.add_argument("--period-s", type=float, default=10.0, help="seconds from one flap to the next")
    ap.add_argument("--down-s", type=float, default=3.0, help="seconds the link stays down per flap")
    ap.add_argument("--prefix", default="rbfl", help="lab names: PREFIX + the lab's initial (<= 9 chars)")
    ap.add_argument("--bgp-connect", type=int, metavar="S", help="override the topology's BGP connect retry "
                    "(s), e.g. 1 to compare with the default 3 in a second process")
    ap.add_argument("--debug-bgp", action="store_true", help="log bgpd's neighbour events (FSM, connects) on "
                    "every router: why a session stays down; the logs stay in the lab's run folder until destroy, "
                    "copied to OUT/<lab>/bgpd/")
    ap.add_argument("--no-trend", action="store_true", help="report the RSS trend but do not judge it "
                    "(runs too short to tell a leak from start-up growth)")
    ap.add_argument("-o", "--out", default=str(REPO / "reports" / "soak-flap"),
                    help="folder for soak-flap.json, the PNGs and each lab's scenario report")
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.labs.split(",") if k.strip()]
    unknown = [k for k in keys if k not in LABS]
    if unknown or not 0 < args.down_s < args.period_s or args.minutes <= 0:
        ap.error(f"unknown lab(s) {unknown}" if unknown else "need 0 < --down-s < --period-s and --minutes > 0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, ok = [], True
    for key in keys:
        spec = LABS[key]
        t = time.monotonic()
        topo = load_lab(REPO / spec.topology)
        if args.bgp_connect:  # e.g. the old 1 s, as a baseline next to the default in another process
            topo = topo.model_copy(update={"bgp": topo.bgp.model_copy(update={"connect": args.bgp_connect})})
        lab = Lab.deploy(topo, name=f"{args.prefix}{key[0]}"[:10])
        print(f"{key}: BGP timers {topo.bgp}", flush=True)
        print(f"{key}: deployed {lab.name} in {time.monotonic() - t:.1f} s", flush=True)
        try:
            if args.debug_bgp:
                print(f"{key}: bgpd neighbour-event debugging on {', '.join(debug_bgp(lab))}", flush=True)
            res = Soak(spec, lab, args.minutes, args.sample_s, args.period_s, args.down_s).run(out)
        finally:
            keep_bgpd_logs(lab, out / key / "bgpd")
            lab.destroy()
        plot(res, out / f"soak-flap-{key}.png")
        res["passed"] = passed(res, not args.no_trend)
        ok &= res["passed"]
        results.append(res)
        report(res)
    (out / "soak-flap.json").write_text(json.dumps({"args": vars(args), "labs": results}, indent=1) + "\n")
    print(f"\nwritten: {out / 'soak-flap.json'} and {', '.join(f'soak-flap-{k}.png' for k in keys)}; "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
