"""The SAM probe against a fake SAM bridge (no router): requests and replies are matched and timed,
losses are logged, and after K losses in a row the probe fails over to its spare session."""

from __future__ import annotations

import argparse
import json
import socket
import threading
from pathlib import Path

import pytest

from agents.balancer import probe
from agents.traffic.common import EventLog, StopCondition


class FakeBridge:
    """HELLO / SESSION CREATE over TCP, datagrams over UDP on port - 1.  The first session is answered
    only for its first ``answer_first`` requests (its router "died"); every later session always is."""

    def __init__(self, answer_first: int = 3) -> None:
        self.answer_first = answer_first
        self.sessions: dict[str, tuple[str, int]] = {}  # id -> forward endpoint, in creation order
        self.seen: dict[str, int] = {}
        for _ in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.tcp = socket.socket()
            try:
                self.tcp.bind(("127.0.0.1", self.udp.getsockname()[1] + 1))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        self.port = self.tcp.getsockname()[1]
        self.tcp.listen()
        self.udp.settimeout(0.1)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True),
                        threading.Thread(target=self._datagrams, daemon=True)]
        for t in self.threads:
            t.start()

    def _accept(self) -> None:
        self.tcp.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._control, args=(conn,), daemon=True).start()

    def _control(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for raw in f:
                words = dict(w.split("=", 1) for w in raw.decode().split() if "=" in w)
                if raw.startswith(b"HELLO"):
                    f.write(b"HELLO REPLY RESULT=OK VERSION=3.1\n")
                elif raw.startswith(b"SESSION CREATE"):
                    self.sessions[words["ID"]] = (words["HOST"], int(words["PORT"]))
                    f.write(b"SESSION STATUS RESULT=OK DESTINATION=PRIVATE\n")
                f.flush()

    def _datagrams(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, _ = self.udp.recvfrom(65536)
            except socket.timeout:
                continue
            head, _, payload = raw.partition(b"\n")
            _, sid, _dest = head.decode().split(" ")
            self.seen[sid] = self.seen.get(sid, 0) + 1
            first = next(iter(self.sessions))
            if sid != first or self.seen[sid] <= self.answer_first:
                self.udp.sendto(b"SERVERB64~-=\n" + payload, self.sessions[sid])

    def close(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(2)
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def bridge():
    b = FakeBridge()
    yield b
    b.close()


def run_probe(bridge: FakeBridge, tmp_path: Path, duration: float, renew_after: int, spare: bool) -> list[dict]:
    args = argparse.Namespace(sam=f"127.0.0.1:{bridge.port}", dest="DESTB64", every=100.0, timeout=0.6,
                              session_timeout=5.0, renew_after=renew_after, spare=spare)
    log_path = tmp_path / "probe.jsonl"
    with EventLog(str(log_path), "i2p-probe", "client", None) as log:
        counts = probe.run(args, log, StopCondition(duration))
        log.close(**counts)
    return [json.loads(line) for line in log_path.read_text().splitlines()]


def test_replies_are_matched_and_losses_logged(bridge: FakeBridge, tmp_path: Path) -> None:
    events = run_probe(bridge, tmp_path, 2.0, renew_after=0, spare=False)
    reqs = [e for e in events if e["ev"] == "request"]
    assert [e["ok"] for e in reqs[:3]] == [True, True, True]
    assert all(e["rtt_ms"] < 600 for e in reqs[:3])
    assert reqs[3:] and not any(e["ok"] for e in reqs[3:])  # the bridge stopped answering
    assert events[-1]["ev"] == "stop" and events[-1]["ok"] == 3 and events[-1]["sessions"] == 1


def test_fails_over_to_the_spare_session(bridge: FakeBridge, tmp_path: Path) -> None:
    events = run_probe(bridge, tmp_path, 3.0, renew_after=3, spare=True)
    kinds = [e["ev"] for e in events]
    assert kinds.count("renew") == 1
    after = [e for e in events[kinds.index("renew"):] if e["ev"] == "request"]
    lost_at_renewal = [e for e in after if not e["ok"]]
    assert len(after) >= 10 and all(e["ok"] for e in after[-5:])
    assert len(lost_at_renewal) <= 8  # those outstanding at the switch; then all answered
    seqs = [e["seq"] for e in events if e["ev"] == "request"]
    assert len(seqs) == len(set(seqs))  # every request logged once
    assert events[-1]["sessions"] == 2 and len(bridge.sessions) == 3  # a new spare was opened
