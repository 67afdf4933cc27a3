"""Host plumbing for the data path: tc attachment and the translation routes.

All of it acts on the network namespace the daemon runs in, and only on what it created
(its own tc filters, its own routes to peer ULIDs, marked ``proto 140``).

Why a route per translated context: a translated packet grows by 8 octets, and a TCP
sender must leave room for them.  The /128 route to the peer ULID (from the local ULID)
points at the device and gateway of the locator pair in use and carries an MTU 40 octets
below that device's, so TCP's segment size fits the path with the header (datapath.py says
why 40); tc egress of that device (``shim_out``) then only rewrites.  The same route is what
keeps a ULID reachable when the locator it names is gone (RFC 5533 section 9: the packet
goes where the locators lead, not where the ULID would).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

Address = ipaddress.IPv6Address
TC_INGRESS, TC_EGRESS = "ffff:fff2", "ffff:fff3"
FILTER_PRIO = 0xC6  # our tc filters, so that teardown removes ours only
ROUTE_PROTO = "140"  # our routes (the protocol number of Shim6), so that a restart finds a killed agent's


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


def device_index(name: str) -> int:
    return int(Path("/sys/class/net", name, "ifindex").read_text())


@dataclass(frozen=True)
class NextHop:
    """Where the kernel sends ``local -> peer`` now: device, its index, gateway (None: on link)."""

    device: str
    ifindex: int
    gateway: Address | None


def next_hop(local: Address, peer: Address) -> NextHop:
    """The kernel's route from a local locator to a peer locator (source-specific routes pick the ISP)."""
    try:
        found = json.loads(run("ip", "-6", "-j", "route", "get", str(peer), "from", str(local)) or "[]")
    except ValueError as exc:
        raise NetOpsError(f"ip route get {peer} from {local}: {exc}") from exc
    if not found or "dev" not in found[0] or found[0].get("type", "unicast") != "unicast":
        raise NetOpsError(f"no route from {local} to {peer}")
    gateway = found[0].get("gateway")
    return NextHop(found[0]["dev"], device_index(found[0]["dev"]), Address(gateway) if gateway else None)


def route_translated(local_ulid: Address, peer_ulid: Address, hop: NextHop, mtu: int) -> None:
    """Send local ULID -> peer ULID out of the pair's device and gateway, with the lower MTU.

    The MTU (and the MSS advertised from it: ``advmss`` = MTU - 60) is what makes TCP leave
    room for the payload header; the kernel takes it from the route for new and existing
    connections alike (an existing socket's cached route is invalidated here).
    """
    old = fib_match(local_ulid, peer_ulid)
    via = ["via", str(hop.gateway)] if hop.gateway else []
    run("ip", "-6", "route", "replace", f"{peer_ulid}/128", "from", f"{local_ulid}/128", *via, "dev", hop.device,
        "mtu", str(mtu), "advmss", str(mtu - 60), "proto", ROUTE_PROTO)
    if old is not None:
        invalidate(old)


def unroute_translated(local_ulid: Address, peer_ulid: Address) -> None:
    run("ip", "-6", "route", "del", f"{peer_ulid}/128", "from", f"{local_ulid}/128", "proto", ROUTE_PROTO,
        check=False)


def flush_translated() -> None:
    """Remove the translation routes a killed agent left (without its maps they would send ULIDs
    untranslated out of another ISP)."""
    run("ip", "-6", "route", "flush", "proto", ROUTE_PROTO, check=False)


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
