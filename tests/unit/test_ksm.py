"""The KSM opt-in's pure parts: which ksmd settings it writes, the host record of its holders, the
wrapper's argv and source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.errors import LabError
from testbed.ksm import NO_ASLR_FLAG, WANT, WRAPPER_SOURCE, HostKsm, KsmOptions, changes, wrapper_path, wrapper_prefix

DEFAULTS = {"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20, "full_scans": 0, "pages_sharing": 0}


@pytest.fixture
def host(tmp_path) -> HostKsm:
    """A fake /sys/kernel/mm/ksm with the kernel's defaults and a host record in tmp."""
    sys_ksm = tmp_path / "ksm"
    sys_ksm.mkdir()
    for name, value in DEFAULTS.items():
        (sys_ksm / name).write_text(f"{value}\n")
    return HostKsm(sys_ksm, tmp_path / "host" / "ksm.json")


def _lab(tmp_path: Path, name: str) -> tuple[str, list[dict]]:
    d = tmp_path / "run" / name
    d.mkdir(parents=True)
    (d / "lab.json").write_text("{}")
    return str(d), []


def test_on_a_default_host_ksmd_is_turned_on_and_sped_up():
    assert changes({"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20}) == {
        "run": 1, "pages_to_scan": WANT["pages_to_scan"]}


def test_ksm_is_never_slowed_down_nor_its_mode_changed():
    fast = {"run": 1, "pages_to_scan": 10 * WANT["pages_to_scan"], "sleep_millisecs": 1}
    assert changes(fast) == {}
    assert changes({**fast, "run": 2}) == {}  # 2 = unmerge everything: someone's choice, left alone
    assert changes({"run": 1, "pages_to_scan": 100, "sleep_millisecs": 200}) == {
        "pages_to_scan": WANT["pages_to_scan"], "sleep_millisecs": WANT["sleep_millisecs"]}


def test_hold_journals_then_writes_and_the_last_holder_restores(host, tmp_path):
    a, journal_a = _lab(tmp_path, "mma")
    b, journal_b = _lab(tmp_path, "mmb")
    assert host.hold(a, journal_a.append) == {"run": 1, "pages_to_scan": WANT["pages_to_scan"]}
    assert journal_a[0]["kind"] == "host-ksm" and journal_a[0]["original"] == {"run": 0, "pages_to_scan": 100}
    assert host.read("run") == 1
    assert host.hold(b, journal_b.append) == {}  # already on: the second lab only joins
    record = json.loads(host.record.read_text())
    assert set(record["holders"]) == {a, b} and record["original"] == {"run": 0, "pages_to_scan": 100}
    assert host.release(a) == {} and host.read("run") == 1  # b still needs it
    assert host.release(b) == {"run": 0, "pages_to_scan": 100}
    assert host.read("run") == 0 and host.read("pages_to_scan") == 100
    assert not host.record.exists()


def test_a_setting_someone_changed_meanwhile_stays(host, tmp_path):
    a, journal = _lab(tmp_path, "mma")
    host.hold(a, journal.append)
    host.write("pages_to_scan", 9999)
    assert host.release(a) == {"run": 0}
    assert host.read("pages_to_scan") == 9999


def test_a_holder_whose_run_directory_is_gone_does_not_keep_ksm_on(host, tmp_path):
    a, ja = _lab(tmp_path, "mma")
    b, jb = _lab(tmp_path, "mmb")
    host.hold(a, ja.append)
    host.hold(b, jb.append)
    (Path(a) / "lab.json").unlink()  # lab a vanished without being destroyed
    assert host.release(b) == {"run": 0, "pages_to_scan": 100}


def test_a_kernel_without_ksm_is_refused_by_name(tmp_path):
    with pytest.raises(LabError, match="no KSM"):
        HostKsm(tmp_path / "nothing", tmp_path / "ksm.json").hold(str(tmp_path), print)


def test_the_wrapper_goes_before_the_daemon_and_turns_aslr_off_unless_asked(tmp_path):
    wrapper = tmp_path / "mergeexec-x"
    assert wrapper_prefix(KsmOptions(), wrapper) == [str(wrapper), NO_ASLR_FLAG]
    assert wrapper_prefix(KsmOptions(keep_aslr=True), wrapper) == [str(wrapper)]
    assert NO_ASLR_FLAG in WRAPPER_SOURCE and "PR_SET_MEMORY_MERGE" in WRAPPER_SOURCE


def test_the_wrapper_is_named_by_its_source(tmp_path):
    name = wrapper_path(tmp_path).name
    assert name.startswith("mergeexec-") and len(name) == len("mergeexec-") + 12
    assert wrapper_path(tmp_path) == wrapper_path(tmp_path)
