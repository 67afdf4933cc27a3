"""The threats of thesis 4.3 and RFC 5533 section 16, sans-IO: what the shim refuses, and what an
attacker still gets (bounded).  Third-party flooding: a peer names a victim as its locator.  The
time-shifted attack: someone on the path once knows the context tag and the peer's parameters,
and tries to use them after it left.  And RFC 5533 5.15: an unknown critical option."""

import dataclasses
import ipaddress
import random
import struct

from agents.shim import attack, hba
from agents.shim import messages as m
from agents.shim.actions import IcmpError, Send
from agents.shim.engine import ICMP_ERROR_INTERVAL, ShimEngine
from agents.shim.identity import LocalIdentity
from agents.shim.packet import icmp_error
from agents.shim.timers import TUNED

from .lab import Wire, events, prefixes
from .test_reap import established

A = ipaddress.IPv6Address
ATTACKER = A("2001:db8:ee:1::66")


def _keepalive(tag):
    return m.encode(m.Keepalive(receiver_context_tag=tag))


# --- RFC 5533 5.15: unknown critical option ------------------------------------------------------

def test_unknown_critical_option_gets_a_rate_limited_parameter_problem():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    option = m.UnknownOption(type=0x1234, data=b"abc", critical=True)
    data = m.encode(m.Keepalive(receiver_context_tag=cb.local_tag, options=(option,)))
    got = b.receive(1.0, la, lb, data)
    errors = [x for x in got if isinstance(x, IcmpError)]
    assert len(errors) == 1 and events(b, "unknown-critical-option")
    err = errors[0]
    assert (err.src, err.dst, err.type, err.code, err.pointer) == (lb, la, 4, 0, 40 + 16)
    assert data[err.pointer - 40 : err.pointer - 40 + 2] == struct.pack("!H", 0x1234 << 1 | 1)  # Type, C bit
    assert not [x for x in b.receive(1.0 + ICMP_ERROR_INTERVAL / 2, la, lb, data) if isinstance(x, IcmpError)]
    assert [x for x in b.receive(1.0 + ICMP_ERROR_INTERVAL, la, lb, data) if isinstance(x, IcmpError)]
    assert b.counters.critical_options == 3 and b.counters.icmp_errors == 2
    # an unknown option without the C bit is ignored, the message is processed
    lax = m.encode(m.Keepalive(receiver_context_tag=cb.local_tag, options=(dataclasses.replace(option, critical=False),)))
    assert not [x for x in b.receive(2.0, la, lb, lax) if isinstance(x, IcmpError)] and cb.reap.last_rx == 2.0
    body = icmp_error(4, 0, err.pointer, err.dst, err.src, err.invoking)
    assert body[:8] == struct.pack("!BBHI", 4, 0, 0, 56) and body[8] >> 4 == 6 and body[8 + 6] == 140
    assert A(body[16:32]) == la and A(body[32:48]) == lb and body[48:] == data


# --- third-party flooding -----------------------------------------------------------------------

def _attacker(prefix_texts, seed=9):
    rng = random.Random(seed)
    hset = hba.generate_hba_set(prefixes(*prefix_texts), 0, modifier=rng.randbytes(16), pseudo_key=rng.randbytes(48))
    return ShimEngine(LocalIdentity(hset), TUNED, random_bytes=rng.randbytes)


