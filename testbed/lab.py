"""The runtime: a NetPlan becomes namespaces, veth links, bridges, addresses, routes and daemons - and back.

Deploy order: nodes (each an anchor process that sets the node's sysctls and, in a router, mounts FRR's vty
directory, then holds the namespaces) -> links (one ``ip -batch``) -> addresses/routes/filters (a few nodes
at a time) -> FRR (one dry run per config shape) -> services -> the NetPlan's hooks -> wait until the lab
kind's readiness conditions hold (multihoming: BGP converged, then the data plane).  The runtime reads only
the NetPlan and the lab's kind (``testbed.kinds``), never a particular model.  Every process is recorded in
the run directory's journal before it is relied on, so :func:`destroy` undoes exactly one lab - also after
the deploying process was SIGKILLed.
Nothing is ever created in the root network namespace: bridges live in namespaces of their own.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from mininet.node import Node

from .cluster.build import ClusterRun
from .cluster.model import Cluster
from .errors import LabError, UsageError
from .frr import (bgp_peers, check_argv, check_frr, check_problems, config_shape, daemon_argv, daemon_env,
                  parse_json, vtysh_argv)
from .kinds import kind_of, load_lab
from .kinds.contract import Condition, LabKind
from .ksm import HostKsm, KsmOptions, Pacer, build_wrapper, wrapper_prefix
from .neightable import Admission, HostTables
from .netplan import NetPlan, ingress_table
from .node import NodeHandle, tagged_env
from .procs import ProcRecord, start_time, stop_all, tagged_pids
from .render import node_dir, render
from .rundir import RunDir, list_labs
from .topology import NAME_PATTERN
from .wait import wait_until

# FRR's compiled-in vty directory (``--localstatedir=/var/run/frr`` in Debian's build): a router's own run
# folder is bind-mounted there inside the node, so a plain `vtysh` in the node talks to the node's daemons
FRR_VTY_DIR = "/run/frr"
CHECKS_AT_ONCE = 16  # FRR dry runs at once: each loads FRR (~16 MB) and mostly waits; a 50-site lab has 206
CHECK_TIMEOUT = 600  # s for one dry run, a safety bound only (a 250-peer bgpd config: 13 s at load 24)
PARALLEL = 4  # commands run at once while building a lab: a few per core (each mostly waits on the kernel)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Lab:
    """A running lab.  ``with Lab.deploy("topologies/two-isp-site.yaml") as lab: lab["h1"].cmd("ping …")``."""

    net: NetPlan
    rundir: RunDir
    kind: LabKind
    nodes: dict[str, NodeHandle] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    readiness: list[dict] = field(default_factory=list)  # what deploy waited for (see _Builder.await_ready)
    cluster: ClusterRun | None = None  # the servers a cluster lab spreads over (testbed.cluster)
    daemon_prefix: list[str] = field(default_factory=list)  # FRR's daemons start through this (testbed.ksm)
    # the Popen objects of the lab's long-running processes (anchors, daemons, services), kept while the lab is:
    # one dropped while its process runs joins subprocess's list of children polled on every later Popen
    # (2,000 of a 250-site lab made each command 30-60 ms slower)
    children: list[subprocess.Popen] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.rundir.lab

    @property
    def plan(self):
        return self.net.plan

    @property
    def topology(self):
        """The lab's model, of its kind (a multihoming Topology, an I2pLab, ...)."""
        return self.net.topology

    def node(self, name: str) -> NodeHandle:
        try:
            return self.nodes[name]
        except KeyError:
            raise LabError(f"lab {self.name} has no node {name!r}; nodes: "
                           f"{', '.join(n for n in self.nodes if ':' not in n)}") from None

    __getitem__ = node

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def destroy(self, progress: Progress = _quiet) -> dict:
        done = destroy(self.name, self.rundir.path.parent, progress)
        self.children.clear()  # all exited: each is reaped as it goes
        return done

    # -- state ------------------------------------------------------------------------------------------
    def vtysh(self, router: str, command: str, timeout: float = 10) -> str:
        return self.node(router).run(vtysh_argv(self.node(router).dir, command), timeout=timeout).stdout

    def vtysh_json(self, router: str, command: str) -> dict:
        return parse_json(self.vtysh(router, command if command.endswith("json") else command + " json"))

    def bgp_sessions(self) -> dict[str, dict[str, str]]:
        """router -> peer name -> BGP state, for every configured session."""
        out: dict[str, dict[str, str]] = {}
        for node in self.net.routers():
            if node.bgp is None:
                continue
            peers = bgp_peers(self.vtysh_json(node.name, "show bgp summary json"))
            out[node.name] = {n.peer: peers.get(n.address, {}).get("state", "Idle") for n in node.bgp.neighbors}
        return out

    def nft_counter(self, node: str, counter: str) -> int:
        """Packets counted by a named nftables counter (e.g. an ISP's ingress-filter drops)."""
        spec = self.net.nodes[node]
        ifname = next((i for i in spec.ingress if f"ingress_{i}" == counter), None)
        if ifname is None:
            raise LabError(f"{node} has no counter {counter!r} (it has {', '.join(spec.counters) or 'none'})")
        out = self.node(node).run(["nft", "-j", "list", "counter", "ip6", ingress_table(ifname), counter]).stdout
        for item in parse_json(out).get("nftables", []):
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise LabError(f"{node}: cannot read counter {counter!r}")

    # -- construction -----------------------------------------------------------------------------------
    @classmethod
    def deploy(cls, topology: str | Path | Any, name: str | None = None, root: str | Path | None = None,
               progress: Progress = _quiet, timeout: float | None = None, cluster: Cluster | None = None,
               raise_neigh_table: bool = False, ksm: KsmOptions | None = None) -> "Lab":
        """Build and start a lab of any kind; on any failure everything created so far is removed and the
        error raised.  ``timeout`` bounds each readiness wait (default: the kind's own bounds).  With a
        ``cluster`` the nodes are built on its servers (see ``testbed.cluster``).  A lab the host's neighbour
        table cannot hold fails before anything is built, unless ``raise_neigh_table`` (the limits are raised,
        journalled and restored by the destroy of the last lab that raised them; ``testbed.neightable``).
        With ``ksm`` the FRR daemons start open to kernel same-page merging and ksmd runs while the lab does
        (host state, journalled and restored likewise; ``testbed.ksm``)."""
        topo = load_lab(topology) if isinstance(topology, (str, Path)) else topology
        if name:
            topo = _renamed(topo, name)
        kind = kind_of(topo)
        net = kind.netplan(topo)
        if any(n.frr_daemons for n in net.nodes.values()):
            check_frr(allow_untested=bool(os.environ.get("MHLAB_ALLOW_UNTESTED_FRR")))
        rundir = RunDir.of(topo.name, root)
        if os.geteuid() != 0:
            raise LabError("deploying a lab needs root (network namespaces): run with sudo")
        _check_traversable(rundir.path.parent)
        if ksm is not None and cluster is not None:
            raise UsageError("--ksm merges pages in this host's kernel; a cluster lab's nodes run on other servers")
        # a cluster's nodes live on other kernels: this host's neighbour table is not theirs
        tables = None if cluster is not None else Admission.admit(net, topo.name, raise_neigh_table, progress)
        rundir.create({"name": topo.name, "status": "deploying", "topology": topo.source.file,
                       "orchestrator_pid": os.getpid(), "created": time.time()})
        (rundir.path / "topology.yaml").write_text(yaml.safe_dump(topo.model_dump(exclude_none=True,
                                                                                  mode="json"),
                                                                  sort_keys=False))
        lab = cls(net, rundir, kind)
        pacer = None
        try:
            if tables is not None:
                tables.claim(str(rundir.path), rundir.record, progress)
            if ksm is not None:
                wrapper = build_wrapper()
                lab.daemon_prefix = wrapper_prefix(ksm, wrapper)
                turned = HostKsm().hold(str(rundir.path), rundir.record)
                progress("KSM: FRR starts through " + " ".join(lab.daemon_prefix)
                         + (", ksmd set to " + ", ".join(f"{k}={v}" for k, v in turned.items()) if turned else ""))
                pacer = ksm.pacer(sum(1 for n in net.routers() if n.frr_daemons))  # from here: nodes count too
            if cluster is not None:
                lab.cluster = ClusterRun(cluster, rundir)
                lab.cluster.prepare(list(net.nodes), [(l.a, l.b) for l in net.links])
            _Builder(lab, progress, pacer).build(timeout)
        except BaseException as failure:
            progress("deploy failed: removing everything it created")
            try:
                destroy(topo.name, rundir.path.parent, _quiet)
            except LabError as exc:  # e.g. a concurrent `mhlab destroy` already removed it: keep the cause
                progress(f"cleanup after the failed deploy: {exc}")
            note = tables.failure_note() if tables is not None else None
            if note and isinstance(failure, LabError):
                raise LabError(f"{failure}; {note}") from failure
            raise
        rundir.update_meta(status="up", timings=lab.timings, readiness=lab.readiness)
        if any(p.restart for n in net.nodes.values() for p in n.services):
            _start_supervisor(lab)
        return lab

    @classmethod
    def attach(cls, name: str, root: str | Path | None = None) -> "Lab":
        """The lab ``name`` deployed by any process (for `mhlab exec/inspect` and tests)."""
        rundir = RunDir.of(name, root)
        if not rundir.exists():
            known = ", ".join(r.lab for r in list_labs(root)) or "none"
            raise LabError(f"no lab named {name!r} in {rundir.path.parent} (running labs: {known})")
        topo = _renamed(load_lab(rundir.path / "topology.yaml"), name)
        kind = kind_of(topo)
        meta = rundir.meta()
        lab = cls(kind.netplan(topo), rundir, kind, timings=meta.get("timings", {}),
                  readiness=meta.get("readiness", []), cluster=ClusterRun.load(rundir))
        for rec in rundir.procs():
            if rec.name == "anchor":
                lab.nodes[rec.node] = NodeHandle(rec.node, rec, rundir,
                                                 lab.cluster.remote(rec.server) if rec.server and lab.cluster else None)
        return lab


