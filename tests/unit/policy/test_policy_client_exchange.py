"""The policy client's DHCPv6 exchange over real loopback sockets: a send the kernel refuses (the LAN's
link-local source still tentative, or the interface not up yet) is a lost message, sent again after the
retransmission timeout, not the end of the client."""

from __future__ import annotations

import errno
import socket

from agents.policy import wire
from agents.policy.client import exchange


class RefusesFirstSend:
    """A real UDP socket on ::1 whose first send fails as the kernel fails it before the LAN is ready;
    every later send is answered by a Reply with the request's transaction id, from ::1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.bind(("::1", 0))
        self.sends = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def sendto(self, data: bytes, _address) -> int:
        self.sends += 1
        if self.sends == 1:
            raise OSError(errno.EINVAL, "Invalid argument")
        request = wire.Message.from_bytes(data)
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as server:
            server.sendto(wire.Message(msg_type=wire.REPLY, xid=request.xid, options=()).to_bytes(),
                          self.sock.getsockname())
        return len(data)

    def recvfrom(self, size: int):
        return self.sock.recvfrom(size)


def test_a_refused_send_is_retransmitted_after_the_timeout():
    sock, logged = RefusesFirstSend(), []
    reply, server = exchange(sock, 1, bytes.fromhex("00030001020000000001"), logged.append)
    assert reply.msg_type == wire.REPLY and server == "::1" and sock.sends == 2
    assert any("could not send" in line and "Invalid argument" in line for line in logged)
    sock.sock.close()
