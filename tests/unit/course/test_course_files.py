"""The course's files, without root: every exercise parses and is complete, its reference answers get the
answer points, student lab names follow the 10-character rule and never collide, and `destroy --all`
spares labs another user owns."""

import json
import re

import pytest

from testbed.cli import main
from testbed.course import catalog, session
from testbed.course.criteria import Context, grade_one
from testbed.course.model import AnswerCriterion, ScenarioCriterion, digest
from testbed.errors import UsageError
from testbed.kinds import load_lab
from testbed.lab import NAME_PATTERN
from testbed.owners import destroyable, set_owner
from testbed.rundir import RunDir
from testbed.scenario.load import load_scenario

EXERCISES = catalog.exercises()


def test_the_course_has_at_least_eight_exercises_in_order():
    numbers = [e.number for e in EXERCISES]
    assert len(numbers) >= 8 and numbers == sorted(set(numbers)) == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.slug)
def test_an_exercise_is_complete(ex):
    for name in ("README.md", "drawing.png", "exercise.yaml", "checker.yaml"):
        assert (ex.folder / name).is_file(), name
    load_lab(ex.lab_file)
    assert ex.checker.criteria and ex.max_points > 0
    assert ex.spec.hints
    sheet = (ex.folder / "README.md").read_text()
    for c in ex.checker.criteria:
        assert c.name in sheet, f"the sheet does not list criterion {c.name!r}"
        assert c.hint, f"criterion {c.name!r} has no hint"
    assert "drawing.png" in sheet and "## Tasks" in sheet and "## Hints" in sheet
    for c in ex.checker.criteria:
        if isinstance(c, ScenarioCriterion):
            load_scenario(ex.folder / c.file)


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.slug)
def test_the_reference_answers_get_every_answer_point(ex):
    answers = ex.solution().answers
    ctx = Context(None, ex, answers)
    for c in ex.checker.criteria:
        if isinstance(c, AnswerCriterion):
            assert grade_one(c, ctx).passed, c.name
            assert not grade_one(c, Context(None, ex, {c.question: "wrong"})).passed


def test_answers_are_normalised_before_hashing():
    assert digest(" REAP ") == digest("reap") == digest("Reap")
    assert digest("rfc  5535") == digest("RFC 5535")


@pytest.mark.parametrize("student", ["alice", "bob", "Alice", "a.very.long.student.name", "a.very.long.student.other",
                                     "x", "jean-pierre"])
def test_lab_names_follow_the_rule(student):
    name = session.lab_name(3, student)
    assert len(name) <= 10
    assert re.match(NAME_PATTERN, name), name


def test_two_students_never_share_a_lab_name():
    students = ["alice", "Alice", "alice1", "a.very.long.student.name", "a.very.long.student.other", "bob", "b0b"]
    names = [session.lab_name(1, s) for s in students]
    assert len(set(names)) == len(names), names
    assert session.lab_name(1, "alice") == "x01alice"
    assert session.lab_name(1, "alice", prefix="co") == "co01alice"


def test_a_bad_prefix_or_student_is_refused():
    with pytest.raises(UsageError):
        session.lab_name(1, "alice", prefix="1x")
    with pytest.raises(UsageError):
        session.student_name("---")


def test_destroy_all_spares_other_users_labs(tmp_path):
    for lab, owner in (("co01alice", "alice"), ("co01bob", "bob"), ("colegacy", None)):
        r = RunDir.of(lab, tmp_path)
        r.create({"name": lab, "status": "up"})
        if owner:
            set_owner(r, owner)
    mine, spared = destroyable(tmp_path, "alice")
    assert [r.lab for r in mine] == ["co01alice", "colegacy"]
    assert [r.lab for r in spared] == ["co01bob"]
    assert len(destroyable(tmp_path, "alice", everyone=True)[0]) == 3


def test_destroy_all_says_what_it_spares(tmp_path, monkeypatch, capsys):
    r = RunDir.of("co01bob", tmp_path)
    r.create({"name": "co01bob", "status": "up"})
    set_owner(r, "bob")
    monkeypatch.setenv("SUDO_USER", "alice")
    assert main(["--run-root", str(tmp_path), "destroy", "--all"]) == 0
    err = capsys.readouterr().err
    assert "co01bob spared: it belongs to bob" in err
    assert r.exists()


def test_exercise_list_and_hint(capsys):
    assert main(["exercise", "list"]) == 0
    out = capsys.readouterr().out
    assert all(e.slug in out for e in EXERCISES)
    assert main(["exercise", "hint", "3"]) == 0
    assert "ip -6 route add ::/0 from" in capsys.readouterr().out


def test_check_without_a_lab_says_how_to_start(tmp_path, capsys):
    assert main(["--run-root", str(tmp_path), "exercise", "check", "1", "--student", "alice"]) == 2
    assert "sudo mhlab exercise start 1" in capsys.readouterr().err


def test_an_unknown_exercise_lists_the_known_ones(capsys):
    assert main(["exercise", "hint", "99"]) == 2
    assert "exercises: 1, 2" in capsys.readouterr().err


def test_a_bad_checker_names_the_file_and_field(tmp_path):
    folder = tmp_path / "01-x"
    folder.mkdir()
    (folder / "exercise.yaml").write_text("title: t\nlab: lab.yaml\n")
    (folder / "checker.yaml").write_text("criteria:\n  - {name: n, kind: reach, to: srv}\n")
    ex = catalog.exercise(1, tmp_path)
    with pytest.raises(UsageError, match=r"checker.yaml: criteria.0.reach.from"):
        ex.checker


def test_the_grade_as_json(capsys):
    from testbed.course.criteria import Result
    from testbed.course.report import to_json
    ex = EXERCISES[0]
    data = json.loads(to_json(ex, "x01alice", "alice", [Result("a", "command", True, 2, 2, "ok", ""),
                                                        Result("b", "reach", False, 0, 1, "fails", "hint")]))
    assert data["points"] == 2 and data["max_points"] == 3 and not data["full_marks"]
    assert data["criteria"][1]["hint"] == "hint"
