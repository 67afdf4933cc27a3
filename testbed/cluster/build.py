"""A lab's cluster at run time: placement, remote nodes and their anchors, links, and the per-server sweep.

The runtime (:mod:`testbed.lab`) calls in here only when a lab was deployed with a cluster file.  The
cluster is saved in the run directory (``cluster.json``) so any later process (``mhlab exec``, ``check``,
``destroy`` after a crash) reaches the same servers.  Each server is journaled (``{"kind": "server"}``)
before the first thing is created on it, and each VXLAN device before it is made: ``sweep`` visits every
journaled server and stops the lab's tagged processes there and removes its devices left in the server's
namespace.
"""

from __future__ import annotations

import json
import subprocess
import zlib
from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from ..errors import LabError
from ..procs import ProcRecord, start_time
from ..rundir import RunDir
from .mnnodes import ClusterNode, VxlanLink
from .model import Cluster, vxlan_overhead
from .ssh import Remote, json_line

FILE = "cluster.json"
PARALLEL = 6  # nodes built at once: each waits mostly on ssh round trips and its server


def vni_of(lab: str, index: int) -> int:
    """One VXLAN network identifier per link: 12 bits from the lab's name, 12 from the link's index, so two
    labs sharing servers rarely collide (and a collision fails the deploy, it never joins two labs)."""
    if index >= 0xfff:
        raise LabError(f"lab {lab}: more than {0xfff - 1} links need a VXLAN each")
    return (zlib.crc32(lab.encode()) & 0xfff) << 12 | (index + 1)


