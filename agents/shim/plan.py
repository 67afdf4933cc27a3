"""What the data path must do, computed from the engine's contexts (pure, unit-tested).

- **translate**: a context whose preferred pair is not its ULID pair sends with that pair,
  but only when the pair is reachable, the peer's locator is verified (HBA/CGA) *and* the
  pair was confirmed by a REAP probe exchange (``Context.confirmed``): a locator that never
  answered a probe never receives data (third-party flooding, RFC 5533 section 16).
- **restore**: packets carrying our context tag are accepted from each of the peer's
  verified locators to each of our locators.
- **watch**: every established context's ULID pair is counted, so that REAP sees data.

The thesis (6.4.2) and RFC 5533 agree that a context on its ULID pair sends packets
untouched.  Neither the thesis's pair state machine (fig. 21: the preferred pair changes only when
its own test fails or a local signal hits it) nor RFC 5534 (exploration follows a failure) moves a
working context back to its ULID pair, so a context stays translated until its pair fails.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

from .context import Context, ContextState
from .pairs import PairState

Address = ipaddress.IPv6Address
UlidPair = tuple[Address, Address]


@dataclass(frozen=True)
class Translation:
    local_locator: Address
    peer_locator: Address
    peer_tag: int


@dataclass(frozen=True)
class Plan:
    translate: dict[UlidPair, Translation] = field(default_factory=dict)
    restore: dict[tuple[int, Address, Address], UlidPair] = field(default_factory=dict)
    watch: frozenset[UlidPair] = frozenset()


def translation_for(ctx: Context) -> Translation | None:
    preferred = ctx.pairs.preferred if ctx.pairs else None
    if preferred is None or ctx.peer is None or ctx.peer_tag is None:
        return None
    if preferred.key == (ctx.local_ulid, ctx.peer_ulid):
        return None
    if preferred.state is not PairState.REACHABLE or preferred.key not in ctx.confirmed:
        return None
    if not ctx.peer.verify(preferred.remote):
        return None
    return Translation(preferred.local, preferred.remote, ctx.peer_tag)


def plan_for(contexts: Iterable[Context], local_locators: Iterable[Address]) -> Plan:
    translate: dict[UlidPair, Translation] = {}
    restore: dict[tuple[int, Address, Address], UlidPair] = {}
    watch: set[UlidPair] = set()
    locals_ = list(local_locators)
    for ctx in contexts:
        if ctx.state is not ContextState.ESTABLISHED or ctx.peer is None or ctx.peer_tag is None:
            continue
        ulids = (ctx.local_ulid, ctx.peer_ulid)
        watch.add(ulids)
        found = translation_for(ctx)
        if found is not None:
            translate[ulids] = found
        remotes = [loc for loc in {ctx.peer_ulid, *ctx.peer.locators} if ctx.peer.verify(loc)]
        for remote in remotes:
            for local in locals_:
                restore[(ctx.local_tag, remote, local)] = ulids
    return Plan(translate, restore, frozenset(watch))
