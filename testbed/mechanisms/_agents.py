"""What add-ons share about their agents in a running lab: one `mhlab inspect` row per node, from the
agent's control socket, or saying that it died (a dead agent fails open: the node works as without it)."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from agents.jsonctl import request


def agent_rows(lab: Any, nodes: Iterable[str], service: str, socket_name: str,
               summary: Callable[[dict], str]) -> tuple[tuple[str, str], ...]:
    rows = []
    for node in nodes:
        handle = lab.node(node)
        procs = [(p, alive) for p, alive in handle.processes() if p.name == service]
        if not procs:
            rows.append((node, "not started"))
            continue
        rec, alive = procs[-1]
        if not alive:
            rows.append((node, f"DEAD (pid {rec.pid} exited); fails open: the node works as without it"))
            continue
        try:
            status = request(str(handle.dir / socket_name), {"cmd": "status"}, timeout=2)
        except (OSError, RuntimeError, ValueError) as exc:
            rows.append((node, f"running (pid {rec.pid}), control socket not answering: {exc}"))
            continue
        rows.append((node, f"running (pid {rec.pid}): {summary(status)}"))
    return tuple(rows)
