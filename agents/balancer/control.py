"""The local JSON control socket (and optional status file) through which tests and the CLI read
the balancer's state: routers, leases per router, publications, frontend and backend counters.

Request: one JSON line ``{"op": "status"}``; answer: one JSON line ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "..."}`` (the same envelope as the shim agent's socket), then the
socket closes.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Callable

from agents.jsonctl import request

from .links import read_lines, send_line, serve_link

StatusSource = Callable[[], dict[str, Any]]


async def serve_control(endpoint: str, status: StatusSource) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async for message in read_lines(reader):
                if message.get("op") == "status":
                    send_line(writer, {"ok": True, "result": status()})
                else:
                    send_line(writer, {"ok": False, "error": f"unknown op {message.get('op')!r}"})
                await writer.drain()
                break
        finally:
            writer.close()

    return await serve_link(endpoint, handle)


async def write_status_file(path: Path, status: StatusSource, every: float = 1.0) -> None:
    """Rewrite ``path`` atomically every ``every`` seconds."""
    tmp = Path(f"{path}.tmp")
    while True:
        tmp.write_text(json.dumps(status(), indent=2, sort_keys=True))
        os.replace(tmp, path)
        await asyncio.sleep(every)


def query_status(socket_path: str, timeout: float = 5.0) -> dict[str, Any]:
    """Blocking client for a ``unix:`` control endpoint (for tests and scripts)."""
    return request(socket_path, {"op": "status"}, timeout)
