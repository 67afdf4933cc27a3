"""Input files a user can trust: structurally random lab and scenario documents (keys missing, wrong types,
unicode, huge numbers, deep nesting, top-level lists and scalars, binary junk) through the real CLI entry.

Every invalid file must give exit 2 and a ``file:line`` message, never a traceback, and create nothing
(no run directory, no report directory).  A mutation that happens to stay valid may pass validation;
only files that ``validate`` refuses are then given to ``run``/``deploy``, which must refuse them too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.cli import main

ROOT = Path(__file__).resolve().parents[1].parent
LAB = yaml.safe_load((ROOT / "topologies" / "two-isp-site.yaml").read_text())
SCENARIO = yaml.safe_load((ROOT / "scenarios" / "baseline-link-down.yaml").read_text())
SCENARIO["lab"] = str(ROOT / "topologies" / "two-isp-site.yaml")  # the copy lives in a temporary directory
I2P_LAB = yaml.safe_load((ROOT / "topologies" / "i2p-invisible-multihoming.yaml").read_text())

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2 ** 80, max_value=2 ** 80),
                 st.floats(allow_nan=True, allow_infinity=True), text,
                 st.sampled_from(["", "ispa", "h1", "srv", "::1", "2001:db8::zz", "link-down", "tcpseq", "1mbit",
                                  "cut.end+2", "two-isp-site.yaml", "pa", "x" * 300, "0" * 40]))
values = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                      max_leaves=12)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, prefix + (i,))
    return out


def deep(levels: int) -> str:
    """A placeholder that :func:`dump` turns into ``levels`` nested flow lists (PyYAML cannot dump them)."""
    return f"DEEP{levels}DEEP"


def dump(doc: Any) -> bytes:
    out = yaml.safe_dump(doc, allow_unicode=True)
    out = re.sub(r"DEEP(\d+)DEEP", lambda m: "[" * int(m[1]) + "x" + "]" * int(m[1]), out)
    return out.encode()


@st.composite
def mutated(draw: Any, base: dict) -> Any:
    """The base document with 1-4 random edits: delete, replace by any value, add a key, nest deeply."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(paths(doc)))
        op = draw(st.sampled_from(["delete", "replace", "add", "nest"]))
        if not where:
            if op == "replace":
                return draw(values)  # a whole-document scalar or list
            if op == "nest":
                return deep(draw(st.integers(50, 300)))
            continue
        parent: Any = doc
        for part in where[:-1]:
            parent = parent[part]
        key = where[-1]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(values)
        elif op == "add" and isinstance(parent[key], dict):
            parent[key][draw(text)] = draw(values)
        elif op == "nest":
            parent[key] = deep(draw(st.integers(2, 300)))
        doc = doc if doc is not None else {}
    return doc


def cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(list(argv))
        except SystemExit as exc:  # argparse
            rc = int(exc.code or 0)
    return rc, err.getvalue()


def check(tmp: Path, content: bytes, scenario: bool) -> None:
    path = tmp / ("scn.yaml" if scenario else "lab.yaml")
    path.write_bytes(content)
    runs, reports = tmp / "runs", tmp / "reports"
    runs.mkdir(exist_ok=True)
    rc, err = cli("--run-root", str(runs), "validate", str(path))
    assert "Traceback" not in err
    if rc == 0:
        return
    assert rc == 2, err
    assert re.search(re.escape(str(path)) + r"(:\d+)?: ", err), err
    assert err.startswith("error: invalid "), err
    verb = ["run", str(path), "-o", str(reports)] if scenario else ["deploy", str(path)]
    rc2, err2 = cli("--run-root", str(runs), *verb)  # refused before anything needs root
    assert rc2 == 2 and "Traceback" not in err2, err2
    assert not reports.exists() and not any(runs.iterdir()), "an invalid file created something"


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                              HealthCheck.function_scoped_fixture])


@SETTINGS
@given(doc=st.one_of(mutated(LAB), mutated(I2P_LAB)))
def test_random_lab_documents(tmp_path: Path, doc: Any) -> None:
    check(tmp_path, dump(doc), scenario=False)


@SETTINGS
@given(doc=mutated(SCENARIO))
def test_random_scenario_documents(tmp_path: Path, doc: Any) -> None:
    check(tmp_path, dump(doc), scenario=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=200), st.builds(lambda v: yaml.safe_dump(v).encode(), values),
                         st.just(b""), st.just(b"\n\n# only a comment\n"), st.just(b"\xff\xfe\x00lab: x")))
def test_junk_files(tmp_path: Path, content: bytes) -> None:
    for scenario in (False, True):
        check(tmp_path, content, scenario)


def test_nesting_beyond_the_parser_s_recursion_limit(tmp_path: Path) -> None:
    for scenario in (False, True):
        check(tmp_path, ("[" * 3000 + "]" * 3000).encode(), scenario)


def test_an_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.write_text("")
    rc, err = cli("run", "--dry-run", str(ROOT / "scenarios" / "baseline-link-down.yaml"), "-o", str(out))
    assert rc == 2 and err == f"error: -o {out}: that is an existing file, not a directory\n"
