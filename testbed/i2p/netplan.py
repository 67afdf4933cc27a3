"""An ``I2pLab`` as a NetPlan: one LAN bridge joining every i2pd router, IPv4 from 198.18.0.0/15 with no
route out, i2pd and the balancer's processes as services.

The same engine as the IPv6 labs deploys it; nothing here touches the kernel (``mhlab render`` shows the
i2pd command lines and configs).  The runtime steps (the bootstrap hook, what deploy waits for) are added
by the lab kind (``testbed.kinds.i2p``).
"""

from __future__ import annotations

import ipaddress

from ..addressing import AddressPlan, Member, Segment
from ..netplan import Iface, Link, NetPlan, Node, NodeFile, Process, bridge_name
from .topology import I2pLab

SEGMENT = "i2p"
IFNAME = "eth0"
I2CP_PORT = 7654
SAM_PORT = 7656
SAM_UDP_PORT = SAM_PORT - 1  # i2pd 2.45.1 has no option: its SAM datagram port is the TCP port - 1
NTCP2_PORT = 12345
BALANCER_NODE = "bal"
NODE_SYSCTLS = {  # IPv4 only: i2pd 2.45.1 needs floodfills on IPv4 anyway, and nothing else gets in the way
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
I2PD_TEMPLATES = [NodeFile("i2pd/i2pd.conf.j2", "i2pd.conf"), NodeFile("i2pd/tunnels.conf.j2", "tunnels.conf")]
KEYS_TEMPLATE = NodeFile("i2pd/keys.json.j2", "keys.json")
PY_BALANCER = ["python3", "-m", "agents.balancer"]
# naive: each router's client signs a fresh LeaseSet for every request, as a standard I2CP client does
# (i2pd itself still publishes at most every 20 s)
NAIVE_MIN_INTERVAL = 1.0


def router_addresses(lab: I2pLab) -> dict[str, ipaddress.IPv4Interface]:
    """Each router's address on the LAN: the subnet's hosts in role order (ff1, …, r1, …, c1, …)."""
    net = ipaddress.IPv4Network(lab.subnet)
    hosts = net.hosts()
    return {name: ipaddress.IPv4Interface((int(next(hosts)), net.prefixlen)) for name, _ in lab.routers()}


def i2pd_argv(lab: I2pLab, role: str, address: str) -> list[str]:
    """One router's command line.  ``datadir`` only works here (i2pd ignores it in the file); the empty
    reseed URL lists and the reseed zip live in the rendered i2pd.conf (the command line refuses empty
    values).  NTCP2 only, no time sync, no web/proxy services: nothing may try to leave the lab."""
    d = "{node_dir}"
    argv = ["i2pd", f"--datadir={d}", f"--conf={d}/i2pd.conf", f"--tunconf={d}/tunnels.conf",
            f"--pidfile={d}/i2pd.pid", f"--netid={lab.netid}", "--nettime.enabled=false",
            "--upnp.enabled=false", "--http.enabled=false", "--httpproxy.enabled=false",
            "--socksproxy.enabled=false", "--bob.enabled=false", "--i2pcontrol.enabled=false",
            "--addressbook.enabled=false", "--ipv4", f"--host={address}",
            "--ntcp2.enabled=true", f"--ntcp2.port={NTCP2_PORT}", "--ssu2.enabled=false",
            "--bandwidth=X",  # all high-bandwidth: i2pd picks tunnel hops among those, else only floodfills
            "--log=file", f"--logfile={d}/i2pd.log",
            f"--loglevel={lab.floodfill_loglevel if role == 'floodfill' and lab.floodfill_loglevel else lab.loglevel}"]
    argv.append(f"--i2cp.enabled={'true' if role == 'hosting' else 'false'}")
    if role == "hosting":
        argv += ["--i2cp.address=127.0.0.1", f"--i2cp.port={I2CP_PORT}"]
    argv.append(f"--sam.enabled={'true' if role == 'client' else 'false'}")
    if role == "client":
        argv += ["--sam.address=127.0.0.1", f"--sam.port={SAM_PORT}"]
    if role == "floodfill":
        argv.append("--floodfill")
    if role == "hosting" and not lab.hosting_transit:
        argv.append("--notransit")  # declines every tunnel build request: no other router's hop is here
    return argv


def tunnel_options(lab: I2pLab) -> list[str]:
    """The Destination's I2CP options; outbound.length = 0: otherwise i2pd may
    not publish for ~10 minutes (inbound tunnels ready before outbound ones; docs/i2p-proposal-140.md)."""
    b = lab.balancer
    opts = {"inbound.length": b.inbound_length, "inbound.quantity": b.inbound_quantity,
            "outbound.length": 0, "outbound.quantity": b.outbound_quantity}
    return [a for k, v in opts.items() for a in ("--option", f"{k}={v}")]


def balancer_services(lab: I2pLab) -> tuple[list[Process], dict[str, list[Process]]]:
    """(services of the balancer node, services per hosting router) for the lab's mode."""
    keys = ["--keys", "{node_dir}/keys.json"]
    hosting = [name for name, role in lab.routers() if role == "hosting"]
    if lab.mode == "naive":  # each router: its own single-router "balancer" = the Destination run alone
        return [], {r: [Process("destination", [*PY_BALANCER, "run", *keys, "--router",
                                                f"{r}=127.0.0.1:{I2CP_PORT}", "--publisher", r,
                                                "--min-interval", str(NAIVE_MIN_INTERVAL),
                                                "--control", "unix:{node_dir}/control.sock",
                                                *tunnel_options(lab)],
                                ready="{node_dir}/control.sock")] for r in hosting}
    bal = [Process("backend", [*PY_BALANCER, "backend", *keys, "--listen", "unix:{node_dir}/backend.sock",
                               *([] if lab.balancer.handover else ["--no-handover"]),
                               "--control", "unix:{node_dir}/backend-control.sock"],
                   ready="{node_dir}/backend-control.sock"),
           Process("balancer", [*PY_BALANCER, "balancer", *keys, "--listen", "unix:{node_dir}/balancer.sock",
                                "--control", "unix:{node_dir}/control.sock",
                                "--publish-count", str(lab.balancer.publish_count),
                                "--min-interval", str(lab.balancer.min_interval),
                                "--policy", lab.balancer.policy,
                                "--reannounce-every", f"{lab.balancer.reannounce_s:g}",
                                *(("--gateways", str(lab.balancer.gateways)) if lab.balancer.gateways else ()),
                                *[a for r in hosting[:lab.balancer.publish_count] for a in ("--publisher", r)]],
                   ready="{node_dir}/control.sock")]
    peer = f"{{node_dir}}/../{BALANCER_NODE}"
    fronts = {r: [Process("frontend", [*PY_BALANCER, "frontend", *keys, "--router", f"{r}=127.0.0.1:{I2CP_PORT}",
                                       "--balancer", f"unix:{peer}/balancer.sock",
                                       "--backend", f"unix:{peer}/backend.sock",
                                       "--control", "unix:{node_dir}/frontend.sock",
                                       "--router-info", "{node_dir}/router.info", *tunnel_options(lab)],
                          ready="{node_dir}/frontend.sock")] for r in hosting}
    return bal, fronts


def build_i2p_netplan(lab: I2pLab) -> NetPlan:
    """The plan of the network and its processes; the runtime steps (bootstrap, readiness) are the kind's."""
    addrs = router_addresses(lab)
    subnet = ipaddress.IPv4Network(lab.subnet)
    bridge = bridge_name(SEGMENT)
    members = tuple(Member(name, IFNAME, (addr,)) for name, addr in addrs.items())
    plan = AddressPlan(aggregates={}, infra={}, site_prefixes={}, pi_prefixes={},
                       segments=[Segment(SEGMENT, "lan", "i2p", (subnet,), members)])  # type: ignore[arg-type]
    net = NetPlan(lab, plan, ip_family=None)  # IPv4 addresses in the nodes' ip batch files
    bal_services, fronts = balancer_services(lab)
    if bal_services:  # first: its sockets are what the frontends connect to
        net.nodes[BALANCER_NODE] = Node(BALANCER_NODE, "host", "balancer", sysctls=dict(NODE_SYSCTLS),
                                        services=bal_services, templates=[KEYS_TEMPLATE])
    net.nodes[bridge] = Node(bridge, "bridge", "i2p")
    for name, role in lab.routers():
        node = Node(name, "router", role, sysctls=dict(NODE_SYSCTLS),
                    ifaces=[Iface(IFNAME, SEGMENT, [str(addrs[name])])], templates=list(I2PD_TEMPLATES),
                    services=[Process("i2pd", i2pd_argv(lab, role, str(addrs[name].ip)),
                                      ready="{node_dir}/router.info")])
        if role == "hosting":
            node.templates.append(KEYS_TEMPLATE)
            node.services += fronts[name]
        net.nodes[name] = node
        net.links.append(Link(name, IFNAME, bridge, name, SEGMENT))
    net.notes.append(f"private I2P network netid {lab.netid} on {lab.subnet} (no route out); Destination "
                     f"{destination_b32(lab)} on {lab.hosting} routers, mode {lab.mode}")
    return net


def destination_b32(lab: I2pLab) -> str:
    return lab.destination_keys().destination.b32_address
