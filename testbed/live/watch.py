"""`mhlab watch LAB`: a live terminal view of a running lab, refreshed while you break it from another shell.

Links up/down, BGP sessions, faults in force, every host's preferred and deprecated addresses and each shim
context's current locator pair - all from one :func:`testbed.live.state.gather` snapshot, drawn with rich.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..lab import Lab
from ..netplan import NetPlan
from .state import LinkState, LiveState, gather



def _updown(up: bool) -> Text:
    return Text("UP", style="bold green") if up else Text("DOWN", style="bold red")


def _session_style(state: str) -> str:
    return "green" if state == "Established" else "red"


def render_state(net: NetPlan, state: LiveState) -> RenderableType:
    """The whole view for one snapshot (pure: testable without a lab or a terminal)."""
    faults = state.faults_by_target()
    links = Table(title="links", title_justify="left", expand=False)
    for col in ("link", "ends", "state", "BGP", "faults"):
        links.add_column(col)
    sessions = {frozenset((r, p)): s for r, peers in state.bgp.items() for p, s in peers.items()}
    lans: dict[str, list[LinkState]] = {}
    for l in state.links:
        if l.b.node.startswith("br:"):
            lans.setdefault(l.segment, []).append(l)
    shown: set[str] = set()
    for l in state.links:
        fault_text = Text(", ".join(faults.get(l.segment, [])), style="red")
        if l.segment in lans:
            if l.segment in shown:
                continue
            shown.add(l.segment)
            ports = lans[l.segment]
            down = [p.a.node for p in ports if not p.up]
            links.add_row(l.segment, "LAN: " + " ".join(p.a.node for p in ports),
                          Text("DOWN: " + " ".join(down), style="bold red") if down else _updown(True), "-", fault_text)
            continue
        s = sessions.get(frozenset((l.a.node, l.b.node)))
        links.add_row(l.segment, f"{l.a.node}:{l.a.ifname} - {l.b.node}:{l.b.ifname}", _updown(l.up),
                      Text(s, style=_session_style(s)) if s else Text("-"), fault_text)
    bgp = Table(title="BGP sessions", title_justify="left")
    for col in ("router", "peer", "state"):
        bgp.add_column(col)
    for router, peers in state.bgp.items():
        for peer, s in peers.items():
            bgp.add_row(router, peer, Text(s, style=_session_style(s)))
    ft = Table(title="faults in force", title_justify="left")
    for col in ("name", "state", "age", "left", "what"):
        ft.add_column(col)
    for f in state.faults:
        left = f.get("remaining")
        ft.add_row(f["name"], f["state"], f"{state.taken - f['started']:.0f}s", "-" if left is None else f"{left:.0f}s",
                   f.get("describe") or f.get("words", ""))
    if not state.faults:
        ft.add_row("-", "", "", "", "none")
    hosts = Table(title="host addresses", title_justify="left")
    for col in ("host", "interface", "address", "state"):
        hosts.add_column(col)
    for a in state.addresses:
        hosts.add_row(a.node, a.ifname, a.address,
                      Text("deprecated", style="yellow") if a.deprecated else Text("preferred", style="green"))
    parts: list[RenderableType] = [Text(f"lab {state.lab}  {time.strftime('%H:%M:%S', time.localtime(state.taken))}  "
                                        f"{sum(l.up for l in state.links)}/{len(state.links)} links up, "
                                        f"{len(state.faults)} faults in force", style="bold"), links,
                                   _side_by_side(bgp, ft), hosts]
    if state.shim:
        shim = Table(title="shim contexts (current locator pair)", title_justify="left")
        for col in ("host", "ULIDs", "state", "locators now", ""):
            shim.add_column(col)
        for c in state.shim:
            shim.add_row(c.host, f"{c.local_ulid} -> {c.peer_ulid}", c.state,
                         f"{c.local_locator} -> {c.peer_locator}",
                         Text("translated", style="yellow") if c.translated else Text("ULIDs", style="green"))
        parts.append(shim)
    for err in state.errors:
        parts.append(Text(f"! {err}", style="red"))
    return Group(*parts)


def _side_by_side(*tables: RenderableType) -> Table:
    grid = Table.grid(padding=(0, 2))
    for _ in tables:
        grid.add_column(vertical="top")
    grid.add_row(*tables)
    return grid


def cmd_watch(args: argparse.Namespace) -> int:
    lab = Lab.attach(args.lab, args.run_root)
    console = Console()
    if args.once:
        console.print(render_state(lab.net, gather(lab)))
        return 0
    with Live(render_state(lab.net, gather(lab)), console=console, screen=args.screen, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(args.interval)
                live.update(render_state(lab.net, gather(lab)), refresh=True)
        except KeyboardInterrupt:
            pass
    return 0
