"""How a report was made: tool version and commit, kernel, FRR, the lab actually used, its mechanisms,
and the hashes of the files - so two reports can be compared knowing whether they measured the same thing.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from pathlib import Path
from typing import Any

import testbed

from ..errors import DependencyError
from ..frr import frr_version

REPO = Path(testbed.__file__).resolve().parent.parent


def sha256_of(path: str | Path | None) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
    except OSError:
        return None


def git_commit(repo: Path = REPO) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` when mhlab runs from a git checkout, else None."""
    if not (repo / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _frr() -> str | None:
    try:
        return frr_version()
    except (DependencyError, OSError, subprocess.TimeoutExpired):
        return None


def mechanisms_of(topology: Any) -> dict[str, str]:
    """site -> mechanism for multihoming labs; an I2P lab says how its Destination is hosted."""
    sites = getattr(topology, "sites", None)
    if sites is not None:
        return {s.name: s.mechanism for s in sites}
    mode = getattr(topology, "mode", None)
    return {"destination": f"i2p-{mode}"} if mode else {}


def provenance(lab_name: str, topology: Any, topology_file: str | Path | None,
               scenario_file: str | Path | None) -> dict[str, Any]:
    return {
        "mhlab_version": testbed.__version__,
        "git": git_commit(),
        "kernel": platform.release(),
        "frr_version": _frr(),
        "lab": lab_name,
        "lab_kind": str(getattr(topology, "kind", "multihoming")),
        "mechanisms": mechanisms_of(topology),
        "topology_file": str(Path(topology_file).resolve()) if topology_file else None,
        "topology_sha256": sha256_of(topology_file),
        "scenario_file": str(Path(scenario_file).resolve()) if scenario_file else None,
        "scenario_sha256": sha256_of(scenario_file),
    }
