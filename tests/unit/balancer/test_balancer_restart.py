"""The balancer process dies and starts again while a frontend keeps its router's I2CP session.

A real ``python -m agents.balancer balancer`` process behind a unix socket, a frontend with a scripted
router: while the balancer is gone, the router's lease request is answered with the last LeaseSet (i2pd
drops a session whose RequestVariableLeaseSet stays unanswered for 10 s); the restarted balancer hears
the live router again on its own and hands out a LeaseSet it built itself.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from balancer_fake_router import FakeRouter, make_leases

from agents.balancer.frontend import Frontend
from agents.balancer.keys import DestinationKeys
from agents.balancer.remote import RemoteBalancer

REPO = Path(__file__).resolve().parents[3]
OPTIONS = {"inbound.length": "0", "outbound.length": "0"}


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_frontend_keeps_its_session_and_rejoins_a_restarted_balancer(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    DestinationKeys.load_or_create(keys_file)
    keys = DestinationKeys.load(keys_file)
    endpoint = f"unix:{tmp_path / 'bal.sock'}"
    argv = [sys.executable, "-m", "agents.balancer", "balancer", "--keys", str(keys_file), "--listen", endpoint,
            "--min-interval", "0.2", "--policy", "primary", "--publisher", "r1"]

    async def scenario() -> None:
        router = FakeRouter(make_leases(1, 2, int(time.time() * 1000) + 600_000))
        await router.start()
        link = RemoteBalancer(endpoint, retry=0.1)
        front = Frontend("r1", "127.0.0.1", router.port, keys, link, None, OPTIONS, retry_min=0.05)
        balancer = await asyncio.create_subprocess_exec(*argv, cwd=REPO)
        tasks = [asyncio.create_task(link.run()), asyncio.create_task(front.run())]
        try:
            await until(lambda: front.is_up and link.links == 1)
            router.request_lease_set()
            await until(lambda: len(router.lease_sets) >= 1)
            given = len(router.lease_sets)
            last = router.lease_sets[-1].lease_set

            balancer.send_signal(signal.SIGSTOP)  # the balancer hangs with a lease request, then crashes
            router.request_lease_set()
            await until(lambda: link.awaiting)
            balancer.kill()
            await balancer.wait()
            await until(lambda: link.answered_alone == 1)  # answered by the frontend alone
            await until(lambda: len(router.lease_sets) == given + 1)
            assert router.lease_sets[-1].lease_set.to_bytes() == last.to_bytes()
            assert link._writer is None
            router.request_lease_set()  # the router wants a LeaseSet while nobody listens
            await until(lambda: len(router.lease_sets) == given + 2)
            assert router.lease_sets[-1].lease_set.to_bytes() == last.to_bytes() and link.answered_alone == 2
            assert front.is_up and router.created == 1 and not any(t.done() for t in tasks)
            assert link._up_message()["carried"]  # what the restarted balancer will hear first

            balancer = await asyncio.create_subprocess_exec(*argv, cwd=REPO)  # and starts again
            await until(lambda: link.links == 2 and len(router.lease_sets) > given + 2)
            fresh = router.lease_sets[-1].lease_set
            assert fresh.to_bytes() != last.to_bytes() and fresh.verify() and not link.awaiting
            assert {x.gateway for x in fresh.leases} == {x.gateway for x in router.leases}
            assert router.created == 1  # one I2CP session all along
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if balancer.returncode is None:
                balancer.kill()
                await balancer.wait()
            await router.stop()

    asyncio.run(scenario())
