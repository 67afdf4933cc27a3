"""The scenario file as typed models: which lab, which traffic, which faults when, what must hold.

A scenario is a reproducible experiment: time 0 is when traffic starts, every fault happens ``at``
seconds after that (and is undone at ``until``), and every expectation is a bound on one measured
metric of one flow, optionally restricted to a window relative to a fault.  Field names are the
YAML keys; :func:`testbed.scenario.load.load_scenario` turns a file into a :class:`Scenario` and
reports mistakes as ``file:line: field: message``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

FLOW_KINDS = ("tcpseq", "udpcbr", "probe", "ping")
FAULT_KINDS = ("link-down", "link-up", "isp-down", "upstream-cut", "bgp-reset", "daemon-kill", "router-crash",
               "loss", "rate-limit", "flap", "delay")

# metric name -> flow kinds it is defined for (analysis implements each one)
METRIC_KINDS = MappingProxyType({
    "max_gap_ms": frozenset(FLOW_KINDS),
    "failover_ms": frozenset(FLOW_KINDS),
    "delivered": frozenset(FLOW_KINDS),
    "loss": frozenset({"tcpseq", "udpcbr", "ping"}),
    "reordering": frozenset({"udpcbr"}),
    "new_connections_ok": frozenset({"probe", "tcpseq"}),
    "connect_ms": frozenset({"probe", "tcpseq"}),
    "connections_broken": frozenset({"tcpseq"}),
    "connection_kept": frozenset({"tcpseq"}),
    "rtt_ms": frozenset({"ping"}),
})

TIME_REF = re.compile(r"^(?P<fault>[A-Za-z0-9_.-]+?)(?P<end>\.end)?(?P<offset>[+-]\d+(?:\.\d+)?)?$")
RATE = re.compile(r"^\d+(?:\.\d+)?(?:bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")


class Strict(BaseModel):
    """Unknown keys are errors (a typo must not silently become a default)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------- address and link references

class IspAddress(Strict):
    """``{isp: ispa}``: the node's address from that ISP's prefix (``index`` if it has several);
    ``{isp: pi}`` is the address from the site's provider-independent prefix (mechanism pi-bgp)."""

    isp: str
    index: int = Field(0, ge=0)


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

    name: str = ""
    from_: str = Field(alias="from", description="node that sends / opens connections")
    to: str = Field(description="node that receives / serves")
    src: AddressSelector | None = Field(None, description="source address of `from` (default: its first)")
    dst: AddressSelector | None = Field(None, description="address of `to` to use (default: its first)")
    start: float = Field(0.0, ge=0, description="seconds after time 0 when this flow starts")
    stop: float | None = Field(None, gt=0, description="seconds after time 0 when it stops (default: end)")
    gap_threshold_ms: float | None = Field(None, gt=0, description="silence longer than this is a gap")

    @property
    def interval_s(self) -> float:
        """The nominal time between two deliveries; gaps are measured against it."""
        raise NotImplementedError

    @property
    def gap_threshold_s(self) -> float:
        """Default: three nominal intervals (a single late record is jitter, not an outage)."""
        return self.gap_threshold_ms / 1000 if self.gap_threshold_ms else 3 * self.interval_s


class TcpSeqFlow(FlowBase):
    kind: Literal["tcpseq"]
    interval_ms: float = Field(10.0, gt=0)
    size: int = Field(64, ge=28, le=65000)
    reconnect: bool = False
    user_timeout_ms: int | None = Field(None, gt=0, description="TCP_USER_TIMEOUT: when a stalled connection breaks")
    connect_timeout: float = Field(1.0, gt=0)
    port: int | None = Field(None, ge=1, le=65535)
    mptcp: bool = Field(False, description="Multipath TCP on both ends (hosts need MPTCP endpoints: shim option "
                                           "mptcp or mechanism mptcp)")

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


class UdpCbrFlow(FlowBase):
    kind: Literal["udpcbr"]
    rate_pps: float = Field(100.0, gt=0, le=100000)
    size: int = Field(64, ge=20, le=65000)
    port: int | None = Field(None, ge=1, le=65535)

    @property
    def interval_s(self) -> float:
        return 1.0 / self.rate_pps


