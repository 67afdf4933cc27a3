"""The words a person types for a link - ``ispa-ra``, ``ra-ispa``, ``ra,ispa``, ``ra:ispa`` - resolved against
a lab's NetPlan, so nobody has to know interface names.

A link word becomes either the scenario language's link reference (a segment name or a node pair, what
``testbed.faults`` understands) or the one interface to listen on (for captures).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MhlabError
from ..netplan import Link, NetPlan


class LinkWordError(MhlabError):
    """A link word names no link of the lab (the message lists the links there are)."""


@dataclass(frozen=True)
class Port:
    """One interface of one node: where a capture listens."""

    node: str
    ifname: str


def _segments(net: NetPlan) -> dict[str, list[Link]]:
    out: dict[str, list[Link]] = {}
    for link in net.links:
        out.setdefault(link.segment, []).append(link)
    return out


def known_links(net: NetPlan) -> str:
    return ", ".join(sorted(_segments(net)))


def _between(net: NetPlan, x: str, y: str) -> Link | None:
    return next((l for l in net.links if {l.a, l.b} == {x, y}), None)


def _port_link(net: NetPlan, node: str, ifname: str) -> Link | None:
    return next((l for l in net.links if (l.a, l.a_if) == (node, ifname) or (l.b, l.b_if) == (node, ifname)), None)


def find_link(net: NetPlan, word: str) -> tuple[str, Link | None, Port | None]:
    """(segment, the one link meant or None for a whole LAN, the port named by NODE:IFACE or None)."""
    segments = _segments(net)
    if word in segments:
        links = segments[word]
        return word, links[0] if len(links) == 1 else None, None
    if ":" in word and "," not in word:
        node, _, ifname = word.partition(":")
        if node in net.nodes:
            link = _port_link(net, node, ifname)
            if link is None:
                ifaces = sorted({l.a_if for l in net.links if l.a == node} | {l.b_if for l in net.links if l.b == node})
                raise LinkWordError(f"{node} has no interface {ifname!r}; its interfaces: {', '.join(ifaces)}")
            return link.segment, link, Port(node, ifname)
    for sep in (",", "-"):
        parts = word.split(sep)
        for i in range(1, len(parts)):  # node names may contain the separator: try every split
            x, y = sep.join(parts[:i]), sep.join(parts[i:])
            if x in net.nodes and y in net.nodes and (link := _between(net, x, y)):
                return link.segment, link, None
    raise LinkWordError(f"no link {word!r}; links: {known_links(net)} (or NODE:IFACE, or NODE,NODE)")


def fault_link_ref(net: NetPlan, word: str) -> str | tuple[str, str]:
    """The scenario model's link reference for a link word: its segment name, or ``(host, LAN)`` for a LAN port."""
    segment, link, port = find_link(net, word)
    if link is None:
        members = sorted(l.a for l in _segments(net)[segment])
        raise LinkWordError(f"{segment!r} is a LAN: name one port of it, e.g. {members[0]}:IFACE or "
                            f"{members[0]},{segment} (members: {', '.join(members)})")
    if len(_segments(net)[segment]) == 1:
        return segment
    return (link.a, segment)  # a LAN port: the member node and its LAN


def capture_port(net: NetPlan, word: str) -> Port:
    """Where to listen for a link word: the named port, a p2p link's first end, or a LAN's bridge (all of it)."""
    segment, link, port = find_link(net, word)
    if port is not None:
        return port
    if link is None:
        bridge = _segments(net)[segment][0].b
        return Port(bridge, "br0")
    return Port(link.a, link.a_if)
