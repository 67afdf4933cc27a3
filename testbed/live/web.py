"""`mhlab serve LAB`: the lab in a browser - its drawing in state colours, live flow counters, and buttons
that cut and restore links and ISPs.

A local aiohttp server (127.0.0.1 by default, a random port unless --port) that can inject faults as root, so
every request must carry the random token printed at start (``?token=`` or the ``X-Mhlab-Token`` header);
anything else gets 403.  State reaches the page by server-sent events: a ``state`` event (snapshot + SVG)
whenever the lab changes, a ``flows`` event every second.  Faults go through testbed.live.faultops, exactly
as `mhlab fault`/`restore` do, so the journal, `mhlab faults` and other shells see them.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from ..errors import MhlabError
from ..lab import Lab
from .drawing import render, to_dot
from .faultops import apply_fault, restore, select
from .faultspec import fault_from_words
from .flowwatch import FlowWatch, LiveFlows
from .links import fault_link_ref
from .state import gather

PAGE = Path(__file__).with_name("page.html")
KEEPALIVE_S = 15.0
ALLOWED_KINDS = ("link-down", "isp-down", "upstream-cut", "loss", "rate-limit", "flap", "router-crash", "daemon-kill",
                 "bgp-reset")



def plan_view(lab: Lab) -> dict[str, Any]:
    """What the page needs to build its controls: links, ISPs, hosts and their addresses."""
    net = lab.net
    segments: dict[str, int] = {}
    for l in net.links:
        segments[l.segment] = segments.get(l.segment, 0) + 1
    links = [s for s, n in segments.items() if n == 1]
    isps = [{"name": i.name, "upstreams": list(i.upstreams)} for i in getattr(lab.topology, "isps", [])]
    hosts = {n: lab.plan.addresses(n) for n, spec in net.nodes.items() if spec.role == "host"}
    return {"lab": lab.name, "links": links, "isps": isps, "hosts": hosts}


def default_flow(lab: Lab) -> tuple[str, str, str | None, str | None] | None:
    """The flow the page starts on its own: between the first hosts of two sites (the shim story), else from
    the first site host to a host of the transit (the PA story), each from its first ISP's address."""
    topo = lab.topology
    site_hosts = [[h.name for lan in s.lans for h in lan.hosts] for s in getattr(topo, "sites", [])]
    site_hosts = [h for h in site_hosts if h]
    others = [n for n, spec in lab.net.nodes.items() if spec.role == "host" and not any(n in h for h in site_hosts)]
    if len(site_hosts) >= 2:
        return site_hosts[0][0], site_hosts[1][0], None, None
    if site_hosts and others:
        src = site_hosts[0][0]
        first_isp = next(iter(lab.plan.addresses(src)), None)
        return src, others[0], lab.plan.address(src, first_isp) if first_isp else None, None
    return None


