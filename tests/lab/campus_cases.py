"""What every stage-1 variant must show on the campus lab (topologies/campus.yaml; campus-3isp.yaml too
for the dynamic variants), shared by the modules test_campus_<variant>.py and test_campus3_<variant>.py:
one lab per variant, one module each, so ``make test`` (xdist, one module per worker) runs the variants
side by side.  A module binds ``campus = campus_lab("<mechanism>")`` and imports the cases that apply.

- every address of every campus host reaches srv (ping, curl) through the exit of its own ISP - counted
  per source prefix at each ISP - and no ISP filter drops or rejects a packet meanwhile;
- ISP B's access link fails, then ISP B's exit router rb crashes (power-off: every process killed, every
  link down): h1's ISP-A address never notices (no reply gap over 100 ms), its ISP-B packets are answered
  with an ICMPv6 error within a second of the fault being in place instead of vanishing, none reaches ISP A,
  and ISP B works again after the repair.  h1 sits behind c1, whose nearest exit is ra (ISP A): the case where a packet
  from Pref_B enters the site's routing far from its own exit.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from testbed import egress
from testbed.checks import http_get, ping
from testbed.faults import prepare
from testbed.pytest_plugin import FAILED, deploy_for_test, keep_logs, wait_until
from testbed.scenario.model import Fault

EXIT_B = "rb"  # ISP B's exit router on the campus
FAULT_S = 2.0  # how long each fault lasts
TOLD_WITHIN_MS = 1000  # the host hears of the failure (ICMPv6 error) within this
MAX_GAP_A_MS = 100  # the ISP-A address never notices
RECOVER_S = 30.0
HOST_TABLE = "mhlab_from_host"


def campus_lab(mechanism: str, lab_file: str = "topologies/campus.yaml", tag: str = "c"):
    """A module-scoped fixture: the campus lab (or ``lab_file``) with every site switched to ``mechanism``,
    named s1<tag><mechanism> so the modules' labs never collide."""
    @pytest.fixture(scope="module")
    def campus(request, tmp_path_factory):
        lab = deploy_for_test(Path(request.config.rootpath) / lab_file, request.config,
                              name=f"s1{tag}{mechanism.replace('-', '')[:7]}", mechanism=mechanism)
        lab.mechanism = mechanism
        yield lab
        if request.node.stash.get(FAILED, False):
            keep_logs(lab, tmp_path_factory.getbasetemp() / "failed-labs")
        lab.destroy()
    return campus


def site_hosts(lab) -> list[str]:
    return [h.name for h in lab.net.hosts() if h.owner == "campus"]


def prefixes(lab) -> dict[str, str]:
    """ISP -> the campus prefix it delegated."""
    return {isp: str(p) for isp, p in lab.plan.site_prefixes["campus"].items()}


def filter_counters(lab) -> dict[tuple[str, str], int]:
    return {(isp, c): lab.nft_counter(isp, c) for isp in prefixes(lab) for c in lab.net.nodes[isp].counters}


def wrong_exits(counts: dict[tuple[str, str], int], own: dict[str, str]) -> dict[tuple[str, str], int]:
    """(ISP, prefix) -> packets from a prefix that arrived at an ISP that did not delegate it."""
    return {(isp, p): n for (isp, p), n in counts.items() if p in own.values() and own[isp] != p and n}


def test_every_host_address_reaches_srv_through_its_own_isp(campus):
    lab = campus
    dst, own = lab.plan.address("srv"), prefixes(lab)
    layout = egress.install_egress_counters(lab)
    before = filter_counters(lab)
    for host in site_hosts(lab):
        for isp in own:
            src = lab.plan.address(host, isp)
            start = egress.read_egress_counters(lab, layout)
            assert lab[host].run(["ping", "-6", "-n", "-q", "-c", "20", "-i", "0.01", "-W", "1", "-I", src, dst],
                                 timeout=10).returncode == 0, f"{host} from {src}"
            moved = egress.read_egress_counters(lab, layout)[(isp, own[isp])] - start[(isp, own[isp])]
            assert moved >= 20, (host, isp, moved)
            ok, detail = http_get(lab, host, src, dst)
            assert ok, (host, src, detail)
    assert not wrong_exits(egress.read_egress_counters(lab, layout), own), "a packet left by another ISP's exit"
    assert filter_counters(lab) == before, "an ISP filter dropped or rejected a packet of these checks"


