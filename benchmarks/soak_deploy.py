"""Soak: deploy/destroy cycles of the default lab, some of them abused, and what each one left behind.

Every cycle deploys topologies/two-isp-site.yaml in a subprocess under a fresh name, then one of
- ``clean``:   the deploy completes, `mhlab destroy` (a fresh process) removes it;
- ``killed``:  the deploying process is SIGKILLed after a random delay (any stage: rendering, nodes, links,
               FRR, readiness) and a fresh process destroys what is left;
- ``racing``:  a concurrent `mhlab destroy` starts after a random delay, while the deploy still runs; a
               final destroy from a fresh process removes whatever the race left (if any).
After every cycle it looks (testbed.leaks) for processes, namespaces, root-namespace interfaces (veths,
bridges), nftables tables, mounts and run directories of the lab.  Look-alikes that must survive: a `sleep`
whose argv names the lab's run directory and a veth pair in the root namespace named like lab interfaces,
both made by this script (and removed at its end).  Prints cycle times and leaks found (should be 0).

Run as root: `sudo .venv/bin/python benchmarks/soak_deploy.py --cycles 100 [--prefix rbsoak] [--seed 1]`.
Timings are noisy on a shared machine: medians are printed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testbed.kinds import load_lab, netplan_for  # noqa: E402
from testbed.leaks import holdings, leftovers, root_links, root_nft_tables  # noqa: E402
from testbed.rundir import RunDir  # noqa: E402

DEFAULT = REPO / "topologies" / "two-isp-site.yaml"
LOOKALIKE_VETH = ("ispa", "hosts")  # names the default lab's interfaces have - inside its namespaces
DEPLOY_TIMEOUT = 180.0  # a loaded 2-core machine: one deploy takes 5-15 s


def mhlab(*args: str, timeout: float = DEPLOY_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def deploy_proc(name: str, root: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "testbed.cli", "--run-root", root, "deploy", str(DEFAULT),
                             "--name", name, "--quiet"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def lab_ifnames() -> set[str]:
    net = netplan_for(load_lab(DEFAULT))
    return {i for link in net.links for i in (link.a_if, link.b_if)} | {"br0"}


def cycle(mode: str, name: str, root: str, rng: random.Random, typical: float) -> dict:
    """One cycle; returns its mode, time, how deploy ended and what was left."""
    links, tables = root_links(), root_nft_tables()
    lookalike = subprocess.Popen(["bash", "-c", f'exec -a "sleep {root}/{name}/nodes/h1" sleep 3600'])
    t0 = time.monotonic()
    proc = deploy_proc(name, root)
    outcome, race = "up", ""
    if mode == "killed":
        time.sleep(rng.uniform(0.0, typical))
        proc.kill()
        outcome = "killed"
    elif mode == "racing":
        time.sleep(rng.uniform(0.5, typical))
        res = mhlab("--run-root", root, "destroy", name)
        race = "; raced: " + ("destroyed it" if res.returncode == 0 else "no lab yet" if "no lab" in res.stderr
                              else res.stderr.strip()[-80:])
    rc = proc.wait(DEPLOY_TIMEOUT)
    if mode != "killed":
        outcome = "up" if rc == 0 else "failed: " + (proc.stderr.read().strip().splitlines() or ["?"])[-1][:150]
    if mode == "killed" and rc == 0:
        outcome = "up before the kill"
    outcome += race
    held = holdings(name, root)
    if RunDir.of(name, root).path.exists():
        res = mhlab("--run-root", root, "destroy", name)
        if res.returncode != 0:
            outcome += f"; destroy: {res.stderr.strip()[-200:]}"
    elapsed = time.monotonic() - t0
    left = leftovers(name, held, lab_ifnames(), links, tables, spare_pids={lookalike.pid})
    survived = lookalike.poll() is None
    lookalike.kill()
    lookalike.wait()
    return {"mode": mode, "seconds": elapsed, "outcome": outcome, "left": {k: v for k, v in left.items() if v},
            "lookalike_survived": survived}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--prefix", default="rbsoak", help="lab names are PREFIX + cycle number (at most 10 chars)")
    ap.add_argument("--run-root", default="/run/mhlab")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    created = LOOKALIKE_VETH[0] not in root_links() and LOOKALIKE_VETH[1] not in root_links()
    if created:
        subprocess.run(["ip", "link", "add", "name", LOOKALIKE_VETH[0], "type", "veth", "peer", "name",
                        LOOKALIKE_VETH[1]], check=True)
    results, typical = [], 8.0
    try:
        for n in range(args.cycles):
            mode = {0: "clean", 1: "killed", 2: "racing"}[n % 3]
            r = cycle(mode, f"{args.prefix}{n % 1000}"[:10], args.run_root, rng, typical)
            if mode == "clean" and r["outcome"] == "up":
                typical = r["seconds"]
            results.append(r)
            bad = r["left"] or not r["lookalike_survived"]
            print(f"cycle {n:3d} {mode:<6} {r['seconds']:6.2f} s  {r['outcome']:<34} "
                  f"{'LEAK ' + str(r['left']) if r['left'] else 'clean'}"
                  f"{'' if r['lookalike_survived'] else '  LOOK-ALIKE PROCESS KILLED'}", flush=True)
            if bad and n == 0:
                break
    finally:
        veth_ok = not created or LOOKALIKE_VETH[0] in root_links()
        if created:
            subprocess.run(["ip", "link", "del", LOOKALIKE_VETH[0]], check=False)
    leaks = sum(bool(r["left"]) for r in results)
    print()
    print(f"{'mode':<7} {'cycles':>6} {'median s':>9} {'max s':>7} {'leaks':>6}")
    for mode in ("clean", "killed", "racing"):
        rs = [r for r in results if r["mode"] == mode]
        if rs:
            secs = [r["seconds"] for r in rs]
            print(f"{mode:<7} {len(rs):>6} {statistics.median(secs):>9.2f} {max(secs):>7.2f} "
                  f"{sum(bool(r['left']) for r in rs):>6}")
    print(f"leaks found: {leaks} of {len(results)} cycles; look-alike process survived every cycle: "
          f"{all(r['lookalike_survived'] for r in results)}; look-alike veth survived: {veth_ok}")
    return 0 if leaks == 0 and veth_ok and all(r["lookalike_survived"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