def test_a_victims_address_in_a_locator_list_is_refused():
    a, b, wire, ca, cb = established()
    victim = a.identity.ulids[0]
    mallory = _attacker(["2001:db8:ee:1::", "2001:db8:ef:1::"])
    honest = mallory.identity.locator_options

    def forged(ulid, generation):  # claim the victim as one more HBA member
        loclist, *rest = honest(ulid, generation)
        return (dataclasses.replace(loclist, locators=(*loclist.locators, victim), methods=(*loclist.methods, m.VERIFY_HBA)),
                *rest)

    wire = Wire(a, b, mallory)
    wire.deliver(mallory.connect(1.0, b.identity.ulids[0]))
    ctx = next(c for c in b.contexts.values() if c.peer_ulid == mallory.identity.ulids[0])
    (mctx,) = mallory.contexts.values()
    # an Update Request naming the victim is refused outright (no Ack), ...
    mallory.identity.locator_options = forged
    update = m.UpdateRequest(receiver_context_tag=mctx.peer_tag, request_nonce=3, options=forged(mctx.local_ulid, 1))
    answer = b.receive(1.5, mctx.local_ulid, mctx.peer_ulid, m.encode(update))
    assert events(b, "locator-proof-failed") and not [x for x in answer if isinstance(x, Send)]
    # ... and one in the I2 is never proven: nothing goes to it, even when Mallory goes silent under a stream
    mallory.contexts.clear()
    wire.deliver(mallory.connect(2.0, b.identity.ulids[1]))
    ctx = next(c for c in b.contexts.values() if c.peer_ulid in mallory.identity.ulids and victim in c.peer.locators)
    assert not ctx.peer.verify(victim)
    wire.drop = lambda src, dst, msg: dst in mallory.identity.locators
    t = 2.0
    while t < 62.0:
        t = round(t + 0.05, 6)
        wire.now = t
        wire.deliver(b.observe(t, ctx.local_ulid, ctx.peer_ulid, outgoing=True) + b.tick(t))
        assert victim not in {p.remote for p in ctx.pairs.pairs.values()}  # no pair: never elected, never used
    assert events(b, "failure-detected")  # B did explore
    assert not [x for x in wire.log if x[2] == victim and x[1] in b.identity.locators and x[0] >= 1.0]


def test_a_locator_in_the_victims_subnet_gets_probes_only_at_a_bounded_rate():
    """An HBA set may span any prefix, the victim's too: its member there is proven, but no data goes to a
    locator before a probe exchange proved it (RFC 5534), and probes back off: count them."""
    a, b, wire, ca, cb = established()
    mallory = _attacker(["2001:db8:ee:1::", "2001:db8:a1:1::"])  # its second locator sits in A1's subnet
    own, in_victim_subnet = mallory.identity.locators
    wire = Wire(a, b, mallory)
    wire.deliver(mallory.connect(1.0, b.identity.ulids[0], own))
    ctx = next(c for c in b.contexts.values() if c.peer_ulid == own)
    assert in_victim_subnet in ctx.peer.locators and ctx.peer.verify(in_victim_subnet)
    # Mallory has B stream to it, then goes silent: B explores, and the victim's subnet is probed
    wire.drop = lambda src, dst, msg: dst in mallory.identity.locators
    start, seconds = 2.0, 60.0
    t = start
    while t < start + seconds:
        wire.deliver(b.observe(t, b.identity.ulids[0], own, outgoing=True))
        t = round(t + 0.05, 6)
        wire.now = t
        wire.deliver(b.tick(t))
    to_victim = [(when, type(msg).__name__) for when, src, dst, msg in wire.log
                 if dst == in_victim_subnet and when >= start]
    assert to_victim and {kind for _, kind in to_victim} == {"Probe"}
    # initial rounds at 0.2 s, then doubling to 4 s: 4 pairs share 4 slots per round; what the victim's
    # subnet gets in a minute is at most one probe per round per pair that reaches it
    rounds = 4 + sum(1 for k in range(20) if sum(min(0.2 * 2 ** i, 4.0) for i in range(k + 1)) <= seconds)
    assert len(to_victim) <= 2 * rounds, to_victim
    print(f"probes to the victim's subnet in {seconds:.0f} s: {len(to_victim)} (bound {2 * rounds})")
    assert ctx.pairs.preferred is None or ctx.pairs.preferred.remote != in_victim_subnet


# --- time-shifted attack ------------------------------------------------------------------------