class ProbeFlow(FlowBase):
    kind: Literal["probe"]
    every_ms: float = Field(200.0, gt=0)
    connect_timeout: float = Field(1.0, gt=0)
    max_time: float = Field(2.0, gt=0)
    port: int | None = Field(None, ge=1, le=65535)
    path: str = "/"

    @property
    def interval_s(self) -> float:
        return self.every_ms / 1000


class PingFlow(FlowBase):
    kind: Literal["ping"]
    interval_ms: float = Field(100.0, ge=2)
    timeout: float = Field(1.0, gt=0)

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000


Flow = Annotated[Union[TcpSeqFlow, UdpCbrFlow, ProbeFlow, PingFlow], Field(discriminator="kind")]


# ---------------------------------------------------------------- faults

class FaultBase(Strict):
    """A fault at ``at`` seconds, undone at ``until`` (if given and the kind has an undo)."""

    undoable: ClassVar[bool] = True
    needs_netem: ClassVar[bool] = False
    name: str = ""
    at: float = Field(ge=0)
    until: float | None = Field(None, gt=0, description="when the undo happens (link up, daemon restart...)")


Direction = Literal["both", "forward", "reverse"]  # forward = from the link's first node to its second


class LinkDown(FaultBase):
    kind: Literal["link-down"]
    link: LinkRef


class LinkUp(FaultBase):
    undoable: ClassVar[bool] = False
    kind: Literal["link-up"]
    link: LinkRef


class IspDown(FaultBase):
    """Every link of the ISP goes down."""

    kind: Literal["isp-down"]
    isp: str


class UpstreamCut(FaultBase):
    """The ISP loses its transit while the site's access link stays up (thesis 6.3.1.2.1)."""

    kind: Literal["upstream-cut"]
    isp: str


class BgpReset(FaultBase):
    undoable: ClassVar[bool] = False
    kind: Literal["bgp-reset"]
    node: str
    peer: str | None = None
    hard: bool = True


class DaemonKill(FaultBase):
    """Kill one daemon (undo: restart it)."""

    kind: Literal["daemon-kill"]
    node: str
    daemon: str = "bgpd"


class RouterCrash(FaultBase):
    """Kill every process of a router (undo: restart them)."""

    kind: Literal["router-crash"]
    node: str


class Loss(FaultBase):
    kind: Literal["loss"]
    link: LinkRef
    percent: float = Field(gt=0, le=100)
    direction: Direction = "both"


def _rate(value: Any) -> Any:
    if isinstance(value, str) and RATE.match(value.strip().lower()):
        return value.strip().lower()
    raise ValueError(f"expected a tc rate such as '1mbit' or '500kbit', got {value!r}")


class RateLimit(FaultBase):
    kind: Literal["rate-limit"]
    link: LinkRef
    rate: Annotated[str, BeforeValidator(_rate)]
    burst: str | None = Field(None, description="tbf bucket (default 32kbit; 80kb in labs with shim sites, "
                                                 "whose translated 64 KiB segments tbf cannot cut)")
    direction: Direction = "both"


class Flap(FaultBase):
    """The link goes down for ``down`` seconds every ``period`` seconds until ``until`` (or the end)."""

    kind: Literal["flap"]
    link: LinkRef
    period: float = Field(gt=0)
    down: float | None = Field(None, gt=0, description="seconds down per period (default: half)")

    @model_validator(mode="after")
    def _down_within_period(self) -> "Flap":
        if self.down is not None and self.down >= self.period:
            raise ValueError("down must be shorter than period")
        return self


class Delay(FaultBase):
    """Needs netem: the run fails early with a clear message on kernels without it."""

    needs_netem: ClassVar[bool] = True
    kind: Literal["delay"]
    link: LinkRef
    delay_ms: float = Field(gt=0)
    jitter_ms: float = Field(0.0, ge=0)
    direction: Direction = "both"


