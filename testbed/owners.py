"""Who a lab belongs to: the user recorded in its run directory, honoured by ``mhlab destroy --all``.

Several students share one machine in a classroom: each deploys labs under their own name, and one
student's ``destroy --all`` must not take another's lab down.  A lab records its owner (``owner`` in
lab.json); ``destroy --all`` removes only the caller's labs and labs nobody owns, unless told
``--everyone``.  The caller is the user behind sudo (``$SUDO_USER``), else the login user.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from .rundir import RunDir, list_labs


def caller() -> str:
    """The human behind this process: ``$SUDO_USER`` under sudo, else the login name."""
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or getpass.getuser()


def owner_of(rundir: RunDir) -> str | None:
    return rundir.meta().get("owner")


def set_owner(rundir: RunDir, user: str) -> None:
    rundir.update_meta(owner=user)


def destroyable(root: str | Path | None, user: str, everyone: bool = False) -> tuple[list[RunDir], list[RunDir]]:
    """(labs ``destroy --all`` removes, labs it spares because another user owns them)."""
    mine, spared = [], []
    for r in list_labs(root):
        owner = owner_of(r)
        (mine if everyone or owner in (None, user) else spared).append(r)
    return mine, spared
