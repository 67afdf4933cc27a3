"""The scenario file as typed models: which lab, which traffic, which faults when, what must hold.

A scenario is a reproducible experiment: time 0 is when traffic starts, every fault happens ``at``
seconds after that (and is undone at ``until``), and every expectation is a bound on one measured
metric of one flow, optionally restricted to a window relative to a fault.  Field names are the
YAML keys; :func:`testbed.scenario.load.load_scenario` turns a file into a :class:`Scenario` and
reports mistakes as ``file:line: field: message``.

Units, one convention everywhere: positions on the scenario clock (``duration``, ``start``, ``stop``,
``at``, ``until``, window bounds) are seconds; every other duration is a number of milliseconds whose
name ends in ``_ms``; periodic senders say how often with ``interval_ms`` (udpcbr may say ``rate_pps``
instead).  Every field has a description: ``mhlab schema --scenario`` prints them.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ..errors import MhlabError

# every metric an expectation can bound; which flow kinds measure which is each flow kind's business
# (testbed.scenario.flowkinds), how each is computed is analysis.METRICS' (unit tests keep the three in step)
METRICS = ("max_gap_ms", "failover_ms", "delivered", "loss", "reordering", "new_connections_ok", "answered",
           "connect_ms", "connections_broken", "connection_kept", "rtt_ms")

# names older scenario files used, and what they are called now (errors say so)
RENAMED = {"every_ms": "interval_ms", "connect_timeout": "connect_timeout_ms", "max_time": "max_time_ms",
           "timeout": "timeout_ms", "period": "period_ms", "down": "down_ms"}

TIME_REF = re.compile(r"^(?P<fault>[A-Za-z0-9_.-]+?)(?P<end>\.end)?(?P<offset>[+-]\d+(?:\.\d+)?)?$")
RATE = re.compile(r"^\d+(?:\.\d+)?(?:bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")


class Strict(BaseModel):
    """Unknown keys are errors (a typo must not silently become a default)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------- address and link references

class IspAddress(Strict):
    """``{isp: ispa}``: the node's address from that ISP's prefix (``index`` if it has several);
    ``{isp: pi}`` is the address from the site's provider-independent prefix (mechanism pi-bgp)."""

    isp: str = Field(description="the ISP whose prefix the address is from (`pi`: the site's PI prefix)")
    index: int = Field(0, ge=0, description="which of the node's addresses from that prefix (0: the first)")


