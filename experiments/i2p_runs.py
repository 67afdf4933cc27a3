"""Shared parts of the I2P experiments: a lab model per run, one lab per worker process (the lab engine
runs one lab per process), the floodfills' LeaseSet store counter, and snapshots of the leases.

How LeaseSet stores are counted: floodfills run at log level debug, where i2pd 2.45.1 writes one line
``NetDb: Store request: LeaseSet2 of type \\x03 for <b32>`` (the type as a raw byte) per DatabaseStore it receives for a LeaseSet
(NetDb::HandleDatabaseStoreMsg) - publications from the hosting routers and floods between floodfills
alike.  Lines for the Destination are counted in the part of the log written during the window.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agents.balancer.control import query_status
from testbed.i2p.bootstrap import destination_controls
from testbed.i2p.reseed import RouterInfoError, identity_hash
from testbed.i2p.topology import BalancerOptions, I2pLab
from testbed.wait import wait_until

REPO = Path(__file__).resolve().parent.parent


POLICY_OF_MODE = {"primary": "primary", "aware": "gateway_aware"}


def model(name: str, mode: str, hosting: int, quantity: int = 3, clients: int = 0,
          debug_floodfills: bool = True, gateways: int | None = None) -> I2pLab:
    """``mode`` naive, balancer (fair share of every router's leases), primary (balancer, one router's)
    or aware (balancer, gateway-aware selection)."""
    policy = POLICY_OF_MODE.get(mode, "fair_share")
    return I2pLab(name=name, mode="naive" if mode == "naive" else "balancer", hosting=hosting, clients=clients,
                  floodfills=1, balancer=BalancerOptions(inbound_quantity=quantity, policy=policy, gateways=gateways),
                  floodfill_loglevel="debug" if debug_floodfills else None, seed=f"exp-{name}")


class StoreCounter:
    """LeaseSet stores for one Destination received by the lab's floodfills since ``start()``."""

    def __init__(self, lab: Any, m: I2pLab) -> None:
        self.logs = [lab.node(n).dir / "i2pd.log" for n, role in m.routers() if role == "floodfill"]
        b32 = m.destination_keys().destination.b32_address.removesuffix(".b32.i2p")
        self.b32 = b32.encode()
        self.offsets: list[int] = []

    def start(self) -> None:
        self.offsets = [p.stat().st_size for p in self.logs]

    def _lines(self) -> list[bytes]:
        out = []
        for path, offset in zip(self.logs, self.offsets):
            with open(path, "rb") as f:
                f.seek(offset)
                out += [line for line in f.read().splitlines() if self.b32 in line]
        return out

    def count(self) -> int:
        """DatabaseStores received (debug lines; i2pd prints the store type as a raw byte)."""
        return sum(b"Store request: LeaseSet2 of type" in line for line in self._lines())

    def updates(self) -> int:
        """Stores that replaced the floodfill's copy (info level: ``LeaseSet2 updated``)."""
        return sum(b"LeaseSet2 updated: " in line for line in self._lines())


def gateway_names(lab: Any, m: I2pLab) -> dict[str, str]:
    """Router hash (hex) -> node name, from each router's router.info (i2pd rewrites the file now and
    then: a read that finds it empty or cut short is tried again)."""
    def read(node: str) -> str | None:
        try:
            return identity_hash((lab.node(node).dir / "router.info").read_bytes()).hex()
        except (OSError, RouterInfoError):
            return None
    return {wait_until(lambda: read(n), 10, 0.2, what=f"{n}'s router.info"): n for n, _ in m.routers()}


def lease_snapshot(lab: Any, m: I2pLab) -> dict[str, Any]:
    """What is published now (per LeaseSet source) and each hosting router's own inbound pool."""
    published: dict[str, list[list[Any]]] = {}
    pools: dict[str, list[list[Any]]] = {}
    publications = 0
    for source, path in destination_controls(lab, m).items():
        status = query_status(path)
        publications += int(status.get("publications", 0))
        published[source] = [[x["gateway"], x["tunnel_id"]] for x in (status.get("current") or {}).get("leases", [])]
        for router, state in status["routers"].items():
            pools[router] = [[x["gateway"], x["tunnel_id"]] for x in state["leases"]] if state["up"] else []
    return {"t": time.time(), "published": published, "pools": pools, "publications": publications}


def run_workers(script: str, jobs: list[list[str]], out: Path, extra: list[str],
                stagger: float = 5.0) -> list[dict[str, Any]]:
    """Run ``python -m experiments.<script> --worker JOB… EXTRA… --out FILE`` per job in parallel (one lab
    per process), collect their JSON results."""
    procs = []
    for job in jobs:
        path = out / f"run-{'-'.join(job)}.json"
        path.unlink(missing_ok=True)
        procs.append((path, subprocess.Popen([sys.executable, "-m", f"experiments.{script}", "--worker", *job,
                                              *extra, "--out", str(path)], cwd=REPO)))
        time.sleep(stagger)
    results = []
    for path, proc in procs:
        proc.wait()
        if path.exists():
            results.append(json.loads(path.read_text()))
        else:
            print(f"worker for {path.name} failed (exit {proc.returncode})", file=sys.stderr)
    return results


def experiment_parser(doc: str | None) -> argparse.ArgumentParser:
    """Options every I2P experiment has: the report folder, re-analysis, and the hidden worker mode."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", type=Path, default=Path("reports/i2p"))
    p.add_argument("--report-only", action="store_true", help="re-analyse the run-*.json files in -o")
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p


def saved_results(out: Path, key: str) -> list[dict[str, Any]]:
    """The results of earlier workers in ``out`` that carry ``key`` (experiments share the folder)."""
    return [r for f in sorted(out.glob("run-*.json")) if key in (r := json.loads(f.read_text()))]


def save_report(fig: Any, text: str, out: Path, stem: str) -> str:
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=120)
    (out / f"{stem}.txt").write_text(text + "\n")
    return text


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="A module shared by experiments/i2p_publication_load.py and "
                                   "experiments/i2p_continuity.py; run those.").parse_args()
    print("nothing to run here: see experiments/i2p_publication_load.py and experiments/i2p_continuity.py")
