"""The host's shim control plane as a sans-IO engine (thesis 6.4.3; RFC 5533 section 7-10).

Inputs are method calls with the current time (packets received, packets observed, local
signals, timer ticks); outputs are ``Send`` and ``Event`` actions.  No sockets, no clocks:
the daemon does the I/O, the tests drive two engines against each other.

- Context establishment, four-way (I1/R1/I2/R2), with a stateless responder: R1 and R1bis
  are answered from a rotating secret (``validator``), a context is created only for a
  valid I2/I2bis.  Context tags are chosen by the receiver.  Retransmissions back off
  exponentially; an initiator that gets no R1 (or an ICMP parameter problem) remembers the
  peer as having no shim for a hold-down time and leaves its traffic alone.
- Update Request/Ack when local locators change, retransmitted until acknowledged.
- REAP (``reap``) on every established context; soft-state expiry of idle contexts.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from . import messages as m
from . import reap
from .actions import Action, Event, IcmpError, Send
from .context import Context, ContextState, Retransmission
from .identity import LocalIdentity, LocatorProofError, PeerLocators
from .pairs import PairEvent, PairState, PairTable
from .policy import ContextPolicy, FlowStats
from .timers import RFC, TimerProfile, backoff
from .validator import ValidatorSecrets
from .wire import ShimDecodeError

Address = ipaddress.IPv6Address
RandomBytes = Callable[[int], bytes]
ICMP6_PARAM_PROB, ICMP6_ERRONEOUS_FIELD = 4, 0
IPV6_HLEN = 40
ICMP_ERROR_INTERVAL = 0.05  # RFC 4443 2.4(f): errors are rate-limited (a flood of bad options gets 20/s)


@dataclass
class Counters:
    received: int = 0
    sent: int = 0
    decode_errors: int = 0
    i1_answered: int = 0
    bad_validators: int = 0
    proof_failures: int = 0
    critical_options: int = 0
    icmp_errors: int = 0
    foreign_sources: int = 0
    repeated_i2: int = 0


@dataclass
class ShimEngine:
    identity: LocalIdentity
    profile: TimerProfile = RFC
    policy: ContextPolicy = field(default_factory=ContextPolicy)
    random_bytes: RandomBytes = secrets.token_bytes
    contexts: dict[int, Context] = field(default_factory=dict)
    no_shim: dict[Address, float] = field(default_factory=dict)
    flows: dict[tuple[Address, Address], FlowStats] = field(default_factory=dict)
    events: deque = field(default_factory=lambda: deque(maxlen=2000))
    counters: Counters = field(default_factory=Counters)
    validators: ValidatorSecrets | None = None
    last_icmp_error: float = float("-inf")

    def __post_init__(self) -> None:
        if self.validators is None:
            self.validators = ValidatorSecrets(self.profile.validator_lifetime, self.random_bytes)

    # --- helpers --------------------------------------------------------------------------

    def _nonce(self) -> int:
        return int.from_bytes(self.random_bytes(4), "big")

    def _new_tag(self) -> int:
        while True:
            tag = int.from_bytes(self.random_bytes(6), "big") & m.MAX_CONTEXT_TAG
            if tag and tag not in self.contexts:
                return tag

    def _record(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, Event):
                self.events.append(action)
            elif isinstance(action, Send):
                self.counters.sent += 1
        return actions

    def _find(self, predicate: Callable[[Context], bool]) -> Context | None:
        return next((c for c in self.contexts.values() if predicate(c)), None)

    def context_for(self, local: Address, peer: Address) -> Context | None:
        return self._find(lambda c: c.local_ulid == local and c.peer_ulid == peer)

    def _arm(self, now: float, ctx: Context, message: Any, src: Address, dst: Address, timeout: float) -> Send:
        ctx.pending = Retransmission(message, src, dst, now + timeout)
        return Send(src, dst, message)

    # --- initiator ------------------------------------------------------------------------

    def connect(self, now: float, peer: Address, local: Address | None = None) -> list[Action]:
        """Start a context for the flow (local ULID, peer); no-op if one exists or peer has no shim."""
        local = local or self.identity.ulids[0]
        if local not in self.identity.ulids:
            raise ValueError(f"{local} is not one of this host's ULIDs")
        if self.identity.owns(peer):
            return []  # traffic to ourselves (loopback) needs no context
        if self.no_shim.get(peer, -1.0) > now:
            return self._record([Event(now, "peer-without-shim", {"peer": str(peer), "until": self.no_shim[peer]})])
        if self.context_for(local, peer) is not None:
            return []
        ctx = Context(local, peer, self._new_tag(), ContextState.I1_SENT, True, now, now, initiator_nonce=self._nonce())
        self.contexts[ctx.local_tag] = ctx
        i1 = m.I1(initiator_context_tag=ctx.local_tag, initiator_nonce=ctx.initiator_nonce)
        return self._record([Event(now, "i1-sent", {"peer": str(peer)}),
                             self._arm(now, ctx, i1, local, peer, self.profile.i1_timeout)])

    def _on_r1(self, now: float, src: Address, dst: Address, msg: Any) -> list[Action]:
        ctx = self._find(lambda c: c.state is ContextState.I1_SENT and c.initiator_nonce == msg.initiator_nonce)
        validator = m.option_of(msg, m.ResponderValidator)
        if ctx is None or validator is None:
            return []
        ctx.responder_nonce, ctx.validator, ctx.state = msg.responder_nonce, validator.validator, ContextState.I2_SENT
        i2 = m.I2(
            initiator_context_tag=ctx.local_tag,
            initiator_nonce=ctx.initiator_nonce,
            responder_nonce=msg.responder_nonce,
            options=(validator, *self._locator_options(ctx), self._keepalive_option()),
        )
        return [self._arm(now, ctx, i2, ctx.local_ulid, ctx.peer_ulid, self.profile.i2_timeout)]

    def _on_r1bis(self, now: float, src: Address, dst: Address, msg: Any) -> list[Action]:
        ctx = self._find(lambda c: c.peer_tag == msg.packet_context_tag and c.state is ContextState.ESTABLISHED)
        validator = m.option_of(msg, m.ResponderValidator)
        if ctx is None or validator is None:
            return []
        ctx.state, ctx.initiator_nonce = ContextState.I2BIS_SENT, self._nonce()
        i2bis = m.I2bis(
            initiator_context_tag=ctx.local_tag,
            initiator_nonce=ctx.initiator_nonce,
            responder_nonce=msg.responder_nonce,
            packet_context_tag=msg.packet_context_tag,
            options=(validator, *self._locator_options(ctx), m.UlidPair(sender_ulid=ctx.local_ulid, receiver_ulid=ctx.peer_ulid)),
        )
        return [Event(now, "r1bis-received", {"peer": str(ctx.peer_ulid)}),
                self._arm(now, ctx, i2bis, dst, src, self.profile.i2bis_timeout)]

    def _on_r2(self, now: float, src: Address, dst: Address, msg: Any) -> list[Action]:
        ctx = self._find(lambda c: c.state in (ContextState.I2_SENT, ContextState.I2BIS_SENT)
                         and c.initiator_nonce == msg.initiator_nonce)
        if ctx is None:
            return []
        try:
            peer = PeerLocators.from_options(ctx.peer_ulid, msg)
        except LocatorProofError as exc:
            self.counters.proof_failures += 1
            return [Event(now, "locator-proof-failed", {"peer": str(ctx.peer_ulid), "reason": str(exc)})]
        ctx.peer_tag, ctx.pending = msg.responder_context_tag, None
        return self._establish(now, ctx, peer, msg)

    # --- responder ------------------------------------------------------------------------

    def _on_i1(self, now: float, src: Address, dst: Address, msg: Any) -> list[Action]:
        """Stateless: answer with a validator bound to the nonces, tag and addresses."""
        if not self.identity.owns(dst) or self.identity.owns(src):
            return []
        self.counters.i1_answered += 1
        rnonce = self._nonce()
        validator = self.validators.make(now, rnonce, msg.initiator_context_tag, msg.initiator_nonce, src, dst)
        r1 = m.R1(initiator_nonce=msg.initiator_nonce, responder_nonce=rnonce,
                  options=(m.ResponderValidator(validator=validator),))
        return [Send(dst, src, r1)]

    def _ulids(self, src: Address, dst: Address, msg: Any) -> tuple[Address, Address]:
        pair = m.option_of(msg, m.UlidPair)
        return (pair.sender_ulid, pair.receiver_ulid) if pair else (src, dst)

    def _on_i2(self, now: float, src: Address, dst: Address, msg: Any) -> list[Action]:
        validator = m.option_of(msg, m.ResponderValidator)
        bis = isinstance(msg, m.I2bis)
        tag = msg.packet_context_tag if bis else msg.initiator_context_tag
        bound = (msg.responder_nonce, tag, src, dst) if bis else (
            msg.responder_nonce, msg.initiator_context_tag, msg.initiator_nonce, src, dst)
        if validator is None or not self.validators.check(now, validator.validator, *bound):
            self.counters.bad_validators += 1
            return [Event(now, "bad-validator", {"from": str(src), "message": type(msg).__name__})]
        peer_ulid, local_ulid = self._ulids(src, dst, msg)
        if local_ulid not in self.identity.ulids or self.identity.owns(peer_ulid) or self.identity.owns(src):
            return []
        existing = self.context_for(local_ulid, peer_ulid)
        if existing is not None and existing.state is ContextState.ESTABLISHED and not self._news(existing, msg):
            # a retransmission (our R2 was lost) or a replay: answered, and the context stays as it is
            self.counters.repeated_i2 += 1
            return [Event(now, "i2-repeated", {"peer": str(peer_ulid), "message": type(msg).__name__}),
                    self._r2(existing, msg.initiator_nonce)]
        try:
            peer = PeerLocators.from_options(peer_ulid, msg)
        except LocatorProofError as exc:
            self.counters.proof_failures += 1
            return [Event(now, "locator-proof-failed", {"peer": str(peer_ulid), "reason": str(exc)})]
        # simultaneous establishment (both ends saw the flow and sent I1s that crossed): keep the tag we
        # already sent in our own I1/I2, so that both ends agree on both tags whichever R2 arrives first
        crossing = existing is not None and existing.state is not ContextState.ESTABLISHED and not bis
        if existing is not None:
            del self.contexts[existing.local_tag]
        if crossing:
            local_tag = existing.local_tag
        else:
            local_tag = tag if bis and tag not in self.contexts else self._new_tag()
        ctx = Context(local_ulid, peer_ulid, local_tag, ContextState.ESTABLISHED, False, now, now,
                      peer_tag=msg.initiator_context_tag, initiator_nonce=msg.initiator_nonce)
        if existing is not None:
            ctx.responder_nonces.extend(existing.responder_nonces)
        ctx.responder_nonces.append(msg.responder_nonce)
        self.contexts[local_tag] = ctx
        return self._establish(now, ctx, peer, msg) + [self._r2(ctx, msg.initiator_nonce)]

    @staticmethod
    def _news(ctx: Context, msg: Any) -> bool:
        """Does this valid I2/I2bis for the ULIDs of the established ``ctx`` prove something new?

        RFC 5533 7.15 lets an I2 for an established context update it; but its validator stays good
        for up to two validator lifetimes, so a copy replayed by whoever was on the path would replace
        a working context (new tags; the pair in use and REAP's state lost).  The responder nonce is
        ours, fresh in every R1/R1bis and bound by the validator: an I2 or I2bis carrying one this
        ULID pair already accepted is a retransmission or a replay; a new one means the peer ran a
        fresh exchange (it lost its context, restarted, or we lost ours).
        """
        return msg.responder_nonce not in ctx.responder_nonces

    def _r2(self, ctx: Context, initiator_nonce: int) -> Send:
        r2 = m.R2(responder_context_tag=ctx.local_tag, initiator_nonce=initiator_nonce,
                  options=(*self._locator_options(ctx), self._keepalive_option()))
        return Send(ctx.local_ulid, ctx.peer_ulid, r2)

    # --- both ends ------------------------------------------------------------------------

    def _locator_options(self, ctx: Context) -> tuple[Any, ...]:
        return self.identity.locator_options(ctx.local_ulid, ctx.local_generation)

    def _keepalive_option(self) -> Any:
        return m.KeepaliveTimeout(timeout=max(1, int(self.profile.send_timeout)))

    def _establish(self, now: float, ctx: Context, peer: PeerLocators, msg: Any) -> list[Action]:
        ctx.state, ctx.peer, ctx.last_activity = ContextState.ESTABLISHED, peer, now
        timeout = m.option_of(msg, m.KeepaliveTimeout)
        ctx.reap.peer_keepalive_timeout = float(timeout.timeout) if timeout else None
        ctx.pairs = PairTable.build(now, list(self.identity.locators), peer.proven(),
                                    (ctx.local_ulid, ctx.peer_ulid))
        return [Event(now, "context-established", {
            "peer": str(ctx.peer_ulid), "local": str(ctx.local_ulid), "role": "initiator" if ctx.initiator else "responder",
            "local_tag": ctx.local_tag, "peer_tag": ctx.peer_tag, "peer_locators": [str(a) for a in peer.locators]})]

    def _from_peer(self, now: float, ctx: Context, src: Address, msg: Any) -> bool:
        """Did this message of an established context come from one of the peer's proven locators?

        A context tag is no secret from whoever was on the path once: without this check, an attacker
        that left the path could keep the context alive past its soft-state lifetime and feed REAP false
        signs of life from anywhere (the time-shifted attack, thesis 4.3).  An Update Request may come
        from a locator its own list brings (renumbering); that list is proven before it is absorbed.
        """
        if ctx.peer is None or ctx.peer.verify(src):
            return True
        loclist = m.option_of(msg, m.LocatorList) if isinstance(msg, m.UpdateRequest) else None
        if loclist is not None and src in loclist.locators:
            return True
        self.counters.foreign_sources += 1
        return False

    def _on_payload(self, now: float, src: Address, dst: Address, msg: m.PayloadHeader) -> list[Action]:
        ctx = self.contexts.get(msg.context_tag)
        if ctx is not None and not self._from_peer(now, ctx, src, msg):
            return [Event(now, "foreign-source", {"peer": str(ctx.peer_ulid), "from": str(src), "message": "Payload"})]
        if ctx is not None:
            ctx.last_activity = now
            return reap.on_received(now, ctx, self.profile, dst, src) if ctx.pairs else []
        rnonce = self._nonce()
        validator = self.validators.make(now, rnonce, msg.context_tag, src, dst)
        return [Send(dst, src, m.R1bis(packet_context_tag=msg.context_tag, responder_nonce=rnonce,
                                       options=(m.ResponderValidator(validator=validator),)))]

    def _on_update_request(self, now: float, src: Address, dst: Address, ctx: Context, msg: Any) -> list[Action]:
        out: list[Action] = []
        loclist = m.option_of(msg, m.LocatorList)
        if loclist is not None and ctx.peer is not None and loclist.generation >= ctx.peer.generation:
            try:
                ctx.peer.absorb_update(msg)
            except LocatorProofError as exc:
                self.counters.proof_failures += 1  # a redirection attempt: refused, counted, no Ack
                return [Event(now, "locator-proof-failed", {"peer": str(ctx.peer_ulid), "reason": str(exc)})]
            before = ctx.pairs.preferred
            ctx.pairs.sync(now, list(self.identity.locators), ctx.peer.proven())
            out.append(Event(now, "peer-locators-updated", {"peer": str(ctx.peer_ulid), "generation": loclist.generation,
                                                             "locators": [str(a) for a in loclist.locators]}))
            if before is not None and ctx.pairs.preferred is None:
                ctx.pairs.elect(now, PairEvent.TEST_FAIL)
                out += reap.preferred_lost(now, ctx, self.profile, self._nonce, "peer-locator-removed")
        out.append(Send(dst, src, m.UpdateAck(receiver_context_tag=ctx.peer_tag, request_nonce=msg.request_nonce)))
        return out

    def _on_established_message(self, now: float, src: Address, dst: Address, msg: Any) -> list[Action]:
        ctx = self.contexts.get(msg.receiver_context_tag)
        if ctx is None or ctx.state is not ContextState.ESTABLISHED or ctx.pairs is None:
            return []
        if not self._from_peer(now, ctx, src, msg):
            return [Event(now, "foreign-source", {"peer": str(ctx.peer_ulid), "from": str(src),
                                                  "message": type(msg).__name__})]
        ctx.last_activity = now
        if isinstance(msg, m.UpdateRequest):
            answer = self._on_update_request(now, src, dst, ctx, msg)
            if any(isinstance(a, Event) and a.kind == "locator-proof-failed" for a in answer):
                return answer  # a forged request proves nothing about the pair it came on
            return reap.on_received(now, ctx, self.profile, dst, src) + answer
        if isinstance(msg, m.UpdateAck):
            if ctx.update_nonce == msg.request_nonce:
                ctx.pending, ctx.update_nonce = None, None
                return [Event(now, "update-acknowledged", {"peer": str(ctx.peer_ulid)})]
            return []
        if isinstance(msg, m.Probe):
            return reap.on_probe(now, ctx, self.profile, src, dst, msg, self._nonce)
        return reap.on_received(now, ctx, self.profile, dst, src)  # Keepalive

    HANDLERS = {
        m.I1: "_on_i1", m.R1: "_on_r1", m.I2: "_on_i2", m.I2bis: "_on_i2", m.R2: "_on_r2", m.R1bis: "_on_r1bis",
        m.PayloadHeader: "_on_payload", m.UpdateRequest: "_on_established_message",
        m.UpdateAck: "_on_established_message", m.Keepalive: "_on_established_message",
        m.Probe: "_on_established_message",
    }

    def receive(self, now: float, src: Address, dst: Address, data: bytes) -> list[Action]:
        """A protocol-140 packet arrived from ``src`` to ``dst`` (bytes after the IPv6 header)."""
        self.counters.received += 1
        try:
            msg = m.decode(data)
        except ShimDecodeError as exc:
            self.counters.decode_errors += 1
            return self._record([Event(now, "decode-error", {"from": str(src), "error": str(exc)})])
        critical = next((o for o in getattr(msg, "options", ()) if isinstance(o, m.UnknownOption) and o.critical), None)
        if critical is not None:
            return self._record(self._unknown_critical_option(now, src, dst, data, msg, critical))
        handler = getattr(self, self.HANDLERS[type(msg)])
        return self._record(handler(now, src, dst, msg))

    def _unknown_critical_option(self, now: float, src: Address, dst: Address, data: bytes, msg: Any,
                                 option: m.UnknownOption) -> list[Action]:
        """RFC 5533 5.15: a critical option we do not know drops the message and earns its sender an
        ICMPv6 parameter problem pointing at the option's Type field (rate-limited, never to ourselves
        or to a multicast source)."""
        self.counters.critical_options += 1
        offset = IPV6_HLEN + m.option_offset(msg, option)
        out: list[Action] = [Event(now, "unknown-critical-option", {"from": str(src), "option": option.type,
                                                                    "pointer": offset})]
        if not self.identity.owns(dst) or self.identity.owns(src) or src.is_multicast or src.is_unspecified:
            return out
        if now - self.last_icmp_error < ICMP_ERROR_INTERVAL:
            return out
        self.last_icmp_error = now
        self.counters.icmp_errors += 1
        return out + [IcmpError(dst, src, ICMP6_PARAM_PROB, ICMP6_ERRONEOUS_FIELD, offset, bytes(data))]

    # --- traffic observation and policy ---------------------------------------------------

    def observe(self, now: float, local: Address, peer: Address, outgoing: bool, exact: bool = True) -> list[Action]:
        """A data packet between ``local`` and ``peer`` was seen (drives policy and REAP).

        ``exact`` False: an incoming packet whose addresses may have been restored from other
        locators by the data path (a sniffer sees it after that), so it proves no pair.
        """
        out: list[Action] = []
        if self.identity.owns(peer):
            return []  # loopback traffic between our own addresses
        ctx = self._find(lambda c: c.state is ContextState.ESTABLISHED and c.pairs is not None
                         and ((local, peer) in c.pairs.pairs or (c.local_ulid, c.peer_ulid) == (local, peer)))
        if ctx is not None:
            if outgoing:
                reap.on_data_sent(now, ctx, self.profile)
            else:
                ctx.last_activity = now
                out += reap.on_received(now, ctx, self.profile, *((local, peer) if exact else (None, None)))
            return self._record(out)
        if local not in self.identity.ulids:
            return []
        flow = self.flows.setdefault((local, peer), FlowStats(now))
        flow.packets += 1
        if self.policy.due(flow.packets, flow.first_seen, now) and self.context_for(local, peer) is None:
            del self.flows[(local, peer)]
            out += self.connect(now, peer, local)
        return out

    def unobserved(self, counted: bool) -> tuple[frozenset[tuple[Address, Address]], frozenset[Address]]:
        """What ``observe`` needs no packet of: (ULID pairs, peers); the observer's socket filter drops them.

        - the ULID pair of a context being set up (``observe`` ignores it: the context exists);
        - with ``counted`` (a data path counts every established context's packets and feeds them
          to ``observe`` from its counters), the ULID pair of every established context too;
        - a peer remembered as having no shim (``connect`` refuses it until the hold-down ends).
        """
        pairs = frozenset((c.local_ulid, c.peer_ulid) for c in self.contexts.values()
                          if counted or c.state is not ContextState.ESTABLISHED)
        return pairs, frozenset(self.no_shim)

    # --- local signals --------------------------------------------------------------------

    def _signal(self, now: float, event: PairEvent, cause: str, local: Address | None = None,
                remote: Address | None = None, prefix: bytes | None = None) -> list[Action]:
        out: list[Action] = []
        for ctx in self.contexts.values():
            if ctx.pairs is None:
                continue
            before = ctx.pairs.preferred
            locals_ = [a for a in self.identity.locators if a.packed[:8] == prefix] if prefix else [local]
            transitions = []
            for loc in locals_:
                transitions += ctx.pairs.fire_where(now, event, local=loc, remote=remote)
            out += reap.pair_events(now, ctx, transitions)
            # the pair in use was hit (thesis 6.4.3.3: ICMP errors, a dead interface, a deprecated prefix are
            # failure signals): explore now instead of waiting for Send Timeout
            hit = before is not None and before.state is not PairState.REACHABLE and \
                any((t.local, t.remote) == before.key for t in transitions)
            if before is not None and (ctx.pairs.preferred is not before or hit):
                out += reap.preferred_lost(now, ctx, self.profile, self._nonce, cause)
        return self._record(out)

    def interface_down(self, now: float, locator: Address) -> list[Action]:
        return self._signal(now, PairEvent.LOCAL_DOWN, "interface-down", local=locator)

    def interface_up(self, now: float, locator: Address) -> list[Action]:
        return self._signal(now, PairEvent.LOCAL_UP, "interface-up", local=locator)

    def prefix_deprecated(self, now: float, prefix: bytes) -> list[Action]:
        return self._signal(now, PairEvent.PREFIX_DEPRECATED, "prefix-deprecated", prefix=prefix)

    def prefix_valid(self, now: float, prefix: bytes) -> list[Action]:
        return self._signal(now, PairEvent.PREFIX_VALID, "prefix-valid", prefix=prefix)

    def icmp_unreachable(self, now: float, local: Address, remote: Address) -> list[Action]:
        return self._signal(now, PairEvent.ICMP_UNREACHABLE, "icmp-unreachable", local=local, remote=remote)

    def upper_layer_loss(self, now: float, local: Address, peer: Address, cause: str = "tcp-rto") -> list[Action]:
        """TCP between the ULIDs ``local`` and ``peer`` timed out a retransmission (thesis 6.4.3.3.1)."""
        ctx = self.context_for(local, peer)
        if ctx is None or ctx.state is not ContextState.ESTABLISHED or ctx.pairs is None:
            return []
        return self._record(reap.upper_layer_loss(now, ctx, self.profile, self._nonce, cause))

    def ulid_pairs(self, sent_since: float | None = None) -> set[tuple[Address, Address]]:
        """(local ULID, peer ULID) of every established context (that sent data at or after
        ``sent_since``, if given): what upper-layer feedback watches."""
        return {(c.local_ulid, c.peer_ulid) for c in self.contexts.values() if c.state is ContextState.ESTABLISHED
                and (sent_since is None or (c.reap.last_tx is not None and c.reap.last_tx >= sent_since))}

    def icmp_parameter_problem(self, now: float, peer: Address) -> list[Action]:
        """The peer's kernel does not know protocol 140: it has no shim."""
        out: list[Action] = []
        for ctx in list(self.contexts.values()):
            if ctx.peer_ulid == peer and ctx.state is ContextState.I1_SENT:
                del self.contexts[ctx.local_tag]
                out.append(self._give_up(now, ctx, self.profile.icmp_holddown, "icmp-parameter-problem"))
        return self._record(out)

    def _give_up(self, now: float, ctx: Context, holddown: float, cause: str) -> Event:
        if ctx.state is ContextState.I1_SENT:
            self.no_shim[ctx.peer_ulid] = now + holddown
            return Event(now, "peer-without-shim", {"peer": str(ctx.peer_ulid), "cause": cause, "until": now + holddown})
        return Event(now, "establishment-failed", {"peer": str(ctx.peer_ulid), "state": ctx.state.value, "cause": cause})

    def set_local_locators(self, now: float, locators: list[Address]) -> list[Action]:
        """Local locators changed: resync pairs and tell every peer (Update Request)."""
        self.identity.locators = list(locators)
        out: list[Action] = [Event(now, "local-locators", {"locators": [str(a) for a in locators]})]
        for ctx in self.contexts.values():
            if ctx.state is not ContextState.ESTABLISHED or ctx.pairs is None or ctx.peer is None:
                continue
            before = ctx.pairs.preferred
            ctx.pairs.sync(now, list(locators), ctx.peer.proven())
            if before is not None and ctx.pairs.preferred is None:
                ctx.pairs.elect(now, PairEvent.LOCAL_DOWN)
                out += reap.preferred_lost(now, ctx, self.profile, self._nonce, "local-locator-removed")
            ctx.local_generation += 1
            ctx.update_nonce = self._nonce()
            request = m.UpdateRequest(receiver_context_tag=ctx.peer_tag, request_nonce=ctx.update_nonce,
                                      options=self._locator_options(ctx))
            preferred = ctx.pairs.preferred
            src, dst = (preferred.local, preferred.remote) if preferred else (ctx.local_ulid, ctx.peer_ulid)
            out.append(self._arm(now, ctx, request, src, dst, self.profile.update_timeout))
        return self._record(out)

    # --- time -----------------------------------------------------------------------------

    def _retransmit(self, now: float, ctx: Context) -> list[Action]:
        pending = ctx.pending
        limits = {
            ContextState.I1_SENT: (self.profile.i1_timeout, self.profile.i1_retries_max, None),
            ContextState.I2_SENT: (self.profile.i2_timeout, self.profile.i2_retries_max, None),
            ContextState.I2BIS_SENT: (self.profile.i2bis_timeout, self.profile.i2bis_retries_max, None),
            ContextState.ESTABLISHED: (self.profile.update_timeout, None, self.profile.max_update_timeout),
        }
        base, retries, ceiling = limits[ctx.state]
        pending.attempt += 1
        delay = backoff(base, pending.attempt, ceiling)
        if (retries is not None and pending.attempt > retries) or (ceiling is not None and base * 2 ** pending.attempt > 2 * ceiling):
            ctx.pending = None
            if ctx.state is ContextState.ESTABLISHED:
                return [Event(now, "update-unacknowledged", {"peer": str(ctx.peer_ulid)})]
            del self.contexts[ctx.local_tag]
            return [self._give_up(now, ctx, self.profile.no_r1_holddown, f"no answer to {type(pending.message).__name__}")]
        pending.deadline = now + delay
        return [Send(pending.src, pending.dst, pending.message)]

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for peer in [p for p, until in self.no_shim.items() if until <= now]:
            del self.no_shim[peer]
        for ctx in list(self.contexts.values()):
            if ctx.pending is not None and now >= ctx.pending.deadline:
                out += self._retransmit(now, ctx)
            if ctx.local_tag not in self.contexts or ctx.state is not ContextState.ESTABLISHED:
                continue
            if now - ctx.last_activity >= self.profile.context_lifetime:
                del self.contexts[ctx.local_tag]
                out.append(Event(now, "context-expired", {"peer": str(ctx.peer_ulid), "idle": round(now - ctx.last_activity, 3)}))
                continue
            out += reap.tick(now, ctx, self.profile, self._nonce)
        return self._record(out)

    def next_deadline(self) -> float | None:
        deadlines: list[float] = list(self.no_shim.values())
        for ctx in self.contexts.values():
            if ctx.pending is not None:
                deadlines.append(ctx.pending.deadline)
            if ctx.state is ContextState.ESTABLISHED:
                deadlines.append(ctx.last_activity + self.profile.context_lifetime)
                deadlines += ctx.reap.deadlines()
        return min(deadlines) if deadlines else None

    # --- views (for the control socket) ---------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "ulids": [str(a) for a in self.identity.ulids],
            "locators": [str(a) for a in self.identity.locators],
            "hba_sec": self.identity.hba_set.sec,
            "hybrid": self.identity.hba_set.hybrid,
            "profile": self.profile.name,
            "policy": str(self.policy),
            "contexts": len(self.contexts),
            "peers_without_shim": {str(p): round(u, 3) for p, u in self.no_shim.items()},
            "pending_flows": len(self.flows),
            "counters": vars(self.counters).copy(),
        }

    def contexts_view(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.contexts.values()]

    def pairs_view(self) -> list[dict[str, Any]]:
        return [
            {"peer": str(c.peer_ulid), "reap": c.reap.mode_name, **p.as_dict()}
            for c in self.contexts.values() if c.pairs is not None for p in c.pairs.pairs.values()
        ]

    def events_view(self, since: float | None = None) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.events if since is None or e.time > since]
