"""``kind: i2p`` lab files: a private I2P network of real i2pd routers hosting one multihomed Destination.

Routers are named by role: floodfills ``ff1``/``ff2``, hosting routers ``r1``…``rN`` (the Destination's
sessions), clients ``c1``…``cM`` (SAM enabled), plain transit routers ``t1``…``tK`` (tunnel hops only), and ``bal`` (balancer + echo backend; no interface: it
reaches the hosting routers' frontends over unix sockets).  ``mode`` picks how the Destination is hosted:
``balancer`` (Proposal 140: one merged LeaseSet) or ``naive`` (every hosting router runs the Destination on
its own and publishes its own LeaseSet: the hack the proposal replaces).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from agents.balancer.keys import DestinationKeys
from pydantic import Field, PrivateAttr, ValidationError, field_validator

from ..errors import TopologyError
from ..topology import Name, Strict, _pydantic_problem
from ..yamlmarks import MarkedDoc

# RFC 2544's benchmarking range: never routed, and the only private-looking IPv4 range i2pd 2.45.1
# accepts incoming connections from (its "reserved ranges" table misses it; docs/i2p-proposal-140.md).
LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
MAIN_NETID = 2  # the public I2P network: never used by a lab


class BalancerOptions(Strict):
    """How the Destination's sessions are run (I2CP tunnel options and the balancer's rules)."""

    publish_count: int = Field(1, ge=1, le=16, description="routers that publish the merged LeaseSet")
    min_interval: float = Field(20.0, ge=1.0, le=600.0, description="seconds between two LeaseSets")
    inbound_length: int = Field(1, ge=0, le=3, description="hops of each router's inbound tunnels")
    inbound_quantity: int = Field(3, ge=1, le=16, description="inbound tunnels per hosting router")
    outbound_quantity: int = Field(2, ge=1, le=16)
    policy: Literal["fair_share", "primary", "gateway_aware"] = Field(
        "fair_share", description="publish a fair share of every router's leases, only one primary "
                                  "router's (keeps clients' end-to-end sessions on one router), or "
                                  "gateway_aware: only leases through a small sticky set of inbound "
                                  "gateways, so the LeaseSet shows as many gateways as one router's")
    handover: bool = Field(True, description="when a router is lost, the backend sends its silent clients a "
                           "datagram through a published survivor, so their i2pd opens a new session there")
    gateways: int | None = Field(None, ge=1, le=16, description="gateway_aware: distinct inbound gateways "
                                 "to publish (default: what one router with as many tunnels shows)")
    reannounce_s: float = Field(5.0, ge=0.0, le=60.0, description="for 180 s after a router is lost or comes "
                                "back, hand the same leases out again every this many seconds, so each router "
                                "drops a dead path to a client within seconds instead of 30 s (0: never; "
                                "docs/i2p-proposal-140.md 2b has the runs the default of 5 s rests on)")


class I2pLab(Strict):
    """A private I2P network (one LAN, no route out) with one Destination on ``hosting`` routers."""

    kind: Literal["i2p"] = "i2p"
    name: Name = Field(description="the lab's name (run directory, `mhlab inspect NAME`)")
    description: str = ""
    netid: int = Field(77, ge=3, le=255, description="private I2P network id (2 is the public network)")
    subnet: str = Field("198.18.0.0/24", description="the routers' LAN, inside 198.18.0.0/15")
    floodfills: int = Field(1, ge=1, le=2, description="floodfill routers (1-2: a client on a "
                            "floodfill misparses a stored LeaseSet2 and fails its first connection)")
    hosting: int = Field(3, ge=1, le=16, description="routers hosting the multihomed Destination")
    clients: int = Field(1, ge=0, le=16, description="client routers (SAM enabled)")
    transit: int = Field(0, ge=0, le=16, description="plain routers t1…tK (no Destination, no SAM): more "
                         "tunnel hops, e.g. when the hosting routers carry no transit tunnels")
    hosting_transit: bool = Field(True, description="hosting routers accept other routers' tunnels; false: "
                                  "i2pd --notransit there, so no client's (or survivor's) tunnel goes through a "
                                  "hosting router and its crash breaks only its own tunnels")
    mode: Literal["balancer", "naive"] = Field("balancer", description="balancer: one merged LeaseSet "
                                               "(Proposal 140); naive: every router publishes its own")
    balancer: BalancerOptions = Field(default_factory=BalancerOptions)
    seed: str | None = Field(None, description="the Destination's keys are derived from it (default: name)")
    loglevel: Literal["error", "warn", "info", "debug"] = Field(
        "info", description="i2pd log level (debug logs every LeaseSet store at the floodfills)")
    floodfill_loglevel: Literal["error", "warn", "info", "debug"] | None = Field(
        None, description="the floodfills' log level (debug: each LeaseSet store is a log line)")
    _source: MarkedDoc | None = PrivateAttr(None)

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 prefix with its host bits zero ({exc})") from None
        if not net.subnet_of(LAB_RANGE):
            raise ValueError(f"{net} is outside 198.18.0.0/15: i2pd refuses peers from other private ranges")
        if net.prefixlen > 26:
            raise ValueError(f"/{net.prefixlen} is too small for a lab (at most /26)")
        return str(net)

    @property
    def source(self) -> MarkedDoc:
        return self._source or MarkedDoc({}, "<memory>")

    def variant(self, **changes) -> "I2pLab":
        """A copy with some fields replaced (``lab.variant(name="x")``), validated again like the file was,
        keeping the file's line marks."""
        data = {**self.model_dump(), **changes}
        try:
            new = I2pLab.model_validate(data)
        except ValidationError as exc:
            raise TopologyError([_problem(self.source, err) for err in exc.errors()]) from None
        new._source = self._source
        return new

    @property
    def destination_seed(self) -> str:
        return self.seed or self.name

    def destination_keys(self) -> DestinationKeys:
        """The multihomed Destination's keys, derived from the seed (rendered into keys.json)."""
        return DestinationKeys.from_seed(self.destination_seed)

    def routers(self) -> list[tuple[str, str]]:
        """(node, role) of every i2pd router, in address order."""
        return ([(f"ff{i + 1}", "floodfill") for i in range(self.floodfills)]
                + [(f"r{i + 1}", "hosting") for i in range(self.hosting)]
                + [(f"c{i + 1}", "client") for i in range(self.clients)]
                + [(f"t{i + 1}", "transit") for i in range(self.transit)])


def parse_i2p(doc: MarkedDoc) -> I2pLab:
    """Validate a ``kind: i2p`` document; every problem is reported as file:line: field: message."""
    if not isinstance(doc.data, dict):
        raise TopologyError([doc.problem((), "the top level must be a mapping (kind: i2p, name:, …)")])
    try:
        lab = I2pLab.model_validate(doc.data)
    except ValidationError as exc:
        raise TopologyError([_problem(doc, err) for err in exc.errors()]) from None
    if len(lab.routers()) + 2 > ipaddress.IPv4Network(lab.subnet).num_addresses - 2:
        raise TopologyError([doc.problem(("subnet",), f"{lab.subnet} has too few addresses for "
                                         f"{len(lab.routers())} routers")])
    lab._source = doc
    return lab


def _problem(doc: MarkedDoc, err: dict):
    fields = set(I2pLab.model_fields) | set(BalancerOptions.model_fields)
    if err["type"] == "extra_forbidden":
        return doc.problem(tuple(err["loc"]), f"unknown field {err['loc'][-1]!r}")
    loc = tuple(p for p in err["loc"] if isinstance(p, int) or p in fields)
    return doc.problem(loc, _pydantic_problem(doc, err).message)