def check_lab_name(name: str) -> str:
    """The rule of a file's ``name:``, for a name given on the command line (``--name``)."""
    if not re.match(NAME_PATTERN, name):
        raise UsageError(f"--name {name!r} is not a valid lab name (letters and digits, starting with a "
                           "letter, at most 10)")
    return name


def _renamed(topo, name: str):
    """A copy of a model (of any kind) under another lab name."""
    if name == topo.name:
        return topo
    check_lab_name(name)
    return topo.variant(name=name)


class _Builder:
    """The deploy steps, each timed into ``lab.timings``."""

    def __init__(self, lab: Lab, progress: Progress, pacer: Pacer | None = None) -> None:
        self.lab, self.progress, self.pacer = lab, progress, pacer
        self.mn: dict[str, Node] = {}
        self.checks: list[tuple[str, str, list[str], Future]] = []  # router, daemon, same shape, run
        self.checker: ThreadPoolExecutor | None = None

    def step(self, label: str, fn, *args) -> None:
        t0 = time.monotonic()
        self.progress(f"{label} ...")
        fn(*args)
        self.lab.timings[label] = round(time.monotonic() - t0, 3)

    def build(self, timeout: float | None) -> None:
        t0 = time.monotonic()
        net, rd = self.lab.net, self.lab.rundir
        self.step("render configs", lambda: render(net, rd.path, lambda n: node_dir(rd.path, n)))
        self.check_configs()
        try:
            self.step("create nodes", self.create_nodes)
            self.step("create links", self.create_links)
            self.step("configure addresses, routes, filters", self.configure)
        finally:
            for node in self.mn.values():  # the anchors hold the namespaces; the build shells can go
                node.terminate()
            if sys.exc_info()[0] is not None and self.checker is not None:
                self.checker.shutdown(cancel_futures=True)  # the few under way finish (a dry run is short)
        self.step("start FRR", self.start_frr)
        self.step("start services", self.start_services)
        for hook in self.lab.net.hooks:
            self.step(hook.name, hook.run, self.lab)
        for ready in self.lab.kind.readiness(self.lab.net):
            self.step(f"wait for {ready.name}", self.await_ready, ready, timeout)
        self.lab.timings["total"] = round(time.monotonic() - t0, 3)

    def create_nodes(self) -> None:
        """One anchor per node, which prepares its node itself: ``mnexec -n`` unshares the network and mount
        namespaces (making / private) and runs a shell that sets the node's sysctls, mounts a router's vty
        directory and then becomes ``sleep``, which holds both namespaces.  No shell stays per node and
        nothing enters a node from here (the veths need none, see ``create_links``): a 1,005-node lab spent
        105 s entering each node once to prepare it.  Each anchor, and the mount it will make, is in the
        journal before it is started."""
        lab = self.lab
        if lab.cluster is not None:
            return self._create_cluster_nodes(lab.cluster)
        procs = {}
        for spec in lab.net.nodes.values():
            ndir = node_dir(lab.rundir.path, spec.name)
            ndir.mkdir(parents=True, exist_ok=True)
            if spec.frr_daemons:
                self._record_vty_mount(spec.name, ndir)
            with open(ndir / "anchor.err", "wb") as err:
                procs[spec.name] = subprocess.Popen(
                    ["mnexec", "-cdn", "sh", "-c", f"{_prepare_script(spec, ndir)} && exec sleep infinity"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=tagged_env(lab.rundir))
            rec = ProcRecord(spec.name, "anchor", procs[spec.name].pid, start_time(procs[spec.name].pid) or 0)
            lab.rundir.record(rec.as_dict())
            lab.nodes[spec.name] = NodeHandle(spec.name, rec, lab.rundir)
        lab.children += procs.values()
        for name, proc in procs.items():
            self._wait_prepared(lab.nodes[name], proc)

    @staticmethod
    def _wait_prepared(handle: NodeHandle, proc: subprocess.Popen) -> None:
        """The anchor is ``sleep`` once its node is ready; it exits if a sysctl or the mount failed."""
        def ready() -> bool:
            if proc.poll() is not None:
                said = (handle.dir / "anchor.err").read_text(errors="replace").strip()[-500:]
                raise LabError(f"node {handle.name}: preparing the node failed (exit {proc.returncode}): {said}")
            return Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep"

        wait_until(ready, 30, 0.002, what=f"node {handle.name}: its anchor setting the node up",
                   ignore=(OSError,))

    def _create_cluster_nodes(self, cluster: ClusterRun) -> None:
        """Each node on its server (Mininet's remote node), held by a relayed anchor (``testbed.cluster``).
        Nodes are built side by side (``cluster.build.PARALLEL``): each costs several ssh round trips."""
        lab = self.lab

        def build(spec) -> None:
            mn = cluster.node(spec.name, spec.name.replace(":", "-"))
            self.mn[spec.name] = mn
            lab.rundir.record(ProcRecord(spec.name, "shell", mn.shell.pid, start_time(mn.shell.pid) or 0,
                                         server=mn.remote.name, rpid=mn.pid).as_dict())
            rec = cluster.anchor(spec.name, mn)
            lab.nodes[spec.name] = NodeHandle(spec.name, rec, lab.rundir, mn.remote)
            self._configure_node(spec)

        cluster.each(build, list(lab.net.nodes.values()))

    def _configure_node(self, spec) -> None:
        """A cluster node's sysctls and vty mount, in one command inside it (journal first, this thread)."""
        handle = self.lab.nodes[spec.name]
        if spec.frr_daemons:
            self._record_vty_mount(spec.name, handle.dir)
        handle.run(_prepare_script(spec, handle.dir), check=True)

    def _record_vty_mount(self, node: str, source: Path) -> None:
        """The router's run folder is bind-mounted onto FRR's vty directory inside the node only: the node's
        mount namespace is private (mnexec makes / rprivate), so the mount never shows outside and goes
        with the namespace when destroy stops the node's last process.  Recorded for the record."""
        self.lab.rundir.record({"kind": "mount", "node": node, "source": str(source),
                                "target": FRR_VTY_DIR, "undone_by": "the node's mount namespace ending"})

    def create_links(self) -> None:
        """Every veth pair by one ``ip -batch`` run from here, each end created directly inside its node's
        namespace (``netns PID``), so nothing ever appears in the root namespace and names cannot clash with
        another lab's; each pair is in the journal before the batch runs.  Then each LAN bridge inside its
        own node, a few at a time.  A cluster lab's links go through its servers (``testbed.cluster``)."""
        lab, batch = self.lab, []
        for index, link in enumerate(lab.net.links):
            how = "veth"
            if lab.cluster is not None:
                how = lab.cluster.link(index, self.mn[link.a], self.mn[link.b], link.a_if, link.b_if)
            else:
                batch.append(f"link add name {link.a_if} netns {lab.nodes[link.a].pid} type veth "
                             f"peer name {link.b_if} netns {lab.nodes[link.b].pid}")
            lab.rundir.record({"kind": "link", "a": link.a, "a_if": link.a_if, "b": link.b,
                               "b_if": link.b_if, "segment": link.segment, "as": how})
        if batch:
            res = subprocess.run(["ip", "-batch", "-"], input="\n".join(batch) + "\n", capture_output=True,
                                 text=True, timeout=120)
            if res.returncode != 0:
                raise LabError(f"creating the lab's veth pairs failed: {(res.stderr or res.stdout).strip()[:500]}")
        bridges = [spec for spec in lab.net.nodes.values() if spec.role == "bridge"]
        if lab.cluster is not None:
            lab.cluster.each(self._make_bridge, bridges)
        else:
            _parallel(self._make_bridge, bridges)

    def _make_bridge(self, spec) -> None:
        """The LAN's bridge and its ports, by one ``ip -batch`` inside the bridge's node."""
        ports = [l.b_if for l in self.lab.net.links if l.b == spec.name]
        batch = ["link add br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0"]
        batch += [f"link set dev {p} master br0 up" for p in ports]
        batch += ["link set dev br0 up"]
        self.lab.nodes[spec.name].run(["ip", "-batch", "-"], input="\n".join(batch) + "\n", check=True)

    def configure(self) -> None:
        specs = [spec for spec in self.lab.net.nodes.values() if spec.role != "bridge"]
        if self.lab.cluster is not None:  # over ssh: the nodes side by side
            self.lab.cluster.each(self._configure_addresses, specs)
        else:
            _parallel(self._configure_addresses, specs)

    def _configure_addresses(self, spec) -> None:
        handle = self.lab.nodes[spec.name]
        family = ["-family", self.lab.net.ip_family] if self.lab.net.ip_family else []
        handle.run(["ip", *family, "-batch", str(handle.dir / "setup.ip")], check=True)
        if spec.nft or spec.ingress:
            handle.run(["nft", "-f", str(handle.dir / "ruleset.nft")], check=True)

    def check_configs(self) -> None:
        """FRR's dry runs of the rendered configs, started in the background right after rendering: they
        need no namespace, so they overlap with building the nodes and links; ``start_frr`` collects them.
        One dry run per distinct config shape (``frr.config_shape``: routers of one role differ only in
        names, AS numbers and valid addresses), standing for every config of that shape; a bounded number
        at once, the largest configs (most BGP peers) first: all at once, a 50-site lab started 206 FRR
        processes together and the machine spent its time swapping between them."""
        rd = self.lab.rundir.path
        self.checker = ThreadPoolExecutor(max_workers=CHECKS_AT_ONCE, thread_name_prefix="frr-check")
        shapes: dict[tuple[str, str], int] = {}
        total = 0
        for spec in sorted(self.lab.net.routers(), key=_peers, reverse=True):
            ndir = node_dir(rd, spec.name)
            if spec.frr_daemons:  # FRR runs as frr: the dry run opens the config's log file as well
                os.chown(ndir, *_frr_ids())
            for daemon in spec.frr_daemons:
                total += 1
                key = (daemon, config_shape((ndir / f"{daemon}.conf").read_text(), spec.name, str(ndir)))
                if key in shapes:
                    self.checks[shapes[key]][2].append(spec.name)
                    continue
                shapes[key] = len(self.checks)
                self.checks.append((spec.name, daemon, [], self.checker.submit(
                    subprocess.run, check_argv(daemon, ndir, _peers(spec)), stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True, timeout=CHECK_TIMEOUT)))
        self.progress(f"FRR dry runs: {len(self.checks)} distinct configs stand for all {total}")

    def start_frr(self) -> None:
        routers = [n for n in self.lab.net.routers() if n.frr_daemons]
        bad = []
        checks, self.checks = self.checks, []
        for router, daemon, alike, future in checks:
            also = f" (and the {len(alike)} configs of the same shape: {', '.join(alike[:3])}...)" if alike else ""
            try:
                res = future.result()
            except subprocess.TimeoutExpired:
                bad.append(f"{router}/{daemon}.conf{also}: FRR's dry run took longer than {CHECK_TIMEOUT} s")
                continue
            bad += [f"{router}/{daemon}.conf{also}: {problem}"
                    for problem in check_problems(res.returncode, res.stdout)]
        if self.checker is not None:
            self.checker.shutdown()
        if bad:
            raise LabError("FRR rejected a rendered config (see `mhlab render`):\n" + "\n".join(bad))
        if self.pacer is None:
            self._start_daemons(routers)
            return
        done = 0
        while done < len(routers):  # paced: a batch once ksmd made room for it (testbed.ksm.Pacer)
            n = self.pacer.next_batch(len(routers) - done)
            self._start_daemons(routers[done:done + n])
            done += n
        pacer = self.pacer
        pacer.footprint()
        self.lab.timings["FRR waiting for ksmd"] = round(pacer.waited, 3)
        self.progress(f"FRR started in {pacer.batches} batches, {pacer.waited:.1f} s waiting for ksmd; the lab's "
                      f"peak so far {pacer.peak_kb / 2**20:.2f} GB of its {pacer.budget_kb / 2**20:.2f} GB budget")

    def _start_daemons(self, routers: list) -> None:
        """The routers' FRR: zebra first everywhere, then the protocol daemons that connect to it; returns once
        every daemon's vty socket is there (its start-up heap built)."""
        for spec in routers:
            handle = self.lab.nodes[spec.name]
            argv = [*self.lab.daemon_prefix, *daemon_argv("zebra", handle.dir, handle.dir, _peers(spec))]
            self.lab.children.append(handle.spawn("zebra", argv, env=daemon_env()))
        _wait_paths([self.lab.nodes[s.name].dir / "zserv.api" for s in routers], 10, "zebra's zserv socket")
        for spec in routers:
            handle = self.lab.nodes[spec.name]
            for daemon in spec.frr_daemons[1:]:
                argv = [*self.lab.daemon_prefix, *daemon_argv(daemon, handle.dir, handle.dir, _peers(spec))]
                self.lab.children.append(handle.spawn(daemon, argv, env=daemon_env()))
        _wait_paths([self.lab.nodes[s.name].dir / f"{d}.vty" for s in routers for d in s.frr_daemons], 10,
                    "FRR vty sockets")

    def start_services(self) -> None:
        """Servers and agents; ``{node_dir}`` in an argument is the node's folder, ``python3`` this Python."""
        ready: list[tuple[str, str, Path, subprocess.Popen, Path]] = []
        bad = []
        for spec in self.lab.net.nodes.values():  # every config's dry run first: nothing half-started
            handle = self.lab.nodes[spec.name]
            for svc in spec.services:
                if svc.check:
                    res = handle.run(_node_argv(svc.check, handle.dir), timeout=30)
                    if res.returncode != 0:
                        said = (res.stderr + res.stdout).strip()[-600:] or f"exit status {res.returncode}"
                        bad.append(f"node {spec.name}: {svc.name} cannot start, its configuration check "
                                   f"(`{' '.join(svc.check)}`) says:\n{said}")
        if bad:
            raise LabError("a service rejected its rendered config (see `mhlab render`):\n" + "\n".join(bad))
        for spec in self.lab.net.nodes.values():
            handle = self.lab.nodes[spec.name]
            for svc in spec.services:
                argv = _node_argv(svc.argv, handle.dir)
                proc = handle.spawn(svc.name, argv, cwd=handle.dir, env=svc.env)
                self.lab.children.append(proc)
                if svc.ready:
                    ready.append((spec.name, svc.name, Path(svc.ready.replace("{node_dir}", str(handle.dir))),
                                  proc, handle.dir / f"{svc.name}.out"))
        wait_until(lambda: _pending_services(ready), 30, 0.01, ok=lambda missing: not missing,
                   what="services' ready files appearing (see the node's *.out and *.log files)")

    def await_ready(self, ready: Condition, timeout: float | None) -> None:
        """Poll one of the kind's readiness conditions; fails naming what is still missing.  The report
        (``Lab.readiness``, the run directory's meta) says what was awaited, how many polls it took and
        what was still missing at the first poll: a retry a loaded machine needed is visible, not hidden."""
        polls: list[list[str]] = []

        def poll() -> list[str]:
            polls.append(list(ready.pending(self.lab)))
            return polls[-1]

        t0 = time.monotonic()
        wait_until(poll, ready.timeout if timeout is None else timeout, ready.interval,
                   what=f"lab {self.lab.name}: {ready.name}", ok=lambda pending: not pending)
        report = {"name": ready.name, "waited_for": ready.targets(self.lab.net), "polls": len(polls),
                  "seconds": round(time.monotonic() - t0, 3), "retried": polls[0] if len(polls) > 1 else []}
        self.lab.readiness.append(report)
        if report["retried"]:
            self.progress(f"{ready.name}: ready after {len(polls)} polls ({report['seconds']:.2f} s); at the "
                          f"first still missing: {'; '.join(report['retried'][:5])}")


def _start_supervisor(lab: Lab) -> None:
    """``python -m testbed.supervise`` for this lab (root namespace, tagged, recorded as node ``lab``)."""
    with open(lab.rundir.path / "supervisor.out", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "testbed.supervise", lab.name, "--run-root",
                                 str(lab.rundir.path.parent)], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=tagged_env(lab.rundir), start_new_session=True,
                                cwd=Path(__file__).resolve().parent.parent)
    lab.rundir.record(ProcRecord("lab", "supervisor", proc.pid, start_time(proc.pid) or 0,
                                 tuple(proc.args)).as_dict())