def _address_selector(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address; use a literal address or {{isp: NAME}}") from None
    if isinstance(value, dict):
        return value
    raise ValueError("expected a literal address or {isp: NAME}")


AddressSelector = Annotated[Union[str, IspAddress], BeforeValidator(_address_selector)]


def _link_ref(value: Any) -> Any:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("expected a link name or a pair of node names [A, B]")


LinkRef = Annotated[Union[str, tuple[str, str]], BeforeValidator(_link_ref)]


# ---------------------------------------------------------------- traffic

class FlowBase(Strict):
    """What every flow has: endpoints, which addresses they use, when it runs, what counts as a gap."""

    name: str = Field("", description="how expectations and reports name the flow (default f1, f2, ...)")
    from_: str = Field(alias="from", description="node that sends / opens connections")
    to: str = Field(description="node that receives / serves")
    src: AddressSelector | None = Field(None, description="source address of `from`: a literal address or "
                                        "{isp: NAME, index: N} (default: its first address)")
    dst: AddressSelector | None = Field(None, description="address of `to` to use: a literal address or "
                                        "{isp: NAME, index: N} (default: its first address)")
    start: float = Field(0.0, ge=0, description="seconds after time 0 when this flow starts")
    stop: float | None = Field(None, gt=0, description="seconds after time 0 when it stops (default: the end)")
    gap_threshold_ms: float | None = Field(None, gt=0, description="silence longer than this many ms is a gap "
                                           "(default: three intervals)")

    @property
    def interval_s(self) -> float:
        """The nominal time between two deliveries; gaps are measured against it."""
        raise NotImplementedError

    @property
    def gap_threshold_s(self) -> float:
        """Default: three nominal intervals (a single late record is jitter, not an outage)."""
        return self.gap_threshold_ms / 1000 if self.gap_threshold_ms else 3 * self.interval_s


class TcpSeqFlow(FlowBase):
    """A long-lived TCP connection carrying sequenced records: gaps, breaks, whether it survives."""

    kind: Literal["tcpseq"] = Field(description="long-lived TCP stream with sequence numbers")
    interval_ms: float = Field(10.0, gt=0, description="ms between two records")
    size: int = Field(64, ge=28, le=65000, description="record size in bytes")
    reconnect: bool = Field(False, description="open a new connection when one breaks (default: the flow "
                                               "ends with its connection)")
    user_timeout_ms: int | None = Field(None, gt=0, description="TCP_USER_TIMEOUT: when a stalled connection breaks")
    connect_timeout_ms: float = Field(1000.0, gt=0, description="ms one connection attempt may take")
    port: int | None = Field(None, ge=1, le=65535, description="TCP port (default: 5000 + the flow's index)")
    mptcp: bool = Field(False, description="Multipath TCP on both ends (hosts need MPTCP endpoints: shim option "
                                           "mptcp or mechanism mptcp)")

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


class UdpCbrFlow(FlowBase):
    """Sequenced datagrams on a fixed schedule: loss, reordering, duplicates.  Pace it with ``interval_ms``
    or ``rate_pps`` (one of them; default 10 ms = 100 per second)."""

    kind: Literal["udpcbr"] = Field(description="UDP at a constant rate with sequence numbers")
    interval_ms: float | None = Field(None, gt=0.01, description="ms between two datagrams (default 10)")
    rate_pps: float | None = Field(None, gt=0, le=100000, description="datagrams per second, instead of "
                                   "interval_ms")
    size: int = Field(64, ge=20, le=65000, description="datagram payload in bytes")
    port: int | None = Field(None, ge=1, le=65535, description="UDP port (default: 5000 + the flow's index)")

    @model_validator(mode="after")
    def _one_pace(self) -> "UdpCbrFlow":
        if self.interval_ms is not None and self.rate_pps is not None:
            raise ValueError("give interval_ms or rate_pps, not both")
        return self

    @property
    def interval_s(self) -> float:
        if self.rate_pps is not None:
            return 1.0 / self.rate_pps
        return (self.interval_ms or 10.0) / 1000


class ProbeFlow(FlowBase):
    """A fresh curl connection every ``interval_ms``: do *new* connections work, how long do they take."""

    kind: Literal["probe"] = Field(description="new HTTP connections (curl) at a steady rate")
    interval_ms: float = Field(200.0, gt=0, description="ms between two probe starts")
    connect_timeout_ms: float = Field(1000.0, gt=0, description="ms one connection attempt may take")
    max_time_ms: float = Field(2000.0, gt=0, description="ms one whole request may take")
    port: int | None = Field(None, ge=1, le=65535, description="HTTP port (default: 5000 + the flow's index)")
    path: str = Field("/", description="URL path requested")

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


def _auto_or_address(value: Any) -> Any:
    return value if value == "auto" else _address_selector(value)


class ConnectFlow(FlowBase):
    """New connections the way an unmodified application opens them (thesis 6.3.1): by name, resolved
    through the lab's DNS for every connection (``to_name``), and from the source address the kernel
    picks (``src: auto``, the default: the socket is never bound), so a deprecated prefix, an address
    label or a DHCPv6-distributed policy shows its effect.  ``client`` says how the application falls
    back from one address to the next."""

    kind: Literal["connect"] = Field(description="new connections by name and/or from the kernel's source "
                                     "choice, as an unmodified application opens them")
    to_name: str | None = Field(None, description="a DNS name of `to` in the lab's zone (dns add-on), resolved "
                                "afresh for every connection, e.g. h1.lab.example (default: connect to `dst`)")
    src: Annotated[Union[Literal["auto"], str, IspAddress], BeforeValidator(_auto_or_address)] = Field(
        "auto", description="`auto` (default): the kernel picks the source (unbound socket, RFC 6724); or a "
                            "literal address or {isp: NAME, index: N} to bind")
    client: Literal["sequential", "curl", "happy", "dnsorder"] = Field(
        "sequential", description="sequential: getaddrinfo order, one address at a time, each with the whole "
        "connect timeout (socket.create_connection); curl: real curl; happy: RFC 8305 Happy Eyeballs (next "
        "address after 250 ms); dnsorder: the DNS server's order, no RFC 6724 sorting (needs to_name)")
    interval_ms: float = Field(250.0, gt=0, description="ms between two connection starts")
    connect_timeout_ms: float = Field(1000.0, gt=0, description="ms per address (sequential, dnsorder); curl's "
                                      "--connect-timeout")
    max_time_ms: float = Field(3000.0, gt=0, description="ms one whole attempt (all addresses, the request) may take")
    port: int | None = Field(None, ge=1, le=65535, description="HTTP port (default: 5000 + the flow's index)")
    path: str = Field("/", description="URL path requested")

    @model_validator(mode="after")
    def _name_or_address(self) -> "ConnectFlow":
        if self.to_name is not None and self.dst is not None:
            raise ValueError("give to_name (resolved by the client) or dst (an address), not both")
        if self.client == "dnsorder" and self.to_name is None:
            raise ValueError("client dnsorder reads the DNS answer itself: it needs to_name")
        return self

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


class PingFlow(FlowBase):
    """ICMP echo through the real ping: replies, silent losses and ICMP errors, round-trip times."""

    kind: Literal["ping"] = Field(description="ICMPv6 echo (iputils ping)")
    interval_ms: float = Field(100.0, ge=2, description="ms between two echo requests")
    timeout_ms: float = Field(1000.0, gt=0, description="ms to wait for a reply")

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


class SamFlow(FlowBase):
    """I2P labs: a client router's SAM bridge sends a request to the lab's multihomed Destination every
    ``interval_ms`` and waits for the echo backend's reply (``answered``: the fraction that came back)."""

    kind: Literal["sam"] = Field(description="I2P request/reply through a client router's SAM bridge")
    to: str = Field("destination", description="the lab's multihomed Destination (the only one an i2p lab has)")
    interval_ms: float = Field(500.0, gt=0, description="ms between two requests")
    timeout_ms: float = Field(6000.0, gt=0, description="ms after which an unanswered request counts as lost")
    renew_after: int = Field(6, ge=0, description="open a new SAM session after this many requests lost in a "
                                                  "row, as an application would (0: never)")
    spare: bool = Field(True, description="keep a second SAM session ready, so renewing does not wait for "
                                          "new tunnels")

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


Flow = Annotated[Union[TcpSeqFlow, UdpCbrFlow, ProbeFlow, ConnectFlow, PingFlow, SamFlow], Field(discriminator="kind")]
FLOW_MODELS = typing.get_args(typing.get_args(Flow)[0])
FLOW_KINDS = tuple(typing.get_args(m.model_fields["kind"].annotation)[0] for m in FLOW_MODELS)


# ---------------------------------------------------------------- faults

class FaultBase(Strict):
    """A fault at ``at`` seconds, undone at ``until`` (if given and the kind has an undo)."""

    undoable: ClassVar[bool] = True
    needs_netem: ClassVar[bool] = False
    name: str = Field("", description="how windows and reports name the fault (default fault1, fault2, ...)")
    at: float = Field(ge=0, description="seconds after time 0 when the fault happens")
    until: float | None = Field(None, gt=0, description="seconds after time 0 when it is undone (link up, "
                                "daemon restarted...); default: at the end of the run")


Direction = Literal["both", "forward", "reverse"]  # forward = from the link's first node to its second
LINK = ("a link: its name (ispa-ra), a node pair [ra, ispa], or a host's LAN port [h1, lan]")
DIRECTION = "both, forward (from the link's first node to its second) or reverse"


class LinkDown(FaultBase):
    """Both ends of a link go down (the kernel sees it: routes go, BGP notices at once)."""

    kind: Literal["link-down"] = Field(description="a link goes down (undo: up again)")
    link: LinkRef = Field(description=LINK)


class LinkUp(FaultBase):
    """Both ends of a link come up (no undo: pair it with an earlier link-down without until)."""

    undoable: ClassVar[bool] = False
    kind: Literal["link-up"] = Field(description="a link comes up")
    link: LinkRef = Field(description=LINK)


class IspDown(FaultBase):
    """Every link of the ISP goes down."""

    kind: Literal["isp-down"] = Field(description="every link of an ISP goes down")
    isp: str = Field(description="the ISP's name")


class UpstreamCut(FaultBase):
    """The ISP loses its transit while the site's access link stays up (thesis 6.3.1.2.1).  By default its
    router answers what it can no longer route with ICMPv6 "no route" (destination unreachable); with
    ``icmp: false`` it drops silently, like a default route into a dead upstream or a router whose ICMP
    is rate-limited to nothing."""

    kind: Literal["upstream-cut"] = Field(description="an ISP loses its upstream links; its access links "
                                          "stay up")
    isp: str = Field(description="the ISP's name")
    icmp: bool = Field(True, description="true: the ISP's router answers unroutable packets with ICMPv6 "
                                         "destination unreachable; false: it drops them silently")


class BgpReset(FaultBase):
    """``clear bgp``: sessions restart (no undo)."""

    undoable: ClassVar[bool] = False
    kind: Literal["bgp-reset"] = Field(description="reset BGP sessions of a router")
    node: str = Field(description="the router")
    peer: str | None = Field(None, description="only the session with this neighbour (default: all)")
    hard: bool = Field(True, description="false: a soft reset (route refresh), the session stays up")


class DaemonKill(FaultBase):
    """Kill one daemon (undo: restart it)."""

    kind: Literal["daemon-kill"] = Field(description="kill one FRR daemon of a router")
    node: str = Field(description="the router")
    daemon: str = Field("bgpd", description="the daemon (bgpd, zebra, bfdd, ...)")


class RouterCrash(FaultBase):
    """Kill every process of a router (undo: restart them)."""

    kind: Literal["router-crash"] = Field(description="kill every daemon of a router (FRR)")
    node: str = Field(description="the router")


class Loss(FaultBase):
    """Random loss with nftables on the receiving end(s); the link stays up."""

    kind: Literal["loss"] = Field(description="drop a percentage of a link's packets")
    link: LinkRef = Field(description=LINK)
    percent: float = Field(gt=0, le=100, description="percent of packets dropped (100: a silent link)")
    direction: Direction = Field("both", description=DIRECTION)


def _rate(value: Any) -> Any:
    if isinstance(value, str) and RATE.match(value.strip().lower()):
        return value.strip().lower()
    raise ValueError(f"expected a tc rate such as '1mbit' or '500kbit', got {value!r}")


class RateLimit(FaultBase):
    """A tbf qdisc on the sending end(s)."""

    kind: Literal["rate-limit"] = Field(description="limit a link's rate (tbf)")
    link: LinkRef = Field(description=LINK)
    rate: Annotated[str, BeforeValidator(_rate)] = Field(description="a tc rate: 1mbit, 500kbit, ...")
    burst: str | None = Field(None, description="tbf bucket (default 32kbit, or what a mechanism of the lab "
                                                 "asks for: 80kb in labs with shim sites, whose translated "
                                                 "64 KiB segments tbf cannot cut)")
    direction: Direction = Field("both", description=DIRECTION)


class Flap(FaultBase):
    """The link goes down for ``down_ms`` every ``period_ms`` until ``until`` (or the end)."""

    kind: Literal["flap"] = Field(description="a link goes down and up periodically")
    link: LinkRef = Field(description=LINK)
    period_ms: float = Field(gt=0, description="ms from one down to the next")
    down_ms: float | None = Field(None, gt=0, description="ms down per period (default: half)")

    @model_validator(mode="after")
    def _down_within_period(self) -> "Flap":
        if self.down_ms is not None and self.down_ms >= self.period_ms:
            raise ValueError("down_ms must be shorter than period_ms")
        return self


class Delay(FaultBase):
    """Needs netem: the run fails early with a clear message on kernels without it."""

    needs_netem: ClassVar[bool] = True
    kind: Literal["delay"] = Field(description="add delay (and jitter) to a link (netem)")
    link: LinkRef = Field(description=LINK)
    delay_ms: float = Field(gt=0, description="ms added to every packet")
    jitter_ms: float = Field(0.0, ge=0, description="ms of random variation around delay_ms")
    direction: Direction = Field("both", description=DIRECTION)


HOSTING = "a hosting router (r1, r2, ...) or `carrier`: the one whose requests the echo backend received " \
          "most in the 2 s before the fault"


class I2pRouterCrash(FaultBase):
    """I2P labs: a hosting router's i2pd dies (undo: the same command line starts again)."""

    kind: Literal["i2p-router-crash"] = Field(description="a hosting router's i2pd dies (I2P labs)")
    router: str = Field("carrier", description=HOSTING)


class I2cpSessionLoss(FaultBase):
    """I2P labs: the process holding the Destination's I2CP session on a hosting router dies (the router
    lives on; the Destination's tunnels there go).  Undo: it starts again."""

    kind: Literal["i2cp-session-loss"] = Field(description="a hosting router loses the Destination's I2CP "
                                               "session (I2P labs)")
    router: str = Field("carrier", description=HOSTING)


class BalancerCrash(FaultBase):
    """I2P labs in balancer mode: the balancer process dies (undo: it starts again)."""

    kind: Literal["balancer-crash"] = Field(description="the Proposal 140 balancer dies (I2P labs, balancer "
                                            "mode)")


Fault = Annotated[Union[LinkDown, LinkUp, IspDown, UpstreamCut, BgpReset, DaemonKill, RouterCrash, Loss,
                        RateLimit, Flap, Delay, I2pRouterCrash, I2cpSessionLoss, BalancerCrash],
                  Field(discriminator="kind")]
FAULT_MODELS = typing.get_args(typing.get_args(Fault)[0])
FAULT_KINDS = tuple(typing.get_args(m.model_fields["kind"].annotation)[0] for m in FAULT_MODELS)


# ---------------------------------------------------------------- expectations

@dataclass(frozen=True)
class FaultTime:
    """A parsed window reference: fault name, its start or its end (``.end``), plus an offset in seconds."""

    fault: str
    end: bool
    offset: float


def parse_time_ref(ref: str, fault_names: Collection[str]) -> FaultTime | None:
    """``cut``, ``cut.end``, ``cut+2``, ``cut.end-0.5``; a fault whose whole name looks like an offset
    (``link-1``) wins over the offset reading.  None when the text does not parse."""
    for suffix, end in ((".end", True), ("", False)):
        if ref.endswith(suffix) and ref[: len(ref) - len(suffix)] in fault_names:
            return FaultTime(ref[: len(ref) - len(suffix)], end, 0.0)
    match = TIME_REF.match(ref)
    if match is None:
        return None
    return FaultTime(match["fault"], bool(match["end"]), float(match["offset"] or 0.0))


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, bool) else value


