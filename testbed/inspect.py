"""`mhlab inspect`: what a running lab is made of, read live from its nodes (addresses, processes, BGP
sessions from the NetPlan's routers), plus the sections the lab's kind adds (``LabKind.inspect``: ingress
filter counters, an I2P Destination's leases, ...).  A lab across servers (``testbed.cluster``) also shows
which server each node runs on, read from the run directory (the anchors' records, else ``cluster.json``'s
placement), so it shows even when the lab is down; a one-machine lab's output has no server fields."""

from __future__ import annotations

import json

from .lab import Lab
from .procs import is_alive
from .supervise import restarts


def node_servers(lab: Lab) -> dict[str, str]:
    """Node -> the server it runs on, for a lab across servers ({} on one machine): where its anchor was
    started (the journal), else where the saved placement puts it (a node whose anchor never started)."""
    if lab.cluster is None:
        return {}
    anchors = {h.name: h.anchor.server for h in lab.nodes.values() if h.anchor.server}
    return {name: anchors.get(name) or lab.cluster.server_of(name) for name in lab.net.nodes}


def servers_section(lab: Lab, placed: dict[str, str]) -> list[dict]:
    """Each server of a lab across servers with how it is reached and the nodes on it, in the cluster
    file's order."""
    if lab.cluster is None:
        return []
    return [{"name": name, "dest": server.dest, "underlay": server.underlay_address,
             "nodes": [n for n, s in placed.items() if s == name]}
            for name, server in lab.cluster.cluster.servers.items()]


def inspect_lab(lab: Lab) -> dict:
    nodes = []
    placed = node_servers(lab)
    restarted = restarts(lab.rundir)
    running = any(is_alive(h.anchor) for h in lab.nodes.values())
    sessions = lab.bgp_sessions() if running else {}
    for name, spec in lab.net.nodes.items():
        handle = lab.nodes.get(name)
        entry = {"name": name, "role": spec.role, "owner": spec.owner, "mechanism": spec.mechanism,
                 "running": bool(handle and is_alive(handle.anchor)), "interfaces": [], "processes": []}
        if name in placed:
            entry["server"] = placed[name]
        if handle and entry["running"] and spec.role != "bridge":
            out = handle.run(["ip", "-j", "addr", "show", "scope", "global"]).stdout  # IPv6 and IPv4 labs
            for link in json.loads(out or "[]"):
                entry["interfaces"].append({"name": link["ifname"], "state": link.get("operstate"),
                                            "addresses": [f"{a['local']}/{a['prefixlen']}" +
                                                          (" deprecated" if a.get("deprecated") else "")
                                                          for a in link.get("addr_info", []) if "local" in a]})
        if handle:
            entry["processes"] = [{"name": p.name, "pid": p.pid, "running": alive,
                                   "state": "running" if alive else "dead",
                                   "restarts": restarted.get((name, p.name), 0)}
                                  for p, alive in handle.processes() if p.name != "shell"]
        if name in sessions:
            entry["bgp"] = sessions[name]
        nodes.append(entry)
    sections = [s.as_dict() for s in lab.kind.inspect(lab)] if running else []
    data = {"lab": lab.name, "kind": lab.kind.name, "status": lab.rundir.meta().get("status"),
            "run_dir": str(lab.rundir.path), "nodes": nodes, "details": sections}
    if lab.cluster is not None:
        data["servers"] = servers_section(lab, placed)
    return data


def inspect_text(data: dict) -> str:
    lines = [f"lab {data['lab']} ({data['kind']}, {data['status']})  run directory {data['run_dir']}", ""]
    if data.get("servers"):  # a lab across servers: where each node runs, bridges included
        lines.append(f"{'server':<8} {'ssh':<22} {'underlay':<16} nodes")
        lines += [f"{s['name']:<8} {s['dest']:<22} {s['underlay']:<16} {', '.join(s['nodes']) or '-'}"
                  for s in data["servers"]]
        lines.append("")
    across = any("server" in n for n in data["nodes"])
    lines.append(f"{'node':<8} {'role':<7} {'owner':<8} " + (f"{'server':<8} " if across else "")
                 + f"{'interface':<10} addresses")
    for n in data["nodes"]:
        if n["role"] == "bridge":
            continue
        first = True
        for i in n["interfaces"] or [{"name": "-", "addresses": []}]:
            head = f"{n['name']:<8} {n['role']:<7} {n['owner']:<8}" + (f" {n.get('server', '-'):<8}" if across else "")
            lines.append(f"{head if first else ' ' * len(head)} {i['name']:<10} {', '.join(i['addresses'])}")
            first = False
    lines += ["", f"{'node':<8} processes"]
    for n in data["nodes"]:
        # a restarted daemon (same name, started again) shows once, as its latest process
        latest = {p["name"]: p for p in n["processes"]}
        procs = ", ".join(f"{p['name']}({p['pid']}{'' if p['running'] else ' DEAD'}"
                          f"{', restarted ' + str(p['restarts']) + 'x' if p.get('restarts') else ''})"
                          for p in latest.values())
        if procs:
            lines.append(f"{n['name']:<8} {procs}")
    if any("bgp" in n for n in data["nodes"]):
        lines += ["", f"{'router':<8} BGP sessions"]
    for n in data["nodes"]:
        if "bgp" in n:
            lines.append(f"{n['name']:<8} " + ", ".join(f"{p}={s}" for p, s in n["bgp"].items()))
    for section in data["details"]:
        width = max((len(k) for k in section["rows"]), default=0)
        lines += ["", section["title"]]
        lines += [f"  {k:<{width}}  {v}" for k, v in section["rows"].items()]
    return "\n".join(lines)
