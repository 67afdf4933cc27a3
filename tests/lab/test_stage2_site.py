"""The stage-2 add-ons on real namespaces (topologies/stage2-site.yaml): the deprecation add-on marks h1's
and h2's ISP-A addresses deprecated when ISP A's access link fails, so a new unbound connection from h1
uses ISP B, and makes them preferred again after; mhlab inspect reports the agents, and a killed exit path
agent is restarted by the lab's supervisor while the host keeps working (it fails open).  A radvd that refuses its configuration is a deploy error
naming the node and radvd's own words."""

import json
import os
import signal
import sys

import pytest
from pydantic import TypeAdapter

import testbed.mechanisms.deprecation as deprecation
from agents.marks import SOURCE_CHOSEN
from testbed.errors import LabError
from testbed.faults import prepare
from testbed.inspect import inspect_lab, inspect_text
from testbed.lab import Lab
from testbed.procs import is_alive
from testbed.rundir import run_root
from testbed.scenario.model import Fault
from testbed.wait import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/stage2-site.yaml", name="dps2")]
# the connection says its source is the kernel's choice on purpose (agents/marks.py): the exit path agent
# keeps it instead of racing it, so what is measured is the kernel's source selection (labels, deprecation)
CONNECT = ("import socket,sys; s=socket.socket(socket.AF_INET6); s.settimeout(2); "
           f"s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, {SOURCE_CHOSEN}); s.connect((sys.argv[1], 80)); "
           "print(s.getsockname()[0])")


def _deprecated(lab, host, isp):
    addr = lab.plan.address(host, isp)
    out = json.loads(lab[host].run(["ip", "-j", "-6", "addr", "show"]).stdout)
    return any(a.get("local") == addr and a.get("deprecated") for link in out for a in link["addr_info"])


def _source_of_new_connection(lab):
    res = lab["h1"].run([sys.executable, "-c", CONNECT, lab.plan.address("srv")], timeout=10)
    return res.stdout.strip() if res.returncode == 0 else None


def test_access_link_down_deprecates_isp_a_on_the_lan_and_back(lab):
    h1 = lab["h1"]
    for prefix in (lab.plan.site_prefixes["site"]["ispa"], lab.plan.aggregates["core"]):
        h1.run(["ip", "addrlabel", "del", "prefix", str(prefix), "label", "20"])  # a rerun finds it there
        h1.run(["ip", "addrlabel", "add", "prefix", str(prefix), "label", "20"], check=True)
    a, b = lab.plan.address("h1", "ispa"), lab.plan.address("h1", "ispb")
    assert wait_until(lambda: _source_of_new_connection(lab), 10, 0.2, what="h1 connects") == a
    action = prepare(TypeAdapter(Fault).validate_python({"kind": "link-down", "link": "ispa-ra", "at": 0}), lab)
    action.do()
    try:
        wait_until(lambda: all(_deprecated(lab, h, "ispa") for h in ("h1", "h2")), 5, 0.02,
                   what="ISP-A addresses deprecated on the LAN")
        assert not _deprecated(lab, "h1", "ispb")
        assert _source_of_new_connection(lab) == b
        text = inspect_text(inspect_lab(Lab.attach(lab.name)))
        assert "ispa DEPRECATED" in text and "radvd, site site" in text
    finally:
        action.revert()
    wait_until(lambda: not any(_deprecated(lab, h, "ispa") for h in ("h1", "h2")), 30, 0.1,
               what="ISP-A addresses preferred again")
    # the exit path cache learnt B for srv during the fault and keeps it for its lifetime: either works now
    assert wait_until(lambda: _source_of_new_connection(lab), 10, 0.2, what="h1 connects") in (a, b)
    assert not any(_deprecated(lab, "h1", isp) for isp in ("ispa", "ispb"))


def test_a_killed_exit_path_agent_is_restarted_and_the_host_still_connects(lab):
    rec = next(p for p in lab.rundir.procs() if p.node == "h2" and p.name == "exitpath")
    data = inspect_lab(Lab.attach(lab.name))
    rows = next(s for s in data["details"] if s["title"].startswith("exit path agents"))["rows"]
    assert rows["h2"].startswith("running") and "sources" in rows["h2"]
    os.kill(rec.pid, signal.SIGKILL)
    res = lab["h2"].run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--connect-timeout", "3",
                         f"http://[{lab.plan.address('srv')}]/"], timeout=10)
    assert res.stdout == "200", res.stdout + res.stderr  # fail open: with or without its agent
    # the lab's supervisor starts it again, under a new record, and inspect shows it running
    wait_until(lambda: [p for p in lab.rundir.procs() if p.node == "h2" and p.name == "exitpath"
                        and p.pid != rec.pid and is_alive(p)], 20, 0.2, what="the agent restarted")
    wait_until(lambda: next(s for s in inspect_lab(Lab.attach(lab.name))["details"]
                            if s["title"].startswith("exit path agents"))["rows"]["h2"].startswith("running"),
               20, 0.5, what="inspect showing the restarted agent running")


def test_radvd_refusing_its_config_is_a_deploy_error_naming_node_and_message(monkeypatch):
    monkeypatch.setattr(deprecation, "render", lambda adverts, preferred, life: "interface lan { AdvSendAdvert on; nonsense; };\n")
    with pytest.raises(LabError) as err:
        Lab.deploy("topologies/stage2-site.yaml", name="dpbad")
    text = str(err.value)
    assert "node ra: radvd cannot start" in text and "radvd --configtest" in text, text
    assert "syntax error" in text or "nonsense" in text, text  # radvd's own message
    assert not (run_root() / "dpbad").exists()
