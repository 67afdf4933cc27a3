"""The asyncio layers against scripted I2CP routers on loopback: single-process layout with the
control socket, router loss and return, and the multi-process layout with the echo backend."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

from balancer_fake_router import FakeRouter, make_leases

from agents.balancer.backend import EchoBackend
from agents.balancer.control import query_status, serve_control
from agents.balancer.datagrams import PROTO_DATAGRAM, AppPayload, RepliableDatagram
from agents.balancer.frontend import Frontend
from agents.balancer.keys import DestinationKeys
from agents.balancer.remote import RemoteBackend, RemoteBalancer, serve_backend, serve_balancer
from agents.balancer.service import BalancerService
from agents.balancer.structures import router_identity_hash

KEYS = DestinationKeys.generate()
OPTIONS = {"inbound.length": "0", "outbound.length": "0"}


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def gateways(router: FakeRouter) -> set[int]:
    return {lease.gateway[0] for lease in router.lease_sets[-1].lease_set.leases} if router.lease_sets else set()


def test_single_process_balancer_merges_fails_over_and_rejoins(tmp_path: Path) -> None:
    async def scenario() -> None:
        end = int(time.time() * 1000) + 600_000
        r1, r2 = FakeRouter(make_leases(1, 3, end)), FakeRouter(make_leases(2, 3, end))
        await r1.start(), await r2.start()
        service = BalancerService(KEYS, preferred_publishers=("r1",), min_interval=0.3)
        backend = EchoBackend(KEYS)
        fronts = [
            Frontend(name, "127.0.0.1", r.port, KEYS, service, backend, OPTIONS, retry_min=0.05, retry_max=0.2)
            for name, r in (("r1", r1), ("r2", r2))
        ]
        control = f"unix:{tmp_path / 'ctl.sock'}"
        await serve_control(control, service.status)
        tasks = [asyncio.create_task(t) for t in (service.run(), fronts[0].run(), fronts[1].run())]
        try:
            await until(lambda: all(f.is_up for f in fronts))
            await until(lambda: r1.publishing[-1:] == [True] and r2.publishing[-1:] == [False])
            r1.request_lease_set(), r2.request_lease_set()
            await until(lambda: gateways(r1) == {1, 2} and gateways(r2) == {1, 2})
            assert r1.lease_sets[-1].lease_set == r2.lease_sets[-1].lease_set
            status = await asyncio.to_thread(query_status, control)
            assert status["destination"] == KEYS.destination.b32_address
            assert len(status["routers"]["r1"]["leases"]) == 3 and len(status["routers"]["r2"]["leases"]) == 3
            assert status["routers"]["r1"]["publishing"] and not status["routers"]["r2"]["publishing"]
            published = r1.lease_sets[-1].lease_set.published

            await r1.stop()  # the publishing router dies
            await until(lambda: r2.publishing[-1:] == [True] and gateways(r2) == {2})
            assert r2.lease_sets[-1].lease_set.published > published
            status = await asyncio.to_thread(query_status, control)
            assert status["routers"]["r1"]["up"] is False and status["routers"]["r1"]["leases"] == []

            await r1.start()  # same port: the frontend reconnects by itself
            await until(lambda: fronts[0].is_up, timeout=5)
            r1.request_lease_set()  # the preferred publisher publishes again once its leases are published
            await until(lambda: gateways(r2) == {1, 2} and gateways(r1) == {1, 2} and r1.publishing[-1:] == [True]
                        and r2.publishing[-1:] == [False])
            assert fronts[0].stats.sessions == 2 and fronts[0].stats.losses == 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await r1.stop(), await r2.stop()

    asyncio.run(scenario())


def test_multi_process_layout_over_links_with_echo_backend(tmp_path: Path) -> None:
    async def scenario() -> None:
        end = int(time.time() * 1000) + 600_000
        routers = {"r1": FakeRouter(make_leases(1, 2, end)), "r2": FakeRouter(make_leases(2, 2, end))}
        for r in routers.values():
            await r.start()
        service = BalancerService(KEYS, min_interval=0.2)
        echo = EchoBackend(KEYS)
        bal_ep, back_ep = f"unix:{tmp_path / 'bal.sock'}", f"unix:{tmp_path / 'back.sock'}"
        await serve_balancer(bal_ep, service)
        await serve_backend(back_ep, echo)
        tasks = [asyncio.create_task(service.run())]
        fronts = []
        for name, r in routers.items():
            remote_bal, remote_back = RemoteBalancer(bal_ep), RemoteBackend(back_ep)
            info = tmp_path / f"{name}.router.info"
            info.write_bytes(bytes([ord(name[-1])]) * 384 + b"\x05\x00\x00" + b"rest of the router info")
            front = Frontend(name, "127.0.0.1", r.port, KEYS, remote_bal, remote_back, OPTIONS, retry_min=0.05,
                             router_info=info)
            fronts.append(front)
            tasks += [asyncio.create_task(c) for c in (remote_bal.run(), remote_back.run(front), front.run())]
        try:
            await until(lambda: set(service.handles) == {"r1", "r2"})
            # each frontend told its router's identity hash (what the others' leases name as gateway)
            assert service.core.routers["r1"].identity == router_identity_hash(bytes([ord("1")]) * 384 + b"\x05\x00\x00")
            for r in routers.values():
                r.request_lease_set()
            await until(lambda: all(gateways(r) == {1, 2} for r in routers.values()))
            assert sum(r.publishing[-1] for r in routers.values()) == 1

            client = DestinationKeys.generate()
            request = AppPayload(PROTO_DATAGRAM, 4000, 5000, RepliableDatagram.signed_by(client, b"ping 7").to_bytes())
            routers["r2"].deliver(request.to_bytes())
            await until(lambda: len(routers["r2"].sent) == 1)
            sent = routers["r2"].sent[0]
            assert sent.destination == client.destination
            reply = AppPayload.from_bytes(sent.payload)
            assert (reply.src_port, reply.dst_port) == (5000, 4000)
            answer = RepliableDatagram.from_bytes(reply.data)
            assert answer.data == b"ping 7" and answer.verify() and answer.sender == KEYS.destination
            routers["r1"].deliver(b"not gzip")
            await until(lambda: echo.rejected["r1"] == 1)
            assert echo.replied == {"r2": 1} and routers["r1"].sent == []

            assert echo.status()["routers"]["r2"]["up"]
            # r2's frontend process is killed: its links just drop (no "down" said), and the balancer and
            # the backend both lose r2 (the backend then hands r2's clients over)
            for task in tasks[-3:]:
                task.cancel()
            remote_back._out.writer.close()
            await until(lambda: service.core.routers["r2"].up is False)
            await until(lambda: echo.status()["routers"]["r2"]["up"] is False)
            await until(lambda: gateways(routers["r1"]) == {1})
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for r in routers.values():
                await r.stop()

    asyncio.run(scenario())
