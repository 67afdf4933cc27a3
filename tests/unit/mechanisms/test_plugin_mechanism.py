"""A mechanism from outside testbed/mechanisms/ works end to end - parse, schema, plan, render - through a
registry value, without touching the core or the shipped registry."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.mechanisms import UnknownMechanism, discovered, get_mechanism
from testbed.netplan import build_netplan
from testbed.render import render
from testbed.topology import json_schema, load_topology

sys.path.insert(0, str(Path(__file__).parent))
import blackhole_mech  # noqa: E402

REGISTRY = discovered().with_(blackhole_mech.MECHANISM)
DEFAULT = Path(__file__).resolve().parents[3] / "topologies" / "two-isp-site.yaml"
OPTIONS = "    mechanism: blackhole\n    options: {prefixes: ['2001:db8:dead::/48'], routers: [rb]}\n"


def _lab(tmp_path: Path, options: str = OPTIONS) -> Path:
    text = DEFAULT.read_text()
    assert "mechanism: sadr-static\n" in text
    path = tmp_path / "bh.yaml"
    path.write_text(text.replace("    mechanism: sadr-static\n", options))
    return path


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_shipped_registry_does_not_know_it():
    assert "blackhole" in REGISTRY and "blackhole" not in discovered()
    with pytest.raises(UnknownMechanism, match="unknown mechanism 'blackhole'; known: " + ", ".join(sorted(discovered().names()))):
        get_mechanism("blackhole")


def test_parse_plan_and_render(tmp_path):
    path = _lab(tmp_path)
    with pytest.raises(TopologyError, match=f"{path}:{_line(path, 'blackhole')}: sites.0.mechanism: unknown "
                                            "mechanism 'blackhole'"):
        load_topology(path)  # the default registry
    net = build_netplan(load_topology(path, REGISTRY), registry=REGISTRY)
    assert [r.dst for r in net.nodes["rb"].routes if r.kind == "blackhole"][-1] == "2001:db8:dead::/48"
    assert not [r for r in net.nodes["ra"].routes if r.dst == "2001:db8:dead::/48"]
    assert net.fault_defaults == {"loss": {"percent": 1}}
    render(net, tmp_path / "out")
    assert "route add blackhole 2001:db8:dead::/48" in (tmp_path / "out/nodes/rb/setup.ip").read_text()
    assert not (tmp_path / "out/nodes/rb/staticd.conf").exists(), "no staticd: anchors are kernel routes"


@pytest.mark.parametrize("options,field,words", [
    ("{prefixes: ['2001:db8:dead::/48'], rooters: [rb]}", "rooters", ["unknown option 'rooters'",
                                                                     "known: prefixes, routers"]),
    ("{prefixes: ['2001:470::/32']}", "prefixes", ["outside 2001:db8::/32"]),
    ("{routers: [rb]}", "prefixes", ["Field required"]),
    ("{prefixes: ['2001:db8:dead::/48'], routers: [rz]}", "routers.0", ["'rz' is not a router of site site"]),
])
def test_option_errors_carry_file_line_and_field(tmp_path, options, field, words):
    path = _lab(tmp_path, f"    mechanism: blackhole\n    options: {options}\n")
    with pytest.raises(TopologyError) as exc:
        load_topology(path, REGISTRY)
    text = str(exc.value)
    assert f"{path}:{_line(path, 'options:')}: sites.0.options.{field}: " in text, text
    for word in words:
        assert word in text, text


def test_schema_documents_its_options():
    schema = json_schema(REGISTRY)
    opts = schema["$defs"]["options.blackhole"]
    assert set(opts["properties"]) == {"prefixes", "routers"} and opts["additionalProperties"] is False
    assert "blackhole" in schema["$defs"]["Site"]["properties"]["mechanism"]["enum"]
    assert {"if": {"properties": {"mechanism": {"const": "blackhole"}}, "required": ["mechanism"]},
            "then": {"properties": {"options": {"$ref": "#/$defs/options.blackhole"}}}} \
        in schema["$defs"]["Site"]["allOf"]
    assert "options.blackhole" not in json_schema()["$defs"]
