"""Four-way context establishment (thesis fig. 22; RFC 5533 section 7) between two engines."""

import ipaddress
import random
import tracemalloc

from agents.shim import messages as m
from agents.shim.actions import Send
from agents.shim.context import ContextState
from agents.shim.policy import ContextPolicy
from agents.shim.timers import TUNED

from .lab import Wire, events, make_engine


def pair(policy=None):
    a, b = make_engine("a", 1, policy=policy), make_engine("b", 2)
    return a, b, Wire(a, b)


def establish(a, b, wire):
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    return a.contexts_view(), b.contexts_view()


def test_four_way_exchange_establishes_both_ends_with_receiver_chosen_tags():
    a, b, wire = pair()
    establish(a, b, wire)
    assert wire.types() == ["I1", "R1", "I2", "R2"]
    (ca,), (cb,) = a.contexts.values(), b.contexts.values()
    assert ca.state is cb.state is ContextState.ESTABLISHED
    assert ca.peer_tag == cb.local_tag and cb.peer_tag == ca.local_tag  # each tag chosen by its receiver
    assert ca.peer.locators == b.identity.hba_set.addresses
    assert cb.peer.locators == a.identity.hba_set.addresses
    assert ca.pairs.preferred.key == (a.identity.ulids[0], b.identity.ulids[0])
    assert len(ca.pairs.pairs) == 4
    i2 = wire.log[2][3]
    assert m.option_of(i2, m.ResponderValidator).validator == m.option_of(wire.log[1][3], m.ResponderValidator).validator
    assert m.option_of(i2, m.CgaParameterDataStructure) is not None


def test_responder_keeps_no_state_for_a_spoofed_i1_flood_and_still_serves():
    a, b, wire = pair()
    rng = random.Random(7)
    target = b.identity.ulids[0]
    spoofed = [ipaddress.IPv6Address(bytes.fromhex("20010db8ee") + rng.randbytes(11)) for _ in range(3000)]
    b.receive(0.0, spoofed[0], target, m.encode(m.I1(initiator_context_tag=1, initiator_nonce=1)))  # warm up
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i, src in enumerate(spoofed):
        out = b.receive(0.0, src, target, m.encode(m.I1(initiator_context_tag=i + 1, initiator_nonce=i)))
        assert type(out[0].message).__name__ == "R1"
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert b.contexts == {} and b.counters.i1_answered == 3001
    assert grown < 64 * 1024, f"responder grew by {grown} bytes over 3000 I1s"
    establish(a, b, wire)
    assert len(b.contexts) == 1


def test_i2_with_a_forged_validator_creates_nothing():
    a, b, wire = pair()
    wire.drop = lambda s, d, msg: isinstance(msg, m.I2)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    i2 = wire.log[-1][3]
    forged = m.I2(initiator_context_tag=i2.initiator_context_tag, initiator_nonce=i2.initiator_nonce,
                  responder_nonce=i2.responder_nonce,
                  options=(m.ResponderValidator(validator=bytes(20)),) + i2.options[1:])
    out = b.receive(0.0, a.identity.ulids[0], b.identity.ulids[0], m.encode(forged))
    assert b.contexts == {} and b.counters.bad_validators == 1 and out[0].kind == "bad-validator"


def test_validator_survives_one_secret_rotation_but_not_two():
    a, b, wire = pair()
    wire.drop = lambda s, d, msg: isinstance(msg, m.I2)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    raw = m.encode(wire.log[-1][3])
    src, dst = a.identity.ulids[0], b.identity.ulids[0]
    life = b.profile.validator_lifetime
    assert b.receive(2.5 * life, src, dst, raw)[0].kind == "bad-validator"
    a2, b2, wire2 = pair()
    wire2.drop = lambda s, d, msg: isinstance(msg, m.I2)
    wire2.deliver(a2.connect(0.0, b2.identity.ulids[0]))
    out = b2.receive(1.2 * life, src, dst, m.encode(wire2.log[-1][3]))
    assert any(getattr(e, "kind", "") == "context-established" for e in out)


def test_a_tampered_parameter_structure_is_refused():
    a, b, wire = pair()
    wire.drop = lambda s, d, msg: isinstance(msg, m.I2)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    i2 = wire.log[-1][3]
    pds = bytearray(m.option_of(i2, m.CgaParameterDataStructure).pds)
    pds[0] ^= 0xFF  # modifier
    options = tuple(m.CgaParameterDataStructure(pds=bytes(pds)) if isinstance(o, m.CgaParameterDataStructure) else o
                    for o in i2.options)
    tampered = m.I2(initiator_context_tag=i2.initiator_context_tag, initiator_nonce=i2.initiator_nonce,
                    responder_nonce=i2.responder_nonce, options=options)
    out = b.receive(0.0, a.identity.ulids[0], b.identity.ulids[0], m.encode(tampered))
    assert b.contexts == {} and out[0].kind == "locator-proof-failed"


