"""Scenario + run record + flow traces -> per-flow results and pass/fail verdicts with measured values.

Times in results are seconds since the run's time 0 (when traffic started), so a report reads like the
scenario file.  Fault times are the instants the run loop actually applied them (``RunRecord``), not
the scheduled ones: failover is measured from when the fault really happened.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from . import measures as m
from .model import Expectation, Scenario, parse_time_ref

TIMELINE_BIN_S = 0.1


@dataclass(frozen=True)
class FaultEvent:
    """A fault as applied: absolute unix times of injection and of the undo (None = never undone)."""

    name: str
    kind: str
    at: float
    until: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class RunRecord:
    """What the run loop observed: time 0 and end (unix times) and the faults it applied."""

    t0: float
    t_end: float
    faults: tuple[FaultEvent, ...] = ()


@dataclass(frozen=True)
class Gap:
    start: float
    end: float
    duration: float
    open: bool


@dataclass(frozen=True)
class FailoverResult:
    fault: str
    at: float
    failover_ms: float | None  # None: never recovered within the flow's window
    gap_start: float | None


@dataclass(frozen=True)
class AttemptWindow:
    """New-connection success around one fault: from the previous boundary to it, and from it to the next."""

    fault: str
    before_ok: int
    before_total: int
    after_ok: int
    after_total: int


@dataclass(frozen=True)
class FlowResult:
    """Everything measured for one flow (times relative to time 0)."""

    name: str
    kind: str
    from_node: str
    to_node: str
    src: str | None
    dst: str | None
    window: tuple[float, float]
    gap_threshold_ms: float
    delivered: int
    sent: int | None
    lost: int | None
    loss: float | None
    duplicates: int | None
    reordered: int | None
    gaps: tuple[Gap, ...]
    max_gap_ms: float
    failovers: tuple[FailoverResult, ...]
    connections_opened: int
    connections_broken: int
    attempts_ok: int
    attempts_total: int
    connect_ms_median: float | None
    attempt_windows: tuple[AttemptWindow, ...]
    timeline: tuple[int, ...]
    attempts: tuple[tuple[float, bool], ...]
    errors: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Verdict:
    """One expectation checked: its text, the measured value (None = not measurable/never), pass or fail."""

    expectation: str
    flow: str
    metric: str
    measured: float | None
    passed: bool
    window: tuple[float, float]
    note: str = ""


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    lab: str
    duration: float
    t0: float
    faults: tuple[FaultEvent, ...]
    flows: tuple[FlowResult, ...]
    verdicts: tuple[Verdict, ...]
    bin_s: float = TIMELINE_BIN_S
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


@dataclass(frozen=True)
class FlowContext:
    """A flow's trace with its absolute window and the run's faults: what metric functions need."""

    trace: m.FlowTrace
    window: m.Window
    threshold: float
    faults: tuple[FaultEvent, ...]

    def failover(self, fault: FaultEvent) -> m.Failover:
        later = [f.at for f in self.faults if f.at > fault.at]
        horizon = min(later + [self.window[1]])
        return m.failover(fault.name, fault.at, m.find_gaps(self.times, self.threshold, self.window), horizon)

    @property
    def times(self) -> list[float]:
        return [d.t for d in self.trace.deliveries]


def analyse(scenario: Scenario, run: RunRecord, traces: Mapping[str, m.FlowTrace]) -> ScenarioResult:
    """Measure every flow and check every expectation.  A flow without a trace counts as delivering nothing."""
    contexts = {f.name: _context(scenario, run, f.name, traces.get(f.name)) for f in scenario.traffic}
    flows = tuple(_flow_result(scenario, run, contexts[f.name]) for f in scenario.traffic)
    verdicts = tuple(evaluate(e, contexts[e.flow], run) for e in scenario.expect)
    notes = tuple(f"no logs for flow {f.name}" for f in scenario.traffic if f.name not in traces)
    return ScenarioResult(scenario.name, scenario.lab, scenario.duration, run.t0, run.faults, flows, verdicts,
                          notes=notes)


def _context(scenario: Scenario, run: RunRecord, name: str, trace: m.FlowTrace | None) -> FlowContext:
    flow = scenario.flow(name)
    trace = trace or m.FlowTrace(name, flow.kind)
    start = run.t0 + flow.start
    if trace.started is not None:
        start = max(start, trace.started)  # the agent's own start: process launch latency is not a gap
    end = min(run.t0 + (flow.stop if flow.stop is not None else scenario.duration), run.t_end)
    return FlowContext(trace, (start, max(start, end)), flow.gap_threshold_s, run.faults)


def _flow_result(scenario: Scenario, run: RunRecord, ctx: FlowContext) -> FlowResult:
    flow, trace, t0 = scenario.flow(ctx.trace.name), ctx.trace, run.t0
    gaps = m.find_gaps(ctx.times, ctx.threshold, ctx.window)
    loss = m.loss_stats(trace, ctx.window)
    attempts = m.attempts_in(trace, ctx.window)
    fails = tuple(_failover_result(ctx.failover(f), t0) for f in run.faults if f.at < ctx.window[1])
    return FlowResult(
        name=flow.name, kind=flow.kind, from_node=flow.from_, to_node=flow.to, src=trace.src, dst=trace.dst,
        window=(ctx.window[0] - t0, ctx.window[1] - t0), gap_threshold_ms=ctx.threshold * 1000,
        delivered=len(m.within(ctx.times, ctx.window)),
        sent=loss.sent if loss else None, lost=loss.lost if loss else None, loss=loss.loss if loss else None,
        duplicates=loss.duplicates if loss else None, reordered=loss.reordered if loss else None,
        gaps=tuple(Gap(g.start - t0, g.end - t0, g.duration, g.open) for g in gaps),
        max_gap_ms=max((g.duration for g in gaps), default=0.0) * 1000,
        failovers=fails,
        connections_opened=sum(ctx.window[0] <= c.opened < ctx.window[1] for c in trace.connections),
        connections_broken=len(m.broken_in(trace, ctx.window)),
        attempts_ok=sum(a.ok for a in attempts), attempts_total=len(attempts),
        connect_ms_median=m.median_latency(attempts),
        attempt_windows=_attempt_windows(ctx) if trace.attempts else (),
        timeline=tuple(m.binned_counts(ctx.times, t0, run.t_end, TIMELINE_BIN_S)),
        attempts=tuple((round(a.t - t0, 3), a.ok) for a in trace.attempts),
        errors=tuple(Counter(msg for _, msg in trace.errors).most_common(5)),
    )


def _failover_result(f: m.Failover, t0: float) -> FailoverResult:
    return FailoverResult(f.fault, f.at - t0, None if f.seconds is None else f.seconds * 1000,
                          None if f.gap is None else f.gap.start - t0)


def _attempt_windows(ctx: FlowContext) -> tuple[AttemptWindow, ...]:
    bounds = [ctx.window[0], *sorted(f.at for f in ctx.faults), ctx.window[1]]
    out = []
    for i, fault in enumerate(sorted(ctx.faults, key=lambda f: f.at)):
        before = m.attempts_in(ctx.trace, (bounds[i], bounds[i + 1]))
        after = m.attempts_in(ctx.trace, (bounds[i + 1], bounds[i + 2]))
        out.append(AttemptWindow(fault.name, sum(a.ok for a in before), len(before),
                                 sum(a.ok for a in after), len(after)))
    return tuple(out)


# ---------------------------------------------------------------- expectations

def resolve_time(ref: float | str | None, run: RunRecord, default: float) -> float:
    """A window bound: seconds after time 0, or ``fault``, ``fault.end``, ``fault+2.5`` -> unix time."""
    if ref is None:
        return default
    if isinstance(ref, (int, float)):
        return run.t0 + float(ref)
    parsed = parse_time_ref(ref, [f.name for f in run.faults])
    fault = next((f for f in run.faults if parsed and f.name == parsed.fault), None)
    if parsed is None or fault is None:
        raise ValueError(f"no applied fault matches {ref!r}")
    base = fault.at
    if parsed.end:
        base = fault.until if fault.until is not None else run.t_end
    return base + parsed.offset


def _measured_gap(ctx: FlowContext, window: m.Window, _run: RunRecord, _e: Expectation) -> float | None:
    return max((g.duration for g in m.find_gaps(ctx.times, ctx.threshold, window)), default=0.0) * 1000


def _measured_failover(ctx: FlowContext, _window: m.Window, run: RunRecord, e: Expectation) -> float | None:
    """From the fault named in ``after`` (default: the first applied fault)."""
    ref = e.bound.after
    parsed = parse_time_ref(ref, [f.name for f in run.faults]) if isinstance(ref, str) else None
    faults = [f for f in run.faults if parsed is None or f.name == parsed.fault]
    if not faults:
        raise ValueError("that fault was not applied, so there is no failover to measure")
    fault = min(faults, key=lambda f: f.at)
    seconds = ctx.failover(fault).seconds
    return None if seconds is None else seconds * 1000


def _measured_loss(ctx: FlowContext, window: m.Window, _run: RunRecord, e: Expectation) -> float | None:
    stats = m.loss_stats(ctx.trace, window)
    if stats is None:
        return None
    return stats.loss if e.metric == "loss" else stats.reordering


MetricFn = Callable[[FlowContext, m.Window, RunRecord, Expectation], "float | None"]
METRICS: Mapping[str, MetricFn] = MappingProxyType({
    "max_gap_ms": _measured_gap,
    "failover_ms": _measured_failover,
    "delivered": lambda ctx, w, _r, _e: float(len(m.within(ctx.times, w))),
    "loss": _measured_loss,
    "reordering": _measured_loss,
    "new_connections_ok": lambda ctx, w, _r, _e: m.success_ratio(m.attempts_in(ctx.trace, w)),
    "answered": lambda ctx, w, _r, _e: m.success_ratio(m.attempts_in(ctx.trace, w)),
    "connect_ms": lambda ctx, w, _r, _e: m.median_latency(m.attempts_in(ctx.trace, w)),
    "connections_broken": lambda ctx, w, _r, _e: float(len(m.broken_in(ctx.trace, w))),
    "connection_kept": lambda ctx, w, _r, _e: float(m.connection_kept(ctx.trace, w, ctx.threshold)),
    "rtt_ms": lambda ctx, w, _r, _e: _median([d.rtt_ms for d in ctx.trace.deliveries
                                              if d.rtt_ms is not None and w[0] <= d.t <= w[1]]),
})  # one function per name in model.METRICS (a unit test keeps the two in step)

_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "eq": lambda a, b: math.isclose(a, b), "ne": lambda a, b: not math.isclose(a, b),
}


def evaluate(e: Expectation, ctx: FlowContext, run: RunRecord) -> Verdict:
    """Measure ``e``'s metric over its window and compare.  "Never recovered" counts as +infinity; a metric
    with nothing to measure (no attempts, no sequence data) fails with a note saying so."""
    try:
        window = (resolve_time(e.bound.after, run, ctx.window[0]), resolve_time(e.bound.before, run, ctx.window[1]))
        value = METRICS[e.metric](ctx, window, run, e)
    except ValueError as exc:
        return Verdict(e.describe(), e.flow, e.metric, None, False, _rel(ctx.window, run), str(exc))
    note = ""
    if value is None:
        never = e.metric == "failover_ms"
        note = "never recovered" if never else "nothing to measure in this window"
        compared = math.inf if never else math.nan
    else:
        compared = value
    passed = not math.isnan(compared) and all(_OPS[op](compared, limit) for op, limit in e.bound.comparisons())
    return Verdict(e.describe(), e.flow, e.metric, value, passed, _rel(window, run), note)


def _rel(window: m.Window, run: RunRecord) -> tuple[float, float]:
    return (round(window[0] - run.t0, 3), round(window[1] - run.t0, 3))


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None
