"""What a failure of ISP B's side does to traffic sourced from ISP B's prefix on the campus lab, per
mechanism (thesis 6.2: tunnel-mesh 6.2.1, sadr-static 6.2.2.1).

For each fault - ``router-crash`` of rb (every FRR daemon of ISP B's exit killed), ``link-down`` of rb's
access link (ispb-rb), ``upstream-cut`` of ispb (its transit to core, access link up) - h1 (lan1, behind
c1, nearest exit ra) pings srv every 10 ms from its ISP-A and from its ISP-B address while the fault is
applied at ``--at`` s and undone ``--hold`` s later.  From iputils ping's own time-stamped output:

- ``to_signal``: fault -> the first ICMPv6 error the host receives for its ISP-B packets (code 5 "source
  address failed ingress/egress policy" from the exit or the ISP), "never" when they vanish silently;
- ``silent`` (printed "unanswered"): ISP-B pings with neither reply nor error while the fault lasted - sent
  into the void, or rejected with the error suppressed by the kernel's ICMPv6 rate limit
  (net.ipv6.icmp.ratelimit): at 100 pings/s most errors are suppressed, so compare ``to_signal``;
- ``a_gap``: the longest gap between replies to the ISP-A pings over the whole run (must stay < 100 ms);
- ``recovery``: undo -> the first ISP-B reply again.

Run as root: ``sudo .venv/bin/python experiments/campus_failover.py [--mechanisms tunnel-mesh,sadr-static]
[--faults router-crash,link-down,upstream-cut] [--repeat 3] [--prefix cf]``.  Prints a table (medians over
the repeats) and writes ``campus_failover.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import TypeAdapter  # noqa: E402

from testbed.faults import prepare  # noqa: E402
from testbed.kinds import load_lab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.scenario.model import Fault  # noqa: E402

CAMPUS = Path(__file__).resolve().parent.parent / "topologies" / "campus.yaml"
FAULTS = {"router-crash": {"kind": "router-crash", "node": "rb"},
          "link-down": {"kind": "link-down", "link": "ispb-rb"},
          "upstream-cut": {"kind": "upstream-cut", "isp": "ispb"}}
LINE = re.compile(r"^\[(?P<ts>[\d.]+)\] (?P<rest>.*)$")


def ping_lines(text: str) -> list[tuple[float, str]]:
    out = []
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if m:
            out.append((float(m["ts"]), m["rest"]))
    return out


def measure(lab: Lab, fault: str, at: float, hold: float, tail: float) -> dict:
    src_a, src_b = lab.plan.address("h1", "ispa"), lab.plan.address("h1", "ispb")
    dst = lab.plan.address("srv")
    total = at + hold + tail
    # -c, not -w: with a deadline iputils ping exits at the first ICMP error
    argv = lambda src: ["ping", "-6", "-n", "-D", "-O", "-i", "0.01", "-W", "0.2", "-c", str(int(total / 0.01)), "-I", src, dst]  # noqa
    pa = lab["h1"].popen(argv(src_a), stdout=subprocess.PIPE)
    pb = lab["h1"].popen(argv(src_b), stdout=subprocess.PIPE)
    start = time.time()
    time.sleep(at)
    action = prepare(TypeAdapter(Fault).validate_python({**FAULTS[fault], "at": at, "name": fault}), lab)
    t_fault = time.time()
    action.do()
    time.sleep(hold)
    t_undo = time.time()
    action.revert()
    out_a = pa.communicate(timeout=total + 30)[0].decode()
    out_b = pb.communicate(timeout=total + 30)[0].decode()
    a = [ts for ts, rest in ping_lines(out_a) if "bytes from" in rest]
    b = ping_lines(out_b)
    a_gaps = [y - x for x, y in zip([start] + a, a)]
    errors = [(ts, rest) for ts, rest in b if rest.startswith("From")]
    during = [(ts, rest) for ts, rest in b if t_fault <= ts <= t_undo]
    first_err = next((ts for ts, _ in errors if ts >= t_fault), None)
    back = next((ts for ts, rest in b if ts > t_undo and "bytes from" in rest), None)
    return {"fault": fault,
            "to_signal_ms": None if first_err is None else round((first_err - t_fault) * 1000),
            "error": next((rest.split("Destination unreachable:", 1)[-1].strip() + " from " + rest.split()[1]
                           for ts, rest in errors if ts >= t_fault), ""),
            "silent": sum("no answer" in rest for _, rest in during),
            "errors": sum(rest.startswith("From") for _, rest in during),
            "a_gap_ms": round(max(a_gaps) * 1000) if a_gaps else None,
            "recovery_ms": None if back is None else round((back - t_undo) * 1000)}


def settle(lab: Lab, timeout: float = 60) -> None:
    """Wait until h1 reaches srv from both addresses again (the lab healed from the previous fault)."""
    deadline = time.time() + timeout
    dst = lab.plan.address("srv")
    while time.time() < deadline:
        ok = all(lab["h1"].run(["ping", "-6", "-c1", "-W", "0.5", "-I", lab.plan.address("h1", isp), dst]).returncode
                 == 0 for isp in ("ispa", "ispb"))
        if ok:
            return
        time.sleep(0.5)
    raise RuntimeError(f"lab {lab.name} did not heal within {timeout} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mechanisms", default="tunnel-mesh,sadr-static")
    p.add_argument("--faults", default=",".join(FAULTS))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--at", type=float, default=2.0)
    p.add_argument("--hold", type=float, default=8.0)
    p.add_argument("--tail", type=float, default=8.0, help="seconds measured after the undo")
    p.add_argument("--prefix", default="cf", help="lab names start with this")
    p.add_argument("--out", default="campus_failover.json")
    args = p.parse_args()
    rows = []
    for mech in args.mechanisms.split(","):
        topo = load_lab(CAMPUS).with_mechanism(mech)
        with Lab.deploy(topo, name=f"{args.prefix}{mech.replace('-', '')}"[:10]) as lab:
            for fault in args.faults.split(","):
                runs = []
                for _ in range(args.repeat):
                    settle(lab)
                    runs.append(measure(lab, fault, args.at, args.hold, args.tail))
                rows.append({"mechanism": mech, "fault": fault, "runs": runs})
                print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    med = lambda xs: "never" if any(x is None for x in xs) else f"{statistics.median(xs):.0f}"  # noqa: E731
    print(f"\n{'mechanism':<12} {'fault':<13} {'to error ms':>12} {'unanswered':>13} {'A max gap ms':>12} "
          f"{'recovery ms':>11}  error seen")
    for r in rows:
        runs = r["runs"]
        print(f"{r['mechanism']:<12} {r['fault']:<13} {med([x['to_signal_ms'] for x in runs]):>12} "
              f"{statistics.median([x['silent'] for x in runs]):>13.0f} {med([x['a_gap_ms'] for x in runs]):>12} "
              f"{med([x['recovery_ms'] for x in runs]):>11}  {runs[0]['error'][:50]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