def _prepare_script(spec, ndir: Path) -> str:
    """The shell line that prepares a node from inside: its sysctls, and FRR's vty directory for a router."""
    if spec.role == "bridge":
        script = "sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
    else:
        script = f"sysctl -q -p {shlex.quote(str(ndir / 'sysctl.conf'))}"
    if spec.frr_daemons:
        script += f" && mount --bind {shlex.quote(str(ndir))} {FRR_VTY_DIR}"
    return script


def _parallel(fn, items: list) -> None:
    """``fn`` over ``items`` in a few threads: each call mostly waits for a command inside a node, so a few
    at once keep both cores busy.  Every call finishes before the first error is raised."""
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="build") as pool:
        futures = [pool.submit(fn, item) for item in items]
    for future in futures:
        future.result()


def _peers(spec) -> int:
    """BGP sessions of a router (what its FRR daemons are sized for, see ``frr.fd_limit``)."""
    return len(spec.bgp.neighbors) if spec.bgp else 0


def _node_argv(argv: list[str], node_dir: Path) -> list[str]:
    """A service's argv as run in its node: ``{node_dir}`` is the node's folder, ``python3`` this Python."""
    return [sys.executable if a == "python3" else a.replace("{node_dir}", str(node_dir)) for a in argv]


def _check_traversable(root: Path) -> None:
    """FRR's daemons run as user frr and must reach their node folder: every parent needs o+x."""
    for parent in [root, *root.parents]:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise LabError(f"FRR runs as user 'frr' and cannot enter {parent} (mode "
                           f"{oct(parent.stat().st_mode & 0o777)}): choose a run root whose parents are "
                           "world-searchable, e.g. the default /run/mhlab")


