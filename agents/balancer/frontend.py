"""A frontend: owns the Destination's I2CP session on ONE router (asyncio, thin).

i2pd accepts one session per Destination per router, so the frontend's session is the one the
balancer steers too: RequestVariableLeaseSet goes to the balancer, the balancer's LeaseSet comes
back through here, and incoming messages go to the backend. When the connection drops the
balancer is told at once (it drops this router's leases) and the frontend reconnects with
backoff. Given the router's ``router.info`` it tells the balancer the router's identity hash, so
that the other routers' tunnels through this one are dropped too when it dies.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .keys import DestinationKeys
from .ports import BackendPort, BalancerPort
from .session import (
    DONT_PUBLISH,
    ClientSession,
    LeasesRequested,
    PayloadReceived,
    Reconfigured,
    SessionClosed,
    SessionUp,
    State,
)
from .structures import Destination, LeaseSet2, RouterInfoError, router_identity_hash

log = logging.getLogger(__name__)

# Tunnel options for the lab: an I2CP destination whose inbound tunnels are ready before its outbound ones
# does not publish for ~10 minutes in i2pd 2.45.1, so outbound.length = 0 (docs/i2p-proposal-140.md).
DEFAULT_OPTIONS = {
    "inbound.length": "1",
    "inbound.quantity": "3",
    "outbound.length": "0",
    "outbound.quantity": "2",
    "i2cp.leaseSetType": "3",
    "i2cp.leaseSetEncType": "4",
    DONT_PUBLISH: "true",
}


@dataclass
class FrontendStats:
    connects: int = 0
    sessions: int = 0
    losses: int = 0
    lease_sets_given: int = 0
    payloads_in: int = 0
    payloads_out: int = 0
    lookups: int = 0
    last_error: str = ""


class Frontend:
    """Keeps one I2CP session for the Destination on one router, reconnecting as needed."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        keys: DestinationKeys,
        balancer: BalancerPort,
        backend: BackendPort | None = None,
        options: dict[str, str] | None = None,
        retry_min: float = 1.0,
        retry_max: float = 10.0,
        router_info: Path | None = None,
    ) -> None:
        self.name, self.host, self.port = name, host, port
        self.router_info = router_info
        self.identity: bytes | None = None
        self.keys = keys
        self.balancer = balancer
        self.backend = backend
        self.options = dict(DEFAULT_OPTIONS if options is None else options)
        self.retry_min, self.retry_max = retry_min, retry_max
        self.stats = FrontendStats()
        self._session: ClientSession | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._nonces = itertools.count(1)
        self._publish = False
        self._tunnels: set[tuple[bytes, int]] = set()
        self._published = False

    # -- RouterHandle / PayloadSender -----------------------------------------------------------

    def give_lease_set(self, lease_set: LeaseSet2) -> None:
        if self._session is not None and self._session.state is State.UP:
            self._session.give_lease_set(lease_set)
            self.stats.lease_sets_given += 1
            self._flush()
            published = bool(self._tunnels & {(x.gateway, x.tunnel_id) for x in lease_set.leases})
            if published != self._published:
                self._published = published
                self._tell_backend()

    def set_publishing(self, publish: bool) -> None:
        self._publish = publish
        if self._session is not None:
            self._session.set_publishing(publish, _now_ms())
            self._flush()

    def send_payload(self, to: Destination, payload: bytes) -> None:
        if self._session is not None and self._session.state is State.UP:
            self._session.send_payload(to, payload, next(self._nonces) & 0xFFFFFFFF)
            self.stats.payloads_out += 1
            self._flush()

    def prefetch(self, destination: Destination) -> None:
        if self._session is not None and self._session.state is State.UP:
            self._session.lookup(destination.ident_hash)
            self.stats.lookups += 1
            self._flush()

    @property
    def is_up(self) -> bool:
        return self._session is not None and self._session.state is State.UP

    # -- connection loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, and reconnect forever (cancel the task to stop)."""
        delay = self.retry_min
        while True:
            started = time.monotonic()
            try:
                await self._serve_once()
            except (OSError, asyncio.IncompleteReadError) as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() - started > 30:
                delay = self.retry_min
            log.info("frontend %s: reconnecting in %.1fs (%s)", self.name, delay, self.stats.last_error)
            await asyncio.sleep(delay)
            delay = min(self.retry_max, delay * 2)

    async def _serve_once(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.stats.connects += 1
        # Every session starts silent; the balancer promotes its chosen publishers once up.
        self._publish = False
        session = ClientSession(self.keys, {**self.options, DONT_PUBLISH: "true"})
        self._session, self._writer = session, writer
        announced = False
        try:
            session.start()
            self._flush()
            while session.state is not State.CLOSED:
                data = await reader.read(65536)
                events = session.receive(data, _now_ms()) if data else session.connection_lost()
                for event in events:
                    announced = self._dispatch(event) or announced
                self._flush()
        finally:
            if session.state is not State.CLOSED:
                session.destroy()
            self._session, self._writer = None, None
            writer.close()
            if announced:
                self.stats.losses += 1
                self.balancer.router_down(self.name)
                self._published, self._tunnels = False, set()
                self._tell_backend()

    def _read_identity(self) -> bytes | None:
        """The router's identity hash from its router.info (i2pd rewrites the file now and then: a
        read that finds it cut short keeps the hash read before)."""
        if self.router_info is not None:
            try:
                self.identity = router_identity_hash(self.router_info.read_bytes())
            except (OSError, RouterInfoError) as exc:
                log.warning("frontend %s: router identity not read from %s: %s", self.name, self.router_info, exc)
        return self.identity

    def _tell_backend(self) -> None:
        if self.backend is not None:
            self.backend.router_state(self, self.is_up, self._published)

    def _dispatch(self, event: object) -> bool:
        """Route one session event; True when the session just came up."""
        if isinstance(event, SessionUp):
            self.stats.sessions += 1
            log.info("frontend %s: session %d up", self.name, event.session_id)
            self.balancer.router_up(self, self._read_identity())
            self._tell_backend()
            return True
        if isinstance(event, LeasesRequested):
            self._tunnels = {(x.gateway, x.tunnel_id) for x in event.leases}
            self.balancer.leases_requested(self.name, event.leases)
        elif isinstance(event, PayloadReceived):
            self.stats.payloads_in += 1
            if self.backend is not None:
                self.backend.deliver(self, event.payload)
        elif isinstance(event, Reconfigured) and not event.accepted:
            log.warning("frontend %s: router rejected ReconfigureSession", self.name)
        elif isinstance(event, SessionClosed):
            self.stats.last_error = event.reason
            log.warning("frontend %s: %s", self.name, event.reason)
        return False

    def _flush(self) -> None:
        if self._session is None or self._writer is None:
            return
        data = self._session.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    def status(self) -> dict[str, object]:
        return {"name": self.name, "router": f"{self.host}:{self.port}", "up": self.is_up,
                "identity": self.identity.hex() if self.identity else None, **self.stats.__dict__}


def _now_ms() -> int:
    return int(time.time() * 1000)