class LiveServer:
    """The app's state: the lab, its latest snapshot and drawing, flows, and the SSE subscribers."""

    def __init__(self, lab: Lab, token: str, interval: float = 1.0, follow: list[Path] | None = None) -> None:
        self.lab, self.token, self.interval = lab, token, interval
        self.flows = LiveFlows(lab)
        self.watch = FlowWatch([self.flows.log_dir, *(follow or [])])
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="live")
        self.subscribers: set[asyncio.Queue[tuple[str, str]]] = set()
        self.latest: dict[str, str] = {}
        self.poke = asyncio.Event()
        self.plan = plan_view(lab)

    # -- background tasks -------------------------------------------------------------------------------
    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def _snapshot(self) -> tuple[str, str]:
        state = gather(self.lab)
        d = state.as_dict()
        key = json.dumps({k: v for k, v in d.items() if k != "taken"} | {
            "faults": [{k: v for k, v in f.items() if k != "remaining"} for f in d["faults"]]}, sort_keys=True)
        return key, json.dumps({"state": d, "svg": _inline_svg(render(to_dot(self.lab.net, state, self.lab.name),
                                                                      "svg"))})

    async def gatherer(self) -> None:
        last = None
        while True:
            try:
                key, message = await self._run(self._snapshot)
                if key != last:
                    last = key
                    self.broadcast("state", message)
            except Exception as exc:  # noqa: BLE001 - a failed snapshot is shown, the loop goes on
                self.broadcast("problem", json.dumps({"error": str(exc)}))
            self.poke.clear()
            try:
                await asyncio.wait_for(self.poke.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    async def ticker(self) -> None:
        while True:
            views = await self._run(self.watch.poll)
            self.broadcast("flows", json.dumps(views))
            await asyncio.sleep(1.0)

    def broadcast(self, event: str, data: str) -> None:
        self.latest[event] = data
        for q in list(self.subscribers):
            if q.full():
                q.get_nowait()
            q.put_nowait((event, data))

    # -- handlers -----------------------------------------------------------------------------------------
    @web.middleware
    async def require_token(self, request: web.Request, handler):
        given = request.query.get("token") or request.headers.get("X-Mhlab-Token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return web.Response(status=403, text="403 forbidden: open the URL `mhlab serve` printed (with its token)\n")
        return await handler(request)

    async def page(self, _request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(), content_type="text/html")

    async def plan_handler(self, _request: web.Request) -> web.Response:
        return web.json_response(self.plan)

    async def state_handler(self, _request: web.Request) -> web.Response:
        return web.Response(text=self.latest.get("state", "{}"), content_type="application/json")

    async def events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=64)
        for event in ("state", "flows"):
            if event in self.latest:
                queue.put_nowait((event, self.latest[event]))
        self.subscribers.add(queue)
        try:
            while True:
                try:
                    event, data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                await resp.write(f"event: {event}\ndata: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.subscribers.discard(queue)
        return resp

    async def fault_handler(self, request: web.Request) -> web.Response:
        body = await request.json()
        kind, words = str(body.get("kind", "")), [str(w) for w in body.get("words", [])]
        if kind not in ALLOWED_KINDS:
            return web.json_response({"error": f"kind must be one of {', '.join(ALLOWED_KINDS)}"}, status=400)
        duration = float(body["for"]) if body.get("for") else None

        def do() -> str:
            fault = fault_from_words(kind, words, until=duration, link_ref=lambda w: fault_link_ref(self.lab.net, w))
            done = apply_fault(self.lab, fault, " ".join([kind, *words]), duration)
            return done.name

        return await self._act(do)

    async def restore_handler(self, request: web.Request) -> web.Response:
        body = await request.json()
        which = None if body.get("all") else str(body.get("which", ""))

        def do() -> str:
            entries = select(self.lab, which)
            return ", ".join(f"{e.name}: {restore(self.lab, e)}" for e in entries) or "nothing in force"

        return await self._act(do)

    async def flow_handler(self, request: web.Request) -> web.Response:
        body = await request.json()

        def do() -> str:
            plan = self.flows.start_tcpseq(str(body["from"]), str(body["to"]), body.get("src") or None,
                                           body.get("dst") or None)
            return f"{plan.name}: {plan.src} -> {plan.dst}"

        return await self._act(do)

    async def _act(self, fn) -> web.Response:
        try:
            result = await self._run(fn)
        except MhlabError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except KeyError as exc:
            return web.json_response({"error": f"missing field {exc}"}, status=400)
        finally:
            self.poke.set()
        return web.json_response({"ok": True, "result": result})

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.require_token])
        app.router.add_get("/", self.page)
        app.router.add_get("/events", self.events)
        app.router.add_get("/api/plan", self.plan_handler)
        app.router.add_get("/api/state", self.state_handler)
        app.router.add_post("/api/fault", self.fault_handler)
        app.router.add_post("/api/restore", self.restore_handler)
        app.router.add_post("/api/flow", self.flow_handler)
        return app


def _inline_svg(data: bytes) -> str:
    """Graphviz's SVG without its XML prolog and doctype, ready for innerHTML."""
    text = data.decode()
    return text[text.index("<svg"):]


async def serve(lab: Lab, host: str, port: int, token: str, *, flow: bool, follow: list[Path],
                interval: float) -> None:
    server = LiveServer(lab, token, interval, follow)
    runner = web.AppRunner(server.app(), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port chosen for port 0
    shown_host = f"[{host}]" if ":" in host else host
    print(f"lab {lab.name} live at http://{shown_host}:{bound}/?token={token}", flush=True)
    print("Ctrl-C stops the server (faults in force stay; flows started here stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(server.gatherer()), asyncio.create_task(server.ticker())]
    if flow and (spec := default_flow(lab)):
        try:
            plan = await server._run(server.flows.start_tcpseq, *spec)
            print(f"flow {plan.name} (tcpseq): {plan.src} -> {plan.dst}", flush=True)
        except MhlabError as exc:
            print(f"could not start the default flow: {exc}", flush=True)
    await stop.wait()
    for t in tasks:
        t.cancel()
    await server._run(server.flows.stop)
    await runner.cleanup()
    server.pool.shutdown(wait=False, cancel_futures=True)


def cmd_serve(args: argparse.Namespace) -> int:
    lab = Lab.attach(args.lab, args.run_root)
    token = args.token or secrets.token_urlsafe(18)
    asyncio.run(serve(lab, args.host, args.port, token, flow=not args.no_flow,
                      follow=[Path(p) for p in args.follow], interval=args.interval))
    return 0
