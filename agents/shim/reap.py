"""REAP: failure detection and locator-pair exploration (RFC 5534; thesis 6.4.3.3).

Detection: a node that sends and hears nothing back for Send Timeout declares a failure; a
node that only receives sends a Keepalive within the Keepalive Interval so that its peer's
Send Timeout does not fire.  Exploration: Probe messages on candidate pairs, at most
``max_parallel_probes`` at once, ``initial_probes`` rounds at ``initial_probe_timeout`` then
binary exponential backoff up to ``max_probe_timeout``.  A Probe that reports one of our
nonces as received proves its pair works both ways: it becomes preferred and REAP goes back
to Operational.  The locator-pair states of thesis fig. 21 (``pairs``) are driven from here.

Pure functions over a context: time is passed in, packets come back as ``Send`` actions.
"""

from __future__ import annotations

import ipaddress
from typing import Callable

from . import messages as m
from .actions import Action, Event, Send
from .context import Context
from .pairs import LocatorPair, PairEvent, PairState, Transition
from .timers import TimerProfile, backoff

Address = ipaddress.IPv6Address


def pair_events(now: float, ctx: "Context", transitions: list[Transition]) -> list[Action]:
    return [
        Event(now, "pair", {"peer": str(ctx.peer_ulid), "local": str(t.local), "remote": str(t.remote),
                            "cause": t.event.value, "from": t.before, "to": t.after})
        for t in transitions
    ]


def on_data_sent(now: float, ctx: "Context", profile: TimerProfile) -> None:
    """The ULP (or the shim) sent a packet to the peer: arm Send Timeout, stop keepalives."""
    reap = ctx.reap
    reap.last_tx = now
    reap.keepalive_deadline = None
    if reap.send_deadline is None and reap.mode == m.REAP_OPERATIONAL:
        reap.send_deadline = now + profile.send_timeout


def on_received(now: float, ctx: "Context", profile: TimerProfile, local: Address, remote: Address) -> list[Action]:
    """Anything from the peer on (local, remote): the pair works inbound; maybe owe a keepalive."""
    reap = ctx.reap
    reap.last_rx = now
    reap.send_deadline = None
    if reap.keepalive_deadline is None:
        interval = (reap.peer_keepalive_timeout or profile.keepalive_timeout) / 3
        reap.keepalive_deadline = now + interval
    pair = ctx.pairs.pairs.get((local, remote)) if ctx.pairs else None
    if pair is None or reap.mode != m.REAP_OPERATIONAL:
        return []
    return pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.RX))


def start_exploring(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int], cause: str) -> list[Action]:
    reap = ctx.reap
    out: list[Action] = [Event(now, "failure-detected", {"peer": str(ctx.peer_ulid), "cause": cause})]
    preferred = ctx.pairs.preferred if ctx.pairs else None
    if preferred is not None:
        event = PairEvent.SILENT_SENDING if preferred.state is not PairState.TEST else PairEvent.TEST_START
        out += pair_events(now, ctx, ctx.pairs.fire(now, preferred, event))
    reap.mode, reap.round, reap.send_deadline = m.REAP_EXPLORING, 0, None
    reap.tried.clear()
    return out + _explore_round(now, ctx, profile, nonce)


def _next_candidates(ctx: "Context", limit: int) -> list[LocatorPair]:
    reap = ctx.reap
    usable = ctx.pairs.candidates()
    if not usable:  # all known unreachable: RFC 5534 keeps exploring them, with backoff
        usable = [p for p in ctx.pairs.pairs.values() if p.state is PairState.UNREACHABLE and not p.pins]
    usable = [p for p in usable if ctx.peer is None or ctx.peer.verify(p.remote)]
    fresh = [p for p in usable if p.key not in reap.tried]
    if not fresh:
        reap.tried.clear()
        fresh = usable
    chosen = fresh[:limit]
    reap.tried.update(p.key for p in chosen)
    return chosen


def _probe(ctx: "Context", pair_src: Address, pair_dst: Address, probe_nonce: int) -> Send:
    reap = ctx.reap
    report = m.ProbeReport(source=pair_src, destination=pair_dst, nonce=probe_nonce, data=0)
    reap.sent_reports.appendleft(report)
    message = m.Probe(
        receiver_context_tag=ctx.peer_tag or 0,
        state=reap.mode,
        sent=tuple(reap.sent_reports),
        received=tuple(reap.received_reports),
    )
    return Send(pair_src, pair_dst, message)


def _explore_round(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int]) -> list[Action]:
    reap = ctx.reap
    out: list[Action] = []
    for pair in _next_candidates(ctx, profile.max_parallel_probes):
        value = nonce()
        reap.in_flight[value] = pair.key
        if pair.state is not PairState.TEST:
            out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.TEST_START))
        out.append(_probe(ctx, pair.local, pair.remote, value))
    slow_rounds = max(0, reap.round - profile.initial_probes + 1)
    reap.round_deadline = now + backoff(profile.initial_probe_timeout, slow_rounds, profile.max_probe_timeout)
    reap.round += 1
    return out


