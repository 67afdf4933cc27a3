"""A minimal SAM v3 DATAGRAM client: the real client path of the lab (i2pd's own SAM bridge, its own
tunnels, LeaseSet lookups and garlic routing), driven from Python with the standard library only.

The session lives as long as its TCP control socket.  Datagrams go out as UDP to the bridge's datagram
port (``"3.0 ID DEST\\n" + payload``, DEST the full base64 Destination: i2pd 2.45.1 does not resolve
.b32 there) and come back on our UDP socket as ``"<sender base64>\\n" + payload`` (SESSION CREATE with
HOST/PORT: i2pd forwards received datagrams there).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

SAM_VERSION = "3.1"


class SamError(ConnectionError):
    """The bridge refused or closed something (the reply line is in the message)."""


def parse_reply(line: str) -> tuple[str, dict[str, str]]:
    """``"SESSION STATUS RESULT=OK DESTINATION=…"`` -> ("SESSION STATUS", {"RESULT": "OK", …})."""
    words = line.strip().split(" ")
    head = [w for w in words if "=" not in w]
    fields = dict(w.split("=", 1) for w in words if "=" in w)
    return " ".join(head), fields


def split_datagram(raw: bytes) -> tuple[str, bytes]:
    """A forwarded datagram: (sender's base64 Destination, payload)."""
    head, sep, payload = raw.partition(b"\n")
    if not sep:
        raise ValueError("forwarded datagram without a header line")
    return head.split(b" ", 1)[0].decode("ascii", "replace"), payload


@dataclass
class SamDatagramSession:
    """One transient Destination on the local router, for repliable datagrams."""

    nickname: str
    host: str = "127.0.0.1"
    port: int = 7656
    options: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self._control: socket.socket | None = None
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((self.host, 0))

    def _line(self, sock: socket.socket, timeout: float) -> str:
        sock.settimeout(timeout)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise SamError(f"SAM bridge closed the connection (after {data!r})")
            data += chunk
        return data.decode("ascii", "replace")

    def open(self, timeout: float = 120.0) -> str:
        """HELLO and SESSION CREATE; returns our base64 Destination once the router made its tunnels."""
        sock = socket.create_connection((self.host, self.port), timeout=10)
        sock.sendall(f"HELLO VERSION MIN=3.0 MAX={SAM_VERSION}\n".encode())
        head, fields = parse_reply(self._line(sock, 10))
        if head != "HELLO REPLY" or fields.get("RESULT") != "OK":
            raise SamError(f"SAM HELLO refused: {head} {fields}")
        opts = " ".join(f"{k}={v}" for k, v in (self.options or {}).items())
        sock.sendall(f"SESSION CREATE STYLE=DATAGRAM ID={self.nickname} DESTINATION=TRANSIENT "
                     f"SIGNATURE_TYPE=7 HOST={self.host} PORT={self._udp.getsockname()[1]} {opts}\n".encode())
        head, fields = parse_reply(self._line(sock, timeout))
        if head != "SESSION STATUS" or fields.get("RESULT") != "OK":
            raise SamError(f"SAM SESSION CREATE refused: {head} {fields}")
        self._control = sock
        return fields.get("DESTINATION", "")

    def send(self, destination_b64: str, payload: bytes) -> None:
        header = f"3.0 {self.nickname} {destination_b64}\n".encode()
        self._udp.sendto(header + payload, (self.host, self.port - 1))

    def receive(self, timeout: float) -> tuple[str, bytes] | None:
        """The next datagram (sender, payload), or None after ``timeout`` seconds."""
        self._udp.settimeout(max(timeout, 0.001))
        try:
            raw, _ = self._udp.recvfrom(65536)
        except socket.timeout:
            return None
        return split_datagram(raw)

    def close(self) -> None:
        for sock in (self._control, self._udp):
            if sock is not None:
                sock.close()
        self._control = None


def wait_bridge(host: str, port: int, timeout: float) -> None:
    """Wait until the SAM bridge accepts connections (the router may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise SamError(f"no SAM bridge at {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.5)
