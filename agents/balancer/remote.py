"""The multi-process layout: the same ports as the single-process one, over JSON-lines links.

frontend -> balancer   {"op": "up", "router": R, "identity": HEX|null, "carried": B}, {"op": "down", "router": R},
                       {"op": "leases", "router": R, "leases": [...]}
balancer -> frontend   {"op": "lease_set", "data": HEX}, {"op": "publish", "value": BOOL}
frontend -> backend    {"op": "payload", "router": R, "data": HEX}, {"op": "state", "router": R, "up": B, "published": B}
backend  -> frontend   {"op": "send", "to": HEX-destination, "data": HEX}, {"op": "lookup", "to": HEX-destination}

A dropped frontend link counts as that router's session being lost (by the balancer and by the backend).  A frontend whose balancer link drops
keeps its session and reconnects (a restarted balancer hears every live router again).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

from .links import open_link, read_lines, send_line, serve_link
from .ports import BackendPort, PayloadSender, RouterHandle
from .service import BalancerService
from .structures import Destination, Lease, LeaseSet2
from .wire import DecodeError

log = logging.getLogger(__name__)


def leases_to_json(leases: Sequence[Lease]) -> list[list[Any]]:
    return [[lease.gateway.hex(), lease.tunnel_id, lease.end_ms] for lease in leases]


def leases_from_json(items: Any) -> tuple[Lease, ...]:
    try:
        return tuple(Lease(bytes.fromhex(g), int(t), int(e)) for g, t, e in items)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"bad lease list: {exc}") from None


# -- frontend-process side ----------------------------------------------------------------------


async def connect_patiently(endpoint: str, timeout: float = 30.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a link, retrying while its server is not listening yet: processes of one layout start
    together (a lab starts them as services at once), so the first attempt may come too early."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await open_link(endpoint)
        except OSError as exc:
            if asyncio.get_running_loop().time() >= deadline:
                raise ConnectionError(f"{endpoint}: nobody listening after {timeout:.0f} s ({exc})") from None
            await asyncio.sleep(0.2)


class _Outbox:
    """Lines waiting for a link that may not be connected yet (sent in order once it is)."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.pending: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            send_line(self.writer, message)
        else:
            self.pending.append(message)

    def attach(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        for message in self.pending:
            send_line(writer, message)
        self.pending.clear()


class RemoteBalancer:
    """BalancerPort for a frontend whose balancer is another process.

    The link outlives the balancer: when it drops, the frontend keeps its I2CP session and reconnects
    (every ``retry`` s), then tells the new balancer what it knows now (the session is up, the router's
    identity, its last leases), so a restarted balancer rebuilds the LeaseSet from live routers.  While
    nobody listens, a router's RequestVariableLeaseSet is answered with the last LeaseSet the balancer
    gave, and so is a request the balancer took but never answered when its link drops: i2pd 2.45.1
    drops a session whose request is not answered within 10 s, and it checks only the signature, so the
    published LeaseSet stays what it was.  Only the first connection has a deadline
    (``connect_patiently``): a frontend started without a balancer fails visibly."""

    def __init__(self, endpoint: str, retry: float = 1.0) -> None:
        self.endpoint = endpoint
        self.retry = retry
        self.frontend: RouterHandle | None = None
        self.up = False
        self.identity: bytes | None = None
        self.leases: tuple[Lease, ...] | None = None
        self.last_lease_set: LeaseSet2 | None = None
        self.links = 0
        self.answered_alone = 0  # lease requests answered with the last LeaseSet while the balancer was away
        self.awaiting = False  # leases sent to the balancer, no LeaseSet back yet
        self._writer: asyncio.StreamWriter | None = None

    def _send(self, message: dict[str, Any]) -> bool:
        if self._writer is None or self._writer.is_closing():
            return False
        send_line(self._writer, message)
        return True

    def _up_message(self) -> dict[str, Any]:
        name = self.frontend.name if self.frontend else ""
        return {"op": "up", "router": name, "identity": self.identity.hex() if self.identity else None,
                "carried": self._carried()}

    def _carried(self) -> bool:
        """The router's tunnels are in the LeaseSet it holds: clients' sessions may be with it."""
        if self.leases is None or self.last_lease_set is None:
            return False
        mine = {(x.gateway, x.tunnel_id) for x in self.leases}
        return any((x.gateway, x.tunnel_id) in mine for x in self.last_lease_set.leases)

    def router_up(self, handle: RouterHandle, identity: bytes | None = None, carried: bool = False) -> None:
        self.frontend, self.up, self.identity, self.leases = handle, True, identity, None
        self._send(self._up_message())

    def leases_requested(self, router: str, leases: Sequence[Lease]) -> None:
        self.leases = tuple(leases)
        self.awaiting = True
        if not self._send({"op": "leases", "router": router, "leases": leases_to_json(leases)}):
            self._answer_alone()

    def _answer_alone(self) -> None:
        """The router waits for a LeaseSet and no balancer will give one: give it the last one again."""
        if self.awaiting and self.frontend is not None and self.last_lease_set is not None:
            self.awaiting = False
            self.answered_alone += 1
            self.frontend.give_lease_set(self.last_lease_set)

    def router_down(self, router: str) -> None:
        self.up, self.leases, self.awaiting = False, None, False
        self._send({"op": "down", "router": router})

    async def run(self) -> None:
        reader, writer = await connect_patiently(self.endpoint)
        while True:
            self._attach(writer)
            try:
                async for message in read_lines(reader):
                    self._handle(message)
            except OSError as exc:  # a crash with our last lines unread resets the link
                log.warning("balancer link %s: %s", self.endpoint, exc)
            writer.close()
            self._writer = None
            self._answer_alone()  # a request it took with it
            log.warning("balancer link %s closed: reconnecting every %.1f s", self.endpoint, self.retry)
            while True:
                await asyncio.sleep(self.retry)
                try:
                    reader, writer = await open_link(self.endpoint)
                    break
                except OSError:
                    continue

    def _attach(self, writer: asyncio.StreamWriter) -> None:
        """A (new) balancer: it knows nothing, so tell it the current state, not what happened meanwhile."""
        self._writer, self.links = writer, self.links + 1
        if self.up and self.frontend is not None:
            self._send(self._up_message())
            if self.leases is not None:
                self._send({"op": "leases", "router": self.frontend.name, "leases": leases_to_json(self.leases)})

    def _handle(self, message: dict[str, Any]) -> None:
        if self.frontend is None:
            return
        if message.get("op") == "lease_set":
            try:
                lease_set = LeaseSet2.from_bytes(bytes.fromhex(message["data"]))
            except (DecodeError, ValueError, KeyError) as exc:
                log.warning("bad lease_set from balancer: %s", exc)
                return
            self.last_lease_set, self.awaiting = lease_set, False
            self.frontend.give_lease_set(lease_set)
        elif message.get("op") == "publish":
            self.frontend.set_publishing(bool(message.get("value")))


class RemoteBackend:
    """BackendPort for a frontend whose backend is another process."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.frontend: PayloadSender | None = None
        self._out = _Outbox()

    def deliver(self, via: PayloadSender, payload: bytes) -> None:
        self.frontend = via
        self._out.send({"op": "payload", "router": via.name, "data": payload.hex()})

    def router_state(self, via: PayloadSender, up: bool, published: bool) -> None:
        self._out.send({"op": "state", "router": via.name, "up": up, "published": published})

    async def run(self, frontend: PayloadSender) -> None:
        self.frontend = frontend
        reader, writer = await connect_patiently(self.endpoint)
        self._out.attach(writer)
        async for message in read_lines(reader):
            if message.get("op") in ("send", "lookup"):
                try:
                    to = Destination.from_bytes(bytes.fromhex(message["to"]))
                    if message["op"] == "send":
                        frontend.send_payload(to, bytes.fromhex(message["data"]))
                    else:
                        frontend.prefetch(to)
                except (DecodeError, ValueError, KeyError) as exc:
                    log.warning("bad %s from backend: %s", message.get("op"), exc)
        raise ConnectionError("backend link closed")


# -- balancer- and backend-process side ---------------------------------------------------------


class _LinkedRouter:
    """RouterHandle / PayloadSender standing for a frontend at the other end of a link."""

    def __init__(self, name: str, writer: asyncio.StreamWriter) -> None:
        self.name, self.writer = name, writer

    def give_lease_set(self, lease_set: LeaseSet2) -> None:
        send_line(self.writer, {"op": "lease_set", "data": lease_set.to_bytes().hex()})

    def set_publishing(self, publish: bool) -> None:
        send_line(self.writer, {"op": "publish", "value": publish})

    def send_payload(self, to: Destination, payload: bytes) -> None:
        send_line(self.writer, {"op": "send", "to": to.to_bytes().hex(), "data": payload.hex()})

    def prefetch(self, destination: Destination) -> None:
        send_line(self.writer, {"op": "lookup", "to": destination.to_bytes().hex()})


async def serve_balancer(endpoint: str, service: BalancerService) -> asyncio.AbstractServer:
    """Accept frontends; each link's events go to the balancer service."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        names: set[str] = set()
        try:
            async for message in read_lines(reader):
                router = str(message.get("router", ""))
                op = message.get("op")
                if op == "up" and router:
                    names.add(router)
                    try:
                        identity = bytes.fromhex(message["identity"]) if message.get("identity") else None
                    except (TypeError, ValueError):
                        log.warning("frontend %s sent a bad identity: %r", router, message.get("identity"))
                        identity = None
                    service.router_up(_LinkedRouter(router, writer), identity, bool(message.get("carried")))
                elif op == "leases" and router in names:
                    try:
                        service.leases_requested(router, leases_from_json(message.get("leases")))
                    except DecodeError as exc:
                        log.warning("frontend %s sent bad leases: %s", router, exc)
                elif op == "down" and router in names:
                    names.discard(router)
                    service.router_down(router)
        finally:
            for router in names:
                service.router_down(router)
            writer.close()

    return await serve_link(endpoint, handle)


async def serve_backend(endpoint: str, backend: BackendPort) -> asyncio.AbstractServer:
    """Accept frontends; their payloads go to the one shared backend."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up: set[str] = set()  # routers this link said were up: a link that drops lost them (the frontend died)
        try:
            async for message in read_lines(reader):
                if message.get("op") == "payload":
                    try:
                        payload = bytes.fromhex(str(message.get("data", "")))
                    except ValueError:
                        continue
                    backend.deliver(_LinkedRouter(str(message.get("router", "?")), writer), payload)
                elif message.get("op") == "state":
                    router = str(message.get("router", "?"))
                    (up.add if message.get("up") else up.discard)(router)
                    backend.router_state(_LinkedRouter(router, writer),
                                         bool(message.get("up")), bool(message.get("published")))
        finally:
            for router in up:  # its clients are handed over like those of a crashed router
                backend.router_state(_LinkedRouter(router, writer), False, False)
            writer.close()

    return await serve_link(endpoint, handle)
