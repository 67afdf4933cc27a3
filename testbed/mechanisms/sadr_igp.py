"""``sadr-igp``: source-address-dependent routing with a source-specific IGP (thesis 6.2.2.3).

The thesis suggests one IGP instance per site prefix, each filling the table of its prefix.  Babel's
source-specific routing (RFC 9079, dst-src routing) does the same job with one instance: every route
carries a source prefix, so "default from Pref_i" is a route of its own, and the kernel's own source
routing (``ip -6 route add ::/0 from P``, IPv6 subtrees) installs it - no rules, no extra tables, no
instance to tell apart from another.  Hence babeld (Debian 1.12, ``ipv6-subtrees true``) rather than one
OSPFv3 instance per prefix (FRR's ospf6d has no multi-instance in 8.4) or BIRD's babel with an ``ipv6
sadr`` channel (interoperates with babeld; it would need BIRD beside FRR's bgpd for no gain here).

Per router of the domain (``templates/babeld/babeld.conf.j2``):

- babeld on the internal links inside the domain (wired, with link detection and short hellos so a
  neighbour that dies is dropped within ``hello_interval_ms`` x 3.5 even when its link stays up);
- the router's connected site /64s redistributed (the domain needs no other IGP);
- on the exit router of ISP i: the default route that FRR's bgpd learnt from ISP i redistributed *as a
  source-specific route* ``default from Pref_i`` (babeld's ``src-prefix`` action) - when the eBGP
  session or the ISP's default goes, babeld retracts it;
- for every prefix whose default the router does not originate, a last-resort ``unreachable ::/0 from
  Pref_j`` with the highest metric: the exit router of ISP A holds a plain default to ISP A (bgpd's), and
  without this route a packet from Pref_B would fall back on it once ISP B's default is retracted and be
  dropped by ISP A's ingress filter; with it the host gets ICMPv6 "no route" at once.

The ISPs send a default route (the base network's eBGP, FRR's bgpd on the exit routers).
"""

from __future__ import annotations

from pydantic import Field

from ..netplan import Hook, NetPlan, NodeFile, Process
from ..wait import wait_until
from . import _sadr_domain as dom
from .contract import Mechanism, Options, Readiness
from .sadr_static import LAST_RESORT_METRIC

BABELD = "/usr/sbin/babeld"
SOCKET = "{node_dir}/babeld.sock"
BGP_PROTO = 186  # RTPROT_BGP: how zebra installs bgpd's routes
CONVERGE_TIMEOUT = 60.0


class SadrIgpOptions(Options):
    routers: list[str] | None = Field(
        None, description="interior routers that run the IGP besides the exit routers (default: every site "
        "router); with the exits they must form one connected domain over the internal links")
    hello_interval_ms: int = Field(400, ge=20, le=60000, description="babel hello interval on internal "
                                   "links; a silent neighbour is dropped after about 3.5 intervals")


def _validate(topo, site, options: SadrIgpOptions):
    return dom.isp_problems(site, "sadr-igp") + \
        dom.domain_problems(topo, site, options.routers, ("options", "routers"), "sadr-igp")


def _apply(net: NetPlan, site, options: SadrIgpOptions) -> None:
    topo, plan = net.topology, net.plan
    prefixes = {isp: str(p) for isp, p in plan.site_prefixes[site.name].items()}
    routers = dom.domain(topo, site, options.routers)
    adj = dom.adjacencies(net, site, routers)
    for router in routers:
        node = net.nodes[router]
        own = [prefixes[ex.isp] for ex in site.exits if ex.router == router]
        babel_vars = {
            "interfaces": [a.ifname for a in adj if a.router == router],
            "hello_s": options.hello_interval_ms / 1000,
            "site_prefixes": list(prefixes.values()), "originate": own, "bgp_proto": BGP_PROTO,
            "socket": SOCKET,
        }
        node.templates.append(NodeFile("babeld/babeld.conf.j2", "babeld.conf", babel_vars))
        node.services.append(Process("babeld", [BABELD, "-c", "{node_dir}/babeld.conf",
                                                # no pid file: a killed babeld would leave one behind and
                                                # refuse to start again (the runtime records the process)
                                                "-I", "", "-S", "{node_dir}/babeld.state",
                                                "-L", "{node_dir}/babeld.log"]))
        node.ip_commands += [f"route add unreachable ::/0 from {p} metric {LAST_RESORT_METRIC}"
                             for p in prefixes.values() if p not in own]
    net.notes.append(f"site {site.name}: sadr-igp - babeld carries 'default from PREFIX' from each exit router "
                     f"({', '.join(f'{ex.router}: {prefixes[ex.isp]}' for ex in site.exits)}) to "
                     f"{', '.join(routers)}")
    net.hooks.append(Hook(f"wait for sadr-igp at {site.name}",
                          lambda lab: wait_until(lambda: pending(lab, routers, list(prefixes.values())),
                                                 CONVERGE_TIMEOUT, 0.2, ok=lambda left: not left,
                                                 what=f"site {site.name}: a default from every site prefix "
                                                      "on every router")))


def pending(lab, routers: list[str], prefixes: list[str]) -> list[str]:
    """Routers still lacking a usable default for some site prefix (its own ISP's, or one babel learnt)."""
    missing = []
    for r in routers:
        routes = lab[r].run(["ip", "-6", "route", "show", "::/0"]).stdout.splitlines()
        for p in prefixes:
            usable = [line for line in routes if not line.startswith("unreachable") and
                      (f"from {p}" in line or "from" not in line)]
            if not usable:
                missing.append(f"{r}: no default from {p}")
    return missing


MECHANISM = Mechanism("sadr-igp", "source-address-dependent routing with a source-specific IGP: babeld carries "
                      "'default from PREFIX' from each exit", "6.2.2.3", _apply, options=SadrIgpOptions,
                      validate=_validate, readiness=(Readiness("babeld", SOCKET, "babeld local socket"),))
