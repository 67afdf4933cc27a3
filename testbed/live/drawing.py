"""A lab as a Graphviz drawing: ISPs and sites as boxes around their routers and hosts, every link with its
prefix, every host with its addresses - and, for a running lab, what is happening: links down in red,
BGP sessions by state, deprecated addresses struck through, shim contexts' current locator pair, faults.

Pure: :func:`to_dot` turns a NetPlan (and optionally a :class:`LiveState`) into DOT text; :func:`render`
runs Graphviz's ``dot``.  SVG elements carry ids (``link-ispa-ra``, ``node-h1``, ``owner-ispa``) and classes
(``up``/``down``) so the web page can find them.
"""

from __future__ import annotations

import html
import ipaddress
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

from ..errors import DependencyError, MhlabError
from ..netplan import NetPlan
from .state import LiveState

UP, DOWN, WARN, MUTED = "#2e7d32", "#c62828", "#ef6c00", "#757575"
ISP_FILL, SITE_FILL, FAULT_FILL = "#e3f2fd", "#f1f8e9", "#ffebee"
FORMATS = ("svg", "png", "pdf", "dot")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _short(addr: str, subnets: Iterable[Any]) -> str:
    """``2001:db8:a000::2/64`` on link ``2001:db8:a000::/64`` -> ``::2`` (the subnet is on the edge)."""
    iface = ipaddress.ip_interface(addr)
    for net in subnets:
        if iface.ip in net and int(iface.ip) - int(net.network_address) < 2**16:
            return f"::{int(iface.ip) - int(net.network_address):x}"
    return str(iface.ip)


def _owners(net: NetPlan) -> dict[str, str]:
    """Cluster label of every owner: ``ispa  AS65010<br/>2001:db8:a000::/40``, sites with their prefixes."""
    topo = net.topology
    labels: dict[str, str] = {}
    for isp in getattr(topo, "isps", []):
        agg = net.plan.aggregates.get(isp.name, "")
        labels[isp.name] = f"<b>ISP {_e(isp.name)}</b>  AS{isp.asn}<br/>{_e(agg)}"
    for site in getattr(topo, "sites", []):
        lines = [f"<b>site {_e(site.name)}</b>  AS{site.asn}  mechanism {_e(site.mechanism)}"]
        lines += [f"PA from {_e(isp)}: {_e(p)}" for isp, p in net.plan.site_prefixes.get(site.name, {}).items()]
        if site.name in net.plan.pi_prefixes:
            lines.append(f"PI: {_e(net.plan.pi_prefixes[site.name])}")
        labels[site.name] = "<br/>".join(lines)
    for node in net.nodes.values():
        labels.setdefault(node.owner, f"<b>{_e(node.owner)}</b>")
    return labels


def _node_id(name: str) -> str:
    return "node-" + name.replace(":", "-")


def _host_label(net: NetPlan, name: str, state: LiveState | None) -> str:
    spec = net.nodes[name]
    rows = [f'<tr><td><b>{_e(name)}</b></td></tr>']
    live = {a.address: a for a in state.addresses if a.node == name} if state else {}
    for iface in spec.ifaces:
        for addr in iface.addresses:
            a = live.get(addr)
            if a is not None and a.deprecated:
                rows.append(f'<tr><td align="left"><font color="{MUTED}"><s>{_e(addr)}</s> deprecated</font></td></tr>')
            elif state is not None and a is None:
                rows.append(f'<tr><td align="left"><font color="{DOWN}">{_e(addr)} (absent)</font></td></tr>')
            else:
                rows.append(f'<tr><td align="left">{_e(addr)}</td></tr>')
    for c in (state.shim if state else []):
        if c.host == name:
            colour = WARN if c.translated else UP
            rows.append(f'<tr><td align="left"><font color="{colour}" point-size="10">shim {_e(c.state)} → '
                        f'{_e(c.peer_ulid)}<br/>via {_e(c.local_locator)} → {_e(c.peer_locator)}'
                        f'{" (translated)" if c.translated else ""}</font></td></tr>')
    services = ", ".join(s.name for s in spec.services)
    if services:
        rows.append(f'<tr><td align="left"><font color="{MUTED}" point-size="10">{_e(services)}</font></td></tr>')
    return "<<table border='0' cellborder='0' cellspacing='0'>" + "".join(rows) + "</table>>"