def _frr_ids() -> tuple[int, int]:
    try:
        return pwd.getpwnam("frr").pw_uid, grp.getgrnam("frr").gr_gid
    except KeyError:
        raise LabError("the 'frr' user is missing: is FRR installed? (make setup)") from None


def _pending_services(ready: list[tuple[str, str, Path, subprocess.Popen, Path]]) -> list[str]:
    """Ready files still missing; a service that exited before writing its file fails the deploy at once,
    naming the node and the service's last words (from its ``.out`` file)."""
    for node, name, path, proc, out in ready:
        if not path.exists() and proc.poll() is not None:
            words = out.read_text(errors="replace").strip().splitlines()[-3:] if out.exists() else []
            raise LabError(f"node {node}: service {name} exited ({proc.returncode}) before it was ready: "
                           + (" / ".join(words) or "no output"))
    return [str(path) for _, _, path, _, _ in ready if not path.exists()]


def _wait_paths(paths: list[Path], timeout: float, what: str) -> None:
    wait_until(lambda: [str(p) for p in paths if not p.exists()], timeout, 0.01, ok=lambda missing: not missing,
               what=f"{what} appearing (see the node's *.out and *.log files)")


# host state a lab may hold (journal record kind -> who holds it, what it is): the last holder out restores it
HOST_STATE = {"host-sysctl": (HostTables, "the host's neighbour table"), "host-ksm": (HostKsm, "the host's KSM settings")}


