"""The mechanism contract: discovery, the registry value, typed options, and a core that names no mechanism."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from testbed.addressing import UnknownMember, UnknownSegment, build_plan
from testbed.errors import MhlabError, TopologyError
from testbed.mechanisms import (Mechanism, MechanismError, NoOptions, Registry, UnknownMechanism, discover,
                                discovered, get_mechanism)
from testbed.mechanisms.shim import ShimOptions
from testbed.netplan import build_netplan
from testbed.topology import UnknownIsp, json_schema, load_topology

ROOT = Path(__file__).resolve().parents[3]
SHIM = ROOT / "topologies" / "two-sites-shim.yaml"


def test_every_module_of_the_package_is_a_discovered_mechanism():
    modules = {p.stem for p in (ROOT / "testbed" / "mechanisms").glob("*.py")
               if not p.stem.startswith("_")} - {"contract"}
    reg = discover()
    assert {m.replace("_", "-") for m in modules} == set(reg.names()) == {"none", "sadr-static", "pi-bgp",
                                                                            "shim", "mptcp", "dns", "sadr-bgp", "exit-path", "deprecation",
                                                                            "sadr-igp", "policy", "tunnel-mesh", "manual"}
    assert all(isinstance(m, Mechanism) for m in reg)
    assert get_mechanism("shim").options is ShimOptions and get_mechanism("none").options is NoOptions
    assert get_mechanism("pi-bgp").pi_prefix and not get_mechanism("sadr-static").pi_prefix


def test_unknown_mechanism_is_a_named_error_listing_the_known_ones():
    with pytest.raises(UnknownMechanism) as exc:
        get_mechanism("magic")
    assert isinstance(exc.value, MhlabError) and exc.value.known == tuple(discovered().names())
    assert str(exc.value) == "unknown mechanism 'magic'; known: " + ", ".join(sorted(discovered().names()))


def test_the_registry_is_a_value():
    extra = Mechanism("extra", "a test", "-", lambda net, site, options: None)
    reg = discovered().with_(extra)
    assert reg.get("extra") is extra and "extra" not in discovered() and len(reg) == len(discovered()) + 1
    with pytest.raises(MechanismError, match="two mechanisms are named 'shim'"):
        reg.with_(Mechanism("shim", "again", "-", extra.apply))
    assert Registry.of([extra]).names() == ["extra"]
    with pytest.raises(TypeError, match="Options subclass"):
        Mechanism("bad", "b", "-", extra.apply, options=dict)


def _shim_with(tmp_path: Path, options: str) -> Path:
    path = tmp_path / "shim.yaml"
    text = SHIM.read_text()
    assert "options: {profile: tuned, policy: immediate}" in text
    path.write_text(text.replace("options: {profile: tuned, policy: immediate}", options, 1))
    return path


@pytest.mark.parametrize("options,field,words", [
    ("options: {profile: fast}", "profile", ["'tuned' or 'rfc'"]),
    ("options: {polcy: immediate}", "polcy", ["unknown option 'polcy' of mechanism shim", "known: sec, profile"]),
    ("options: {sec: 9}", "sec", ["less than or equal to 7"]),
    ("options: {policy: sometimes}", "policy", ["should match pattern"]),
    ("options: {mptcp_hosts: hA}", "mptcp_hosts", ["valid list"]),
])
def test_shim_options_are_checked_when_the_file_is_parsed(tmp_path, options, field, words):
    path = _shim_with(tmp_path, options)
    with pytest.raises(TopologyError) as exc:
        load_topology(path)
    text = str(exc.value)
    assert f"{path}:18: sites.0.options.{field}: " in text, text
    for word in words:
        assert word in text, text


def test_a_mechanism_without_options_takes_none(tmp_path):
    path = _shim_with(tmp_path, "options: {profile: tuned}")
    path.write_text(path.read_text().replace("mechanism: shim", "mechanism: sadr-static", 1))
    with pytest.raises(TopologyError, match=f"{path}:18: sites.0.options.profile: unknown option 'profile' of "
                                            r"mechanism sadr-static; known: none \(options: \{\}\)"):
        load_topology(path)


def test_mechanisms_receive_parsed_options():
    seen = []
    spy = Mechanism("spy", "records its options", "-", lambda net, site, options: seen.append(options),
                    options=ShimOptions)
    topo = load_topology(SHIM)
    reg = discovered().with_(spy)
    build_netplan(topo.variant(registry=reg, sites=[s.model_copy(update={"mechanism": "spy"}) for s in topo.sites]),
                  registry=reg)
    assert seen == [ShimOptions(profile="tuned", policy="immediate")] * 2


def test_schema_documents_every_mechanism_and_its_options():
    schema = json_schema()
    site = schema["$defs"]["Site"]
    assert site["properties"]["mechanism"]["enum"] == sorted(m.name for m in discovered() if m.role == "routing")
    shim = schema["$defs"]["options.shim"]
    assert set(shim["properties"]) == set(ShimOptions.model_fields) and shim["additionalProperties"] is False
    assert all(p.get("description") for p in shim["properties"].values())
    none_branch = next(b for b in site["allOf"] if b["if"]["properties"]["mechanism"]["const"] == "none")
    assert "required" not in none_branch["if"]  # a site without mechanism: runs the default


def test_lookups_by_name_raise_named_errors():
    topo = load_topology(SHIM)
    with pytest.raises(UnknownIsp, match="unknown ISP 'ispz'; known: core, ispa1, ispa2, ispb1, ispb2"):
        topo.isp("ispz")
    plan = build_plan(topo)
    with pytest.raises(UnknownSegment, match="unknown segment 'nope'; known: .*sa-lan"):
        plan.segment("nope")
    with pytest.raises(UnknownMember, match="unknown member of segment sa-lan: 'hB'; known: hA, ra1, ra2"):
        plan.segment("sa-lan").member("hB")
    assert all(isinstance(e, MhlabError) for e in (UnknownIsp("x", []), UnknownSegment("x", [])))


def test_variant_keeps_the_source_and_validates(tmp_path):
    topo = load_topology(SHIM)
    renamed = topo.variant(name="other")
    assert renamed.name == "other" and renamed.source is topo.source and renamed.sites == topo.sites
    with pytest.raises(TopologyError, match=f"{SHIM}:4: name: 'Bad-Name' is not a valid name"):
        topo.variant(name="Bad-Name")


NAMES = set(discovered().names())
CORE = [p for p in (ROOT / "testbed").rglob("*.py") if "mechanisms" not in p.parts]


def _name_tests(path: Path) -> list[str]:
    """Comparisons (``==``, ``in``…) and dict keys whose literal is a mechanism's name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        literals = []
        if isinstance(node, ast.Compare):
            literals = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            literals = [k for k in node.keys if k is not None]
        found += [f"{path.relative_to(ROOT)}:{node.lineno}: {c.value!r}" for c in literals
                  if isinstance(c, ast.Constant) and c.value in NAMES]
    return found


def test_the_core_names_no_mechanism():
    found = [hit for path in CORE for hit in _name_tests(path)]
    assert not found, "the core tests a mechanism's name (ask the mechanism instead):\n" + "\n".join(found)
