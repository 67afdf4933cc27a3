"""Mininet's cluster engine, fitted to mhlab: remote node shells and links, cross-server links as VXLAN.

``mininet.examples.cluster`` gives ``RemoteMixin`` (a node whose shell runs on its server over ssh; ``rcmd``
runs in the server's root namespace) and ``RemoteLink`` (a veth pair when both ends share a server, else a
tunnel).  What did not fit, and what is used instead:
- its ssh command is ``sudo -E -u USER ssh ... sudo -E CMD``: mhlab deploys as root and reaches servers with
  the cluster file's own ssh command (a config file, a wrapper) and uses sudo only for a non-root user, so
  :class:`ClusterNode` builds the command line through :class:`~.ssh.Remote` (tagged with the lab);
- its tunnels are ssh tap tunnels (``ssh -w``: one ssh process per link, ``PermitTunnel`` on the server)
  or gretap (no GRE in these kernels): :class:`VxlanLink` makes one VXLAN device per end instead (one VNI
  per link, UDP between the servers' underlay addresses, MTU set explicitly), created in the server's
  root namespace and moved into the node, where it gets the lab's interface name.  Its UDP socket stays in
  the server's namespace; the device itself goes with the node's namespace.
"""

from __future__ import annotations

from typing import Callable

from mininet.examples.cluster import RemoteLink, RemoteMixin
from mininet.node import Node

from .ssh import Remote


class ClusterNode(RemoteMixin, Node):
    """A node on a server: Mininet's remote node, its shell started over the cluster's ssh."""

    def __init__(self, name: str, remote: Remote, **params) -> None:
        self.remote = remote  # before RemoteMixin.__init__: it starts the shell through _popen
        super().__init__(name, server=remote.name, user=remote.server.user, serverIP=remote.server.host,
                         inNamespace=True, **params)

    def _popen(self, cmd, sudo=True, tt=True, **params):  # noqa: D401 - Mininet's hook
        if isinstance(cmd, str):
            cmd = cmd.split()
        params.update(preexec_fn=self._ignoreSignal, env=self.remote.env())
        return Node._popen(self, self.remote.argv(list(cmd), tty=tt), **params)


class VxlanLink(RemoteLink):
    """A link whose ends may be on different servers: a veth pair on one server (Mininet's RemoteLink), a
    pair of VXLAN devices across two.  ``before(server, device, vni)`` journals each device first."""

    def __init__(self, node1, node2, vni: int, port: int, mtu: int, before: Callable[[str, str, int], None],
                 **kwargs) -> None:
        self.vni, self.port, self.mtu, self.before = vni, port, mtu, before
        super().__init__(node1, node2, **kwargs)

    def makeTunnel(self, node1, node2, intfname1, intfname2, addr1=None, addr2=None):  # noqa: N802
        temp = f"mhx{self.vni:06x}"  # unique per lab and link while it sits in the server's namespace
        for node, peer, intf in ((node1, node2, intfname1), (node2, node1, intfname2)):
            local, remote = node.remote.server.underlay_address, peer.remote.server.underlay_address
            self.before(node.remote.name, temp, self.vni)
            out = node.rcmd(f"ip link add {temp} mtu {self.mtu} type vxlan id {self.vni} local {local} "
                            f"remote {remote} dstport {self.port}")  # rcmd splits on spaces: one command
            out = out.strip() or node.rcmd(f"ip link set {temp} netns {node.pid}")
            if out.strip():
                raise RuntimeError(f"server {node.remote.name}: VXLAN {temp} (VNI {self.vni}) for "
                                   f"{node.name}:{intf}: {out.strip()}")
            out = node.cmd(f"ip link set {temp} name {intf}")
            if out.strip():
                raise RuntimeError(f"{node.name}: renaming {temp} to {intf}: {out.strip()}")
        return None