def test_a_locator_outside_the_hba_set_is_never_used():
    a, b, wire = pair()
    intruder = ipaddress.IPv6Address("2001:db8:ee::66")
    real = a.identity.locator_options

    def with_intruder(ulid, generation):
        loclist, *rest = real(ulid, generation)
        forged = m.LocatorList(generation=generation, methods=loclist.methods + (m.VERIFY_HBA,),
                               locators=loclist.locators + (intruder,))
        return (forged, *rest)

    a.identity.locator_options = with_intruder
    establish(a, b, wire)
    (cb,) = b.contexts.values()
    assert intruder in cb.peer.locators and cb.peer.verify(intruder) is False
    assert cb.peer.verify(a.identity.ulids[1]) is True
    assert all(p.remote != intruder for p in __import__("agents.shim.reap", fromlist=["x"])._next_candidates(cb, 99))


def test_retransmissions_back_off_then_peer_is_remembered_without_shim():
    a, b, wire = pair()
    wire.drop = lambda s, d, msg: True
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    wire.run_until(150.0, step=0.5)
    sent = [t for t, _, _, msg in wire.log if isinstance(msg, m.I1)]
    assert sent == [0.0, 4.0, 12.0, 28.0, 60.0]  # 4 s, then doubling; I1_RETRIES_MAX = 4
    assert a.contexts == {} and events(a, "peer-without-shim")
    assert a.no_shim[b.identity.ulids[0]] == 124.0 + 60.0  # gave up at 124 s, + NO_R1_HOLDDOWN_TIME
    wire.log.clear()
    assert a.connect(150.0, b.identity.ulids[0])[0].kind == "peer-without-shim"
    assert wire.log == [] and a.contexts == {}
    wire.run_until(185.0, step=0.5)
    assert b.identity.ulids[0] not in a.no_shim


def test_icmp_parameter_problem_marks_peer_without_shim():
    a, b, wire = pair()
    wire.drop = lambda s, d, msg: True
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    a.icmp_parameter_problem(0.1, b.identity.ulids[0])
    assert a.contexts == {} and a.no_shim[b.identity.ulids[0]] == 0.1 + a.profile.icmp_holddown


def test_i2_is_retransmitted_and_a_duplicate_i2_gets_the_same_r2():
    a, b, wire = pair()
    drops = iter([False, False, False, True])  # lose the first R2
    wire.drop = lambda s, d, msg: next(drops, False)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    wire.run_until(5.0, step=0.5)
    assert wire.types() == ["I1", "R1", "I2", "R2", "I2", "R2"]
    assert len(b.contexts) == 1 and a.contexts_view()[0]["state"] == "established"


def test_r1bis_and_i2bis_recover_a_context_the_responder_lost():
    a, b, wire = pair()
    establish(a, b, wire)
    (ca,) = a.contexts.values()
    b.contexts.clear()
    wire.log.clear()
    out = b.receive(1.0, a.identity.ulids[0], b.identity.ulids[0], m.encode(m.PayloadHeader(6, ca.peer_tag)))
    wire.deliver(out)
    assert wire.types() == ["R1bis", "I2bis", "R2"]
    (cb,) = b.contexts.values()
    assert cb.local_tag == ca.peer_tag and ca.state is ContextState.ESTABLISHED


def test_policy_after_n_packets_starts_the_exchange_on_the_nth():
    a, b, wire = pair(policy=ContextPolicy.parse("packets:3"))
    flow = (a.identity.ulids[0], b.identity.ulids[0])
    assert a.observe(0.1, *flow, outgoing=True) == [] and a.observe(0.2, *flow, outgoing=False) == []
    wire.deliver(a.observe(0.3, *flow, outgoing=True))
    assert wire.types() == ["I1", "R1", "I2", "R2"]


def test_policy_after_t_seconds():
    policy = ContextPolicy.parse("seconds:5")
    a = make_engine("a", 1, policy=policy)
    flow = (a.identity.ulids[0], ipaddress.IPv6Address("2001:db8:b1:1::1"))
    assert a.observe(0.0, *flow, outgoing=True) == []
    assert a.observe(4.0, *flow, outgoing=True) == []
    assert [type(x.message).__name__ for x in a.observe(5.0, *flow, outgoing=True) if hasattr(x, "message")] == ["I1"]


def test_soft_state_removes_idle_contexts_on_both_sides():
    a, b = make_engine("a", 1, TUNED), make_engine("b", 2, TUNED)
    wire = Wire(a, b)
    establish(a, b, wire)
    wire.run_until(TUNED.context_lifetime - 1, step=1.0)
    assert len(a.contexts) == len(b.contexts) == 1
    wire.run_until(TUNED.context_lifetime + 1, step=1.0)
    assert a.contexts == {} and b.contexts == {}
    assert events(a, "context-expired") and events(b, "context-expired")


