"""``mhlab exercise list|start|check|reset|hint|solve``: the course from the student's (and teacher's) side."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from . import catalog, report, session
from .criteria import grade
from .model import AnswerCriterion

EPILOG = """\
examples:
  mhlab exercise list                      the exercises, in order, with their points
  sudo mhlab exercise start 1              deploy exercise 1's lab under your name (x01<you>)
  sudo mhlab exec x01alice ra -- vtysh -c 'show bgp summary'   work inside its nodes
  sudo mhlab exercise check 1              grade your running lab (exit 0 only at full marks)
  sudo mhlab exercise check 1 --json       the same for an LMS
  mhlab exercise hint 1                    the exercise's hints
  sudo mhlab exercise reset 1              destroy your lab and start it again from scratch
  sudo mhlab exercise solve 1              (teacher) apply the reference solution to the lab
  sudo mhlab destroy x01alice              done: remove your lab
Two students on one machine get distinct labs (the name carries the student: $SUDO_USER or --student),
and `mhlab destroy --all` spares labs that belong to someone else.
"""


def _answers_path(args, ex) -> Path:
    return Path(args.answers) if args.answers else Path(f"answers-{ex.number:02d}.yaml")


def _questions(ex) -> list[AnswerCriterion]:
    return [c for c in ex.checker.criteria if isinstance(c, AnswerCriterion)]


def _write_answer_template(path: Path, ex) -> bool:
    questions = _questions(ex)
    if not questions or path.exists():
        return False
    lines = [f"# Exercise {ex.number}: {ex.spec.title} - your answers (`mhlab exercise check {ex.number}` reads them)"]
    for q in questions:
        lines += [f"# {q.prompt}", f"{q.question}: \"\""]
    path.write_text("\n".join(lines) + "\n")
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if uid and gid:
        os.chown(path, int(uid), int(gid))
    return True


def _read_answers(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return data if isinstance(data, dict) else {}


def cmd_list(args) -> int:
    for ex in catalog.exercises(args.course):
        print(f"{ex.number:>2}  {ex.slug:<28} {ex.max_points:>3} pts  thesis {ex.spec.thesis:<10} {ex.spec.title}")
    return 0


def cmd_start(args) -> int:
    ex = catalog.exercise(args.number, args.course)
    student = session.student_name(args.student)
    progress = (lambda m: None) if args.quiet else (lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    runner = session.reset if args.cmd_exercise == "reset" else session.start
    lab = runner(ex, student, args.prefix, args.run_root, progress)
    print(f"exercise {ex.number} ({ex.spec.title}): lab {lab.name} is up for {student}")
    print(f"  the sheet: {ex.folder / 'README.md'}")
    print(f"  work in it: sudo mhlab exec {lab.name} NODE   (nodes: {', '.join(n for n in lab.nodes if ':' not in n)})")
    answers = _answers_path(args, ex)
    if _write_answer_template(answers, ex):
        print(f"  write your answers in {answers}")
    print(f"  grade it:   sudo mhlab exercise check {ex.number}")
    return 0


def _attached(args):
    """The exercise, the student and the student's running lab of it, as the verbs' arguments name them."""
    ex = catalog.exercise(args.number, args.course)
    student = session.student_name(args.student)
    return ex, student, session.attach(ex, student, args.prefix, args.run_root)


def cmd_check(args) -> int:
    ex, student, lab = _attached(args)
    results = grade(ex, lab, _read_answers(_answers_path(args, ex)))
    print(report.to_json(ex, lab.name, student, results) if args.json else report.table(ex, lab.name, student, results))
    got, out_of = report.total(results)
    return 0 if got == out_of else 1


def cmd_hint(args) -> int:
    ex = catalog.exercise(args.number, args.course)
    for i, h in enumerate(ex.spec.hints, 1):
        print(f"hint {i}: {h}")
    if not ex.spec.hints:
        print(f"exercise {ex.number} has no hints beyond its sheet ({ex.folder / 'README.md'})")
    return 0


def cmd_solve(args) -> int:
    ex, student, lab = _attached(args)
    answers = session.apply_solution(ex, lab)
    path = _answers_path(args, ex)
    if answers:
        path.write_text(yaml.safe_dump(answers, sort_keys=False))
    print(f"exercise {ex.number}: reference solution applied to {lab.name}" + (f"; answers in {path}" if answers else ""))
    return 0


def register(sub) -> None:
    p = sub.add_parser("exercise", help="the multihoming course: start a graded exercise's lab, check it",
                       description="A course of graded exercises (course/NN-slug/). `start` deploys the "
                       "exercise's starting lab - broken or incomplete in the way the exercise teaches - under "
                       "your name; you work inside its nodes; `check` grades the running lab by configuration "
                       "and by behaviour under faults (it injects them and undoes them; the lab stays up).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(fn=lambda a: (p.print_help(), 2)[1])
    verbs = p.add_subparsers(dest="cmd_exercise", metavar="VERB")

    def verb(name, fn, help_, number=True, student=True):
        sp = verbs.add_parser(name, help=help_, description=help_)
        if number:
            sp.add_argument("number", type=int, help="exercise number (see `mhlab exercise list`)")
        sp.add_argument("--course", help="course folder (default: the repository's course/ or $MHLAB_COURSE_DIR)")
        if student:
            sp.add_argument("--student", help="whose lab (default: $SUDO_USER, else your login name)")
            sp.add_argument("--prefix", default=session.DEFAULT_PREFIX,
                            help="lab names start with this (default x: x01alice)")
            sp.add_argument("--answers", help="your answers file (default ./answers-NN.yaml)")
        sp.set_defaults(fn=fn)
        return sp

    verb("list", cmd_list, "the exercises in order, with points and thesis sections", number=False, student=False)
    for name, help_ in (("start", "deploy the exercise's starting lab under your name (root)"),
                        ("reset", "destroy your lab of the exercise and start it again (root)")):
        verb(name, cmd_start, help_).add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    c = verb("check", cmd_check, "grade your running lab: criteria, points, a hint per failure; exit 0 only "
             "at full marks (root)")
    c.add_argument("--json", action="store_true", help="machine-readable grade (for an LMS)")
    verb("hint", cmd_hint, "print the exercise's hints", student=False)
    verb("solve", cmd_solve, "(teacher) apply the reference solution (course/solutions/NN-slug/) to the lab")
