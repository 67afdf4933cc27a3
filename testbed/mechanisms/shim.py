"""``shim``: the thesis's stage 3 (6.4; RFC 5533-5535) - an identification sub-layer in every site host.

The site routes with ``sadr-static`` (every source address must work, or no alternative locator pair could),
every host's addresses form one HBA set over its /64s (so its peers can verify its locators), and the shim
agent (``agents/shim``) runs in every host with a control socket at ``<node dir>/shim.sock``.

The HBA parameters are derived from the lab, site and host names, so the plan stays deterministic and pure:
the agent, given the same prefixes, modifier and pseudo-key, regenerates exactly the addresses configured.
Site options (``ShimOptions``): the HBA ``sec``, the timer ``profile``, the context ``policy``, whether the
agent ``observe``s data packets, its ``datapath``, and ``mptcp_hosts``: hosts of the site that run kernel
MPTCP instead of the agent, so the shim-vs-MPTCP comparison runs both side by side in one lab, under the same
fault.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Literal

from pydantic import Field

from agents.shim.hba import MODIFIER_LEN, PSEUDO_KEY_BITS, generate_hba_set

from ..netplan import Process
from ..topology import host_def
from . import mptcp, sadr_static
from .contract import FieldProblem, Mechanism, Options, Readiness

SOCKET = "{node_dir}/shim.sock"


class ShimOptions(Options):
    """Options of a ``mechanism: shim`` site."""

    sec: int = Field(0, ge=0, le=7, description="HBA/CGA Sec value (hash extension, RFC 3972): 0 is instant")
    profile: Literal["tuned", "rfc"] = Field("tuned", description="timer profile: tuned (lab) or rfc (RFC 5533)")
    policy: str = Field("immediate", pattern=r"^(immediate|packets:\d+|seconds:\d+(\.\d+)?)$",
                        description="when a context is established: immediate, packets:N or seconds:T")
    observe: bool = Field(True, description="the agent sniffs data packets to trigger contexts")
    datapath: Literal["ebpf", "none"] = Field(
        "ebpf", description="ebpf: packets are translated in the kernel after a locator switch (RFC 5533 payload "
                            "header); none: control plane only")
    mptcp_hosts: list[str] = Field(default_factory=list,
                                   description="hosts of the site that run kernel MPTCP instead of the agent")


def hba_inputs(site: str, host: str, sec: int) -> tuple[bytes, bytes]:
    """(modifier start, pseudo-key) for a host: stable names in, stable addresses out."""
    seed = hashlib.sha256(f"mhlab-shim/{site}/{host}/{sec}".encode()).digest()
    modifier = seed[:MODIFIER_LEN]
    pseudo_key = hashlib.sha512(seed).digest()[:PSEUDO_KEY_BITS // 8]
    return modifier, pseudo_key


def _host_iids(site, opts: ShimOptions, host: str, subnets: tuple[ipaddress.IPv6Network, ...]) -> tuple[int, ...]:
    modifier, pseudo_key = hba_inputs(site.name, host, opts.sec)
    hset = generate_hba_set([s.network_address.packed[:8] for s in subnets], opts.sec, modifier=modifier,
                            pseudo_key=pseudo_key)
    return tuple(int(a) & ((1 << 64) - 1) for a in hset.addresses)


def _site_hosts(site) -> list[str]:
    return [host_def(ref).name for lan in site.lans for ref in lan.hosts]


def _validate(topology, site, opts: ShimOptions) -> list[FieldProblem]:
    hosts = _site_hosts(site)
    return [(("options", "mptcp_hosts", i), f"mptcp_hosts names {name}, not a host of this site; "
                                            f"its hosts: {', '.join(sorted(hosts))}")
            for i, name in enumerate(opts.mptcp_hosts) if name not in hosts]


def _apply(net, site, opts: ShimOptions) -> None:
    sadr_static.route_by_source(net, site)
    with_mptcp = set(opts.mptcp_hosts)
    for lan in site.lans:
        seg = net.plan.segment(f"{site.name}-{lan.name}")
        for ref in lan.hosts:
            host = host_def(ref).name
            if host in with_mptcp:
                mptcp.add_endpoints(net.nodes[host], seg.member(host))
                continue
            modifier, pseudo_key = hba_inputs(site.name, host, opts.sec)
            argv = ["python3", "-m", "agents.shim.daemon", "--socket", SOCKET, "--sec", str(opts.sec),
                    "--modifier", modifier.hex(), "--pseudo-key", pseudo_key.hex(), "--profile", opts.profile,
                    "--policy", opts.policy]
            for subnet in seg.subnets:
                argv += ["--prefix", str(subnet)]
            if opts.observe:
                argv.append("--observe")
            argv += ["--datapath", opts.datapath]
            net.nodes[host].services.append(Process("shim", argv, restart=True))
    net.notes.append(f"site {site.name}: shim agents with HBA addresses over {len(net.plan.site_prefixes[site.name])} "
                     f"prefixes ({opts.profile} timers, context policy {opts.policy})"
                     + (f"; kernel MPTCP instead on {', '.join(sorted(with_mptcp))}" if with_mptcp else ""))


MECHANISM = Mechanism(
    "shim", "Shim6/HBA identification sub-layer in every host, over sadr-static routing", "6.4", _apply,
    options=ShimOptions, host_iids=_host_iids, validate=_validate,
    # tbf must not cut a 64 KiB GSO segment carrying the shim header in software (the kernel cannot
    # segment protocol 140): a bucket that holds a whole segment (agents/shim/README.md, Throughput)
    fault_defaults={"rate-limit": {"burst": "80kb"}},
    readiness=(Readiness("shim", SOCKET, "shim agent control socket"),),
    demo="scenarios/demo-link-down.yaml")