Fault = Annotated[Union[LinkDown, LinkUp, IspDown, UpstreamCut, BgpReset, DaemonKill, RouterCrash, Loss,
                        RateLimit, Flap, Delay], Field(discriminator="kind")]


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


class Bound(Strict):
    """One or more comparisons that must all hold, over an optional window.

    ``after``/``before`` are seconds, or a fault reference: ``fault1`` (its ``at``), ``fault1.end``
    (its ``until``), optionally plus or minus seconds: ``fault1+2``, ``fault1-0.1``.  For ``failover_ms``
    the fault named in ``after`` is the one measured (default: the first fault).
    """

    OPS: ClassVar[tuple[str, ...]] = ("lt", "le", "gt", "ge", "eq", "ne")
    lt: Number | None = None
    le: Number | None = None
    gt: Number | None = None
    ge: Number | None = None
    eq: Number | None = None
    ne: Number | None = None
    after: TimeRef | None = None
    before: TimeRef | None = None

    @model_validator(mode="after")
    def _has_comparison(self) -> "Bound":
        if not self.comparisons():
            raise ValueError(f"needs at least one of {', '.join(self.OPS)}")
        return self

    def comparisons(self) -> list[tuple[str, float]]:
        return [(op, getattr(self, op)) for op in self.OPS if getattr(self, op) is not None]


class Expectation(Strict):
    """``{flow: f1, max_gap_ms: {lt: 1000}}``: exactly one metric key, whose value is a :class:`Bound`."""

    flow: str
    name: str = ""
    max_gap_ms: Bound | None = None
    failover_ms: Bound | None = None
    delivered: Bound | None = None
    loss: Bound | None = None
    reordering: Bound | None = None
    new_connections_ok: Bound | None = None
    connect_ms: Bound | None = None
    connections_broken: Bound | None = None
    connection_kept: Bound | None = None
    rtt_ms: Bound | None = None

    @model_validator(mode="after")
    def _one_metric(self) -> "Expectation":
        given = [m for m in METRIC_KINDS if getattr(self, m) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one metric (one of {', '.join(METRIC_KINDS)}), got {given or 'none'}")
        return self

    @property
    def metric(self) -> str:
        return next(m for m in METRIC_KINDS if getattr(self, m) is not None)

    @property
    def bound(self) -> Bound:
        return getattr(self, self.metric)

    def describe(self) -> str:
        """``f1 max_gap_ms < 1000 after fault1`` -- how reports and messages name it."""
        symbols = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
        parts = [f"{self.flow} {self.metric} " + " and ".join(f"{symbols[op]} {v:g}" for op, v in
                                                                self.bound.comparisons())]
        if self.bound.after is not None:
            parts.append(f"after {self.bound.after}")
        if self.bound.before is not None:
            parts.append(f"before {self.bound.before}")
        return " ".join(parts)


# ---------------------------------------------------------------- the scenario

class Scenario(Strict):
    """A whole scenario file.  Names of flows and faults default to ``f1, f2...`` and ``fault1...``."""

    name: str = ""
    description: str = ""
    lab: str = Field(description="topology file (*.yaml, relative to this file) or a running lab's name")
    duration: float = Field(gt=0, description="seconds of traffic; faults happen within it")
    traffic: list[Flow] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _default_names(self) -> "Scenario":
        for i, flow in enumerate(self.traffic):
            flow.name = flow.name or f"f{i + 1}"
        for i, fault in enumerate(self.faults):
            fault.name = fault.name or f"fault{i + 1}"
        return self

    def flow(self, name: str) -> TcpSeqFlow | UdpCbrFlow | ProbeFlow | PingFlow:
        return next(f for f in self.traffic if f.name == name)

    def fault(self, name: str) -> FaultBase:
        return next(f for f in self.faults if f.name == name)

    def needs_netem(self) -> list[str]:
        """Names of faults that need the netem qdisc (the run loop checks the kernel before starting)."""
        return [f.name for f in self.faults if f.needs_netem]
