"""How to start the agent in a host: the argv, for whoever wires it in (a mechanism, a test, a script).

    argv = daemon_argv("{node_dir}/exitpath.sock", ["2001:db8:a001:1::10", "2001:db8:b001:1::10"])
    # -> ["python3", "-m", "agents.exitpath.daemon", "--socket", "{node_dir}/exitpath.sock",
    #     "--source", "2001:db8:a001:1::10", "--source", "2001:db8:b001:1::10"]

It needs the host's source addresses (one per ISP, 2 to 4) and, optionally, the devices to attach
to (default: every Ethernet-like device of the namespace).  It must run as root inside the host's
network namespace, with clang available (the tc programs are compiled at start).  It is ready when
the control socket exists.
"""

from __future__ import annotations

from collections.abc import Iterable

from .engine import Timing


def daemon_argv(socket: str, sources: Iterable[str], devices: Iterable[str] = (), timing: Timing | None = None,
                python: str = "python3", seed: int | None = None, route_hints: bool = True) -> list[str]:
    argv = [python, "-m", "agents.exitpath.daemon", "--socket", socket]
    for src in sources:
        argv += ["--source", str(src)]
    for dev in devices:
        argv += ["--device", dev]
    if timing is not None:
        argv += ["--lifetime", f"{timing.lifetime:g}", "--lock", f"{timing.lock:g}",
                 "--probe-timeout", f"{timing.probe_timeout:g}"]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if not route_hints:
        argv.append("--no-route-hints")
    return argv
