"""REAP: failure detection and locator-pair exploration (RFC 5534; thesis 6.4.3.3).

Detection: a node that sends and hears nothing back for Send Timeout declares a failure; a
node that only receives sends a Keepalive within the Keepalive Interval so that its peer's
Send Timeout does not fire.  Exploration: Probe messages on candidate pairs, at most
``max_parallel_probes`` at once, ``initial_probes`` rounds at ``initial_probe_timeout`` then
binary exponential backoff up to ``max_probe_timeout``.  A Probe that reports one of our
nonces as received proves its pair works both ways: it becomes preferred and REAP goes back
to Operational.  The locator-pair states of thesis fig. 21 (``pairs``) are driven from here.

A pair is proven only by a reply that came back *on that pair* (the peer's Probe arrived on its
reverse and reports our nonce): a pair that works outbound only is not reachable.  When an
exploration ends, the pairs still under test are settled at the end of their round: a late
answer makes them reachable, silence unreachable (fig. 21's test-fail), so none stays in test.

Upper-layer feedback (a TCP retransmission timeout on the context's ULIDs) is a failure
*suspicion*: REAP probes the pair in use together with the others and keeps it if it answers;
it switches only when an alternative answered and the pair in use did not within a hold time
(twice the alternative's round trip, at least ``ULP_HOLD_MIN``).  Random loss on a healthy
path therefore costs probes, not switches.

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


def on_received(now: float, ctx: "Context", profile: TimerProfile, local: Address | None,
                remote: Address | None) -> list[Action]:
    """Anything from the peer on (local, remote): the pair works inbound; maybe owe a keepalive.

    ``local``/``remote`` None: something came from the peer but on which pair is not known (a
    packet seen after the data path restored its ULIDs): REAP's timers only, no pair event.
    """
    reap = ctx.reap
    reap.last_rx = now
    reap.send_deadline = None
    if reap.keepalive_deadline is None:
        interval = (reap.peer_keepalive_timeout or profile.keepalive_timeout) / 3
        reap.keepalive_deadline = now + interval
    pair = ctx.pairs.pairs.get((local, remote)) if ctx.pairs and local is not None else None
    if pair is None or reap.mode != m.REAP_OPERATIONAL:
        return []
    return pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.RX))


ULP_HOLD_MIN = 0.01
# the pair under suspicion gets three probes at once: under random loss p a single probe exchange fails
# with ~2p and each failure was a switch onto an equally lossy pair, translated for good (measured: RFC
# timers, 2 % loss, goodput 83 % of plain TCP); with k it takes all k, ~(2p)^k, and a real failure is
# noticed no later (they go out together, any answer keeps the pair).  Two still left ~1 switch a minute
# at 5 % loss (about 90 suspicions a minute, each lost with ~1 %), and each cost the rest of the
# transfer the translated path's 13 %; three make it ~0.1 %, for one more 60-octet probe
KEEP_PROBES = 3
ULP_TLP, ULP_TLP_QUIET = "tcp-tlp", 0.5


def start_exploring(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int], cause: str,
                    verify: bool = False) -> list[Action]:
    """Explore the pairs; ``verify``: a suspicion only, keep the pair in use if it still answers."""
    reap = ctx.reap
    out: list[Action] = [Event(now, "failure-suspected" if verify else "failure-detected",
                               {"peer": str(ctx.peer_ulid), "cause": cause})]
    preferred = ctx.pairs.preferred if ctx.pairs else None
    out += _settle(now, ctx)
    reap.keep = preferred.key if verify and preferred is not None else None
    reap.keep_sent, reap.held, reap.hold_deadline, reap.cause = now, None, None, cause
    reap.explored_from = preferred.key if preferred is not None else None
    if preferred is not None and reap.keep is None:  # under suspicion only, it stays reachable (and in use)
        event = PairEvent.SILENT_SENDING if preferred.state is not PairState.TEST else PairEvent.TEST_START
        out += pair_events(now, ctx, ctx.pairs.fire(now, preferred, event))
    reap.mode, reap.round, reap.send_deadline = m.REAP_EXPLORING, 0, None
    reap.tried.clear()
    return out + _explore_round(now, ctx, profile, nonce)


def _next_candidates(ctx: "Context", limit: int) -> list[LocatorPair]:
    reap = ctx.reap
    # unreachable pairs (not pinned by a local cause) come last: one whose Ti is not over may work again (the
    # link that failed came back) and be the only one left when the pair in use goes silent; RFC 5534
    # explores every pair, and leaving them to a later round cost a round, or every round once the others
    # answered nothing
    usable = ctx.pairs.candidates() + [p for p in ctx.pairs.pairs.values()
                                       if p.state is PairState.UNREACHABLE and not p.pins]
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
    chosen = []
    kept = ctx.pairs.pairs.get(reap.keep) if reap.keep is not None and reap.round == 0 else None
    if kept is not None:  # the pair under suspicion is probed in the first round, whatever the limit
        chosen.append(kept)
        reap.tried.add(kept.key)
    chosen += [p for p in _next_candidates(ctx, profile.max_parallel_probes - len(chosen)) if p not in chosen]
    for pair in chosen:
        if pair.state is not PairState.TEST and pair is not kept:
            out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.TEST_START))
        for _ in range(KEEP_PROBES if pair is kept else 1):
            value = nonce()
            reap.in_flight[value] = pair.key
            out.append(_probe(ctx, pair.local, pair.remote, value))
    slow_rounds = max(0, reap.round - profile.initial_probes + 1)
    reap.round_deadline = now + backoff(profile.initial_probe_timeout, slow_rounds, profile.max_probe_timeout)
    reap.round += 1
    return out


MAX_REMEMBERED_NONCES = 64


def _round_expired(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int]) -> list[Action]:
    out: list[Action] = _suspect_failed(now, ctx)  # a suspicion lasts one round, then this is an exploration
    for key in set(ctx.reap.in_flight.values()):
        pair = ctx.pairs.pairs.get(key)
        if pair is not None and pair.state is PairState.TEST:
            out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.TEST_FAIL))
    # keep the nonces of recent rounds: a reply that arrives after its round expired still proves the pair
    # (on a loaded host the peer's answer can take longer than the tuned 0.2 s round)
    for stale in list(ctx.reap.in_flight)[:-MAX_REMEMBERED_NONCES]:
        del ctx.reap.in_flight[stale]
    return out + _explore_round(now, ctx, profile, nonce)


def _suspect_failed(now: float, ctx: "Context") -> list[Action]:
    """The pair under suspicion did not answer its probe: it is under test like any other now."""
    reap = ctx.reap
    pair = ctx.pairs.pairs.get(reap.keep) if reap.keep is not None else None
    reap.keep = None
    if pair is None or pair.state is PairState.TEST:
        return []
    return pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.SILENT_SENDING))


def _settle(now: float, ctx: "Context") -> list[Action]:
    """The end of a settling period: pairs whose probe never came back are unreachable."""
    reap = ctx.reap
    out: list[Action] = []
    for key in set(reap.settling.values()):
        pair = ctx.pairs.pairs.get(key)
        if pair is not None and pair.state is PairState.TEST:
            out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.TEST_FAIL))
    reap.settling.clear()
    reap.settle_deadline = None
    return out


def _finish(now: float, ctx: "Context", pair: LocatorPair, nonce: Callable[[], int], peer_state: int,
            kind: str) -> list[Action]:
    """Exploration is over on ``pair``: prefer it, settle the other probes, tell the peer."""
    reap = ctx.reap
    out = _suspect_failed(now, ctx) if reap.keep is not None and reap.keep != pair.key else []
    if kind == "pair-switched" and pair.key == reap.explored_from:
        kind = "pair-confirmed"  # the pair in use answered after all: nothing changed
    # (not ``pair.preferred``: when the pair in use failed with no other known reachable, the first
    # test-ok already made the answering pair preferred, and a switch was reported as a confirmation)
    before = ctx.pairs.preferred
    out += pair_events(now, ctx, ctx.pairs.prefer(now, pair))
    reap.kept_at = now if kind == "pair-kept" else reap.kept_at
    reap.settling.update({n: k for n, k in reap.in_flight.items() if k != pair.key})
    reap.settle_deadline = reap.round_deadline if reap.settling else None
    reap.mode, reap.round_deadline, reap.send_deadline = m.REAP_OPERATIONAL, None, None
    reap.in_flight.clear()
    reap.keep, reap.held, reap.hold_deadline = None, None, None
    detail = {"peer": str(ctx.peer_ulid), "local": str(pair.local), "remote": str(pair.remote),
              **({"cause": reap.cause} if reap.cause else {})}
    if kind == "pair-confirmed" and before is not None and before is not pair:
        detail["changed_from"] = [str(before.local), str(before.remote)]  # the peer's exploration moved us
    out.append(Event(now, kind, detail))
    reap.cause, reap.explored_from = "", None  # a later exploration the peer starts is not ours
    if peer_state != m.REAP_OPERATIONAL:
        out.append(_probe(ctx, pair.local, pair.remote, nonce()))  # tell the peer we are done
    return out


def _proven(ctx: "Context", probe: object, reverse: tuple[Address, Address], nonces: dict) -> int | None:
    """Our nonce for ``reverse`` that the peer reports having received, in a Probe that came on it."""
    return next((r.nonce for r in probe.received if nonces.get(r.nonce) == reverse), None)


def on_probe(now: float, ctx: "Context", profile: TimerProfile, src: Address, dst: Address, probe: object,
             nonce: Callable[[], int]) -> list[Action]:
    """A Probe from the peer arrived on our pair (dst, src)."""
    reap = ctx.reap
    reap.last_rx = now
    out: list[Action] = []
    if probe.sent:
        reap.received_reports.appendleft(m.ProbeReport(source=src, destination=dst, nonce=probe.sent[0].nonce, data=0))
    key = (dst, src)
    pair = ctx.pairs.pairs.get(key)
    late = _proven(ctx, probe, key, reap.settling)
    if late is not None and pair is not None and _proven(ctx, probe, key, reap.in_flight) is None:
        del reap.settling[late]  # an answer after the exploration ended: the pair works, nothing switches
        ctx.confirmed.add(key)
        out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.TEST_OK))
        if pair.state is not PairState.REACHABLE:
            out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.RX))
    elif pair is not None and _proven(ctx, probe, key, reap.in_flight) is not None:
        ctx.confirmed.add(pair.key)
        out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.TEST_OK))
        if pair.state is not PairState.REACHABLE:  # probed while unreachable: the reply is rx
            out += pair_events(now, ctx, ctx.pairs.fire(now, pair, PairEvent.RX))
        if reap.keep is not None and key == reap.keep:
            return out + _finish(now, ctx, pair, nonce, probe.state, "pair-kept")
        if reap.keep is not None:  # an alternative answered first: give the pair in use its chance
            if reap.held is None:
                reap.held = key
                reap.hold_deadline = now + max(2 * (now - reap.keep_sent), ULP_HOLD_MIN)
            return out + _answer_explorer(ctx, probe, src, dst, nonce)
        was_exploring = reap.mode == m.REAP_EXPLORING  # InboundOk: the peer explored, we answered
        return out + _finish(now, ctx, pair, nonce, probe.state, "pair-switched" if was_exploring else "pair-confirmed")
    return out + _answer_explorer(ctx, probe, src, dst, nonce)


def _answer_explorer(ctx: "Context", probe: object, src: Address, dst: Address, nonce: Callable[[], int]) -> list[Action]:
    reap = ctx.reap
    if probe.state != m.REAP_EXPLORING:
        return []  # Operational: nothing owed; InboundOk: it answers our probes, nothing new
    # the peer explores: our inbound on (dst, src) works; answer on the reverse of that pair
    if reap.mode == m.REAP_OPERATIONAL:
        reap.mode = m.REAP_INBOUND_OK
    pair = ctx.pairs.pairs.get((dst, src))
    value = nonce()
    if pair is not None:
        reap.in_flight[value] = pair.key
    return [_probe(ctx, dst, src, value)]


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
    if reap.hold_deadline is not None and now >= reap.hold_deadline and reap.held in ctx.pairs.pairs:
        out += _finish(now, ctx, ctx.pairs.pairs[reap.held], nonce, m.REAP_EXPLORING, "pair-switched")
    if reap.round_deadline is not None and now >= reap.round_deadline and reap.mode != m.REAP_OPERATIONAL:
        out += _round_expired(now, ctx, profile, nonce)
    if reap.settle_deadline is not None and now >= reap.settle_deadline:
        out += _settle(now, ctx)
    out += pair_events(now, ctx, ctx.pairs.expire_unreachable(now, profile.unreachable_hold))
    preferred = ctx.pairs.preferred
    quiet = reap.last_rx is None or now - reap.last_rx >= profile.send_timeout
    if preferred is not None and preferred.state is PairState.REACHABLE and quiet and reap.send_deadline is None \
            and reap.mode == m.REAP_OPERATIONAL and (reap.last_tx is None or now - reap.last_tx >= profile.send_timeout):
        out += pair_events(now, ctx, ctx.pairs.fire(now, preferred, PairEvent.SILENT_IDLE))
    return out


def preferred_lost(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int], cause: str) -> list[Action]:
    """A local signal (interface down, deprecated prefix, ICMP) hit the pair in use: explore now."""
    if ctx.reap.mode == m.REAP_EXPLORING and ctx.reap.keep is None:
        return []
    return start_exploring(now, ctx, profile, nonce, cause)


def upper_layer_loss(now: float, ctx: "Context", profile: TimerProfile, nonce: Callable[[], int], cause: str) -> list[Action]:
    """TCP on the context's ULIDs timed out a retransmission: verify the pair in use, now.

    A tail-loss probe soon after the pair in use was verified is not asked about again (under
    random loss TCP sends many); a retransmission timeout always is.
    """
    if ctx.reap.mode == m.REAP_EXPLORING:
        return []
    if cause == ULP_TLP and now - ctx.reap.kept_at < ULP_TLP_QUIET:
        return []
    return start_exploring(now, ctx, profile, nonce, cause, verify=True)
