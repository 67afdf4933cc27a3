"""The balancer as a running service: :class:`~.core.BalancerCore` plus a clock and a timer.

It implements :class:`~.ports.BalancerPort` for frontends (in-process or remote) and carries
out the core's actions on their :class:`~.ports.RouterHandle`. Its only I/O is the asyncio
timer that runs deferred publications and expires leases.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Sequence

from .core import Action, AnswerLeaseSet, BalancerCore, Policy, SetPublishing
from .policy import fair_share
from .keys import DestinationKeys
from .ports import RouterHandle
from .structures import Lease

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0


class BalancerService:
    """Balancer for one Destination; frontends call the three event methods."""

    def __init__(
        self,
        keys: DestinationKeys,
        preferred_publishers: Sequence[str] = (),
        publish_count: int = 1,
        min_interval: float = 20.0,
        clock: Callable[[], float] = time.time,
        policy: Policy = fair_share,
        hold_s: float = 0.0,
        reannounce_every: float | None = None,
        reannounce_for: float = 180.0,
    ) -> None:
        self.keys = keys
        self.core = BalancerCore(
            build=keys.lease_set,
            preferred_publishers=tuple(preferred_publishers),
            publish_count=publish_count,
            min_interval=min_interval,
            policy=policy,
            hold_until=clock() + hold_s if hold_s else None,
            reannounce_every=reannounce_every or None,
            reannounce_for=reannounce_for,
        )
        self.clock = clock
        self.handles: dict[str, RouterHandle] = {}
        self._wake = asyncio.Event()

    # -- BalancerPort ---------------------------------------------------------------------------

    def router_up(self, handle: RouterHandle, identity: bytes | None = None, carried: bool = False) -> None:
        log.info("router %s: session up%s", handle.name, " (carries the published LeaseSet)" if carried else "")
        self.handles[handle.name] = handle
        self._apply(self.core.router_up(handle.name, self.clock(), identity, carried))

    def leases_requested(self, router: str, leases: Sequence[Lease]) -> None:
        log.info("router %s: %d leases", router, len(leases))
        self._apply(self.core.leases_requested(router, leases, self.clock()))

    def router_down(self, router: str) -> None:
        log.info("router %s: session lost", router)
        self.handles.pop(router, None)
        self._apply(self.core.router_down(router, self.clock()))

    # -- actions and timer ----------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            handle = self.handles.get(action.router)
            if handle is None:
                continue
            if isinstance(action, SetPublishing):
                handle.set_publishing(action.publish)
            elif isinstance(action, AnswerLeaseSet):
                handle.give_lease_set(action.lease_set)
        self._wake.set()

    async def run(self) -> None:
        """Tick at the core's deadline, and at least every TICK_SECONDS, forever."""
        next_tick = self.clock() + TICK_SECONDS
        while True:
            deadline = self.core.next_deadline()
            due = next_tick if deadline is None else min(next_tick, deadline)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, due - self.clock()))
                continue
            except asyncio.TimeoutError:
                pass
            self._apply(self.core.tick(self.clock()))
            next_tick = self.clock() + TICK_SECONDS

    def status(self) -> dict[str, object]:
        status = self.core.status()
        status["destination"] = self.keys.destination.b32_address
        return status
