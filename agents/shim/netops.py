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
import socket
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


RTN_UNICAST, RTN_UNREACHABLE = 1, 7
RTM_F_FIB_MATCH = 0x2000  # "ip route get fibmatch": the route itself, not the lookup's result
WORST_METRIC = 4294967295
Route = tuple[str, str | None]  # (destination prefix, source prefix or None)
RECYCLE_AFTER = 256  # requests on one rtnetlink socket (see Routes._nl)


@dataclass
class Routes:
    """The namespace's routes, through one rtnetlink socket held for the daemon's lifetime.

    A switch looks up the pair's next hop and the route in use, replaces the /128 and invalidates
    the old route's FIB node: five changes.  As ``ip`` processes they cost ~3.5 ms each on this
    2-core machine under load (fork, exec, a netlink socket each), ~17 ms per switch, on the path
    of a failover that should take 30; in-process they cost ~1 ms each.
    """

    ipr: IPRoute = field(default_factory=IPRoute)
    requests: int = 0  # on this socket

    def _nl(self) -> IPRoute:
        """The socket, opened afresh after ``RECYCLE_AFTER`` requests: pyroute2 (0.9.7) queues the kernel's
        acknowledgement of each request where nothing reads it and keeps its sequence number in a list, so a
        long-lived socket grows (2,000 lookups: +250 KiB; a translated pair is looked up once a second)."""
        self.requests += 1
        if self.requests > RECYCLE_AFTER:
            self.ipr.close()
            self.ipr, self.requests = IPRoute(), 1
        return self.ipr

    def next_hop(self, local: Address, peer: Address) -> NextHop:
        """The kernel's route from a local locator to a peer locator (source-specific routes pick the ISP)."""
        try:
            found = self._nl().route("get", dst=str(peer), src=str(local))
        except NetlinkError as exc:
            raise NetOpsError(f"no route from {local} to {peer}: {exc}") from exc
        oif = found[0].get_attr("RTA_OIF") if found else None
        if oif is None or found[0]["type"] != RTN_UNICAST:
            raise NetOpsError(f"no route from {local} to {peer}")
        gateway = found[0].get_attr("RTA_GATEWAY")
        return NextHop(socket.if_indextoname(oif), oif, Address(gateway) if gateway else None)

    def fib_match(self, local: Address, peer: Address) -> Route | None:
        """(destination prefix, source prefix) of the route the kernel uses now for local -> peer."""
        try:
            found = self._nl().route("get", dst=str(peer), src=str(local), flags=RTM_F_FIB_MATCH)
        except NetlinkError:
            return None
        if not found:
            return None
        r = found[0]
        src = r.get_attr("RTA_SRC")
        return f"{r.get_attr('RTA_DST') or '::'}/{r['dst_len']}", (f"{src}/{r['src_len']}" if src else None)

    def route_translated(self, local_ulid: Address, peer_ulid: Address, hop: NextHop, mtu: int) -> None:
        """Send local ULID -> peer ULID out of the pair's device and gateway, with the lower MTU.

        The MTU (and the MSS advertised from it: ``advmss`` = MTU - 60) is what makes TCP leave
        room for the payload header; the kernel takes it from the route for new and existing
        connections alike (an existing socket's cached route is invalidated here).
        """
        old = self.fib_match(local_ulid, peer_ulid)
        via = {"gateway": str(hop.gateway)} if hop.gateway else {}
        try:
            self._nl().route("replace", dst=str(peer_ulid), dst_len=128, src=str(local_ulid), src_len=128,
                           oif=hop.ifindex, proto=int(ROUTE_PROTO), metrics={"mtu": mtu, "advmss": mtu - 60}, **via)
        except NetlinkError as exc:
            raise NetOpsError(f"route {peer_ulid} from {local_ulid} via {hop}: {exc}") from exc
        if old is not None:
            self.invalidate(old)

    def unroute_translated(self, local_ulid: Address, peer_ulid: Address) -> None:
        try:
            self._nl().route("del", dst=str(peer_ulid), dst_len=128, src=str(local_ulid), src_len=128,
                           proto=int(ROUTE_PROTO))
        except NetlinkError:
            pass  # already gone

    def invalidate(self, route: Route) -> None:
        """Make sockets drop a cached route: add and delete a placeholder in its FIB node.

        A socket keeps its route until the serial number of that route's FIB node changes.  A
        /128 added elsewhere in the tree does not change it when the old route is a
        source-specific one (it sits in another subtree), so TCP would go on using the failed
        path; an add/delete in the same node (same prefixes, worst metric, never chosen) does.
        """
        dst, src = (ipaddress.IPv6Network(p) if p else None for p in route)
        spec = {"dst": str(dst.network_address), "dst_len": dst.prefixlen, "type": RTN_UNREACHABLE,
                "priority": WORST_METRIC}
        if src is not None:
            spec.update(src=str(src.network_address), src_len=src.prefixlen)
        for command in ("add", "del"):
            try:
                self._nl().route(command, **spec)
            except NetlinkError:
                pass

    def close(self) -> None:
        self.ipr.close()


def flush_translated() -> None:
    """Remove the translation routes a killed agent left (without its maps they would send ULIDs
    untranslated out of another ISP)."""
    run("ip", "-6", "route", "flush", "proto", ROUTE_PROTO, check=False)


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
