"""Bad topology files: each kind gives a clear error naming file, line and field, and builds nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.mechanisms import mechanisms
from testbed.netplan import build_netplan
from testbed.topology import load_topology

GOOD = """\
name: t
isps:
  - name: core
    asn: 65000
    hosts: [srv]
  - name: ispa
    asn: 65010
    upstreams: [core]
  - name: ispb
    asn: 65020
    upstreams: [core]
sites:
  - name: site
    exits:
      - {router: ra, isp: ispa}
      - {router: rb, isp: ispb}
    lans:
      - name: lan
        hosts: [h1]
        gateway: ra
"""

# (what, text replacement (old, new), expected line, words the message must contain)
CASES = [
    ("unknown field", ("    asn: 65010\n", "    asn: 65010\n    colour: red\n"), 8, ["unknown field", "colour"]),
    ("duplicate name", ("hosts: [h1]", "hosts: [h1, srv]"), 19, ["duplicate name", "srv"]),
    ("dangling link", ("    lans:\n", "    links: [[ra, rz]]\n    lans:\n"), None, ["rz"]),
    ("overlapping prefixes", ("      - {router: rb, isp: ispb}\n",
                              "      - {router: rb, isp: ispb, prefix: '2001:db8:b000::/48'}\n"
                              "      - {router: rc, isp: ispb, prefix: '2001:db8:b000::/48'}\n"), 17, ["overlaps"]),
    ("bad ASN", ("asn: 65020", "asn: 0"), 10, ["asn", "greater than or equal to 1"]),
    ("missing ISP for a site", ("{router: rb, isp: ispb}", "{router: rb, isp: ispz}"), 16, ["unknown ISP", "ispz"]),
    ("site without ISPs", ("    exits:\n      - {router: ra, isp: ispa}\n      - {router: rb, isp: ispb}\n",
                           "    exits: []\n"), 14, ["exits", "at least 1"]),
    ("unknown upstream", ("upstreams: [core]\n  - name: ispb", "upstreams: [cor]\n  - name: ispb"), 8,
     ["unknown ISP", "cor"]),
    ("upstream loop", ("  - name: core\n    asn: 65000\n", "  - name: core\n    asn: 65000\n    upstreams: [ispa]\n"),
     5, ["loops"]),
    ("gateway not on the LAN", ("gateway: ra", "gateway: h1"), 20, ["gateway", "h1"]),
    ("prefix outside the ISP aggregate", ("{router: ra, isp: ispa}",
                                          "{router: ra, isp: ispa, prefix: '2001:db8:b000::/48'}"), 15,
     ["not inside", "aggregate"]),
    ("prefix outside 2001:db8::/32", ("    asn: 65010\n", "    asn: 65010\n    aggregate: '2001:470::/40'\n"), 8,
     ["documentation prefix"]),
    ("overlapping aggregates", ("upstreams: [core]\n  - name: ispb\n    asn: 65020\n",
                                "upstreams: [core]\n    aggregate: '2001:db8:a000::/40'\n  - name: ispb\n"
                                "    asn: 65020\n    aggregate: '2001:db8:a000::/44'\n"), 12, ["overlaps"]),
    ("bad name", ("name: site", "name: Site-1"), 13, ["not a valid name"]),
    ("unknown mechanism", ("  - name: site\n", "  - name: site\n    mechanism: magic\n"), 14,
     ["unknown mechanism", "magic"]),
    ("duplicate key", ("    asn: 65020\n", "    asn: 65020\n    asn: 65021\n"), 11, ["duplicate key"]),
    ("not YAML", ("hosts: [h1]", "hosts: [h1"), None, ["not valid YAML"]),
    ("a host id that is not one", ("hosts: [h1]", "hosts: [{name: h1, iid: banana}]"), 19, ["interface identifier"]),
    ("AS_TRANS", ("asn: 65020", "asn: 23456"), 10, ["isps.2.asn", "AS_TRANS", "private ASN"]),
    ("reserved ASN", ("asn: 65020", "asn: 65535"), 10, ["isps.2.asn", "reserved (RFC 7300)"]),
    ("IANA-reserved ASN", ("asn: 65020", "asn: 70000"), 10, ["isps.2.asn", "reserved by IANA"]),
    ("two ISPs with one ASN", ("asn: 65020", "asn: 65010"), 10, ["isps.2.asn", "also ISP ispa's (line 7)"]),
    ("a site with an ISP's ASN", ("  - name: site\n", "  - name: site\n    asn: 65000\n"), 14,
     ["sites.0.asn", "ISP core's (line 4)"]),
    ("a site whose default ASN is an ISP's", ("asn: 65020", "asn: 65100"), 13,
     ["sites.0:", "default ASN of site site (65100)", "set asn:"]),
    ("unknown shim option", ("  - name: site\n", "  - name: site\n    mechanism: shim\n    options: {sek: 1}\n"),
     15, ["sites.0.options.sek", "unknown option 'sek' of mechanism shim"]),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    return path


def test_the_base_file_is_valid(tmp_path):
    topo = load_topology(_write(tmp_path, GOOD), set(mechanisms()))
    assert [i.name for i in topo.isps] == ["core", "ispa", "ispb"]


@pytest.mark.parametrize("asn", [64496, 64511, 65536, 65551, 64512, 65534, 4200000000, 4294967294])
def test_documentation_and_private_asns_are_valid(tmp_path, asn):
    assert load_topology(_write(tmp_path, GOOD.replace("asn: 65020", f"asn: {asn}"))).isp("ispb").asn == asn


@pytest.mark.parametrize("what,change,line,words", CASES, ids=[c[0] for c in CASES])
def test_bad_file_is_rejected_with_location(tmp_path, what, change, line, words):
    old, new = change
    assert old in GOOD, f"test case {what!r} does not apply"
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(TopologyError) as exc:
        build_netplan(load_topology(path))
    text = str(exc.value)
    assert str(path) in text
    if line is not None:
        assert f"{path}:{line}:" in text, text
    for word in words:
        assert word in text, text


def test_empty_file(tmp_path):
    with pytest.raises(TopologyError, match="empty"):
        load_topology(_write(tmp_path, ""))


def test_cli_validate_exit_status_and_nothing_created(tmp_path):
    bad = _write(tmp_path, GOOD.replace("asn: 65020", "asn: -5"))
    run_root = tmp_path / "runs"
    res = subprocess.run([sys.executable, "-m", "testbed.cli", "--run-root", str(run_root), "deploy", str(bad)],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert f"{bad}:10: isps.2.asn" in res.stderr
    assert not run_root.exists()
    ok = subprocess.run([sys.executable, "-m", "testbed.cli", "validate",
                         str(_write(tmp_path, GOOD))], capture_output=True, text=True)
    assert ok.returncode == 0 and "ok" in ok.stdout
