"""``sadr-bgp``: source-address-dependent routing with BGP communities (thesis 6.2.2.2).

The thesis: the site's routers run iBGP; the connected iBGP domain holds every border router; each border
router colours what it learns from ISP i with community Com_i; every router of the domain keeps one routing
table per site prefix Pref_i, filled with the routes of colour i, and looks packets from Pref_i up in it.

Why BIRD 2 and not FRR: FRR 8.4's bgpd cannot fill a routing table per community (no VRFs in these
kernels, ``table-map`` only sets metric and tag).  BIRD does it with plain configuration, so on the
domain's routers BIRD speaks *all* BGP - eBGP with the ISPs and iBGP - and FRR's bgpd does not run there
(the ISPs keep FRR).  Per router (``templates/bird/bird.conf.j2``):

- the BGP sessions import into BIRD's master table; an exit router adds Com_i = (site AS, i) (a large
  community (AS, 0, i) when the AS does not fit 16 bits) to what its ISP i sends;
- one ``ipv6 table`` per prefix, fed by a ``pipe`` from master exporting ``where Com_i ~ bgp_community``
  (a pipe passes every route, not only the best one, so an exit router's table of the *other* colour
  holds the iBGP route even though its own eBGP route wins in master), and written by a ``kernel``
  protocol to kernel table ``table_base + i``;
- ``ip -6 rule``s per prefix, in this order: ``from Pref_i lookup main suppress_prefixlength 0`` (the
  site's own destinations, never a default), ``from Pref_i lookup table_base+i``, ``from Pref_i
  unreachable``.  The last one closes the fall-through trap: without it a packet whose table has no route
  would continue to the main table and could leave through another ISP's exit, to be dropped there by the
  ingress filter; with it the host gets an ICMPv6 unreachable at once.

The iBGP sessions follow the internal links (no IGP is assumed): every router of the domain peers with its
neighbours in the domain, sets next hop self, reflects routes (each router is a route reflector with its
router id as cluster id - the cluster list stops loops) and sends *all* its paths (ADD-PATH, RFC 7911):
without ADD-PATH a router would pass on only its best default, so the exit router of ISP A would never hear
of ISP B's.  The site's own LAN and link prefixes are carried the same way (into the main table), so the
domain needs no IGP; routers outside it (``ibgp_routers``) need the site's IGP.

The ISPs send a default route (``isp_routes: default``) or their full table (``full``): with a full table
a router also learns when ISP B loses its upstream (its routes are withdrawn); with a default it cannot.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..netplan import Hook, NetPlan, NodeFile, Process
from ..wait import wait_until
from . import _sadr_domain as dom
from .contract import Mechanism, Options, Readiness

BIRD = "/usr/sbin/bird"
BIRDC = "/usr/sbin/birdc"
CONTROL = "{node_dir}/bird.ctl"
CONVERGE_TIMEOUT = 60.0


class SadrBgpOptions(Options):
    isp_routes: Literal["default", "full"] = Field(
        "default", description="what each ISP sends the site over eBGP: a default route, or its full table")
    ibgp_routers: list[str] | None = Field(
        None, description="interior routers that run iBGP besides the exit routers (default: every site "
        "router); with the exits they must form one connected domain over the internal links")
    table_base: int = Field(100, ge=1, le=250, description="kernel table of site prefix i is table_base + i "
                            "(ISPs numbered from 1 in the order of exits:)")


def _validate(topo, site, options: SadrBgpOptions):
    return dom.isp_problems(site, "sadr-bgp") + \
        dom.domain_problems(topo, site, options.ibgp_routers, ("options", "ibgp_routers"), "sadr-bgp")


def communities(asn: int, index: int) -> tuple[str, str]:
    """(BIRD attribute, value) of colour ``index``: a standard community when the AS fits 16 bits."""
    if asn < 65536:
        return "bgp_community", f"({asn}, {index})"
    return "bgp_large_community", f"({asn}, 0, {index})"


def _apply(net: NetPlan, site, options: SadrBgpOptions) -> None:
    topo, plan = net.topology, net.plan
    asn = topo.site_asn(site)
    prefixes = plan.site_prefixes[site.name]
    routers = dom.domain(topo, site, options.ibgp_routers)
    tables = []
    for i, (isp, prefix) in enumerate(prefixes.items(), start=1):
        attr, value = communities(asn, i)
        tables.append({"isp": isp, "prefix": str(prefix), "index": i, "kernel": options.table_base + i,
                       "attr": attr, "community": value})
    adj = dom.adjacencies(net, site, routers)
    for router in routers:
        node = net.nodes[router]
        ebgp = []
        if node.bgp is not None:  # an exit router: the base network's eBGP sessions move to BIRD
            for n in node.bgp.neighbors:
                colour = next(t for t in tables if t["isp"] == n.peer)
                ebgp.append({"peer": n.peer, "address": n.address, "remote_as": n.remote_as,
                             "local": str(plan.segment(f"{n.peer}-{router}").member(router).addresses[0].ip),
                             "export": list(n.export), "colour": colour})
            node.bgp = None  # FRR's bgpd does not run here (netplan drops it)
        bird_vars = {
            "asn": asn, "router_id": plan.router_ids[router], "tables": tables, "ebgp": ebgp,
            "ibgp": [a for a in adj if a.router == router], "site_prefixes": [str(p) for p in prefixes.values()],
            "isp_routes": options.isp_routes, "timers": topo.bgp,
        }
        node.templates.append(NodeFile("bird/bird.conf.j2", "bird.conf", bird_vars))
        node.services.append(_process(["-c", "{node_dir}/bird.conf"]))
        for t in tables:
            p, k = t["prefix"], t["kernel"]
            node.ip_commands += [f"rule add from {p} lookup main suppress_prefixlength 0 pref {1000 + t['index']}",
                                 f"rule add from {p} lookup {k} pref {2000 + t['index']}",
                                 f"rule add from {p} unreachable pref {3000 + t['index']}"]
    if options.isp_routes == "full":
        for ex in site.exits:
            isp = net.nodes[ex.isp]
            n = next(n for n in isp.bgp.neighbors if n.peer == ex.router)
            n.export, n.default_originate = ["any"], False
    outside = [r for r in topo.site_routers(site) if r not in routers]
    per_prefix = ", ".join(f"{t['prefix']} -> {t['kernel']}" for t in tables)
    net.notes.append(f"site {site.name}: sadr-bgp - BIRD runs eBGP and iBGP on {', '.join(routers)}; one kernel "
                     f"table per prefix ({per_prefix}); ISPs send "
                     f"{'their full tables' if options.isp_routes == 'full' else 'a default route'}"
                     + (f"; {', '.join(outside)} outside the iBGP domain rely on the site's IGP" if outside else ""))
    net.hooks.append(_converged_hook(site.name, routers, tables))


def _process(conf: list[str]) -> Process:
    """BIRD in the foreground (the runtime records it), its config parsed (``-p``) before the deploy starts it."""
    return Process("bird", [BIRD, "-f", *conf, "-s", CONTROL, "-P", "{node_dir}/bird.pid"],
                   check=[BIRD, "-p", *conf])


def birdc(lab, router: str, command: str) -> str:
    """A BIRD CLI command on ``router`` of a running lab (through its control socket)."""
    sock = CONTROL.replace("{node_dir}", str(lab[router].dir))
    return lab[router].run([BIRDC, "-s", sock, *command.split()], timeout=10).stdout


def bgp_states(lab, router: str) -> dict[str, str]:
    """BIRD's BGP protocols on ``router`` -> their state ("Established", "Active", ...)."""
    out = {}
    for line in birdc(lab, router, "show protocols").splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[1] == "BGP":
            out[cols[0]] = cols[5]
        elif len(cols) >= 4 and cols[1] == "BGP":
            out[cols[0]] = cols[3]
    return out


