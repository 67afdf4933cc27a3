"""Stand-in servers on one machine, to try and test a cluster lab: network namespaces with an sshd each.

``python -m testbed.cluster.netns_servers up --prefix cl`` builds, and journals before each step:
- ``<prefix>net``: an underlay LAN (a bridge, MTU 1550 so lab links keep 1500 over VXLAN; permanent ARP
  entries, as the kernel's shared ARP table may be full of other labs' entries);
- ``<prefix>ctl``: the client side, where ssh to the servers runs (``ip netns exec <prefix>ctl ssh``);
- ``<prefix>s1`` .. ``<prefix>sN``: the servers, each with its own sshd (own config, host key and
  authorized key, no password, no PAM) running in a PID namespace of its own, so a server's processes
  have the server's pids and the orchestrator cannot mistake them for its own;
and writes ``cluster.yaml`` (the servers; add ``place:``) in the state folder.  ``down`` stops exactly
the sshds it started (which ends their PID namespaces and everything in them) and deletes exactly the
namespaces it made.  Addresses: private IPv4 (default 10.77.0.0/24), traffic only between these namespaces.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ..procs import start_time, stop_all
from ..rundir import append_record, read_records
from ..wait import wait_until

STATE_ROOT = Path("/run/mhlab-netns-servers")
UNDERLAY_MTU = 1550
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without its privilege separation directory
PRIVSEP_MARK = "made-run-sshd"  # in STATE_ROOT: PRIVSEP_DIR did not exist before the first set came up


def _sh(*argv: str) -> None:
    res = subprocess.run(list(argv), capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {res.stderr.strip()}")


class Servers:
    def __init__(self, prefix: str, root: Path = STATE_ROOT) -> None:
        self.prefix, self.dir = prefix, root / prefix
        self.journal = self.dir / "journal.jsonl"

    def record(self, entry: dict) -> None:
        append_record(self.journal, entry)

    def records(self) -> list[dict]:
        return read_records(self.journal)

    @property
    def ctl(self) -> str:
        return f"{self.prefix}ctl"

    @property
    def cluster_file(self) -> Path:
        return self.dir / "cluster.yaml"

    def ssh(self) -> list[str]:
        return ["ip", "netns", "exec", self.ctl, "ssh", "-F", str(self.dir / "ssh_config")]

    def up(self, count: int = 2, subnet: str = "10.77.0.0/24") -> Path:
        if self.dir.exists():
            raise RuntimeError(f"{self.dir} exists: run `down --prefix {self.prefix}` first")
        self.dir.mkdir(parents=True)
        hosts = list(ipaddress.ip_network(subnet).hosts())
        try:
            self._build(count, hosts)
        except BaseException as exc:
            logs = " / ".join(f"{p.name}: {p.read_text().strip()[-300:]}" for p in sorted(self.dir.glob("sshd-*.log")))
            self.down()
            raise RuntimeError(f"stand-in servers {self.prefix}: {exc} (sshd logs: {logs or 'none'})") from exc
        return self.cluster_file

    def _netns(self, name: str) -> None:
        self.record({"kind": "netns", "name": name})
        _sh("ip", "netns", "add", name)
        _sh("ip", "-n", name, "link", "set", "lo", "up")

    def _build(self, count: int, hosts: list) -> None:
        net = f"{self.prefix}net"
        self._netns(net)
        _sh("ip", "-n", net, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        _sh("ip", "-n", net, "link", "set", "br0", "up")
        servers = {f"s{i}": (f"{self.prefix}s{i}", str(hosts[9 + i])) for i in range(1, count + 1)}
        for ns, addr in [(self.ctl, str(hosts[0])), *servers.values()]:
            self._netns(ns)
            _sh("ip", "-n", net, "link", "add", ns, "mtu", str(UNDERLAY_MTU), "type", "veth", "peer", "name",
                "ul0", "netns", ns)
            _sh("ip", "-n", net, "link", "set", ns, "master", "br0", "up")
            _sh("ip", "-n", ns, "link", "set", "ul0", "mtu", str(UNDERLAY_MTU), "up")
            _sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "ul0")
        self._static_neighbours([(self.ctl, str(hosts[0])), *servers.values()])
        d = self.dir
        _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mhlab-client", "-f", str(d / "client_key"))
        _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mhlab-host", "-f", str(d / "host_key"))
        shutil.copy(d / "client_key.pub", d / "authorized_keys")
        host_pub = (d / "host_key.pub").read_text().split()[:2]
        (d / "known_hosts").write_text("".join(f"{a} {' '.join(host_pub)}\n" for _, a in servers.values()))
        (d / "ssh_config").write_text(f"Host *\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n"
                                      f"  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n"
                                      "  ConnectTimeout 5\n")
        if not PRIVSEP_DIR.exists():  # made by us: the last set of stand-in servers to go removes it
            (self.dir.parent / PRIVSEP_MARK).write_text(str(PRIVSEP_DIR))
            PRIVSEP_DIR.mkdir(mode=0o755)
        for name, (ns, addr) in servers.items():
            conf = d / f"sshd-{name}.conf"
            conf.write_text(f"ListenAddress {addr}\nPort 22\nHostKey {d}/host_key\n"
                            f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n"
                            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                            "StrictModes no\nUseDNS no\nMaxStartups 200:30:400\nMaxSessions 200\n"
                            f"PidFile {d}/sshd-{name}.pid\nLogLevel ERROR\n")
            _sh("/usr/sbin/sshd", "-t", "-f", str(conf))
            with open(d / f"sshd-{name}.log", "ab") as log:
                proc = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--pid", "--fork", "--kill-child",
                                         "--mount-proc", "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)],
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            self.record({"kind": "proc", "name": f"sshd-{name}", "pid": proc.pid, "start": start_time(proc.pid)})
        cluster = {"servers": {name: {"host": addr, "ssh": self.ssh(), "python": sys.executable}
                               for name, (_, addr) in servers.items()}, "default": "s1"}
        self.cluster_file.write_text(yaml.safe_dump(cluster, sort_keys=False))
        for name, (_, addr) in servers.items():
            wait_until(lambda addr=addr: subprocess.run([*self.ssh(), "-o", "BatchMode=yes", f"root@{addr}", "true"],
                                                        capture_output=True).returncode == 0,
                       15, 0.1, what=f"sshd of server {name} ({addr}) answering")

    @staticmethod
    def _static_neighbours(members: list[tuple[str, str]]) -> None:
        """Permanent ARP entries between the members: the kernel's ARP table is shared by every namespace
        and, with big labs beside, full (``No buffer space available``); permanent entries are exempt."""
        macs = {}
        for ns, addr in members:
            out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", "dev", "ul0"], capture_output=True,
                                 text=True, check=True).stdout
            macs[addr] = json.loads(out)[0]["address"]
        for ns, addr in members:
            for other, mac in macs.items():
                if other != addr:
                    _sh("ip", "-n", ns, "neigh", "replace", other, "lladdr", mac, "dev", "ul0", "nud", "permanent")

    def down(self) -> dict:
        recs = self.records()
        procs = {r["pid"]: r["start"] for r in recs if r["kind"] == "proc" and r.get("start")}
        left = stop_all(procs)
        gone = []
        for r in reversed(recs):
            if r["kind"] == "netns" and Path(f"/run/netns/{r['name']}").exists():
                subprocess.run(["ip", "netns", "del", r["name"]], check=False)
                gone.append(r["name"])
        if not left:
            shutil.rmtree(self.dir, ignore_errors=True)
        mark = self.dir.parent / PRIVSEP_MARK
        if mark.exists() and not [d for d in self.dir.parent.iterdir() if d.is_dir()]:
            try:
                PRIVSEP_DIR.rmdir()
            except OSError:
                pass
            mark.unlink()
        return {"processes": len(procs), "namespaces": gone, "left": left}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m testbed.cluster.netns_servers", description=__doc__.split("\n\n")[0])
    p.add_argument("verb", choices=["up", "down"])
    p.add_argument("--prefix", required=True, help="namespace names start with it (<prefix>net, <prefix>s1 ...)")
    p.add_argument("--servers", type=int, default=2)
    p.add_argument("--subnet", default="10.77.0.0/24", help="the underlay (private IPv4)")
    a = p.parse_args(argv)
    servers = Servers(a.prefix)
    if a.verb == "up":
        print(servers.up(a.servers, a.subnet))
    else:
        print(json.dumps(servers.down()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