def to_dot(net: NetPlan, state: LiveState | None = None, title: str | None = None) -> str:
    faults = state.faults_by_target() if state else {}
    segments = {s.name: s for s in net.plan.segments}
    lines = ["digraph lab {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=12, nodesep=0.6, ranksep=1.0, newrank=true, '
             f'labelloc=t, label=<{_title(net, state, title)}>];',
             '  node [fontname="Helvetica", fontsize=11, style=filled, fillcolor=white];',
             '  edge [fontname="Helvetica", fontsize=10, dir=none, penwidth=2];']
    labels = _owners(net)
    by_owner: dict[str, list[str]] = {}
    for name, spec in net.nodes.items():
        by_owner.setdefault(spec.owner, []).append(name)
    isps = {i.name for i in getattr(net.topology, "isps", [])}
    for owner, members in by_owner.items():
        fill = FAULT_FILL if owner in faults else (ISP_FILL if owner in isps else SITE_FILL)
        label = labels[owner] + ("".join(f'<br/><font color="{DOWN}">fault: {_e(n)}</font>' for n in faults.get(owner, [])))
        lines += [f'  subgraph "cluster_{owner}" {{', f'    id="owner-{owner}"; label=<{label}>; style="rounded,filled"; '
                  f'fillcolor="{fill}"; color="#90a4ae";']
        for name in members:
            lines.append("    " + _node_stmt(net, name, state, faults, segments))
        lines.append("  }")
    lines += _edges(net, state, faults, segments)
    lines += _sessions_without_link(net, state)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _title(net: NetPlan, state: LiveState | None, title: str | None) -> str:
    head = f"<b>lab {_e(title or net.topology.name)}</b>"
    if state is None:
        return head + "  (plan)"
    down = sum(not l.up for l in state.links)
    text = f"{head}  live: {len(state.links) - down}/{len(state.links)} links up, {len(state.faults)} faults in force"
    for f in state.faults:
        text += f'<br/><font color="{DOWN}">⚡ {_e(f["name"])}: {_e(f.get("describe") or f.get("words"))}</font>'
    return text


def _node_stmt(net: NetPlan, name: str, state: LiveState | None, faults: dict[str, list[str]], segments) -> str:
    spec = net.nodes[name]
    nid = _node_id(name)
    if spec.role == "bridge":
        seg = segments.get(name.split(":", 1)[1])
        subnets = "<br/>".join(_e(s) for s in seg.subnets) if seg else ""
        return (f'"{name}" [id="{nid}", shape=box, style="rounded,filled", fillcolor="#eceff1", '
                f'label=<<b>{_e(seg.name if seg else name)}</b><br/><font point-size="10">{subnets}</font>>];')
    if spec.role == "host":
        return f'"{name}" [id="{nid}", shape=box, label={_host_label(net, name, state)}];'
    colour = DOWN if name in faults else "black"
    extra = "".join(f'<br/><font color="{DOWN}">fault: {_e(f)}</font>' for f in faults.get(name, []))
    return (f'"{name}" [id="{nid}", shape=ellipse, color="{colour}", fillcolor="#fffde7", '
            f'label=<<b>{_e(name)}</b>{extra}>];')