@dataclass
class ClusterRun:
    cluster: Cluster
    rundir: RunDir
    bridges: dict[str, list[str]] = field(default_factory=dict)  # LAN bridge -> member nodes
    mtu: int | None = None
    nodes: list[str] = field(default_factory=list)

    @property
    def lab(self) -> str:
        return self.rundir.lab

    # -- the run directory ------------------------------------------------------------------------------
    def save(self) -> None:
        (self.rundir.path / FILE).write_text(json.dumps({"cluster": self.cluster.model_dump(),
                                                         "bridges": self.bridges, "mtu": self.mtu,
                                                         "nodes": self.nodes}, indent=2))

    @classmethod
    def load(cls, rundir: RunDir) -> "ClusterRun | None":
        path = rundir.path / FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(Cluster.model_validate(data["cluster"]), rundir, data.get("bridges", {}), data.get("mtu"),
                   data.get("nodes", []))

    # -- placement --------------------------------------------------------------------------------------
    def server_of(self, node: str) -> str:
        return self.cluster.server_of(node, self.bridges)

    def remote(self, server: str) -> Remote:
        return Remote(server, self.cluster.servers[server], self.lab, str(self.rundir.path))

    def remote_of(self, node: str) -> Remote:
        return self.remote(self.server_of(node))

    def placement(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for node in self.nodes:
            out.setdefault(self.server_of(node), []).append(node)
        return out

    def servers_used(self) -> list[str]:
        return list(dict.fromkeys(r["server"] for r in self.rundir.records() if r.get("kind") == "server"))

    def _use(self, server: str) -> None:
        """Journal the server before anything is made there, then open the lab's connection to it."""
        if server in self.servers_used():
            return
        self.rundir.record({"kind": "server", "server": server, "dest": self.cluster.servers[server].dest})
        try:
            master = self.remote(server).master()
        except RuntimeError as exc:
            raise LabError(str(exc)) from None
        self.rundir.record(ProcRecord("lab", f"ssh-{server}", master.pid, start_time(master.pid) or 0,
                                      tuple(master.args)).as_dict())

    # -- deploy -----------------------------------------------------------------------------------------
    def prepare(self, nodes: list[str], links: list[tuple[str, str]]) -> None:
        """Placement checked, bridges placed with their members, the links' MTU fixed (the underlay's MTU
        minus VXLAN's overhead unless the cluster file sets one, which must fit) - before anything is built."""
        self.cluster.check_nodes(nodes)
        self.nodes = list(nodes)
        self.bridges = {b: [a for a, bb in links if bb == b] for b in nodes if b.startswith("br:")}
        for server in dict.fromkeys(self.server_of(n) for n in nodes):
            self._use(server)
        pairs = {(self.server_of(a), self.server_of(b)) for a, b in links if self.server_of(a) != self.server_of(b)}
        fits = []
        for here, there in sorted(pairs):
            peer = self.cluster.servers[there].underlay_address
            res = self.remote(here).run(self.remote(here).serverctl("underlay", "--to", peer), timeout=30)
            try:
                info = json_line(res.stdout)
            except ValueError:
                raise LabError(f"server {here}: cannot find its route to {there} ({peer}): "
                               f"{(res.stderr or res.stdout).strip()[-300:]}") from None
            fits.append((info["mtu"] - vxlan_overhead(peer), here, there, info))
        if self.cluster.mtu is not None:
            for most, here, there, info in fits:
                if self.cluster.mtu > most:
                    raise LabError(f"mtu {self.cluster.mtu} does not fit over VXLAN from {here} to {there}: "
                                   f"{info['dev']} has MTU {info['mtu']}, so at most {most} (raise the "
                                   "underlay's MTU or lower the cluster file's mtu)")
            self.mtu = self.cluster.mtu
        else:
            self.mtu = min([f[0] for f in fits] + [1500])
        self.save()

    @staticmethod
    def each(fn: Callable[[Any], None], items: list) -> None:
        """``fn`` on every item, ``PARALLEL`` at a time; the first error is raised once all have finished
        (what was built is in the journal either way)."""
        with ThreadPoolExecutor(PARALLEL) as pool:
            for future in [pool.submit(fn, item) for item in items]:
                future.result()

    def node(self, name: str, mn_name: str) -> ClusterNode:
        server = self.server_of(name)
        self._use(server)
        return ClusterNode(mn_name, self.remote(server))

    def anchor(self, name: str, mn: ClusterNode) -> ProcRecord:
        """The process that holds the node's namespaces: ``sleep infinity`` relayed into the node.  The
        journal gets its local proxy (stopping it ends the anchor) and its pid on the server (to enter)."""
        remote = mn.remote
        proc = remote.relay(mn.pid, ["sleep", "infinity"], {})
        rec = ProcRecord(name, "anchor", proc.pid, start_time(proc.pid) or 0, server=remote.name)
        self.rundir.record(rec.as_dict())
        try:
            rpid, _ = proc.locate(node_pid=mn.pid)
        except RuntimeError as exc:
            raise LabError(f"node {name}: its anchor did not start: {exc}") from None
        rec = ProcRecord(name, "anchor", proc.pid, rec.start, server=remote.name, rpid=rpid)
        self.rundir.record(rec.as_dict())
        return rec

    def link(self, index: int, a: ClusterNode, b: ClusterNode, a_if: str, b_if: str) -> str:
        """One lab link, with the lab's MTU on both ends; returns how it was made."""
        vni = vni_of(self.lab, index)
        before: Callable[[str, str, int], None] = lambda server, dev, vni: self.rundir.record(
            {"kind": "vxlan", "server": server, "dev": dev, "vni": vni})
        VxlanLink(a, b, vni, self.cluster.vxlan_port, self.mtu or 1500, before, intfName1=a_if, intfName2=b_if)
        if a.remote.name == b.remote.name:
            for node, ifname in ((a, a_if), (b, b_if)):
                out = node.cmd(f"ip link set dev {ifname} mtu {self.mtu or 1500}")
                if out.strip():
                    raise LabError(f"{node.name}: MTU of {ifname}: {out.strip()}")
            return "veth"
        return f"vxlan {vni}"

    # -- destroy ----------------------------------------------------------------------------------------
    def sweep(self, progress: Callable[[str], None]) -> dict[str, dict]:
        """Every journaled server: the lab's processes stopped, its VXLAN devices left there deleted."""
        vxlans: dict[str, list[str]] = {}
        for r in self.rundir.records():
            if r.get("kind") == "vxlan":
                vxlans.setdefault(r["server"], []).append(f"{r['dev']}:{r['vni']}")
        out: dict[str, dict] = {}
        for server in self.servers_used():
            remote = self.remote(server)
            progress(f"server {server}: sweeping lab {self.lab}")
            args = ["sweep", "--lab", self.lab, *(f"--vxlan={v}" for v in dict.fromkeys(vxlans.get(server, [])))]
            try:
                res = remote.run(remote.serverctl(*args), timeout=60)
                try:
                    out[server] = json_line(res.stdout)
                except ValueError:
                    said = (res.stderr or res.stdout).strip()[-300:] or f"ssh exit status {res.returncode}"
                    out[server] = {"error": f"unreachable or failed: {said}"}
            except (ValueError, OSError, subprocess.TimeoutExpired) as exc:
                out[server] = {"error": f"{type(exc).__name__}: {exc}"[-300:]}
        return out
