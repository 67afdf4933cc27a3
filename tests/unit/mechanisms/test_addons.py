"""Add-ons: stage-2 parts a site lists under ``addons:`` on top of its routing mechanism.  The test-only
blackhole mechanism, re-registered with role addon, combines with sadr-static; wrong uses name their line."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.mechanisms import discovered
from testbed.netplan import build_netplan
from testbed.topology import json_schema, load_topology

sys.path.insert(0, str(Path(__file__).parent))
import blackhole_mech  # noqa: E402

ADDON = dataclasses.replace(blackhole_mech.MECHANISM, name="drop", role="addon")
# the routing mechanisms plus the test add-on only: the shipped add-ons would change the lists asserted here
REGISTRY = discovered().only([m.name for m in discovered() if m.role == "routing"]).with_(ADDON)
ADDON_NAMES = sorted(m.name for m in REGISTRY if m.role == "addon")
DEFAULT = Path(__file__).resolve().parents[3] / "topologies" / "two-isp-site.yaml"


def _lab(tmp_path: Path, extra: str) -> Path:
    text = DEFAULT.read_text()
    path = tmp_path / "addon.yaml"
    path.write_text(text.replace("    mechanism: sadr-static\n", "    mechanism: sadr-static\n" + extra))
    return path


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_an_addon_applies_after_the_routing_mechanism(tmp_path):
    path = _lab(tmp_path, "    addons:\n      - mechanism: drop\n        options: {prefixes: ['2001:db8:dead::/48']}\n")
    net = build_netplan(load_topology(path, REGISTRY), registry=REGISTRY)
    ra = net.nodes["ra"].routes
    assert any(r.src for r in ra), "sadr-static's source routes are there"
    assert ra[-1].dst == "2001:db8:dead::/48" and ra[-1].kind == "blackhole", "the add-on's route comes after"


@pytest.mark.parametrize("extra,needle,words", [
    ("    addons: [sadr-static]\n", "addons", "sites.0.addons.0: sadr-static is a routing mechanism"),
    ("    addons: [nosuch]\n", "addons", "sites.0.addons.0: unknown add-on 'nosuch'; known: " + ", ".join(ADDON_NAMES)),
    ("    addons:\n      - mechanism: drop\n        options: {prefixes: ['2001:470::/32']}\n", "options:",
     "sites.0.addons.0.options.prefixes"),
])
def test_wrong_addons_name_their_line(tmp_path, extra, needle, words):
    path = _lab(tmp_path, extra)
    with pytest.raises(TopologyError) as err:
        load_topology(path, REGISTRY)
    assert f"{path}:{_line(path, needle)}: {words}" in str(err.value)


def test_an_addon_cannot_be_the_routing_mechanism(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(DEFAULT.read_text().replace("    mechanism: sadr-static\n", "    mechanism: drop\n"))
    with pytest.raises(TopologyError, match=r"sites.0.mechanism: drop is an add-on: list it under addons:"):
        load_topology(path, REGISTRY)


def test_schema_lists_addons_apart():
    defs = json_schema(REGISTRY)["$defs"]
    assert sorted(defs["Addon"]["properties"]["mechanism"]["enum"]) == ADDON_NAMES and "drop" in ADDON_NAMES
    assert "drop" not in defs["Site"]["properties"]["mechanism"]["enum"]