def _release_host_state(rundir: RunDir, progress: Progress) -> dict[str, int]:
    """The lab lets go of each host setting it raised or turned on (``HOST_STATE``, from its journal); for
    each, the last lab out restores the old values.  Returns what was restored."""
    restored: dict[str, int] = {}
    records = rundir.records()
    for kind, (holder, what) in HOST_STATE.items():
        held = [r for r in records if r.get("kind") == kind]
        if not held:
            continue
        done = holder(record=Path(held[0]["record"])).release(str(rundir.path))
        if done:
            progress(f"restored {what}: " + ", ".join(f"{k}={v}" for k, v in done.items()))
        restored.update(done)
    return restored


def destroy(name: str, root: str | Path | None = None, progress: Progress = _quiet,
            keep_dir: bool = False, forget_servers: bool = False) -> dict:
    """Stop every process of lab ``name`` (recorded or tagged) - which frees its namespaces, links, bridges
    and mounts - then remove its run directory.  Touches nothing else.  Returns what it did.  A cluster
    lab's servers are swept first; one that cannot be keeps the run directory, unless ``forget_servers``
    (a server that is gone for good)."""
    rundir = RunDir.of(name, root)
    if not rundir.path.exists():
        raise LabError(f"no lab named {name!r} in {rundir.path.parent}")
    rundir.update_meta(status="destroying")
    swept = {}
    cluster = ClusterRun.load(rundir)
    if cluster is not None:  # every server first: their sweeps go over the lab's own ssh connections
        swept = cluster.sweep(progress)
    recs = rundir.procs()
    targets = {r.pid: r.start for r in recs if r.name not in ("anchor", "shell")}
    tagged = {p: s for p, s in tagged_pids(name, rundir.path).items() if p != os.getpid()}
    holders = {r.pid: r.start for r in recs if r.name in ("anchor", "shell")}
    targets.update({p: s for p, s in tagged.items() if p not in holders})
    progress(f"stopping {len(targets)} processes of lab {name}")
    left = stop_all(targets)
    progress(f"releasing {len({r.node for r in recs if r.name == 'anchor'})} nodes")
    left += stop_all({**holders, **{p: s for p, s in tagged_pids(name, rundir.path).items() if p != os.getpid()}},
                     grace=0.5)
    if left:
        raise LabError(f"lab {name}: processes {left} would not stop; run directory kept in {rundir.path}")
    failed = {s: r for s, r in swept.items() if "error" in r or r.get("left")}
    if failed and not forget_servers:
        raise LabError(f"lab {name}: servers {', '.join(failed)} not swept clean ({failed}); run directory "
                       f"kept in {rundir.path}: `mhlab destroy {name}` again once they answer "
                       "(`--forget-servers` if they are gone for good)")
    restored = _release_host_state(rundir, progress)
    if not keep_dir:
        rundir.remove()
    return {"lab": name, "processes": len(targets), "nodes": len(holders) // 2 if holders else 0,
            **({"restored": restored} if restored else {}), **({"servers": swept} if cluster is not None else {})}
