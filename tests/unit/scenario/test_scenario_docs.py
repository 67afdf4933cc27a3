"""Every scenario field is described in the schema (`mhlab schema --scenario`) and in README's "Scenario files"."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from testbed.cli import main
from testbed.scenario.model import FAULT_MODELS, FLOW_MODELS, Bound, Expectation, Scenario

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
MODELS = [Scenario, Expectation, Bound, *FLOW_MODELS, *FAULT_MODELS]


def _schema() -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema", "--scenario"]) == 0
    return json.loads(out.getvalue())


def test_every_field_of_the_scenario_schema_has_a_description():
    schema = _schema()
    missing = [f"{name}.{prop}" for name, d in [("Scenario", schema), *schema["$defs"].items()]
               for prop, spec in d.get("properties", {}).items() if not spec.get("description")]
    assert not missing, missing
    assert "from" in schema["$defs"]["TcpSeqFlow"]["properties"]  # YAML keys, not Python names


def test_every_field_and_kind_is_documented_in_the_readme():
    section = README[README.index("### Scenario files"):]
    section = section[:section.index("\n## ")]
    names = {f.alias or n for m in MODELS for n, f in m.model_fields.items() if n != "kind"}
    kinds = {m.model_fields["kind"].annotation.__args__[0] for m in (*FLOW_MODELS, *FAULT_MODELS)}
    missing = sorted(n for n in names | kinds if f"`{n}`" not in section and f"{n}," not in section
                     and f" {n} " not in section)
    assert not missing, missing
