"""A self-contained two-host, two-ISP network of namespaces for the data path's own tests,
benchmark and demos (no Mininet, no lab engine)::

    hA eth1 (A1, 2001:db8:a1:1::/64) --- r1 --- (B1, 2001:db8:b1:1::/64) eth1 hB
    hA eth2 (A2, 2001:db8:a2:1::/64) --- r2 --- (B2, 2001:db8:b2:1::/64) eth2 hB

Each host's two addresses are its HBA set; source-specific default routes send each
locator out through its own ISP.  Namespaces are named ``<prefix>-hA`` etc. with a prefix
unique to the caller; ``close`` deletes exactly those (and everything in them).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..jsonctl import request
from .config import build_identity

ROOT = Path(__file__).resolve().parents[2]
HOSTS = {
    "hA": {"prefixes": ["2001:db8:a1:1::/64", "2001:db8:a2:1::/64"], "modifier": "00" * 16, "pseudo_key": "11" * 48},
    "hB": {"prefixes": ["2001:db8:b1:1::/64", "2001:db8:b2:1::/64"], "modifier": "22" * 16, "pseudo_key": "33" * 48},
}


def sh(*args: str, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, input=input)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class TwoHosts:
    prefix: str
    ulids: dict[str, list[str]] = field(default_factory=dict)
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)
    sockets: dict[str, str] = field(default_factory=dict)
    workdir: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)
    mtu: int = 1500  # of every link (jumbo frames shrink the translated path's per-packet cost)

    def ns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def run(self, node: str, *args: str, check: bool = True, input: str | None = None) -> str:
        return sh("ip", "netns", "exec", self.ns(node), *args, check=check, input=input)

    def popen(self, node: str, *args: str, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(node), *args], **kwargs)
        self.procs.append(proc)
        return proc

    def build(self) -> "TwoHosts":
        self.workdir = sh("mktemp", "-d", f"/tmp/{self.prefix}-XXXX").strip()
        for node in ("hA", "hB", "r1", "r2"):
            sh("ip", "netns", "add", self.ns(node))
            self.run(node, "ip", "link", "set", "lo", "up")
            self.run(node, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        for node in ("r1", "r2"):
            self.run(node, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        for host, h in HOSTS.items():
            identity = build_identity(h["prefixes"], 0, h["modifier"], h["pseudo_key"], None)
            self.ulids[host] = [str(a) for a in identity.ulids]
            for isp, (prefix, address) in enumerate(zip(h["prefixes"], self.ulids[host]), start=1):
                router, dev, rdev = f"r{isp}", f"eth{isp}", f"{host[1].lower()}{isp}"
                sh("ip", "link", "add", dev, "netns", self.ns(host), "type", "veth", "peer", "name", rdev,
                   "netns", self.ns(router))
                gateway = str(ipaddress.IPv6Network(prefix)[1])
                self.run(router, "ip", "-6", "addr", "add", f"{gateway}/64", "dev", rdev, "nodad")
                self.run(router, "ip", "link", "set", rdev, "mtu", str(self.mtu), "up")
                self.run(host, "ip", "-6", "addr", "add", f"{address}/64", "dev", dev, "nodad")
                self.run(host, "ip", "link", "set", dev, "mtu", str(self.mtu), "up")
                self.run(host, "ip", "-6", "route", "add", "default", "from", prefix, "via", gateway, "dev", dev)
                if isp == 1:
                    self.run(host, "ip", "-6", "route", "add", "default", "via", gateway, "dev", dev, "metric", "1024")
        return self

    # --- daemons ----------------------------------------------------------------------------

    def start_daemons(self, datapath: str = "ebpf", profile: str = "tuned", extra: tuple[str, ...] = (),
                      root: Path = ROOT) -> None:
        """``root``: the source tree whose ``agents`` run (another checkout: a before/after comparison)."""
        for host, h in HOSTS.items():
            sock = os.path.join(self.workdir, f"{host}.sock")
            cmd = [sys.executable, "-m", "agents.shim.daemon", "--socket", sock, "--profile", profile, "--sec", "0",
                   "--modifier", h["modifier"], "--pseudo-key", h["pseudo_key"], "--datapath", datapath, *extra]
            for prefix in h["prefixes"]:
                cmd += ["--prefix", prefix]
            log = open(os.path.join(self.workdir, f"{host}.log"), "w")
            self.daemons[host] = self.popen(host, *cmd, cwd=str(root), stdout=log, stderr=subprocess.STDOUT)
            self.sockets[host] = sock
        deadline = time.monotonic() + 20
        while not all(os.path.exists(s) for s in self.sockets.values()):
            for host, proc in self.daemons.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{host} daemon died: {self.log(host)[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("daemons did not start")
            time.sleep(0.05)

    def log(self, host: str) -> str:
        return Path(self.workdir, f"{host}.log").read_text()

    def ask(self, host: str, **payload) -> object:
        return request(self.sockets[host], payload)

    def stop_daemons(self) -> None:
        for host, proc in self.daemons.items():
            if proc.poll() is None:
                try:
                    self.ask(host, cmd="shutdown")
                except (OSError, RuntimeError):
                    pass
        for proc in self.daemons.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.daemons.clear()

    # --- faults -------------------------------------------------------------------------------

    def blackhole(self, router: str, on: bool = True) -> None:
        """Silently drop everything a router would forward (an upstream cut of that ISP)."""
        if on:
            self.run(router, "nft", "-f", "-", input="table inet mhshimcut {\n chain cut {\n"
                     " type filter hook forward priority 0; policy drop;\n }\n}\n")
        else:
            self.run(router, "nft", "delete", "table", "inet", "mhshimcut", check=False)

    def close(self) -> None:
        for proc in self.procs:  # the clients and servers we started, by their own handles
            if proc.poll() is None and proc not in self.daemons.values():
                proc.kill()
                proc.wait(5)
        self.stop_daemons()
        for node in ("hA", "hB", "r1", "r2"):
            sh("ip", "netns", "del", self.ns(node), check=False)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def wait_for(predicate, timeout: float, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def dump(value: object) -> str:
    return json.dumps(value, indent=1)
