"""The client side of the agents' local control sockets: one JSON request per line, one JSON answer
``{"ok": true, "result": …}`` or ``{"ok": false, "error": …}``.  Shared by shimctl and the balancer;
``ControlServer`` is the agents' side of the same sockets."""

from __future__ import annotations

import json
import selectors
import socket
from typing import Any, Callable


def request(path: str, payload: dict[str, Any], timeout: float = 5.0) -> Any:
    """Send ``payload`` to the unix socket ``path`` (a ``unix:`` prefix is accepted); RuntimeError on refusal."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path.removeprefix("unix:"))
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not answer.get("ok"):
        raise RuntimeError(answer.get("error", "control request refused"))
    return answer["result"]


class ControlServer:
    """The server side, for an agent's selector loop: accepts clients on ``server`` (a listening unix
    socket), gathers each client's bytes into lines and sends back ``answer(line)`` for every one.
    Registered callbacks are ``key.data(key.fileobj)`` style, as the agents' loops dispatch them."""

    def __init__(self, server: socket.socket, selector: selectors.BaseSelector,
                 answer: Callable[[bytes], bytes]) -> None:
        self.selector, self.answer = selector, answer
        self.buffers: dict[socket.socket, bytes] = {}
        selector.register(server, selectors.EVENT_READ, self._on_accept)

    def _on_accept(self, server: socket.socket) -> None:
        conn, _ = server.accept()
        conn.setblocking(False)
        self.buffers[conn] = b""
        self.selector.register(conn, selectors.EVENT_READ, self._on_client)

    def _on_client(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, ConnectionResetError):
            chunk = b""
        if not chunk:
            self.selector.unregister(conn)
            self.buffers.pop(conn, None)
            conn.close()
            return
        self.buffers[conn] += chunk
        while b"\n" in self.buffers[conn]:
            line, self.buffers[conn] = self.buffers[conn].split(b"\n", 1)
            response = self.answer(line)
            conn.setblocking(True)
            conn.sendall(response)
            conn.setblocking(False)
