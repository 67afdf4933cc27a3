"""Two real shim daemons in a private network namespace (``unshare -n``), raw sockets on ``lo``.

Root only.  The namespace is created by a subprocess and dies with it; nothing in the root
namespace is touched.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from agents.jsonctl import request
from agents.shim.config import build_identity

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare"),
]


@pytest.fixture(scope="module")
def scenario():
    proc = subprocess.run(["unshare", "-n", sys.executable, "-m", "tests.lab.test_shim_local"], cwd=ROOT,
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_four_way_exchange_over_raw_sockets(scenario):
    (ca,) = scenario["contexts_a"]
    (cb,) = scenario["contexts_b"]
    assert ca["state"] == cb["state"] == "established"
    assert ca["peer_context_tag"] == cb["local_context_tag"] and cb["peer_context_tag"] == ca["local_context_tag"]
    assert ca["peer_ulid"] == scenario["ulids"]["b"][0]
    assert {loc["address"] for loc in ca["peer_locators"]["locators"]} == set(scenario["ulids"]["b"])


def test_reap_detects_the_cut_and_reports_a_working_pair(scenario):
    kinds = [e["kind"] for e in scenario["events_a"]]
    assert "failure-detected" in kinds and "pair-switched" in kinds
    assert scenario["switch_after"] < 3.0 + 2.0  # tuned Send Timeout is 3 s
    (preferred,) = [p for p in scenario["pairs_a"] if p["preferred"]]
    assert preferred["state"] == "reachable"
    assert (preferred["local"], preferred["remote"]) != (scenario["ulids"]["a"][0], scenario["ulids"]["b"][0])


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark absent")
def test_tshark_sees_shim6_with_good_checksums(scenario):
    types = [row[0] for row in scenario["tshark"]]
    assert types[:4] == ["1", "2", "3", "4"]  # I1 R1 I2 R2
    assert "67" in types  # probes
    assert all(row[1] == "1" for row in scenario["tshark"])  # wireshark checksum status 1 = Good


# --- the part that runs inside the namespace (python -m tests.lab.test_shim_local) -----------

HOSTS = {
    "a": {"prefixes": ["2001:db8:a1:1::/64", "2001:db8:a2:1::/64"], "modifier": "00" * 16, "pseudo_key": "11" * 48},
    "b": {"prefixes": ["2001:db8:b1:1::/64", "2001:db8:b2:1::/64"], "modifier": "22" * 16, "pseudo_key": "33" * 48},
}


def ask(path, **payload):
    return request(path, payload)


def wait_for(predicate, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return None


def scenario_main():
    """Runs INSIDE the private namespace: prints one JSON object with what it saw."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = tempfile.mkdtemp(prefix="shimlab-")
    ulids, procs, sockets = {}, [], {}
    for name, host in HOSTS.items():
        identity = build_identity(host["prefixes"], 0, host["modifier"], host["pseudo_key"], None)
        ulids[name] = [str(a) for a in identity.ulids]
        for address in ulids[name]:
            subprocess.run(["ip", "-6", "addr", "add", f"{address}/64", "dev", "lo", "nodad"], check=True)
        sockets[name] = os.path.join(tmp, f"{name}.sock")
        cmd = [sys.executable, "-m", "agents.shim.daemon", "--socket", sockets[name], "--profile", "tuned",
               "--sec", "0", "--modifier", host["modifier"], "--pseudo-key", host["pseudo_key"]]
        for prefix in host["prefixes"]:
            cmd += ["--prefix", prefix]
        procs.append(subprocess.Popen(cmd, cwd=str(ROOT), stdout=open(os.path.join(tmp, f"{name}.log"), "w"),
                                      stderr=subprocess.STDOUT))
    capture = subprocess.Popen(["tshark", "-i", "lo", "-f", "ip6 proto 140", "-w", os.path.join(tmp, "shim.pcap"), "-q"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if shutil.which("tshark") else None
    result = {"ulids": ulids}
    try:
        wait_for(lambda: all(os.path.exists(p) for p in sockets.values()), 10)
        time.sleep(1.0 if capture else 0.1)
        ask(sockets["a"], cmd="connect", peer=ulids["b"][0])
        result["contexts_a"] = wait_for(lambda: [c for c in ask(sockets["a"], cmd="contexts") if c["state"] == "established"], 10)
        result["contexts_b"] = ask(sockets["b"], cmd="contexts")
        # cut the pair in use in both directions, then let A send without hearing back
        nft = "\n".join([
            "table inet shimlab {", "chain out {", "type filter hook output priority 0;",
            f"ip6 saddr {ulids['a'][0]} ip6 daddr {ulids['b'][0]} drop",
            f"ip6 saddr {ulids['b'][0]} ip6 daddr {ulids['a'][0]} drop", "}", "}", ""])
        subprocess.run(["nft", "-f", "-"], input=nft.encode(), check=True)
        t0 = time.monotonic()
        ask(sockets["a"], cmd="observe", local=ulids["a"][0], peer=ulids["b"][0], direction="out")
        switched = wait_for(lambda: [e for e in ask(sockets["a"], cmd="events") if e["kind"] == "pair-switched"], 15)
        result["switch_after"] = time.monotonic() - t0
        result["events_a"] = ask(sockets["a"], cmd="events")
        result["pairs_a"] = ask(sockets["a"], cmd="pairs")
        result["switched"] = switched
        result["status_b"] = ask(sockets["b"], cmd="status")
    finally:
        if capture:
            time.sleep(0.5)
            capture.terminate()
            capture.wait(5)
        for name in sockets:
            try:
                ask(sockets[name], cmd="shutdown")
            except OSError:
                pass
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
    if capture:
        fields = subprocess.run(["tshark", "-r", os.path.join(tmp, "shim.pcap"), "-T", "fields", "-e", "shim6.type",
                                 "-e", "shim6.checksum.status"], capture_output=True, text=True).stdout
        result["tshark"] = [line.split("\t") for line in fields.splitlines() if line]
    print(json.dumps(result))


if __name__ == "__main__":
    scenario_main()
