"""The drawing, the terminal view and the flow counters, from hand-made snapshots (no lab, no root)."""

import html
import json
import time

from rich.console import Console

from testbed.kinds import load_lab, netplan_for
from testbed.live.drawing import render, to_dot
from testbed.live.flowwatch import FlowWatch
from testbed.live.state import Address, LinkState, LiveState, PortState, ShimContext, parse_ip_addr
from testbed.live.watch import render_state

NET = netplan_for(load_lab("topologies/two-isp-site.yaml"))


def snapshot(down=("ispa-ra",)):
    links = [LinkState(l.segment, PortState(l.a, l.a_if, l.segment not in down), PortState(l.b, l.b_if, True))
             for l in NET.links]
    return LiveState(
        "lx", time.time(), links, bgp={"ra": {"ispa": "Active"}, "ispa": {"ra": "Active", "core": "Established"}},
        addresses=[Address("h1", "lan", "2001:db8:a001:1::10/64", True), Address("h1", "lan", "2001:db8:b001:1::10/64", False)],
        faults=[{"name": "link-down-ispa-ra", "state": "active", "started": time.time() - 3, "remaining": None,
                 "describe": "ispa-ra down", "words": "link-down ispa-ra",
                 "fault": {"kind": "link-down", "link": "ispa-ra"}}],
        shim=[ShimContext("h1", "2001:db8:a001:1::10", "2001:db8:f000::10", "established",
                          "2001:db8:b001:1::10", "2001:db8:f000::10", True)])


def test_the_plan_drawing_has_every_prefix_and_address():
    dot = to_dot(NET)
    for text in ("2001:db8:a000::/40", "PA from ispa: 2001:db8:a001::/48", "2001:db8:a000::/64",
                 "2001:db8:a001:1::10/64", 'id="link-ispa-ra"', 'id="node-h1"', "(plan)"):
        assert text in dot
    assert 'class="down"' not in dot


def test_the_live_drawing_shows_state_and_renders_to_svg():
    dot = to_dot(NET, snapshot(), title="lx")
    assert "BGP Active" in dot and "BGP Established" in dot and "⚡ link-down-ispa-ra" in dot
    assert "<s>2001:db8:a001:1::10/64</s> deprecated" in dot
    assert "via 2001:db8:b001:1::10 → 2001:db8:f000::10 (translated)" in dot
    svg = html.unescape(render(dot, "svg").decode())  # graphviz writes ids as link&#45;ispa&#45;ra
    assert '<g id="link-ispa-ra" class="edge down">' in svg
    assert svg.count('class="edge up"') == len(NET.links) - 1


def test_ip_addr_json_gives_link_state_and_deprecated_addresses():
    text = json.dumps([
        {"ifname": "lan", "flags": ["BROADCAST", "UP", "LOWER_UP"], "addr_info": [
            {"family": "inet6", "local": "2001:db8:a001:1::10", "prefixlen": 64, "scope": "global", "deprecated": True},
            {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]},
        {"ifname": "ispa", "flags": ["BROADCAST"], "addr_info": []}])
    ports, addrs = parse_ip_addr("h1", text)
    assert ports == {"lan": True, "ispa": False}
    assert addrs == [Address("h1", "lan", "2001:db8:a001:1::10/64", True)]


def test_the_terminal_view_shows_what_is_broken():
    console = Console(record=True, width=160, color_system=None)
    console.print(render_state(NET, snapshot()))
    text = console.export_text()
    row = next(line for line in text.splitlines() if "ispa-ra" in line and "ispa:ra" in line)
    assert "DOWN" in row and "Active" in row and "link-down-ispa-ra" in row
    assert "LAN: ra rb h1 h2" in text and "deprecated" in text and "preferred" in text
    assert "2001:db8:b001:1::10 -> 2001:db8:f000::10" in text and "translated" in text
    assert "10/11 links up, 1 faults in force" in text


def test_flow_counters_follow_growing_logs(tmp_path):
    server, client = tmp_path / "f1.server.jsonl", tmp_path / "f1.client.jsonl"
    t0 = 1000.0
    client.write_text(json.dumps({"t": t0, "ev": "connect", "local": "a", "remote": "b"}) + "\n")
    server.write_text("".join(json.dumps({"t": t0 + i / 100, "ev": "rec", "seq": i}) + "\n" for i in range(100)))
    watch = FlowWatch([tmp_path])
    [view] = watch.poll(now=t0 + 1.5)
    assert (view["delivered"], view["connections"], view["src"]) == (100, 1, "a")
    assert view["per_second"][-1] == 100 and abs(view["silent_s"] - 0.51) < 1e-6
    with open(server, "a") as f:  # 3 s of silence, then one record and half of the next line
        f.write(json.dumps({"t": t0 + 4.0, "ev": "rec", "seq": 100}) + "\n" + '{"t": 1004.5, "ev"')
    [view] = watch.poll(now=t0 + 4.2)
    assert view["delivered"] == 101 and abs(view["max_gap_s"] - 3.01) < 1e-6
    with open(server, "a") as f:
        f.write(': "rec", "seq": 101}\n')
    assert watch.poll(now=t0 + 5)[0]["delivered"] == 102