def _edges(net: NetPlan, state: LiveState | None, faults: dict[str, list[str]], segments) -> list[str]:
    out = []
    for l in net.links:
        seg = segments.get(l.segment)
        subnets = seg.subnets if seg else ()
        live = state.link(l.segment, l.a) if state else None
        lan = l.b.startswith("br:")
        # LAN bridges below their routers, above their hosts
        tail, head = (l.b, l.a) if lan and net.nodes[l.a].role == "host" else (l.a, l.b)
        attrs = {"id": f"link-{l.segment}" + (f"-{l.a}" if lan else "")}
        label = [] if lan else ["<b>" + _e(l.segment) + "</b>", *(_e(s) for s in subnets)]
        if not lan:
            a_addr = next((a for i in net.nodes[l.a].ifaces if i.name == l.a_if for a in i.addresses), None)
            b_addr = next((a for i in net.nodes[l.b].ifaces if i.name == l.b_if for a in i.addresses), None)
            if a_addr:
                attrs["taillabel"] = f"<{_e(_short(a_addr, subnets))}>"
            if b_addr:
                attrs["headlabel"] = f"<{_e(_short(b_addr, subnets))}>"
        session = _session(net, state, l.a, l.b)
        if session:
            colour = UP if session == "Established" else DOWN
            label.append(f'<font color="{colour}">BGP {_e(session)}</font>')
        if l.segment in faults:
            label += [f'<font color="{DOWN}">⚡ {_e(n)}</font>' for n in faults[l.segment]]
        if live is not None:
            attrs["class"] = "up" if live.up else "down"
            attrs["color"] = UP if live.up else DOWN
            if not live.up:
                attrs["style"] = "dashed"
                label.append(f'<font color="{DOWN}"><b>DOWN</b></font>')
        if label:
            attrs["label"] = "<" + "<br/>".join(label) + ">"
        if net.nodes[l.a].owner == net.nodes[l.b].owner and not lan and net.nodes[l.a].role == net.nodes[l.b].role:
            attrs["constraint"] = "false"  # an internal link between exit routers: same rank
        attrs["tooltip"] = f"{l.a}:{l.a_if} - {l.b}:{l.b_if}"
        out.append(f'  "{tail}" -> "{head}" [' + ", ".join(f"{k}={_quote(v)}" for k, v in attrs.items()) + "];")
    return out


def _quote(value: str) -> str:
    return value if value.startswith("<") else '"' + value.replace('"', '\\"') + '"'


def _session(net: NetPlan, state: LiveState | None, a: str, b: str) -> str | None:
    if state is None:
        return None
    for x, y in ((a, b), (b, a)):
        if y in state.bgp.get(x, {}):
            return state.bgp[x][y]
    return None


def _sessions_without_link(net: NetPlan, state: LiveState | None) -> list[str]:
    """BGP sessions between routers with no direct link (multihop iBGP) as dotted edges."""
    if state is None:
        return []
    direct = {frozenset((l.a, l.b)) for l in net.links}
    out, seen = [], set()
    for router, peers in state.bgp.items():
        for peer, s in peers.items():
            pair = frozenset((router, peer))
            if pair in direct or pair in seen or peer not in net.nodes:
                continue
            seen.add(pair)
            out.append(f'  "{router}" -> "{peer}" [style=dotted, constraint=false, color="{UP if s == "Established" else DOWN}", '
                       f'label=<BGP {_e(s)}>];')
    return out


def render(dot_text: str, fmt: str) -> bytes:
    """DOT text -> svg/png/pdf bytes with Graphviz (``dot`` must be installed: Debian package graphviz)."""
    if fmt == "dot":
        return dot_text.encode()
    if fmt not in FORMATS:
        raise MhlabError(f"unknown drawing format {fmt!r}; formats: {', '.join(FORMATS)}")
    dot = shutil.which("dot")
    if dot is None:
        raise DependencyError("drawing needs Graphviz's `dot` (apt-get install graphviz, or make setup)")
    args = [dot, f"-T{fmt}"] + (["-Gdpi=110"] if fmt == "png" else [])
    res = subprocess.run(args, input=dot_text.encode(), capture_output=True, timeout=60)
    if res.returncode != 0:
        raise MhlabError(f"dot failed: {res.stderr.decode(errors='replace').strip()[:500]}")
    return res.stdout
