"""Local JSON-lines links between the balancer's processes, and the endpoint syntax they use.

An endpoint is ``unix:/path/to/socket`` (works across network namespaces that share a
filesystem, as Mininet hosts do) or ``tcp:HOST:PORT``. One JSON object per line, each with an
``op`` field. Kept deliberately tiny: these links carry a few messages per minute.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, AsyncIterator, Awaitable, Callable

MAX_LINE = 1 << 20

LineHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _parse(endpoint: str) -> tuple[str, str, int]:
    kind, _, rest = endpoint.partition(":")
    if kind == "unix" and rest:
        return ("unix", rest, 0)
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit():
            return ("tcp", host, int(port))
    raise ValueError(f"endpoint {endpoint!r}: expected unix:/path or tcp:HOST:PORT")


async def open_link(endpoint: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    kind, where, port = _parse(endpoint)
    if kind == "unix":
        return await asyncio.open_unix_connection(where, limit=MAX_LINE)
    return await asyncio.open_connection(where, port, limit=MAX_LINE)


async def serve_link(endpoint: str, handler: LineHandler) -> asyncio.AbstractServer:
    kind, where, port = _parse(endpoint)
    if kind == "unix":
        if os.path.exists(where):
            os.unlink(where)  # a stale socket from a previous run of this same endpoint
        return await asyncio.start_unix_server(handler, where, limit=MAX_LINE)
    return await asyncio.start_server(handler, where, port, limit=MAX_LINE)


def send_line(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    if not writer.is_closing():
        writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")


async def read_lines(reader: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """Yield decoded JSON objects until EOF; a line that is not a JSON object ends the link."""
    while True:
        line = await reader.readline()
        if not line:
            return
        try:
            message = json.loads(line)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        yield message
