"""The client side of the agents' local control sockets: one JSON request per line, one JSON answer
``{"ok": true, "result": …}`` or ``{"ok": false, "error": …}``.  Shared by shimctl and the balancer."""

from __future__ import annotations

import json
import socket
from typing import Any


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