Number = Annotated[float, BeforeValidator(_number)]
TimeRef = Union[float, Annotated[str, Field(pattern=TIME_REF.pattern)]]


WINDOW = ("seconds after time 0, or a fault: `cut` (its at), `cut.end` (its until), `cut+2`, "
          "`cut.end-0.5`")


class Bound(Strict):
    """One or more comparisons that must all hold, over an optional window.

    ``after``/``before`` are seconds, or a fault reference: ``fault1`` (its ``at``), ``fault1.end``
    (its ``until``), optionally plus or minus seconds: ``fault1+2``, ``fault1-0.1``.  For ``failover_ms``
    the fault named in ``after`` is the one measured (default: the first fault).
    """

    OPS: ClassVar[tuple[str, ...]] = ("lt", "le", "gt", "ge", "eq", "ne")
    lt: Number | None = Field(None, description="the measured value must be less than this")
    le: Number | None = Field(None, description="... less than or equal to this")
    gt: Number | None = Field(None, description="... greater than this")
    ge: Number | None = Field(None, description="... greater than or equal to this")
    eq: Number | None = Field(None, description="... equal to this (booleans count as 0/1)")
    ne: Number | None = Field(None, description="... different from this")
    after: TimeRef | None = Field(None, description="the window starts here (default: the flow's start); "
                                  + WINDOW)
    before: TimeRef | None = Field(None, description="the window ends here (default: the flow's end); " + WINDOW)

    @model_validator(mode="after")
    def _has_comparison(self) -> "Bound":
        if not self.comparisons():
            raise ValueError(f"needs at least one of {', '.join(self.OPS)}")
        return self

    def comparisons(self) -> list[tuple[str, float]]:
        return [(op, getattr(self, op)) for op in self.OPS if getattr(self, op) is not None]


