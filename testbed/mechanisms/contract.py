"""What a multihoming mechanism is: everything it may contribute to a lab, in one frozen value.

A mechanism is chosen per site in the topology file (``mechanism: shim``, ``options: {...}``).  The core
never names one: it asks the site's ``Mechanism`` for what it needs -

- ``options``      the pydantic model of the site's ``options:`` (validated when the file is parsed, so a
                   typo reads ``file:line: sites.N.options.X: …``; documented by ``mhlab schema``);
- ``validate``     cross checks between the options and the rest of the topology;
- ``pi_prefix``    whether the site needs a provider-independent /48 from the address plan;
- ``host_iids``    the interface identifiers of a site host in each of its /64s (e.g. HBA addresses);
- ``apply``        routes, filters, daemons, agents added to the site's nodes of the NetPlan;
- ``readiness``    what the runtime waits for once the mechanism's services start;
- ``usable_sources`` which of a host's source addresses the mechanism makes work (deploy awaits exactly
                   those reaching every server: "lab up" means the data plane works);
- ``fault_defaults`` defaults the fault primitives use in a lab running it (``NetPlan.fault_defaults``);
- ``demo``         the scenario ``make demo`` runs to show it.

This module is a leaf: it imports nothing from the rest of mhlab at run time, so the topology model, the
address plan and the NetPlan can all depend on it without an import circle.  Concrete mechanisms live one
per module in this package, each defining ``MECHANISM = Mechanism(...)``; the registry
(``testbed.mechanisms``) finds them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from ..netplan import NetPlan
    from ..runninglab import Condition
    from ..topology import Site, Topology

FieldPath = tuple[str | int, ...]
"""A location inside one site of the topology file, e.g. ``("options", "mptcp_hosts", 0)``."""

FieldProblem = tuple[FieldPath, str]
"""One problem a mechanism found: where inside the site (a FieldPath), and what is wrong."""


class Options(BaseModel):
    """Base of every mechanism's options: unknown keys are errors (a typo must not become a default)
    and a parsed value never changes.  Subclass it with fields, each with a default and a description:
    the description is what ``mhlab schema`` shows."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    """The options of a mechanism that takes none: only ``options: {}`` is valid."""


@dataclass(frozen=True)
class Readiness:
    """Something the runtime must wait for after the services of the site's nodes start.

    Every process named ``service`` that the mechanism added to a node is ready once ``path`` exists
    (``{node_dir}`` stands for that node's folder in the run directory).  The NetPlan carries it as the
    process's ``ready`` path, so the runtime waits without knowing which mechanism asked.
    """

    service: str
    path: str
    what: str  # for error messages: "shim agent control socket"


ApplyFn = Callable[["NetPlan", "Site", Any], None]
HostIidsFn = Callable[["Site", Any, str, tuple[ipaddress.IPv6Network, ...]], tuple[int, ...]]
ValidateFn = Callable[["Topology", "Site", Any], list[FieldProblem]]
UsableSourcesFn = Callable[["NetPlan", "Site", str], list[str]]
# inspect(lab, site, options) -> sections (``testbed.kinds.contract.Section``) for `mhlab inspect`
InspectFn = Callable[[Any, "Site", Any], list[Any]]
# conditions(net, site, options) -> conditions on the running lab
ConditionsFn = Callable[["NetPlan", "Site", Any], list["Condition"]]


def _no_problems(topology: "Topology", site: "Site", options: Any) -> list[FieldProblem]:
    return []


@dataclass(frozen=True)
class Mechanism:
    """One multihoming mechanism.  Only ``name``, ``summary``, ``thesis`` and ``apply`` are required.

    name            what a site writes in ``mechanism:`` (lowercase, dashes)
    summary         one line for ``mhlab mechanisms``
    thesis          where the thesis describes it ("6.4", "ch. 2.6")
    apply           ``apply(net, site, options)``: add what the site needs to ``net.nodes`` (routes, nft,
                    services, sysctls, ``ip -batch`` lines) and explain choices in ``net.notes``.  Runs
                    after the base network (addresses, eBGP with the ISPs, PA announcements, ingress
                    filters) is in place; ``options`` is an instance of ``self.options``.
    options         the pydantic model (an ``Options`` subclass) of the site's ``options:`` mapping
    host_iids       ``host_iids(site, options, host, subnets)``: the interface identifier of ``host`` in
                    each of its LAN's /64s (one per site prefix, in order); ``None`` = the plan's own
                    (``::10``, ``::11``…).  A host with an explicit ``iid:`` keeps it.
    pi_prefix       the site needs a provider-independent /48: the address plan takes one from its PI
                    pool when the site's ``pi_prefix:`` is unset, and numbers every site segment from it
                    too (it comes first)
    fault_defaults  per fault kind, defaults the fault primitives use in a lab running this mechanism
                    (``{"rate-limit": {"burst": "80kb"}}``); merged into ``NetPlan.fault_defaults``
    readiness       what the runtime waits for after starting the mechanism's services (a file each)
    conditions      ``conditions(net, site, options) -> [testbed.runninglab.Condition]``: what the
                    running lab must show of the mechanism's work before deploy returns; built with the
                    NetPlan (``NetPlan.conditions``) and polled after the kind's own (BGP, the data plane); e.g. the deprecation add-on: no prefix
                    its radvds advertise is deprecated on a host while every ISP is up.  Conditions of
                    the same name from several sites are polled as one (one report line).
    validate        ``validate(topology, site, options) -> [(field path inside the site, message)]``:
                    cross checks the options model cannot do alone (names that must exist elsewhere).
                    Runs when the topology is parsed; every problem is reported with file:line.
    usable_sources  ``usable_sources(net, site, host) -> [source name]``: the keys of
                    ``net.plan.addresses(host)`` (an ISP's name, ``"pi"``) whose addresses the mechanism
                    makes work towards every server; ``None`` = all of them.  ``none`` uses only the ISP
                    of the host's gateway: the others are dropped by design.  Deploy waits until each
                    usable address reaches every server.
    demo            the scenario file (relative to the repository root) ``make demo`` runs for it
    baseline        the mechanism shows the problem the others solve: comparisons list it first
    inspect         ``inspect(lab, site, options) -> [Section]``: what `mhlab inspect` shows of the mechanism
                    in a running lab (its agents' state; a dead agent said so); ``None``: nothing more
    role            ``routing``: what a site's ``mechanism:`` names (exactly one per site: stage-1 routing or
                    the shim, which brings its own); ``addon``: a stage-2 part listed under the site's
                    ``addons:`` (DNS, exit path cache, prefix deprecation, policy distribution), applied
                    after the routing mechanism, in file order; several may combine
    """

    name: str
    summary: str
    thesis: str
    apply: ApplyFn
    options: type[Options] = NoOptions
    host_iids: Optional[HostIidsFn] = None
    pi_prefix: bool = False
    fault_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    readiness: tuple[Readiness, ...] = ()
    conditions: Optional[ConditionsFn] = None
    validate: ValidateFn = _no_problems
    usable_sources: Optional[UsableSourcesFn] = None
    demo: str | None = None
    baseline: bool = False
    role: Literal["routing", "addon"] = "routing"
    inspect: Optional[InspectFn] = None

    def __post_init__(self) -> None:
        if not (isinstance(self.options, type) and issubclass(self.options, Options)):
            raise TypeError(f"mechanism {self.name!r}: options must be an Options subclass, not {self.options!r}")

    def parse_options(self, raw: Mapping[str, Any] | Options) -> Options:
        """The site's ``options:`` as this mechanism's model (pydantic ValidationError when invalid)."""
        if isinstance(raw, self.options):
            return raw
        return self.options.model_validate(dict(raw))
