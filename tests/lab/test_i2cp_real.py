"""The balancer's I2CP client against a REAL i2pd (Debian 2.45.1), alone in a private network
namespace.

The test makes its own namespace (``unshare -n``: it dies with the i2pd process that lives in
it), brings ``lo`` up, and starts ONE i2pd there with a temporary datadir, a private netid, no
reseed servers, only I2CP (127.0.0.1) and NTCP2 on loopback. Nothing can leave: the namespace has
no interface but ``lo``. The balancer runs inside the same namespace (``nsenter -n``) and is read
through its control socket on the shared filesystem. Only the PIDs started here are signalled.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from agents.balancer.control import query_status

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("i2pd") is None, reason="i2pd is not installed"),
    pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("nsenter") is None, reason="util-linux missing"),
]

REPO = Path(__file__).resolve().parents[2]
I2CP_PORT = 7654
NETID = 77

# Empty reseed lists cannot be given on i2pd's command line ("--reseed.urls=" is refused), so
# they go in the config file; datadir must be on the command line (i2pd ignores it in the file).
I2PD_CONF = """\
[reseed]
urls =
yggurls =
threshold = 0
"""


def i2pd_argv(datadir: Path) -> list[str]:
    """One isolated router: what the lab engine will also need per router (plus its real address)."""
    return [
        "i2pd",
        f"--datadir={datadir}",
        f"--conf={datadir / 'i2pd.conf'}",
        f"--tunconf={datadir / 'tunnels.conf'}",
        f"--tunnelsdir={datadir / 'tunnels.d'}",
        f"--pidfile={datadir / 'i2pd.pid'}",
        f"--netid={NETID}",
        "--nettime.enabled=false",
        "--upnp.enabled=false",
        "--http.enabled=false",
        "--httpproxy.enabled=false",
        "--socksproxy.enabled=false",
        "--sam.enabled=false",
        "--bob.enabled=false",
        "--i2pcontrol.enabled=false",
        "--addressbook.enabled=false",
        "--i2cp.enabled=true",
        "--i2cp.address=127.0.0.1",
        f"--i2cp.port={I2CP_PORT}",
        "--ipv4",
        "--host=127.0.0.1",
        "--ntcp2.enabled=true",
        "--ntcp2.port=17655",
        "--ssu2.enabled=false",
        "--log=file",
        f"--logfile={datadir / 'i2pd.log'}",
        "--loglevel=info",
    ]


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process we started, SIGKILL it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError, KeyError):
            result = None
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Router:
    def __init__(self, proc: subprocess.Popen[bytes], datadir: Path) -> None:
        self.proc, self.datadir = proc, datadir

    @property
    def log(self) -> str:
        path = self.datadir / "i2pd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def run_inside(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a process in the router's network namespace (nsenter execs: same PID)."""
        return subprocess.Popen(["nsenter", "-t", str(self.proc.pid), "-n", *argv], cwd=REPO, **kwargs)


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    datadir = tmp_path_factory.mktemp("i2pd")
    (datadir / "i2pd.conf").write_text(I2PD_CONF)
    (datadir / "tunnels.conf").write_text("")
    (datadir / "tunnels.d").mkdir()
    script = 'ip link set lo up && exec "$@"'
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c", script, "sh", *i2pd_argv(datadir)])
    r = Router(proc, datadir)
    try:
        wait_for("i2pd to start I2CP", lambda: "Starting I2CP" in r.log, timeout=30)
        assert proc.poll() is None, r.log[-2000:]
        yield r
    finally:
        stop(proc)
    assert proc.poll() is not None