def _metric(description: str) -> Any:
    return Field(None, description=description)


class Expectation(Strict):
    """``{flow: f1, max_gap_ms: {lt: 1000}}``: exactly one metric key, whose value is a :class:`Bound`."""

    flow: str = Field(description="the flow measured (its name)")
    name: str = Field("", description="a label for reports")
    max_gap_ms: Bound | None = _metric("longest silence in the window, ms")
    failover_ms: Bound | None = _metric("ms from the fault (named in `after`, default the first) until delivery "
                                        "resumed; never recovering counts as infinite")
    delivered: Bound | None = _metric("deliveries in the window (records, datagrams, replies, answered requests)")
    loss: Bound | None = _metric("fraction (0..1) of what was sent in the window that never arrived")
    reordering: Bound | None = _metric("fraction of datagrams that arrived after a later one (udpcbr)")
    new_connections_ok: Bound | None = _metric("fraction of new connections started in the window that worked")
    answered: Bound | None = _metric("fraction of requests sent in the window that were answered (probe, sam)")
    connect_ms: Bound | None = _metric("median ms to establish the new connections of the window")
    connections_broken: Bound | None = _metric("connections that ended with an error in the window")
    connection_kept: Bound | None = _metric("1 when the connection carrying data at the window's start carried it "
                                            "to its end, unbroken; else 0")
    rtt_ms: Bound | None = _metric("median round-trip time in the window, ms (ping)")

    @model_validator(mode="after")
    def _one_metric(self) -> "Expectation":
        given = [m for m in METRICS if getattr(self, m) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one metric (one of {', '.join(METRICS)}), got {given or 'none'}")
        return self

    @property
    def metric(self) -> str:
        return next(m for m in METRICS if getattr(self, m) is not None)

    @property
    def bound(self) -> Bound:
        return getattr(self, self.metric)

    def describe(self) -> str:
        """``f1 max_gap_ms < 1000 after fault1`` -- how reports and messages name it."""
        symbols = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
        parts = [f"{self.flow} {self.metric} " + " and ".join(f"{symbols[op]} {v:g}" for op, v in
                                                                self.bound.comparisons())]
        for side in ("after", "before"):
            ref = getattr(self.bound, side)
            if ref is not None:
                parts.append(f"{side} {ref:g}" if isinstance(ref, float) else f"{side} {ref}")
        return " ".join(parts)


# ---------------------------------------------------------------- the scenario

class UnknownName(MhlabError, LookupError):
    """A flow or fault name the scenario does not have; the message lists the ones it has."""


class Scenario(Strict):
    """A whole scenario file.  Names of flows and faults default to ``f1, f2...`` and ``fault1...``."""

    name: str = Field("", description="the scenario's name (reports/<name> by default)")
    description: str = Field("", description="one line saying what happens; shown in reports")
    lab: str = Field(description="the lab: a lab file (*.yaml, relative to this file) deployed for the run and "
                     "torn down after it, or the name of a running lab (`mhlab list`) to attach to and leave up")
    duration: float = Field(gt=0, description="seconds of traffic; faults happen within it")
    traffic: list[Flow] = Field(default_factory=list, description="the flows (each with a `kind:`)")
    faults: list[Fault] = Field(default_factory=list, description="the faults (each with a `kind:` and `at:`)")
    expect: list[Expectation] = Field(default_factory=list, description="bounds on measured metrics; the run "
                                      "passes when all hold")

    @model_validator(mode="after")
    def _default_names(self) -> "Scenario":
        for i, flow in enumerate(self.traffic):
            flow.name = flow.name or f"f{i + 1}"
        for i, fault in enumerate(self.faults):
            fault.name = fault.name or f"fault{i + 1}"
        return self

    def flow(self, name: str) -> Any:
        """The flow named ``name``; :class:`UnknownName` (listing the flows) when there is none."""
        for f in self.traffic:
            if f.name == name:
                return f
        raise UnknownName(f"no flow named {name!r} (flows: {', '.join(f.name for f in self.traffic) or 'none'})")

    def fault(self, name: str) -> FaultBase:
        """The fault named ``name``; :class:`UnknownName` (listing the faults) when there is none."""
        for f in self.faults:
            if f.name == name:
                return f
        raise UnknownName(f"no fault named {name!r} (faults: {', '.join(f.name for f in self.faults) or 'none'})")

    def needs_netem(self) -> list[str]:
        """Names of faults that need the netem qdisc (the run loop checks the kernel before starting)."""
        return [f.name for f in self.faults if f.needs_netem]
