"""The host neighbour table: what a lab needs of it, the preflight's error, and the raise that is undone."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from testbed.errors import LabError
from testbed.generate import n_sites
from testbed.neightable import Admission, HostTables, Table, entries_needed, overflow_note, overflowed, sysctl_names, tight, too_small
from testbed.netplan import build_netplan

DEFAULTS = {1: 128, 2: 512, 3: 1024}


def test_one_site_needs_each_neighbours_link_local_and_addresses():
    # core-hosts, core-ispa, core-ispb, ispa-s1a, ispb-s1b: 2 ends x (link-local + 1 address) = 4 each;
    # s1a-s1b: 2 ends x (link-local + 2) = 6; the LAN (s1a, s1b, s1h1, 2 addresses each): 6 pairs x 3 = 18
    assert entries_needed(build_netplan(n_sites(1))) == {6: 5 * 4 + 6 + 18, 4: 0}


def test_need_grows_with_the_sites_and_250_sites_overflow_the_default_table():
    need = {n: entries_needed(build_netplan(n_sites(n)))[6] for n in (1, 2, 20, 250)}
    per_site = need[2] - need[1]
    assert per_site == 32  # its two ISP links 4 each, the link between its exits 6, its LAN 18
    assert need[250] == need[1] + 249 * per_site
    assert need[20] < DEFAULTS[3] < need[250]


def test_ipv4_addresses_count_in_the_ipv4_table_without_link_locals():
    node = lambda name, *addrs: SimpleNamespace(name=name, role="router", ifaces=[
        SimpleNamespace(segment="l", addresses=list(addrs))])
    net = SimpleNamespace(nodes={"a": node("a", "10.0.0.1/30", "2001:db8::1/64"),
                                 "b": node("b", "10.0.0.2/30", "2001:db8::2/64"),
                                 "br": SimpleNamespace(name="br", role="bridge", ifaces=[])})
    assert entries_needed(net) == {6: 4, 4: 2}


def test_a_raise_scales_all_three_limits_by_one_factor_with_headroom():
    t = Table(6, (128, 512, 1024), in_use=10)
    assert t.raised(8012) == (1280, 5120, 10240)  # (10 + 8012) x 1.25 = 10,028: x10
    assert t.fits(1014) and not t.fits(1015)


def test_the_error_names_the_sysctl_the_numbers_and_the_way_out():
    tables = {6: Table(6, (128, 512, 1024), 30), 4: Table(4, (128, 512, 1024), 2)}
    assert too_small(tables, {6: 994, 4: 0}, "x") is None
    msg = too_small(tables, {6: 8012, 4: 0}, "bs250")
    assert "net.ipv6.neigh.default.gc_thresh3 = 1,024" in msg and "8,012" in msg and "30 are in use" in msg
    assert "--raise-neigh-table" in msg and "net.ipv6.neigh.default.gc_thresh3=10240" in msg
    assert "ipv4" not in msg


@pytest.fixture
def host(tmp_path) -> HostTables:
    """A fake /proc/sys with the kernel's default limits, an empty table, and a host record in tmp."""
    for family in (6, 4):
        for i, name in enumerate(sysctl_names(family), 1):
            path = tmp_path / "sys" / name.replace(".", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{DEFAULTS[i]}\n")
    (tmp_path / "stat").mkdir()
    for table in ("ndisc_cache", "arp_cache"):
        (tmp_path / "stat" / table).write_text("entries  allocs\n0000000a 00000001\n0000000a 00000002\n")
    return HostTables(tmp_path / "sys", tmp_path / "stat", tmp_path / "host" / "neigh-table.json")


def _lab(tmp_path: Path, name: str) -> tuple[str, list[dict]]:
    d = tmp_path / "run" / name
    d.mkdir(parents=True)
    (d / "lab.json").write_text("{}")
    return str(d), []


def test_preflight_fails_with_the_numbers_and_changes_nothing(host):
    with pytest.raises(LabError, match=r"gc_thresh3 = 1,024 and 10 are in use"):
        host.preflight({6: 8012, 4: 0}, "bs250")
    assert host.read("net.ipv6.neigh.default.gc_thresh3") == 1024 and not host.record.exists()
    host.preflight({6: 1024, 4: 0}, "small")  # the limit holds it (the 10 in use may be dropped on demand)


def test_raise_is_journalled_and_restored_by_the_last_holder_only(host, tmp_path):
    a, journal_a = _lab(tmp_path, "a")
    b, journal_b = _lab(tmp_path, "b")
    set_a = host.raise_for(a, {6: 8012, 4: 0}, journal_a.append)
    assert set_a == {"net.ipv6.neigh.default.gc_thresh1": 1280, "net.ipv6.neigh.default.gc_thresh2": 5120,
                     "net.ipv6.neigh.default.gc_thresh3": 10240}
    assert journal_a == [{"kind": "host-sysctl", "what": "neighbour table limits", "set": set_a,
                          "original": {"net.ipv6.neigh.default.gc_thresh1": 128,
                                       "net.ipv6.neigh.default.gc_thresh2": 512,
                                       "net.ipv6.neigh.default.gc_thresh3": 1024},
                          "record": str(host.record), "undone_by": "destroy of the last lab that raised them"}]
    assert host.read("net.ipv4.neigh.default.gc_thresh3") == 1024  # IPv4 not needed: untouched
    # a second lab that needs a raise: the limits already hold it, it only joins the holders
    assert host.raise_for(b, {6: 2000, 4: 0}, journal_b.append) == {}
    assert sorted(json.loads(host.record.read_text())["holders"]) == [a, b]
    assert host.release(a) == {}  # b still holds it
    assert host.read("net.ipv6.neigh.default.gc_thresh3") == 10240
    assert host.release(b) == {"net.ipv6.neigh.default.gc_thresh1": 128,
                               "net.ipv6.neigh.default.gc_thresh2": 512,
                               "net.ipv6.neigh.default.gc_thresh3": 1024}
    assert host.read("net.ipv6.neigh.default.gc_thresh2") == 512 and not host.record.exists()


def test_a_lab_deployed_while_a_raise_is_held_keeps_it_until_it_is_destroyed(host, tmp_path):
    a, journal_a = _lab(tmp_path, "a")
    b, journal_b = _lab(tmp_path, "b")
    host.raise_for(a, {6: 8012, 4: 0}, journal_a.append)
    assert host.raise_held()
    host.preflight({6: 2000, 4: 0}, "b")  # fits the raised limits
    assert host.raise_for(b, {6: 2000, 4: 0}, journal_b.append, may_raise=False) == {}
    assert host.release(a) == {} and host.read("net.ipv6.neigh.default.gc_thresh3") == 10240
    assert host.release(b)["net.ipv6.neigh.default.gc_thresh3"] == 1024 and not host.raise_held()


def test_without_the_opt_in_nothing_is_raised_even_if_the_raise_went_meanwhile(host, tmp_path):
    b, journal = _lab(tmp_path, "b")
    with pytest.raises(LabError, match="--raise-neigh-table"):
        host.raise_for(b, {6: 4000, 4: 0}, journal.append, may_raise=False)
    assert host.read("net.ipv6.neigh.default.gc_thresh3") == 1024 and journal == []
    host.raise_for(b, {6: 2000, 4: 0}, journal.append, may_raise=False)  # fits at its usual share: joins only
    assert host.read("net.ipv6.neigh.default.gc_thresh3") == 1024


def test_a_limit_someone_changed_meanwhile_is_left_as_they_set_it(host, tmp_path):
    a, journal = _lab(tmp_path, "a")
    host.raise_for(a, {6: 8012, 4: 0}, journal.append)
    host.write("net.ipv6.neigh.default.gc_thresh3", 20000)
    assert host.release(a) == {"net.ipv6.neigh.default.gc_thresh1": 128, "net.ipv6.neigh.default.gc_thresh2": 512}
    assert host.read("net.ipv6.neigh.default.gc_thresh3") == 20000


def test_a_holder_whose_lab_is_gone_does_not_keep_the_raise(host, tmp_path):
    a, journal_a = _lab(tmp_path, "a")
    b, journal_b = _lab(tmp_path, "b")
    host.raise_for(a, {6: 8012, 4: 0}, journal_a.append)
    host.raise_for(b, {6: 8012, 4: 0}, journal_b.append)
    (Path(a) / "lab.json").unlink()  # lab a's run directory was removed without its destroy
    assert host.release(b)["net.ipv6.neigh.default.gc_thresh3"] == 1024


def test_deploy_fails_before_building_anything(host, tmp_path, monkeypatch):
    """The preflight runs before the run directory exists: nothing to clean up, nothing half-built."""
    import testbed.lab as lab_module
    import testbed.neightable as neightable

    monkeypatch.setattr(neightable, "HostTables", lambda: host)
    monkeypatch.setattr(lab_module, "check_frr", lambda allow_untested=False: "8.4.4")
    monkeypatch.setattr(lab_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab_module, "_check_traversable", lambda root: None)
    with pytest.raises(LabError, match=r"bsbig needs up to 8,012 IPv6 neighbour entries"):
        lab_module.Lab.deploy(n_sites(250), name="bsbig", root=tmp_path / "run")
    assert not (tmp_path / "run" / "bsbig").exists() and not host.record.exists()


def test_a_lab_that_fits_only_at_its_usual_share_is_built_with_a_warning():
    """50 sites may make 1,612 entries and came up under the default 1,024: warned, not refused."""
    tables = {6: Table(6, (128, 512, 1024), 30), 4: Table(4, (128, 512, 1024), 2)}
    assert too_small(tables, {6: 1612, 4: 0}, "bs50") is None
    warning = tight(tables, {6: 1612, 4: 0}, "bs50")
    assert "1,612 IPv6" in warning and "gc_thresh3 = 1,024" in warning and "--raise-neigh-table" in warning
    assert tight(tables, {6: 652, 4: 0}, "bs20") is None
    assert too_small(tables, {6: 2050, 4: 0}, "bs64") is not None  # half of it no longer fits


def test_overflows_while_deploying_are_named_in_the_error(tmp_path):
    stat = tmp_path / "stat"
    stat.mkdir()
    header = "entries  allocs table_fulls\n"
    (stat / "arp_cache").write_text(header + "00000002 00000010 00000000\n")
    (stat / "ndisc_cache").write_text(header + "00000400 00000100 00000003\n00000400 00000100 00000004\n")
    before = overflowed(stat)
    assert before == {6: 7, 4: 0}
    assert overflow_note(before, before) is None
    (stat / "ndisc_cache").write_text(header + "00000400 00000100 00000013\n00000400 00000100 00000004\n")
    note = overflow_note(before, overflowed(stat))
    assert "IPv6: 16 times" in note and "gc_thresh3" in note and "--raise-neigh-table" in note


def test_one_admission_per_deploy_warns_claims_and_names_overflows(host, tmp_path):
    """What deploy asks of the table, one call per step: admitted with a warning (50 sites), nothing raised
    without the opt-in while no raise is held, then the overflow note when the kernel refused entries."""
    lines = []
    admission = Admission.admit(build_netplan(n_sites(50)), "bs50", False, lines.append, host=host)
    assert len(lines) == 1 and "--raise-neigh-table" in lines[0]
    journal = []
    assert admission.claim(str(tmp_path / "bs50"), journal.append, lines.append) == {} and not journal
    assert admission.failure_note() is None
    header = "entries  allocs table_fulls\n"
    (host.proc_stat / "ndisc_cache").write_text(header + "0000000a 00000001 00000005\n")
    assert "IPv6: 5 times" in admission.failure_note()


def test_an_admission_with_the_opt_in_raises_and_one_without_joins(host, tmp_path):
    big = build_netplan(n_sites(250))
    lines = []
    first = Admission.admit(big, "bs250", True, lines.append, host=host)  # no preflight with the opt-in
    assert lines == []
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "lab.json").write_text("{}")
    journal_a = []
    assert first.claim(str(a), journal_a.append, lines.append)["net.ipv6.neigh.default.gc_thresh3"] == 10240
    assert journal_a[0]["kind"] == "host-sysctl" and lines[0].startswith("raised the host's neighbour table")
    second = Admission.admit(build_netplan(n_sites(1)), "bs1", False, lines.append, host=host)
    journal_b = []
    assert second.claim(str(b), journal_b.append, lines.append) == {} and journal_b  # joined, journalled
    assert host.release(str(a)) == {}  # b still holds the raise
    assert host.release(str(b))["net.ipv6.neigh.default.gc_thresh3"] == 1024