def test_a_tag_learnt_on_the_path_is_useless_off_it():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    tag = cb.local_tag  # what an attacker on the path saw, before it left
    activity, rx = cb.last_activity, cb.reap.last_rx
    t = 1.0
    while t < TUNED.context_lifetime + 5:  # it sends from where it is now, once a second
        out = b.receive(t, ATTACKER, lb, _keepalive(tag))
        assert not [x for x in out if isinstance(x, Send)]
        b.receive(t, ATTACKER, lb, m.encode(m.UpdateRequest(receiver_context_tag=tag, request_nonce=7,
                                                             options=a.identity.locator_options(la, 5))))
        b.receive(t, ATTACKER, lb, m.encode(m.PayloadHeader(next_header=59, context_tag=tag)))
        assert cb.last_activity == activity and cb.reap.last_rx == rx
        b.tick(t)
        t += 1.0
    assert b.counters.foreign_sources >= 2 * int(TUNED.context_lifetime)
    expired = events(b, "context-expired")
    assert expired and expired[0].time <= activity + TUNED.context_lifetime + 1.0  # soft state bounds it
    assert not b.contexts


def test_state_installed_in_a_victims_name_sends_nothing_to_the_attacker_and_expires():
    """On the path at establishment, an attacker can replay A's parameters and open a context in A's
    name, listing itself as one more locator.  HBA does not prove that one: B never sends to it (no
    probe, no keepalive, no data), and with nobody behind the context it lapses after its soft-state
    lifetime, however long B goes on sending to A's ULID."""
    a = established()[0]
    la = a.identity.ulids[0]
    b = _attacker(["2001:db8:b1:1::", "2001:db8:b2:1::"], seed=2)  # a B with no context yet
    lb = b.identity.ulids[0]
    loclist, *rest = a.identity.locator_options(la, 0)  # what A sent in its I2, seen on the path
    forged = dataclasses.replace(loclist, locators=(*loclist.locators, ATTACKER),
                                 methods=(*loclist.methods, m.VERIFY_HBA))
    r1 = next(x for x in b.receive(10.0, la, lb, m.encode(m.I1(initiator_context_tag=99, initiator_nonce=5)))
              if isinstance(x, Send)).message
    i2 = m.I2(initiator_context_tag=99, initiator_nonce=5, responder_nonce=r1.responder_nonce,
              options=(m.option_of(r1, m.ResponderValidator), forged, *rest))
    b.receive(10.0, la, lb, m.encode(i2))
    (ctx,) = b.contexts.values()
    assert not ctx.peer.verify(ATTACKER) and all(ctx.peer.verify(x) for x in a.identity.locators)
    sent, t = [], 10.0
    while b.contexts and t < 10.0 + TUNED.context_lifetime + 5:
        t = round(t + 0.1, 6)
        sent += [x for x in b.observe(t, lb, la, outgoing=True) + b.tick(t) if isinstance(x, Send)]
    assert sent and not [x for x in sent if x.dst == ATTACKER]
    expired = events(b, "context-expired")
    assert expired and expired[0].time <= 10.0 + TUNED.context_lifetime + 0.2


def test_the_attackers_forged_messages_are_what_the_shim_refuses():
    a, b, wire, ca, cb = established()
    lb = b.identity.ulids[0]
    for kind in ("keepalive", "probe", "update"):
        data = m.encode(attack.forged(kind, cb.local_tag, ATTACKER))
        assert not [x for x in b.receive(3.0, ATTACKER, lb, data) if isinstance(x, Send)], kind
    assert b.counters.foreign_sources == 2 and b.counters.proof_failures == 1  # the update names itself
    data = m.encode(attack.forged("critical", 0, ATTACKER))
    assert [x for x in b.receive(3.0, ATTACKER, lb, data) if isinstance(x, IcmpError)]
    assert attack.parser().parse_args(["watch", "--dst", "2001:db8::1", "--from-net", "2001:db8::/32"]).seconds == 10
