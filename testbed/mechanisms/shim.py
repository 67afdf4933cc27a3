"""``shim``: the thesis's stage 3 (6.4; RFC 5533-5535) - an identification sub-layer in every site host.

The site routes with ``sadr-static`` (every source address must work, or no alternative locator pair could),
every host's addresses form one HBA set over its /64s (so its peers can verify its locators), and the shim
agent (``agents/shim``) runs in every host with a control socket at ``<node dir>/shim.sock``.

The HBA parameters are derived from the lab, site and host names, so the plan stays deterministic and pure:
the agent, given the same prefixes, modifier and pseudo-key, regenerates exactly the addresses configured.
Site options: ``sec`` (0), ``profile`` (``tuned`` or ``rfc`` timers), ``policy`` (``immediate``,
``packets:N``, ``seconds:T``), ``observe`` (true: the agent sniffs data packets to trigger contexts),
``datapath`` (``ebpf``: after a locator switch packets are translated in the kernel with the RFC 5533 payload
header; ``none``: control plane only), ``mptcp_hosts`` (hosts of the site that run kernel MPTCP instead of the
agent: the shim and MPTCP then run side by side in one lab, under the same fault).
"""

from __future__ import annotations

import hashlib
import ipaddress

from agents.shim.hba import MODIFIER_LEN, PSEUDO_KEY_BITS, generate_hba_set

from ..errors import TopologyError
from ..netplan import Process
from ..topology import host_def
from . import Mechanism, mptcp, sadr_static

OPTIONS = {"sec": 0, "profile": "tuned", "policy": "immediate", "observe": True, "datapath": "ebpf", "mptcp_hosts": []}


def hba_inputs(site: str, host: str, sec: int) -> tuple[bytes, bytes]:
    """(modifier start, pseudo-key) for a host: stable names in, stable addresses out."""
    seed = hashlib.sha256(f"mhlab-shim/{site}/{host}/{sec}".encode()).digest()
    modifier = seed[:MODIFIER_LEN]
    pseudo_key = hashlib.sha512(seed).digest()[:PSEUDO_KEY_BITS // 8]
    return modifier, pseudo_key


def _options(site) -> dict:
    unknown = set(site.options) - set(OPTIONS)
    if unknown:
        raise TopologyError([site_problem(site, f"unknown shim option(s) {', '.join(sorted(unknown))}; "
                                                f"known: {', '.join(OPTIONS)}")])
    return {**OPTIONS, **site.options}


def site_problem(site, message: str):
    from ..errors import Problem
    return Problem(f"site {site.name}: {message}")


def _host_iids(site, host: str, subnets: tuple[ipaddress.IPv6Network, ...]) -> tuple[int, ...]:
    sec = int(_options(site)["sec"])
    modifier, pseudo_key = hba_inputs(site.name, host, sec)
    hset = generate_hba_set([s.network_address.packed[:8] for s in subnets], sec, modifier=modifier,
                            pseudo_key=pseudo_key)
    return tuple(int(a) & ((1 << 64) - 1) for a in hset.addresses)


def _mptcp_hosts(site, opts: dict) -> set[str]:
    names = opts["mptcp_hosts"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise TopologyError([site_problem(site, "mptcp_hosts must be a list of host names")])
    hosts = {host_def(ref).name for lan in site.lans for ref in lan.hosts}
    unknown = sorted(set(names) - hosts)
    if unknown:
        raise TopologyError([site_problem(site, f"mptcp_hosts names {', '.join(unknown)}, not a host of this site; "
                                                f"its hosts: {', '.join(sorted(hosts))}")])
    return set(names)


def _apply(net, site) -> None:
    sadr_static.MECHANISM.apply(net, site)
    # tbf must not cut a 64 KiB GSO segment carrying the shim header in software (the kernel cannot
    # segment protocol 140): a bucket that holds a whole segment (agents/shim/README.md, Throughput)
    net.fault_defaults.setdefault("rate-limit", {})["burst"] = "80kb"
    opts = _options(site)
    sec = int(opts["sec"])
    with_mptcp = _mptcp_hosts(site, opts)
    for lan in site.lans:
        seg = net.plan.segment(f"{site.name}-{lan.name}")
        for ref in lan.hosts:
            host = host_def(ref).name
            if host in with_mptcp:
                mptcp.add_endpoints(net.nodes[host], seg.member(host))
                continue
            modifier, pseudo_key = hba_inputs(site.name, host, sec)
            argv = ["python3", "-m", "agents.shim.daemon", "--socket", "{node_dir}/shim.sock", "--sec", str(sec),
                    "--modifier", modifier.hex(), "--pseudo-key", pseudo_key.hex(), "--profile", opts["profile"],
                    "--policy", str(opts["policy"])]
            for subnet in seg.subnets:
                argv += ["--prefix", str(subnet)]
            if opts["observe"]:
                argv.append("--observe")
            argv += ["--datapath", str(opts["datapath"])]
            net.nodes[host].services.append(Process("shim", argv, ready="{node_dir}/shim.sock"))
    net.notes.append(f"site {site.name}: shim agents with HBA addresses over {len(net.plan.site_prefixes[site.name])} "
                     f"prefixes ({opts['profile']} timers, context policy {opts['policy']})"
                     + (f"; kernel MPTCP instead on {', '.join(sorted(with_mptcp))}" if with_mptcp else ""))


MECHANISM = Mechanism("shim", "Shim6/HBA identification sub-layer in every host, over sadr-static routing",
                      "6.4", _apply, host_iids=_host_iids,
                      demo="scenarios/demo-link-down.yaml")
