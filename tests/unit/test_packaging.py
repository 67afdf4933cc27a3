"""The package ships what it needs: ``pip install .`` into a fresh virtualenv (not editable) renders a lab
from outside the repository with the templates the wheel carries, and pyproject.toml lists every package
folder of the tree (the list is explicit because templates/ is mapped into the package)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _folders_with_files(root: Path, package: str) -> set[str]:
    found = set()
    for folder in [root, *root.rglob("*")]:
        if folder.is_dir() and folder.name != "__pycache__" and any(f.is_file() for f in folder.iterdir()):
            rel = folder.relative_to(root)
            found.add(".".join([package, *rel.parts]))
    return found


def test_pyproject_lists_every_package_folder():
    expected = (_folders_with_files(REPO / "testbed", "testbed") | _folders_with_files(REPO / "agents", "agents")
                | _folders_with_files(REPO / "templates", "testbed.templates") | {"testbed.templates"})
    assert set(CONFIG["packages"]) == expected
    assert CONFIG["package-dir"] == {"testbed.templates": "templates"}


def test_templates_and_ebpf_source_are_package_data():
    data = CONFIG["package-data"]
    templates = {p.parent.name for p in (REPO / "templates").glob("*/*.j2")}
    assert data["testbed.templates"] == ["*/*.j2"] and templates
    assert list((REPO / "agents/shim/bpf").glob("*.c")) and data["agents.shim.bpf"] == ["*.c"]


@pytest.mark.slow  # 25-40 s on an idle 2-core machine, up to 2 min under load (pip resolves every dependency)
def test_a_non_editable_install_renders_from_outside_the_repository(tmp_path):
    venv = tmp_path / "venv"
    # as scripts/setup.sh builds it: on Debian's Python with its site packages (mininet lives there)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=60)
    pip = subprocess.run([str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check", str(REPO)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.run([str(venv / "bin/python"), "-c", "import testbed.render as r; print(r.TEMPLATES)"],
                           cwd=outside, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv) and (Path(where) / "frr/bgpd.conf.j2").is_file()
    res = subprocess.run([str(venv / "bin/mhlab"), "render", str(REPO / "topologies/two-isp-site.yaml"), "-o", "cfg"],
                         cwd=outside, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    written = {p.relative_to(outside / "cfg") for p in (outside / "cfg").rglob("*") if p.is_file()}
    assert Path("nodes/ra/bgpd.conf") in written and Path("nodes/ispa/ruleset.nft") in written, sorted(written)
    assert "router bgp 65010" in (outside / "cfg/nodes/ispa/bgpd.conf").read_text()