MAX_REMEMBERED_NONCES = 64


def _round_expired(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int]) -> list[Action]:
    out: list[Action] = []
    for key in set(ctx.reap.in_flight.values()):
        pair = ctx.pairs.pairs.get(key)
        if pair is not None and pair.state is PairState.TEST:
            out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.TEST_FAIL))
    # keep the nonces of recent rounds: a reply that arrives after its round expired still proves the pair
    # (on a loaded host the peer's answer can take longer than the tuned 0.2 s round)
    for stale in list(ctx.reap.in_flight)[:-MAX_REMEMBERED_NONCES]:
        del ctx.reap.in_flight[stale]
    return out + _explore_round(now, ctx, profile, nonce)


def on_probe(now: float, ctx: "Context", profile: TimerProfile, src: Address, dst: Address, probe: object,
             nonce: Callable[[], int]) -> list[Action]:
    """A Probe from the peer arrived on our pair (dst, src)."""
    reap = ctx.reap
    reap.last_rx = now
    out: list[Action] = []
    if probe.sent:
        reap.received_reports.appendleft(m.ProbeReport(source=src, destination=dst, nonce=probe.sent[0].nonce, data=0))
    confirmed = next((reap.in_flight[r.nonce] for r in probe.received if r.nonce in reap.in_flight), None)
    if confirmed is not None and confirmed in ctx.pairs.pairs:
        pair = ctx.pairs.pairs[confirmed]
        ctx.confirmed.add(pair.key)
        out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.TEST_OK))
        if pair.state is not PairState.REACHABLE:  # probed while unreachable: the reply is rx
            out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.RX))
        out += pair_events(now, ctx, ctx.pairs.prefer(now, pair))
        was_exploring = reap.mode != m.REAP_OPERATIONAL
        reap.mode, reap.round_deadline, reap.send_deadline = m.REAP_OPERATIONAL, None, None
        reap.in_flight.clear()
        out.append(Event(now, "pair-switched" if was_exploring else "pair-confirmed",
                         {"peer": str(ctx.peer_ulid), "local": str(pair.local), "remote": str(pair.remote)}))
        if probe.state != m.REAP_OPERATIONAL:
            out.append(_probe(ctx, pair.local, pair.remote, nonce()))  # tell the peer we are done
        return out
    if probe.state != m.REAP_EXPLORING:
        return out  # Operational: nothing owed; InboundOk: it answers our probes, nothing new
    # the peer explores: our inbound on (dst, src) works; answer on the reverse of that pair
    if reap.mode == m.REAP_OPERATIONAL:
        reap.mode = m.REAP_INBOUND_OK
    pair = ctx.pairs.pairs.get((dst, src))
    value = nonce()
    if pair is not None:
        reap.in_flight[value] = pair.key
    out.append(_probe(ctx, dst, src, value))
    return out


def keepalive(ctx: "Context") -> Send | None:
    preferred = ctx.pairs.preferred if ctx.pairs else None
    if preferred is None or ctx.peer_tag is None:
        return None
    return Send(preferred.local, preferred.remote, m.Keepalive(receiver_context_tag=ctx.peer_tag))


def tick(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int]) -> list[Action]:
    """Fire whatever REAP and fig. 21 timers are due."""
    reap = ctx.reap
    out: list[Action] = []
    if reap.keepalive_deadline is not None and now >= reap.keepalive_deadline:
        reap.keepalive_deadline = None
        packet = keepalive(ctx)
        if packet is not None:
            out.append(packet)
            reap.last_tx = now
    if reap.send_deadline is not None and now >= reap.send_deadline:
        out += start_exploring(now, ctx, profile, nonce, "send-timeout")
    if reap.round_deadline is not None and now >= reap.round_deadline and reap.mode != m.REAP_OPERATIONAL:
        out += _round_expired(now, ctx, profile, nonce)
    out += pair_events(now, ctx, ctx.pairs.expire_unreachable(now, profile.unreachable_hold))
    preferred = ctx.pairs.preferred
    quiet = reap.last_rx is None or now - reap.last_rx >= profile.send_timeout
    if preferred is not None and preferred.state is PairState.REACHABLE and quiet and reap.send_deadline is None \
            and reap.mode == m.REAP_OPERATIONAL and (reap.last_tx is None or now - reap.last_tx >= profile.send_timeout):
        out += pair_events(now, ctx, ctx.pairs.fire(now, preferred, PairEvent.SILENT_IDLE))
    return out


def preferred_lost(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int], cause: str) -> list[Action]:
    """A local signal (interface down, deprecated prefix, ICMP) hit the pair in use: explore now."""
    if ctx.reap.mode == m.REAP_EXPLORING:
        return []
    return start_exploring(now, ctx, profile, nonce, cause)
