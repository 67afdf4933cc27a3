"""Command line: ``python -m agents.balancer {keygen,run,balancer,frontend,backend}``.

``run`` is the single-process layout (balancer + one frontend per router + backend). The other
three are the proposal's multi-client layout, one process each, joined by local JSON links.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from .backend import EchoBackend
from .control import serve_control, write_status_file
from .frontend import DEFAULT_OPTIONS, Frontend
from .keys import DestinationKeys
from .handover import Handover
from .policy import POLICIES, make_policy
from .remote import RemoteBackend, RemoteBalancer, serve_backend, serve_balancer
from .service import BalancerService


def _router(text: str) -> tuple[str, str, int]:
    name, _, address = text.partition("=")
    host, _, port = address.rpartition(":")
    if not (name and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=HOST:PORT")
    return name, host, int(port)


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not (key and sep):
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agents.balancer", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    keygen = sub.add_parser("keygen", help="create the Destination's key file, print its .b32.i2p")
    keygen.add_argument("--keys", type=Path, required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--keys", type=Path, required=True, help="key file (created if missing)")
        p.add_argument("--control", help="JSON control endpoint, e.g. unix:/run/balancer.sock")
        p.add_argument("--status-file", type=Path, help="rewrite this JSON status file every second")

    def balancing(p: argparse.ArgumentParser) -> None:
        p.add_argument("--publisher", action="append", default=[], help="preferred publishing router")
        p.add_argument("--publish-count", type=int, default=1)
        p.add_argument("--min-interval", type=float, default=20.0, help="seconds between LeaseSets")
        p.add_argument("--policy", choices=sorted(POLICIES), default="fair_share",
                       help="which leases to publish: a fair share of every router's, one primary router's, "
                            "or gateway_aware: only leases through a small sticky set of inbound gateways")
        p.add_argument("--gateways", type=int, default=None,
                       help="gateway_aware: distinct inbound gateways to publish (default: what one router "
                            "with as many tunnels shows, its gateways drawn from the peers the routers use)")
        p.add_argument("--reannounce-every", type=float, default=5.0, metavar="S",
                       help="after a router is lost or comes back, hand the same leases out again every S "
                            "seconds under a newer published time, so each router re-checks the path of "
                            "every client session (i2pd keeps a dead one 30 s); 0: never (default 5)")
        p.add_argument("--reannounce-for", type=float, default=180.0, metavar="S",
                       help="for how long after such an event (default 180: while the sessions a handover "
                            "opened are young and lose sync after a few tens of lost answers)")

    def tunnels(p: argparse.ArgumentParser) -> None:
        p.add_argument("--option", type=_option, action="append", default=[], help="I2CP option KEY=VALUE")

    def handing_over(p: argparse.ArgumentParser) -> None:
        p.add_argument("--handover", action=argparse.BooleanOptionalAction, default=True,
                       help="when a router is lost, send its silent clients a datagram through a survivor "
                            "so that their i2pd opens a new end-to-end session there (default: on)")

    run = sub.add_parser("run", help="single process: balancer, frontends and backend")
    common(run), balancing(run), tunnels(run), handing_over(run)
    run.add_argument("--router", type=_router, action="append", required=True, help="NAME=HOST:PORT (I2CP)")

    bal = sub.add_parser("balancer", help="balancer process (frontends connect to --listen)")
    common(bal), balancing(bal)
    bal.add_argument("--listen", required=True)
    bal.add_argument("--hold", type=float, default=2.0,
                     help="seconds after start before the first LeaseSet: frontends of a restarted balancer "
                          "reconnect meanwhile and say which router carried the published one (default 2)")

    front = sub.add_parser("frontend", help="frontend process for one router")
    common(front), tunnels(front)
    front.add_argument("--router", type=_router, required=True, help="NAME=HOST:PORT (I2CP)")
    front.add_argument("--balancer", required=True, help="balancer endpoint")
    front.add_argument("--backend", help="backend endpoint")
    front.add_argument("--router-info", type=Path, help="the router's router.info: its identity hash goes to "
                       "the balancer, which then drops the other routers' tunnels through it when it dies")

    back = sub.add_parser("backend", help="shared backend process (echo service)")
    common(back), handing_over(back)
    back.add_argument("--listen", required=True)
    return parser


async def _serve(args: argparse.Namespace, status: Callable[[], dict[str, Any]], tasks: list[Awaitable[Any]]) -> None:
    if args.control:
        await serve_control(args.control, status)
    if args.status_file:
        tasks.append(write_status_file(args.status_file, status))
    await asyncio.gather(*tasks)


async def _main(args: argparse.Namespace) -> None:
    keys = DestinationKeys.load_or_create(args.keys)
    options = {**DEFAULT_OPTIONS, **dict(getattr(args, "option", []))}
    if args.command == "run":
        service = BalancerService(keys, args.publisher, args.publish_count, args.min_interval,
                                  policy=make_policy(args.policy, args.gateways),
                                  reannounce_every=args.reannounce_every, reannounce_for=args.reannounce_for)
        backend = EchoBackend(keys, handover=Handover() if args.handover else None)
        frontends = [Frontend(n, h, p, keys, service, backend, options) for n, h, p in args.router]

        def status() -> dict[str, Any]:
            return {**service.status(), "frontends": [f.status() for f in frontends], "backend": backend.status()}

        await _serve(args, status, [service.run(), backend.run(), *(f.run() for f in frontends)])
    elif args.command == "balancer":
        service = BalancerService(keys, args.publisher, args.publish_count, args.min_interval,
                                  policy=make_policy(args.policy, args.gateways), hold_s=args.hold,
                                  reannounce_every=args.reannounce_every, reannounce_for=args.reannounce_for)
        await serve_balancer(args.listen, service)
        await _serve(args, service.status, [service.run()])
    elif args.command == "frontend":
        name, host, port = args.router
        balancer = RemoteBalancer(args.balancer)
        backend = RemoteBackend(args.backend) if args.backend else None
        frontend = Frontend(name, host, port, keys, balancer, backend, options, router_info=args.router_info)
        tasks: list[Awaitable[Any]] = [balancer.run(), frontend.run()]
        if backend is not None:
            tasks.append(backend.run(frontend))
        await _serve(args, lambda: {**frontend.status(), "balancer_links": balancer.links,
                                    "answered_alone": balancer.answered_alone}, tasks)
    elif args.command == "backend":
        echo = EchoBackend(keys, handover=Handover() if args.handover else None)
        await serve_backend(args.listen, echo)
        await _serve(args, echo.status, [echo.run()])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "keygen":
        print(DestinationKeys.load_or_create(args.keys).destination.b32_address)
        return 0
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 0
    except ConnectionError as exc:
        logging.error("%s", exc)
        return 1
    return 0
