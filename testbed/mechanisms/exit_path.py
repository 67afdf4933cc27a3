"""``exit-path`` add-on: the exit path cache (thesis 6.3.1.2) in every host of the site.

Each host runs ``agents/exitpath`` with its addresses (one per ISP): the first packet to a destination
without a cache entry leaves once per source address, the first reply fixes the source, and new outbound
connections succeed after any ISP failure the host cannot see.  It needs routing that carries every source
out through its own ISP (``sadr-static`` or a variant).  The agent fails open: if it dies, the kernel drops
its programs and the host works as without it; `mhlab inspect` says which hosts' agents died.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from agents.exitpath.engine import Timing
from agents.exitpath.launch import daemon_argv

from ..netplan import Process
from ..topology import host_def
from ..kinds.contract import Section
from ._agents import agent_rows
from .contract import Mechanism, Options, Readiness

SOCKET = "{node_dir}/exitpath.sock"
SERVICE = "exitpath"


class ExitPathOptions(Options):
    """Options of the ``exit-path`` add-on (the thesis names these quantities without values)."""

    lifetime_ms: int = Field(60000, gt=0, description="a cache entry lives this long after the last packet "
                                                      "that extended it")
    lock_ms: int = Field(1000, gt=0, description="a new entry ignores replies to other sources this long")
    probe_timeout_ms: int = Field(1500, gt=0, description="step 3's timer: how long a race waits for a reply "
                                                          "before step 5 picks a source")

    @model_validator(mode="after")
    def _lock_shorter(self) -> "ExitPathOptions":
        if self.lock_ms >= self.lifetime_ms:
            raise ValueError(f"lock_ms ({self.lock_ms}) must be shorter than lifetime_ms ({self.lifetime_ms})")
        return self

    def timing(self) -> Timing:
        return Timing(self.lifetime_ms / 1000, self.lock_ms / 1000, self.probe_timeout_ms / 1000)


def site_hosts(site) -> list[str]:
    return [host_def(ref).name for lan in site.lans for ref in lan.hosts]


def _apply(net, site, opts: ExitPathOptions) -> None:
    for host in site_hosts(site):
        sources = [addrs[0] for addrs in net.plan.addresses(host).values()]
        if len(sources) < 2:
            net.notes.append(f"site {site.name}: {host} has one address; no exit path agent")
            continue
        net.nodes[host].services.append(Process(SERVICE, daemon_argv(SOCKET, sources[:4], timing=opts.timing())))
    net.notes.append(f"site {site.name}: exit path cache agents on {', '.join(site_hosts(site))} (lifetime "
                     f"{opts.lifetime_ms} ms, lock {opts.lock_ms} ms, probe timeout {opts.probe_timeout_ms} ms)")


def _summary(status: dict) -> str:
    return (f"{status.get('entries', 0)} cache entries, {len(status.get('racing', []))} races, sources "
            f"{', '.join(status.get('sources', []))}")


def _inspect(lab, site, opts: ExitPathOptions) -> list[Section]:
    hosts = [h for h in site_hosts(site) if any(s.name == SERVICE for s in lab.net.nodes[h].services)]
    return [Section(f"exit path agents, site {site.name}", agent_rows(lab, hosts, SERVICE, "exitpath.sock", _summary))]


MECHANISM = Mechanism(
    "exit-path", "exit path cache agent in every host: the first packet raced from every source, the first "
    "reply picks it", "6.3.1.2", _apply, options=ExitPathOptions, role="addon", inspect=_inspect,
    readiness=(Readiness(SERVICE, SOCKET, "exit path agent control socket"),))