def pending(lab, routers: list[str], tables: list[dict]) -> list[str]:
    """What keeps the domain from having converged: sessions not Established, empty per-prefix tables."""
    missing = []
    for r in routers:
        missing += [f"{r}/{p}: {s}" for p, s in bgp_states(lab, r).items() if s != "Established"]
    if missing:
        return missing
    for r in routers:
        for t in tables:
            if not lab[r].run(["ip", "-6", "route", "show", "table", str(t["kernel"])]).stdout.strip():
                missing.append(f"{r}: table {t['kernel']} ({t['prefix']}) empty")
    return missing


def _converged_hook(site: str, routers: list[str], tables: list[dict]):
    def run(lab) -> None:
        wait_until(lambda: pending(lab, routers, tables), CONVERGE_TIMEOUT, 0.2, ok=lambda left: not left,
                   what=f"site {site}: BIRD sessions up and every per-prefix table filled")
    return Hook(f"wait for sadr-bgp at {site}", run)


MECHANISM = Mechanism("sadr-bgp", "source-address-dependent routing with BGP communities: BIRD keeps one table "
                      "per site prefix", "6.2.2.2", _apply, options=SadrBgpOptions, validate=_validate,
                      readiness=(Readiness("bird", CONTROL, "BIRD control socket"),))
