"""The ``mhlab`` command: validate, plan, render, deploy, inspect, exec, check, destroy multihoming labs,
and run scenarios on them.

Exit status: 0 success; 1 a runtime failure or a failed check; 2 bad input (lab or scenario file, arguments).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from .errors import DependencyError, LabError, MhlabError, TopologyError, UsageError
from .course import verbs as exercise
from .live import verbs as live
from .live.shell import node_shell_argv

EPILOG = """\
examples:
  mhlab validate topologies/two-isp-site.yaml     check a lab file (or a scenario file), build nothing
  mhlab plan topologies/two-isp-site.yaml         print the address plan
  mhlab render topologies/two-isp-site.yaml -o /tmp/cfg   write every node's configs (no root)
  sudo mhlab deploy topologies/two-isp-site.yaml  bring the lab up (named after the file's `name:`)
  sudo mhlab inspect twoisp                       nodes, addresses, daemons, BGP sessions
  sudo mhlab exec twoisp h1 -- ping -c1 2001:db8:f000::10
  sudo mhlab exec twoisp ra -- vtysh -c 'show bgp summary'   FRR and shimctl find the node's sockets
  sudo mhlab exec twoisp ra                       an interactive shell inside router ra
  sudo mhlab check twoisp                         ping/curl from every source address
  sudo mhlab destroy twoisp                       remove exactly what deploy created
  sudo mhlab run scenarios/baseline-link-down.yaml   a failover scenario with a report
  mhlab run --dry-run scenarios/baseline-link-down.yaml   what it would run, resolved against its lab
  sudo mhlab run scenarios/baseline-link-down.yaml --lab twoisp   the same on a running lab (left up)
  sudo mhlab demo                                 one fault, each mechanism, side by side
"""



def _progress(quiet: bool):
    t0 = time.monotonic()

    def show(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - t0:6.2f}s] {msg}", file=sys.stderr, flush=True)
    return show


def _load(path: str):
    from .kinds import load_lab
    return load_lab(path)


def _file_kind(path: str) -> str:
    """"scenario" or "lab": what a YAML file is (scenario files name a lab and say what happens on it)."""
    from .scenario.load import file_kind
    return file_kind(path)


def cmd_validate(args) -> int:
    if _file_kind(args.file) == "scenario":
        from .scenario.load import load_scenario
        from .scenario.run import dry_run
        loaded = load_scenario(args.file)
        s = loaded.scenario
        where = ""
        if loaded.lab_target()[0] == "topology":  # a lab file: resolve against its plan too (no lab needed)
            where = f", resolved against lab {dry_run(loaded).lab!r}"
        else:
            where = f" (lab {s.lab!r} is a running lab's name: `mhlab run --dry-run` resolves against it)"
        counts = ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in
                           ((len(s.traffic), "flow"), (len(s.faults), "fault"), (len(s.expect), "expectation")))
        print(f"{args.file}: ok - scenario {s.name or '(unnamed)'!r}: {counts}{where}")
        return 0
    topo = _load(args.file)
    from .kinds import netplan_for
    net = netplan_for(topo)
    print(f"{args.file}: ok - lab file, lab {topo.name!r}: "
          f"{sum(n.role == 'router' for n in net.nodes.values())} routers, "
          f"{sum(n.role == 'host' for n in net.nodes.values())} hosts, {len(net.links)} links")
    return 0


def cmd_plan(args) -> int:
    from .kinds import netplan_for
    topo = _load(args.file)
    net = netplan_for(topo)
    plan = net.plan  # any lab kind
    if args.json:
        print(json.dumps(plan.as_dict(), indent=2))
        return 0
    print(f"lab {topo.name}")
    if plan.aggregates:
        print("\nISP aggregates:")
    for isp, agg in plan.aggregates.items():
        print(f"  {isp:<10} AS{topo.isp(isp).asn:<7} {agg}")
    for site, prefixes in plan.site_prefixes.items():
        print(f"\nsite {site} (PA prefixes delegated by its ISPs):")
        for isp, p in prefixes.items():
            print(f"  from {isp:<10} {p}")
        if site in plan.pi_prefixes:
            print(f"  PI          {plan.pi_prefixes[site]}")
    print("\nsegments:")
    for seg in plan.segments:
        print(f"  {seg.name:<16} {seg.kind:<4} {', '.join(map(str, seg.subnets))}")
        for m in seg.members:
            print(f"      {m.node:<8} {m.ifname:<8} {', '.join(str(a) for a in m.addresses)}")
    for site in getattr(topo, "sites", []):
        print(f"\nsite {site.name}: routes configured per router (mechanism {site.mechanism}, "
              f"igp {topo.site_igp(site)})")
        for router in topo.site_routers(site):
            node = net.nodes[router]
            lines = [_route_text(r) for r in node.routes if r.kind != "blackhole"]
            lines += [" ".join(p.argv[2:4]) + " " + " ".join(p.argv[4:]) for p in node.services]
            if node.ospf6:
                lines.append("ospf6: " + ", ".join(i.name + (" (passive)" if i.passive else "")
                                                  for i in node.ospf6.interfaces)
                             + ("; announces a default" if node.ospf6.default_originate else "")
                             + "".join(f"; announces {p}" for p in node.ospf6.redistribute_kernel))
            print(f"  {router:<8} " + ("\n  " + " " * 9).join(lines or ["(connected routes only)"]))
    for note in net.notes:
        print(f"note: {note}")
    return 0


def _route_text(r) -> str:
    return f"{r.dst}" + (f" from {r.src}" if r.src else "") + (f" via {r.via}" if r.via else "") + \
        (f" dev {r.dev}" if r.dev else "")


def cmd_render(args) -> int:
    from .kinds import netplan_for
    from .render import render
    net = netplan_for(_load(args.file))
    written = render(net, Path(args.output))
    for note in net.notes:
        print(f"note: {note}")
    print(f"wrote {len(written)} files under {args.output}")
    return 0


def _ksm(args):
    """The KSM opt-in of `deploy`/`run` (``testbed.ksm``), or None."""
    from .ksm import KsmOptions
    if args.ksm_keep_aslr and not args.ksm:
        raise UsageError("--ksm-keep-aslr changes how --ksm starts FRR: give --ksm too")
    if args.ksm_budget is not None and not args.ksm:
        raise UsageError("--ksm-budget paces the FRR start to ksmd's merging: give --ksm too")
    if args.ksm_budget is not None and args.ksm_budget <= 0:
        raise UsageError(f"--ksm-budget {args.ksm_budget}: a budget is a positive number of GB")
    return KsmOptions(keep_aslr=args.ksm_keep_aslr, budget_gb=args.ksm_budget) if args.ksm else None


def _ksm_args(parser) -> None:
    parser.add_argument("--ksm", action="store_true",
                        help="save memory in big labs: start every FRR daemon open to kernel same-page merging "
                        "(prctl PR_SET_MEMORY_MERGE, through a small C wrapper built once per host, address "
                        "randomisation off so the routers' start-up heaps are identical) and run ksmd "
                        "(/sys/kernel/mm/ksm: run=1, pages_to_scan, sleep_millisecs; never slowed down). That "
                        "is host state: the old values are journalled and restored when the last lab that "
                        "turned KSM on is destroyed. ksmd merges in the background, during and after deploy: a "
                        "250-site lab holds 7-8 GB at convergence and 2-3 GB once merged, 1.5-3 minutes later on "
                        "a busy 2-core host (16-19 CPU-s of ksmd); see docs/scale.md")
    parser.add_argument("--ksm-keep-aslr", action="store_true",
                        help="with --ksm: leave address randomisation on in the daemons (fewer pages merge)")
    parser.add_argument("--ksm-budget", type=float, metavar="GB",
                        help="with --ksm: never let the lab hold more than GB of the host's memory (MemAvailable's "
                        "drop since the deploy began, other jobs included): routers start in batches, each once "
                        "ksmd has merged enough of the running ones; the deploy fails (removing everything) when "
                        "ksmd frees nothing for 60 s. A 250-site lab fits in 6 (see docs/scale.md)")


def cmd_deploy(args) -> int:
    from .lab import Lab
    _refuse_scenario(args.file, "deploy")
    cluster = None
    if args.cluster:
        from .cluster.model import load_cluster
        cluster = load_cluster(args.cluster).with_placement(args.place)
    elif args.place:
        raise UsageError("--place needs --cluster FILE (the servers to place nodes on)")
    lab = Lab.deploy(args.file, name=args.name, root=args.run_root, progress=_progress(args.quiet),
                     cluster=cluster, raise_neigh_table=args.raise_neigh_table, ksm=_ksm(args))
    print(f"lab {lab.name} is up in {lab.timings['total']:.2f} s ({len(lab.nodes)} nodes); "
          f"run directory {lab.rundir.path}")
    if lab.cluster is not None:
        for server, nodes in lab.cluster.placement().items():
            print(f"server {server}: {', '.join(nodes)}")
        print(f"links: MTU {lab.cluster.mtu}; across servers as VXLAN")
    for r in lab.readiness:
        retried = f", {len(r['retried'])} needed a retry" if r["retried"] else ""
        print(f"ready: {r['name']}: {len(r['waited_for'])} awaited ({r['polls']} polls, {r['seconds']:.2f} s"
              f"{retried})")
    print(f"next: mhlab inspect {lab.name} | mhlab exec {lab.name} NODE -- CMD | mhlab destroy {lab.name}")
    return 0


def cmd_destroy(args) -> int:
    from .lab import destroy
    from .owners import caller, destroyable, owner_of
    names = args.labs
    if args.all:
        mine, spared = destroyable(args.run_root, caller(), args.everyone)
        names = [r.lab for r in mine]
        for r in spared:
            print(f"lab {r.lab} spared: it belongs to {owner_of(r)} (--everyone removes it too)", file=sys.stderr)
    if not names:
        print("no labs to destroy" if args.all else "name a lab (or --all)", file=sys.stderr)
        return 0 if args.all else 2
    for name in names:
        res = destroy(name, args.run_root, _progress(args.quiet), forget_servers=args.forget_servers)
        print(f"lab {name} destroyed: {res['processes']} processes stopped, its namespaces released")
        for server, swept in res.get("servers", {}).items():
            print(f"  server {server}: " + (f"NOT swept ({swept['error']})" if "error" in swept else
                                            f"{swept['processes']} processes stopped, "
                                            f"{len(swept['vxlan'])} VXLAN devices removed"))
    return 0


def cmd_list(args) -> int:
    from .rundir import list_labs
    labs = list_labs(args.run_root)
    rows = [{"name": r.lab, **{k: r.meta().get(k) for k in ("status", "topology")}} for r in labs]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no labs")
    else:
        for r in rows:
            print(f"{r['name']:<12} {r['status']:<10} {r['topology']}")
    return 0


def cmd_inspect(args) -> int:
    from .inspect import inspect_lab, inspect_text
    from .lab import Lab
    data = inspect_lab(Lab.attach(args.lab, args.run_root))
    print(json.dumps(data, indent=2) if args.json else inspect_text(data))
    return 0


def cmd_exec(args) -> int:
    from .lab import Lab
    lab = Lab.attach(args.lab, args.run_root)
    node = lab.node(args.node)
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    env = node.env()
    if not argv:  # no command: an interactive shell in the node
        argv, extra = node_shell_argv(lab.name, node.name)
        env.update(extra)
    return subprocess.call(node.command(argv, tty=sys.stdin.isatty()), env=env)


def cmd_check(args) -> int:
    from .checks import run_all, table, to_json
    from .lab import Lab
    checks = run_all(Lab.attach(args.lab, args.run_root))
    print(to_json(checks) if args.json else table(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_demo(args) -> int:
    """The thesis's story: one fault, one lab shape, one row per mechanism, side by side."""
    from .demo import run_demo
    from .demo_report import terminal, write
    demo = run_demo(args.output, prefix=args.prefix, parallel=not args.serial, run_root=args.run_root)
    files = write(demo, args.output)
    print("\n" + terminal(demo))
    print(f"report: {files.markdown}\n        {files.json}\n        {files.png}")
    return 0 if demo.ran else 1


def _refuse_scenario(path: str, verb: str) -> None:
    if _file_kind(path) == "scenario":
        raise UsageError(f"{path} is a scenario file, not a lab file: run it with `mhlab run {path}` "
                         f"(`mhlab {verb}` takes a lab file from topologies/)")


def cmd_run(args) -> int:
    from .scenario.load import load_scenario
    from .scenario.report import summary
    from .scenario.run import check_out_dir, default_out_dir, dry_run, run_loaded
    if _file_kind(args.scenario) != "scenario":
        raise UsageError(f"{args.scenario} is a lab file, not a scenario: bring it up with `mhlab deploy "
                         f"{args.scenario}`, or run a scenario that names it (`lab: {args.scenario}`)")
    loaded = load_scenario(args.scenario)
    out = check_out_dir(args.output or default_out_dir(loaded))
    if args.dry_run:
        print(dry_run(loaded, attach=args.lab, lab_name=args.name).text())
        print(f"{args.scenario}: resolved; nothing was built")
        return 0
    if args.lab and args.name:
        raise UsageError("--lab attaches to a running lab; --name names a lab to deploy: give one of them")
    outcome = run_loaded(loaded, out, attach=args.lab, lab_name=args.name, keep_lab=args.keep_lab,
                         pcap=args.pcap or [], progress=_progress(args.quiet),
                         raise_neigh_table=args.raise_neigh_table, ksm=_ksm(args))
    print(summary(outcome.result))
    print(f"report: {outcome.files.markdown}  {outcome.files.json}  {outcome.files.timeline}")
    return 0 if outcome.result.passed else 1


def cmd_mechanisms(args) -> int:
    from .mechanisms import mechanisms
    for m in mechanisms().values():
        print(f"{m.name:<14} {m.role:<8} thesis {m.thesis:<8} {m.summary}")
    return 0


def cmd_schema(args) -> int:
    if args.scenario:
        from .scenario.model import Scenario
        print(json.dumps(Scenario.model_json_schema(by_alias=True), indent=2))
        return 0
    from .topology import json_schema
    print(json.dumps(json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mhlab", description="Build and run IPv6 multihoming labs on real Linux "
                                "kernels: namespaces, veth links, FRR, real traffic.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-root", help="where run directories live (default /run/mhlab or $MHLAB_RUN_ROOT)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    def add(name, fn, help_, example, *arguments):
        sp = sub.add_parser(name, help=help_, description=help_, epilog=f"example:\n  {example}",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        for a in arguments:
            a(sp)
        sp.set_defaults(fn=fn)
        return sp

    file_arg = lambda sp: sp.add_argument("file", help="topology YAML file")  # noqa: E731
    lab_arg = lambda sp: sp.add_argument("lab", help="lab name (see `mhlab list`)")  # noqa: E731
    json_arg = lambda sp: sp.add_argument("--json", action="store_true", help="machine-readable output")  # noqa
    name_arg = lambda sp: sp.add_argument("--name", help="lab name (default: the file's `name:`)")  # noqa: E731
    quiet = lambda sp: sp.add_argument("-q", "--quiet", action="store_true", help="no progress lines")  # noqa

    add("validate", cmd_validate, "check a lab file or a scenario file (it says which) and build nothing; "
        "a scenario is also resolved against its lab file (exit 2 when invalid)",
        "mhlab validate topologies/two-isp-site.yaml\n  mhlab validate scenarios/baseline-link-down.yaml",
        lambda sp: sp.add_argument("file", help="lab file (topologies/) or scenario file (scenarios/)"))
    add("plan", cmd_plan, "print the address plan derived from a topology file",
        "mhlab plan topologies/two-isp-site.yaml --json", file_arg, json_arg)
    add("render", cmd_render, "write every node's configs (FRR, ip batch, nftables, sysctl) without root",
        "mhlab render topologies/two-isp-site.yaml -o /tmp/twoisp",
        file_arg, lambda sp: sp.add_argument("-o", "--output", required=True, help="output directory"))
    dp = add("deploy", cmd_deploy, "bring a lab up (root); it stays up until `mhlab destroy`",
             "sudo mhlab deploy topologies/two-isp-site.yaml --name lab2\n"
             "  sudo mhlab deploy topologies/two-isp-site.yaml --cluster servers.yaml --place h1=s2  "
             "(see docs/cluster.md)", file_arg, name_arg, quiet)
    dp.add_argument("--cluster", metavar="FILE", help="spread the lab over the servers of this cluster file "
                    "(servers, ssh, placement, MTU; docs/cluster.md); cross-server links are VXLAN")
    dp.add_argument("--place", action="append", default=[], metavar="NODE=SERVER",
                    help="with --cluster: run NODE on SERVER (overrides the file's place:; repeatable)")
    dp.add_argument("--raise-neigh-table", action="store_true",
                    help="when the host's neighbour table (net.ipv6/ipv4.neigh.default.gc_thresh1/2/3, one for "
                    "all namespaces) cannot hold the lab, raise it; the old values are journalled and restored "
                    "when the last lab that raised them is destroyed (without it a lab that cannot fit even "
                    "half of its possible entries fails before anything is built, naming the numbers)")
    _ksm_args(dp)
    d = add("destroy", cmd_destroy, "stop exactly the processes of a lab and release its namespaces",
            "sudo mhlab destroy twoisp", quiet)
    d.add_argument("labs", nargs="*", help="lab names")
    d.add_argument("--all", action="store_true", help="every lab in the run root that is yours (or nobody's): "
                   "labs another user started with `mhlab exercise start` are spared")
    d.add_argument("--everyone", action="store_true", help="with --all: other users' labs too")
    d.add_argument("--forget-servers", action="store_true", help="a cluster lab: remove the run directory "
                   "even if a server cannot be swept (it is gone for good; whatever ran there is not stopped)")
    add("list", cmd_list, "list labs in the run root", "mhlab list --json", json_arg)
    add("inspect", cmd_inspect, "nodes, addresses, processes, BGP sessions and the kind's details (ingress "
        "counters; an I2P Destination's leases) of a running lab; for a lab across servers (deploy "
        "--cluster) also each node's server",
        "sudo mhlab inspect twoisp --json", lab_arg, json_arg)
    e = add("exec", cmd_exec, "run a command inside a node of a running lab (exit status passed through); "
            "no command: an interactive shell in the node",
            "sudo mhlab exec twoisp h1 -- curl -s http://[2001:db8:f000::10]/", lab_arg)
    e.add_argument("node", help="node name")
    e.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...] (none: a shell in the node)")
    add("check", cmd_check, "the lab kind's end-to-end checks (exit 1 on a failure): multihoming - BGP "
        "sessions, ping/curl from every host address, no ingress-filter drop meanwhile; i2p - routers up, "
        "tunnels built, LeaseSet published, a SAM request answered", "sudo mhlab check twoisp", lab_arg, json_arg)
    dm = add("demo", cmd_demo, "the thesis's story: ISP A1's access link fails under live traffic, on the same "
             "two-site lab once per mechanism (none, sadr-static, shim...), results side by side",
             "sudo mhlab demo -o reports/demo")
    dm.add_argument("-o", "--output", default="reports/demo", help="report directory (default reports/demo)")
    dm.add_argument("--prefix", default="demo", help="lab names start with this (default demo: demo0none, ...)")
    dm.add_argument("--serial", action="store_true", help="one lab after the other instead of all at once")
    r = add("run", cmd_run, "run a scenario: lab up (or attached), traffic, timed faults, expectations, report "
            "(exit 1 when an expectation fails)",
            "sudo mhlab run scenarios/baseline-link-down.yaml -o reports/ld\n"
            "  mhlab run --dry-run scenarios/baseline-link-down.yaml\n"
            "  sudo mhlab deploy topologies/two-isp-site.yaml && sudo mhlab run scenarios/baseline-link-down.yaml "
            "--lab twoisp\n  sudo mhlab run scenarios/baseline-upstream-cut.yaml --pcap ispa-ra --pcap core,ispa",
            lambda sp: sp.add_argument("scenario", help="scenario YAML file (scenarios/)"), quiet)
    r.description = textwrap.fill(
        "Run a scenario: lab up (or attached), traffic, timed faults, expectations, report (exit 1 when an "
        "expectation fails). The lab is the scenario's `lab:` - a lab file, deployed for the run and torn down "
        "after it, or a running lab's name - or the running lab given with --lab (attached, never deployed, "
        "left up). Every name, link, address and fault is resolved against the lab before anything is built "
        "or started; --dry-run stops there and prints what would run.", 100)
    r.add_argument("--name", help="deploy the lab under this name (default: the lab file's `name:`)")
    r.add_argument("--lab", metavar="LAB", help="run on this running lab (see `mhlab list`) instead of the "
                                                "scenario's `lab:`; it stays up")
    r.add_argument("--dry-run", action="store_true", help="resolve flows, addresses, fault links and "
                   "expectations against the lab and print them; build and start nothing")
    r.add_argument("-o", "--output", help="report directory (default reports/<scenario name>)")
    r.add_argument("--keep-lab", action="store_true", help="leave a deployed lab up afterwards")
    r.add_argument("--raise-neigh-table", action="store_true",
                   help="let the lab deployed for the run raise the host's neighbour table (as `mhlab deploy "
                   "--raise-neigh-table`: journalled, restored when the last lab that raised it is destroyed)")
    _ksm_args(r)
    r.add_argument("--pcap", action="append", metavar="LINK",
                   help="capture a link to LINK.pcap in the report directory; repeat it (or ';'-separate) for "
                        "several: link names (ispa-ra) or node pairs (ra,ispa)")
    add("mechanisms", cmd_mechanisms, "list the multihoming mechanisms a site can use", "mhlab mechanisms")
    sc = add("schema", cmd_schema, "print the JSON schema of topology files (or, with --scenario, of scenario "
             "files; every field has a description)",
             "mhlab schema > topology.schema.json\n  mhlab schema --scenario > scenario.schema.json")
    sc.add_argument("--scenario", action="store_true", help="the schema of scenario files")
    live.register_fault(sub)  # fault, faults, restore
    live.register_capture(sub)
    live.register_graph(sub)
    live.register_watch(sub)
    live.register_serve(sub)
    exercise.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    try:
        return args.fn(args)
    except TopologyError as exc:
        print(f"error: invalid {exc.what}\n{exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DependencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (LabError, MhlabError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mhlab plan … | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
