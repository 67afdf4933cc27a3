"""The Vagrant VM provisions with the same set-up as `make setup`: the Vagrantfile's inline shell
provisioning, extracted and run here (the repository standing in for /vagrant), amounts to
scripts/setup.sh (plus the apt steps a bare box needs to get `make`)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def provisioning_steps() -> list[str]:
    text = (ROOT / "Vagrantfile").read_text()
    blocks = re.findall(r'config\.vm\.provision\s+"shell",\s*inline:\s*<<-(\w+)\n(.*?)\n\s*\1\b', text, re.S)
    assert len(blocks) == 1, "expected exactly one inline shell provisioner"
    return [line.strip() for line in blocks[0][1].splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_vagrantfile_provisions_with_make_setups_script():
    steps = provisioning_steps()
    make_setup = re.search(r"^setup:\n\t@?(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).strip()
    assert make_setup == "bash scripts/setup.sh"
    assert steps[-1] == f"cd /vagrant && {make_setup}"
    others = steps[:-1]
    assert all(s == "set -e" or s.startswith("apt-get ") for s in others), others


@pytest.mark.skipif(os.geteuid() != 0, reason="the provisioning installs Debian packages: root")
def test_the_provisioning_steps_run_here():
    script = "\n".join(provisioning_steps()).replace("/vagrant", str(ROOT))
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "setup: ready" in res.stdout + res.stderr
