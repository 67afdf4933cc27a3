"""Faults and client traffic for I2P labs, on the lab's records (never by name).

``crash`` stops a hosting router's i2pd (the whole router) or only its frontend (the I2CP session:
the router lives on, the Destination's tunnels there go); ``restore`` starts the very same command line
again.  ``start_probe`` runs the SAM request/reply probe on a client router as a recorded process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from agents.balancer.structures import i2p_b64encode

from ..procs import ProcRecord
from .bootstrap import current_record, respawn, stop_records
from .topology import I2pLab

Target = Literal["router", "session"]


def process_name(model: I2pLab, target: Target) -> str:
    """What to stop on a hosting router: i2pd, or the process owning the Destination's I2CP session."""
    if target == "session":
        return "frontend" if model.mode == "balancer" else "destination"
    return "i2pd"


def crash(lab: Any, model: I2pLab, router: str, target: Target = "router") -> ProcRecord:
    rec = current_record(lab, router, process_name(model, target))
    stop_records([rec], grace=0.5)  # a crash: SIGTERM, SIGKILL after 0.5 s
    return rec


def restore(lab: Any, record: ProcRecord) -> ProcRecord:
    return respawn(lab, record)


def destination_b64(model: I2pLab) -> str:
    return i2p_b64encode(model.destination_keys().destination.to_bytes())


def start_probe(lab: Any, model: I2pLab, log: Path, client: str = "c1", every_ms: float = 500,
                timeout_s: float = 8.0, duration_s: float | None = None, renew_after: int = 0,
                spare: bool = False, name: str = "probe") -> subprocess.Popen:
    """The SAM probe on ``client`` (recorded; ``destroy`` stops it if the caller does not)."""
    argv = [sys.executable, "-m", "agents.balancer.probe", "--dest", destination_b64(model),
            "--every", str(every_ms), "--timeout", str(timeout_s), "--log", str(log),
            "--renew-after", str(renew_after)] + (["--spare"] if spare else [])
    if duration_s is not None:
        argv += ["--duration", str(duration_s)]
    return lab.node(client).spawn(name, argv, cwd=Path(__file__).resolve().parents[2])