def test_crossing_i1s_end_with_matching_tags_on_both_ends():
    """Both agents see the same flow and start at once (RFC 5533 simultaneous establishment): the I1s
    cross, each end answers the other's I2, and both must agree on both context tags."""
    a, b, wire = pair()
    ua, ub = a.identity.ulids[0], b.identity.ulids[0]
    first_a, first_b = a.connect(0.0, ub), b.connect(0.0, ua)
    wire.deliver(first_a + first_b)  # breadth-first: I1, I1, R1, R1, I2, I2, R2, R2
    (ca,), (cb,) = a.contexts.values(), b.contexts.values()
    assert ca.state is cb.state is ContextState.ESTABLISHED
    assert ca.peer_tag == cb.local_tag and cb.peer_tag == ca.local_tag


def test_update_request_with_a_foreign_locator_is_refused_and_counted():
    a, b, wire = pair()
    establish(a, b, wire)
    (ca,) = a.contexts.values()
    before = ca.peer.locators
    attacker = ipaddress.IPv6Address("2001:db8:f000::66")
    forged = m.UpdateRequest(receiver_context_tag=ca.local_tag, request_nonce=7,
                             options=(m.LocatorList(generation=99, methods=(0,), locators=(attacker,)),))
    out = a.receive(1.0, b.identity.ulids[0], a.identity.ulids[0], m.encode(forged))
    assert a.counters.proof_failures == 1
    assert ca.peer.locators == before
    assert not [x for x in out if isinstance(x, m.UpdateAck) or type(getattr(x, "message", None)) is m.UpdateAck]


def _sent(wire, kind):
    return [(src, dst, msg) for _, src, dst, msg in wire.log if isinstance(msg, kind)]


def _moved(ctx, now):
    """Give the context working state a reset would lose: another preferred pair, proven by a probe."""
    other = next(p for p in ctx.pairs.pairs.values() if p is not ctx.pairs.preferred)
    ctx.pairs.prefer(now, other)
    ctx.confirmed.add(other.key)
    return other.key


def test_a_replayed_i2_leaves_the_established_context_as_it_is():
    """RFC 5533 7.15 lets an I2 update an established context, and its validator is good for two
    validator lifetimes: whoever saw A's I2 could replay it.  B answers the copy (a retransmission
    looks the same: its R2 may have been lost) and keeps its tags, its pair in use and its soft state."""
    a, b, wire = pair()
    establish(a, b, wire)
    ((src, dst, i2),) = _sent(wire, m.I2)
    (cb,) = b.contexts.values()
    key, tags, activity = _moved(cb, 1.0), (cb.local_tag, cb.peer_tag), cb.last_activity
    out = b.receive(0.5 * b.profile.validator_lifetime, src, dst, m.encode(i2))
    assert [x.message for x in out if isinstance(x, Send)][0].responder_context_tag == cb.local_tag  # an R2
    assert list(b.contexts.values()) == [cb] and (cb.local_tag, cb.peer_tag) == tags
    assert cb.pairs.preferred.key == key and cb.last_activity == activity
    assert b.counters.repeated_i2 == 1 and events(b, "i2-repeated")


def test_an_old_i2_replayed_after_the_peer_reestablished_does_not_undo_it():
    """A restarted and opened a new context (a fresh exchange: B replaces its state, RFC 5533 7.15).
    A copy of A's first I2, replayed while its validator is still good, must not bring back the old
    tags: A no longer knows them, and B's messages would go unheard."""
    a, b, wire = pair()
    establish(a, b, wire)
    ((src, dst, old),) = _sent(wire, m.I2)
    a.contexts.clear()
    wire.deliver(a.connect(1.0, b.identity.ulids[0]))
    (ca,), (cb,) = a.contexts.values(), b.contexts.values()
    assert cb.peer_tag == ca.local_tag != old.initiator_context_tag
    b.receive(2.0, src, dst, m.encode(old))
    assert list(b.contexts.values()) == [cb] and cb.peer_tag == ca.local_tag and ca.peer_tag == cb.local_tag


def test_a_replayed_i2bis_does_not_reset_the_recovered_context():
    a, b, wire = pair()
    establish(a, b, wire)
    (ca,) = a.contexts.values()
    b.contexts.clear()
    wire.log.clear()
    wire.deliver(b.receive(1.0, a.identity.ulids[0], b.identity.ulids[0], m.encode(m.PayloadHeader(6, ca.peer_tag))))
    ((src, dst, i2bis),) = _sent(wire, m.I2bis)
    (cb,) = b.contexts.values()
    key = _moved(cb, 1.5)
    b.receive(2.0, src, dst, m.encode(i2bis))
    assert list(b.contexts.values()) == [cb] and cb.pairs.preferred.key == key and b.counters.repeated_i2 == 1