def power_off(lab, router: str) -> list[dict]:
    """The faults of a router that goes dark: every process killed, every link down."""
    ports = []
    for link in lab.net.links:
        if router in (link.a, link.b):
            other = link.b if link.a == router else link.a
            ports.append([router, other] if ":" not in other else [router, link.segment])
    return [{"kind": "router-crash", "node": router, "at": 0}] + [{"kind": "link-down", "link": p, "at": 0}
                                                                   for p in ports]


def count_from(lab, isp: str, src: str) -> None:
    """Count, at ``isp``'s prerouting (before its ingress filter), the packets sourced from ``src``."""
    rules = (f"table ip6 {HOST_TABLE} {{\n  counter seen {{ }}\n  chain pre {{\n"
             f"    type filter hook prerouting priority -400; policy accept;\n"
             f"    ip6 saddr {src} counter name seen\n  }}\n}}\n")
    lab[isp].run(["nft", "delete", "table", "ip6", HOST_TABLE])
    lab[isp].run(["nft", "-f", "-"], input=rules, check=True)


def counted(lab, isp: str) -> int:
    out = lab[isp].run(["nft", "list", "counter", "ip6", HOST_TABLE, "seen"], check=True).stdout
    return int(out.split("packets")[1].split()[0])


def fail_isp_b_and_repair(lab, specs: list[dict], recover_s: float = RECOVER_S) -> dict:
    """Ping srv from both of h1's addresses while ``specs`` are applied for FAULT_S and undone; wait for
    ISP B to work again.  Returns the outcome per address and how many of h1's ISP-B packets reached ISP A.
    (Counted per host address: while rb's BGP session retries towards its dead ISP, the site's routers may
    send each other ICMPv6 errors sourced from Pref_B - control traffic, not what a host sent.)"""
    a, b, srv = lab.plan.address("h1", "ispa"), lab.plan.address("h1", "ispb"), lab.plan.address("srv")
    count_from(lab, "ispa", b)
    actions = [prepare(TypeAdapter(Fault).validate_python(s), lab) for s in specs]
    with egress.source_pings(lab, "h1", [a, b], srv) as traces:
        time.sleep(0.5)
        started = in_place = time.time()
        try:
            for act in actions:
                act.do()
            in_place = time.time()
            time.sleep(FAULT_S)
        finally:
            t1 = time.time()
            for act in reversed(actions):
                act.revert()
        wait_until(lambda: ping(lab, "h1", b, srv, wait=0.5), recover_s, 0.2, what="ISP-B traffic recovering")
    # ISP A's address is watched from the first fault command on; ISP B's from the moment the whole fault is in
    # place: its commands (an `ip link` per link end, a router's processes killed) take seconds under load
    return {"a": traces[a].outcome(started, t1), "b": traces[b].outcome(in_place, t1),
            "apply_ms": round((in_place - started) * 1000), "b_at_isp_a": counted(lab, "ispa")}


def assert_isp_a_untouched_and_host_told(out: dict) -> None:
    assert out["a"]["max_gap_ms"] < MAX_GAP_A_MS, out["a"]
    assert out["b"]["told_ms"] is not None and out["b"]["told_ms"] < TOLD_WITHIN_MS, (out["b"], out["apply_ms"])
    assert out["b_at_isp_a"] == 0, f"{out['b_at_isp_a']} of h1's ISP-B packets went to ISP A"


def test_isp_b_access_link_down_tells_the_host_and_spares_isp_a(campus):
    out = fail_isp_b_and_repair(campus, [{"kind": "link-down", "link": f"ispb-{EXIT_B}", "at": 0}])
    assert_isp_a_untouched_and_host_told(out)


def test_isp_b_exit_router_crash_tells_the_host_and_spares_isp_a(campus):
    out = fail_isp_b_and_repair(campus, power_off(campus, EXIT_B))
    assert_isp_a_untouched_and_host_told(out)
