"""An interactive shell inside a node (`mhlab exec LAB NODE` with no command): bash whose prompt names the
lab and the node, so a terminal inside ``ra`` never passes for the host's own shell."""

from __future__ import annotations

import os
import shutil


def node_shell_argv(lab: str, node: str) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) of the shell: $SHELL if it is bash, else bash, else sh."""
    shell = os.environ.get("SHELL", "")
    if not shell.endswith("bash"):
        shell = shutil.which("bash") or "/bin/sh"
    prompt = f"[{lab}:{node}] \\w\\$ " if shell.endswith("bash") else f"[{lab}:{node}] # "
    argv = [shell, "--norc", "-i"] if shell.endswith("bash") else [shell, "-i"]
    return argv, {"PS1": prompt, "MHLAB_NODE": node}
