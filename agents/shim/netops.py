"""Host plumbing for the data path: the steering device, tc attachment, /128 routes.

All of it acts on the network namespace the daemon runs in, and only on what it created
(its own veth pair, its own tc filters, routes to peer ULIDs).

Why a steering device: a translated packet grows by 8 octets, and Linux cannot segment a
TCP super-packet (GSO) that carries an extension header it does not know (protocol 140).
So packets of translated contexts are routed (a /128 route to the peer ULID, from the local
ULID) into ``shim0``, a veth whose TSO is off and whose MTU is 8 octets below the real
devices': the kernel segments there, at the right size, and the program on the other end
(``shim1``, tc ingress) inserts the header and sends each segment out of the real device.
The same route is what keeps a ULID reachable when the locator it names is gone (RFC 5533
section 9: the packet is routed after the rewrite), and its MTU makes TCP's MSS fit.
"""

from __future__ import annotations

import array
import fcntl
import ipaddress
import json
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

Address = ipaddress.IPv6Address
SIOCETHTOOL = 0x8946
ETHTOOL_STSO = 0x1F
TC_INGRESS, TC_EGRESS = "ffff:fff2", "ffff:fff3"
FILTER_PRIO = 0xC6  # our tc filters, so that teardown removes ours only
GATEWAY = "fe80::5:6"  # fixed next hop on shim0, a permanent neighbour (shim1's MAC)


class NetOpsError(RuntimeError):
    """A command that configures the host failed (the message has its output)."""


def run(*args: str, check: bool = True) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True)
    if check and proc.returncode:
        raise NetOpsError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def sysctl(path: str, value: str) -> None:
    Path("/proc/sys", path.replace(".", "/")).write_text(value)


def real_devices(exclude: tuple[str, ...]) -> list[str]:
    """Ethernet-like devices of this namespace (type 1), not loopback, not ours."""
    out = []
    for dev in sorted(Path("/sys/class/net").iterdir()):
        if dev.name in exclude or dev.name == "lo":
            continue
        try:
            if (dev / "type").read_text().strip() == "1":
                out.append(dev.name)
        except OSError:
            continue
    return out


def device_mtu(name: str) -> int:
    return int(Path("/sys/class/net", name, "mtu").read_text())


def set_tso(name: str, enabled: bool) -> None:
    """ethtool -K NAME tso on|off, through the SIOCETHTOOL ioctl (no ethtool binary here)."""
    value = array.array("I", [ETHTOOL_STSO, int(enabled)])
    addr, _ = value.buffer_info()
    ifreq = struct.pack("16sP", name.encode(), addr)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)


@dataclass
class SteeringDevice:
    name: str = "shim0"
    peer: str = "shim1"
    mtu: int = 1460  # the data path sets it: real devices' MTU - datapath.STEERING_MTU_MARGIN

    def create(self) -> None:
        run("ip", "link", "add", self.name, "mtu", str(self.mtu), "type", "veth", "peer", "name", self.peer,
            "mtu", str(self.mtu))
        for dev in (self.name, self.peer):
            run("ip", "link", "set", dev, "addrgenmode", "none")
            sysctl(f"net.ipv6.conf.{dev}.accept_ra", "0")
            run("ip", "link", "set", dev, "up")
        sysctl(f"net.ipv6.conf.{self.peer}.forwarding", "1")  # bpf_fib_lookup asks for it
        set_tso(self.name, True)
        mac = Path("/sys/class/net", self.peer, "address").read_text().strip()
        run("ip", "-6", "neigh", "replace", GATEWAY, "lladdr", mac, "dev", self.name, "nud", "permanent")

    def delete(self) -> None:
        run("ip", "link", "del", self.name, check=False)

    def route(self, local_ulid: Address, peer_ulid: Address) -> None:
        old = fib_match(local_ulid, peer_ulid)
        run("ip", "-6", "route", "replace", f"{peer_ulid}/128", "from", f"{local_ulid}/128", "via", GATEWAY,
            "dev", self.name)
        if old is not None:
            invalidate(old)

    def unroute(self, local_ulid: Address, peer_ulid: Address) -> None:
        run("ip", "-6", "route", "del", f"{peer_ulid}/128", "from", f"{local_ulid}/128", "dev", self.name, check=False)


def fib_match(local: Address, peer: Address) -> tuple[str, str | None] | None:
    """(destination prefix, source prefix) of the route the kernel uses now for local -> peer."""
    try:
        found = json.loads(run("ip", "-6", "-j", "route", "get", "fibmatch", str(peer), "from", str(local)) or "[]")
    except (NetOpsError, ValueError):
        return None
    if not found:
        return None
    dst = found[0].get("dst", "default")
    return ("::/0" if dst == "default" else dst), found[0].get("from")


def invalidate(route: tuple[str, str | None]) -> None:
    """Make sockets drop a cached route: add and delete a placeholder in its FIB node.

    A socket keeps its route until the serial number of that route's FIB node changes.  A
    /128 added elsewhere in the tree does not change it when the old route is a
    source-specific one (it sits in another subtree), so TCP would go on using the failed
    path; an add/delete in the same node (same prefixes, worst metric, never chosen) does.
    """
    dst, src = route
    spec = [dst, *(["from", src] if src else []), "metric", "4294967295"]
    run("ip", "-6", "route", "add", "unreachable", *spec, check=False)
    run("ip", "-6", "route", "del", "unreachable", *spec, check=False)


@dataclass
class TcAttachments:
    """Our tc filters (bpf, direct action), and the clsact qdiscs we had to create."""

    ipr: IPRoute = field(default_factory=IPRoute)
    filters: list[tuple[int, str]] = field(default_factory=list)
    qdiscs: list[int] = field(default_factory=list)

    def attach(self, device: str, direction: str, prog_fd: int, name: str) -> None:
        index = self.ipr.link_lookup(ifname=device)[0]
        try:
            self.ipr.tc("add", "clsact", index)
            self.qdiscs.append(index)
        except NetlinkError as exc:
            if exc.code != 17:  # EEXIST: someone's clsact is there, add beside it
                raise
        parent = TC_INGRESS if direction == "ingress" else TC_EGRESS
        args = dict(fd=prog_fd, name=name, parent=parent, classid=1, direct_action=True, prio=FILTER_PRIO,
                    protocol=0x86DD)
        try:
            self.ipr.tc("add-filter", "bpf", index, ":1", **args)
        except NetlinkError as exc:
            if exc.code != 17:
                raise
            # EEXIST: the filter of an agent that was killed (tc keeps its program attached): replace it
            self.ipr.tc("del-filter", "bpf", index, ":1", parent=parent, prio=FILTER_PRIO, protocol=0x86DD)
            self.ipr.tc("add-filter", "bpf", index, ":1", **args)
        self.filters.append((index, parent))

    def detach_all(self) -> None:
        for index, parent in self.filters:
            if index in self.qdiscs:
                continue
            try:
                self.ipr.tc("del-filter", "bpf", index, ":1", parent=parent, prio=FILTER_PRIO, protocol=0x86DD)
            except NetlinkError:
                pass
        for index in self.qdiscs:
            try:
                self.ipr.tc("del", "clsact", index)
            except NetlinkError:
                pass
        self.filters.clear()
        self.qdiscs.clear()
        self.ipr.close()