def test_balancer_session_leases_and_leaseset_accepted(router: Router, tmp_path: Path) -> None:
    control = f"unix:{tmp_path / 'balancer.sock'}"
    log = (tmp_path / "balancer.log").open("wb")
    balancer = router.run_inside(
        [
            sys.executable, "-m", "agents.balancer", "run",
            "--keys", str(tmp_path / "keys.json"),
            "--router", f"r1=127.0.0.1:{I2CP_PORT}",
            "--publisher", "r1",
            "--option", "inbound.length=0",  # alone: zero-hop tunnels are the only ones it can build
            "--option", "inbound.quantity=2",
            "--control", control,
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        status = wait_for("a RequestVariableLeaseSet", lambda: query_status(control)["routers"]["r1"]["requests"] >= 1, 60)
        first = time.monotonic()
        status = query_status(control)
        r1 = status["routers"]["r1"]
        assert r1["up"] and r1["publishing"] and r1["answers"] >= 1
        assert 1 <= len(r1["leases"]) <= 16
        assert status["publications"] >= 1 and status["current"]["leases"]

        # i2pd stops a session whose LeaseSet request is not answered within 10 s: staying up past
        # that, with no "Invalid LeaseSet2" in its log, means our CreateLeaseSet2 was taken.
        time.sleep(max(0.0, first + 12 - time.monotonic()))
        status = query_status(control)
        (front,) = status["frontends"]
        assert front["up"] and front["sessions"] == 1 and front["losses"] == 0, front
        log_text = router.log
        assert "Invalid LeaseSet2" not in log_text
        assert "LeaseSet creation timeout expired" not in log_text
        assert "Reconfigured destination" in log_text  # i2cp.dontPublishLeaseSet=false accepted
        # Publishing our LeaseSet was attempted: it exists and the session is public. (There is no
        # floodfill in a one-router network, so the attempt itself cannot succeed.)
        assert "Can't publish LeaseSet, no more floodfills found" in log_text
        assert "Can't publish non-existing LeaseSet" not in log_text
    finally:
        stop(balancer)
        log.close()
    assert balancer.returncode is not None


UNANSWERED_PROBE = """
import socket, sys, time
from agents.balancer.keys import DestinationKeys
from agents.balancer.session import ClientSession, LeasesRequested, SessionClosed
session = ClientSession(DestinationKeys.generate(), {"inbound.length": "0", "i2cp.dontPublishLeaseSet": "true"})
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
session.start(); sock.sendall(session.data_to_send())
asked = None
sock.settimeout(60)
while True:
    data = sock.recv(65536)
    events = session.receive(data, int(time.time() * 1000)) if data else session.connection_lost()
    sock.sendall(session.data_to_send())
    for event in events:
        if isinstance(event, LeasesRequested) and asked is None:
            asked = time.monotonic()
        if isinstance(event, SessionClosed):
            print(f"{time.monotonic() - asked:.2f}" if asked else "never-asked")
            raise SystemExit(0)
"""


def test_unanswered_leaseset_request_costs_the_session_after_10s(router: Router) -> None:
    """The deadline the balancer must meet, measured on the real router."""
    probe = router.run_inside([sys.executable, "-c", UNANSWERED_PROBE, str(I2CP_PORT)], stdout=subprocess.PIPE)
    try:
        out, _ = probe.communicate(timeout=90)
    finally:
        stop(probe)
    seconds = float(out.decode().strip())
    assert 9.0 <= seconds <= 13.0, seconds


def test_multi_process_layout_on_the_real_router(router: Router, tmp_path: Path) -> None:
    """Balancer and backend as their own processes, the frontend inside the router's namespace."""
    keys = str(tmp_path / "keys.json")
    bal_ep, back_ep = f"unix:{tmp_path / 'bal.sock'}", f"unix:{tmp_path / 'back.sock'}"
    bal_ctl, front_ctl = f"unix:{tmp_path / 'bal-ctl.sock'}", f"unix:{tmp_path / 'front-ctl.sock'}"
    module = [sys.executable, "-m", "agents.balancer"]
    subprocess.run([*module, "keygen", "--keys", keys], cwd=REPO, check=True, capture_output=True)
    procs = [
        subprocess.Popen([*module, "balancer", "--keys", keys, "--listen", bal_ep, "--control", bal_ctl], cwd=REPO),
        subprocess.Popen([*module, "backend", "--keys", keys, "--listen", back_ep], cwd=REPO),
    ]
    try:
        wait_for("balancer and backend sockets", lambda: Path(bal_ep[5:]).exists() and Path(back_ep[5:]).exists(), 15)
        procs.append(
            router.run_inside(
                [
                    *module, "frontend", "--keys", keys,
                    "--router", f"r1=127.0.0.1:{I2CP_PORT}",
                    "--balancer", bal_ep, "--backend", back_ep,
                    "--option", "inbound.length=0", "--option", "inbound.quantity=2",
                    "--control", front_ctl,
                ]
            )
        )
        wait_for("leases at the balancer", lambda: query_status(bal_ctl)["routers"]["r1"]["leases"], 60)
        wait_for("a LeaseSet handed to the router", lambda: query_status(front_ctl)["lease_sets_given"] >= 1, 10)
        status = query_status(bal_ctl)
        assert status["routers"]["r1"]["publishing"] and status["current"]["leases"]
        front = query_status(front_ctl)
        assert front["up"] and front["sessions"] == 1 and front["losses"] == 0

        stop(procs[-1])  # the frontend dies: the balancer must drop r1 and its leases
        status = wait_for("r1 dropped", lambda: (s := query_status(bal_ctl))["routers"]["r1"]["up"] is False and s, 10)
        assert status["routers"]["r1"]["leases"] == []
    finally:
        for proc in reversed(procs):
            stop(proc)
