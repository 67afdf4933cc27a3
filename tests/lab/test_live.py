"""Driving a running lab by hand: faults from one shell undone from another, captures, drawings, the
terminal view, a shell inside a node - each through the real `mhlab` command."""

import html
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from testbed.lab import Lab
from testbed.live.faultlog import faults_of
from testbed.procs import is_alive, tagged_pids
from testbed.pytest_plugin import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-isp-site.yaml", name="lilive")]

H1_A = "2001:db8:a001:1::10"  # h1's address from ISP A: its packets cross ispa-ra
SRV = "2001:db8:f000::10"


def mhlab(lab, *args, check=True, timeout=90, **kw):
    res = subprocess.run([sys.executable, "-m", "testbed.cli", "--run-root", str(lab.rundir.path.parent), *args],
                         capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        pytest.fail(f"mhlab {' '.join(args)} -> {res.returncode}: {res.stderr}{res.stdout}")
    return res


def link_up(lab, node, ifname):
    info = json.loads(lab[node].run(["ip", "-j", "link", "show", ifname]).stdout)[0]
    return "UP" in info["flags"]


def in_force(lab):
    return json.loads(mhlab(lab, "faults", lab.name, "--json").stdout)


@pytest.fixture(autouse=True)
def nothing_in_force(lab):
    yield
    mhlab(lab, "restore", lab.name, "--all")


def test_a_link_cut_in_one_shell_is_seen_and_undone_from_another(lab):
    out = mhlab(lab, "fault", lab.name, "link-down", "ra-ispa").stdout
    assert "fault link-down-ispa-ra in force" in out
    assert not link_up(lab, "ra", "ispa") and not link_up(lab, "ispa", "ra")
    [entry] = in_force(lab)
    assert entry["state"] == "active" and entry["fault"] == {"kind": "link-down", "link": "ispa-ra", "at": 0.0,
                                                             "until": None, "name": "link-down-ispa-ra"}
    assert "ispa-ra down" in mhlab(lab, "faults", lab.name).stdout
    again = mhlab(lab, "fault", lab.name, "link-down", "ispa,ra", check=False)
    assert again.returncode == 1 and "already in force on lab lilive as 'link-down-ispa-ra'" in again.stderr
    assert "undone (restored)" in mhlab(lab, "restore", lab.name, "ispa-ra").stdout
    assert link_up(lab, "ra", "ispa") and link_up(lab, "ispa", "ra") and in_force(lab) == []


def test_for_seconds_undoes_by_itself(lab):
    mhlab(lab, "fault", lab.name, "loss", "ispa-ra", "100%", "--for", "10")
    assert "mhlab_fault_loss_ispa_ra" in lab["ra"].run(["nft", "list", "tables"]).stdout
    ping = lab["h1"].run(["ping", "-c2", "-W1", "-I", H1_A, SRV])
    assert ping.returncode != 0, "100 % loss lets nothing through"
    wait_until(lambda: in_force(lab) == [], timeout=40, what="the --for fault to expire")
    assert "mhlab_fault" not in lab["ra"].run(["nft", "list", "tables"]).stdout
    assert faults_of(lab.rundir)[-1].state == "expired"
    assert lab["h1"].run(["ping", "-c1", "-W2", "-I", H1_A, SRV]).returncode == 0


def test_a_fault_whose_holder_was_killed_is_undone_from_the_journal(lab):
    mhlab(lab, "fault", lab.name, "isp-down", "ispb")
    [entry] = in_force(lab)
    os.kill(entry["holder"], signal.SIGKILL)
    wait_until(lambda: in_force(lab)[0]["state"] == "orphaned", what="the fault to show as orphaned")
    assert "undone (re-created)" in mhlab(lab, "restore", lab.name, "--all").stdout
    assert link_up(lab, "rb", "ispb") and link_up(lab, "ispb", "core")


def test_a_killed_daemon_is_restarted_on_restore_and_one_shots_leave_nothing(lab):
    mhlab(lab, "fault", lab.name, "daemon-kill", "ra")
    wait_until(lambda: lab.bgp_sessions()["ispa"]["ra"] != "Established", timeout=30, what="ispa to lose ra")
    mhlab(lab, "restore", lab.name, "daemon-kill-ra")
    wait_until(lambda: lab.bgp_sessions()["ra"]["ispa"] == "Established", timeout=60, what="ra's session back")
    out = mhlab(lab, "fault", lab.name, "bgp-reset", "rb", "ispb").stdout
    assert "one-shot" in out and in_force(lab) == []


def test_bad_words_are_usage_errors(lab):
    res = mhlab(lab, "fault", lab.name, "loss", "ispa-ra", check=False)
    assert res.returncode == 2 and "loss needs PERCENT" in res.stderr
    res = mhlab(lab, "fault", lab.name, "link-down", "ispc-ra", check=False)
    assert res.returncode == 2 and "links: core-hosts" in res.stderr
    res = mhlab(lab, "fault", lab.name, "upstream-cut", "core", check=False)
    assert res.returncode == 2 and "has no upstreams" in res.stderr
    assert in_force(lab) == []


def test_capture_a_link_to_a_file_and_to_stdout(lab, tmp_path):
    ping = lab["h1"].popen(["ping", "-i", "0.1", "-c", "400", "-I", H1_A, SRV])
    try:
        pcap = tmp_path / "ispa-ra.pcap"
        mhlab(lab, "capture", lab.name, "ra-ispa", "-w", str(pcap), "--for", "2")
        decoded = subprocess.run(["tshark", "-r", str(pcap), "-Y", "icmpv6.type == 128"], capture_output=True,
                                 text=True).stdout
        assert decoded.count(f"{H1_A} → {SRV}") >= 5
        live = subprocess.Popen([sys.executable, "-m", "testbed.cli", "--run-root", str(lab.rundir.path.parent),
                                 "capture", lab.name, "ispa-ra", "--filter", "icmp6"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        wait_until(lambda: any(r.name == "tcpdump-ispa-ra" and is_alive(r) for r in lab.rundir.procs()),
                   timeout=20, what="tcpdump recorded in the journal")
        time.sleep(2)
        live.send_signal(signal.SIGINT)  # Ctrl-C
        data, err = live.communicate(timeout=10)
        assert live.returncode == 0, err
        assert data[:4] == bytes.fromhex("d4c3b2a1") and len(data) > 24 + 10 * 100  # pcap header + echoes
        assert b"packets captured" in err
    finally:
        ping.kill()
        ping.wait()


def test_the_live_drawing_shows_the_cut(lab, tmp_path):
    mhlab(lab, "fault", lab.name, "link-down", "ispa-ra")
    svg = tmp_path / "lab.svg"
    mhlab(lab, "graph", lab.name, "-o", str(svg))
    text = html.unescape(svg.read_text())
    assert '<g id="link-ispa-ra" class="edge down">' in text and "⚡ link-down-ispa-ra" in text
    assert '<g id="link-ispb-rb" class="edge up">' in text


def test_watch_follows_a_cut_in_a_terminal(lab):
    tmux = ["tmux", "-L", f"li-{os.getpid()}"]  # a tmux server of our own
    cmd = (f"{sys.executable} -m testbed.cli --run-root {lab.rundir.path.parent} watch {lab.name} --interval 0.5")
    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "70", cmd], check=True)
    try:
        def row():
            screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
            return next((l for l in screen.splitlines() if "ispa:ra - ra:ispa" in l), "")
        assert "UP" in wait_until(row, timeout=20, what="the watch view")
        mhlab(lab, "fault", lab.name, "link-down", "ispa-ra")
        wait_until(lambda: "DOWN" in row() and "link-down-ispa-ra" in row(), timeout=20, what="the cut in the view")
    finally:
        subprocess.run([*tmux, "kill-server"])


def test_exec_without_a_command_is_a_shell_in_the_node(lab):
    res = mhlab(lab, "exec", lab.name, "h1", input="ip -br addr show lan\necho \"in $MHLAB_NODE\"\nexit 7\n",
                check=False)
    assert res.returncode == 7
    assert H1_A in res.stdout and "in h1" in res.stdout


def test_destroy_stops_what_faults_started(lab):
    other = Lab.deploy("topologies/two-isp-site.yaml", name="lidest", root=lab.rundir.path.parent)
    try:
        mhlab(other, "fault", other.name, "flap", "ispa-ra", "1")
        [entry] = in_force(other)
        holder = next(e.holder for e in faults_of(other.rundir) if e.name == entry["name"])
        assert is_alive(holder)
    finally:
        mhlab(other, "destroy", other.name)
    assert not is_alive(holder) and tagged_pids("lidest") == {}
