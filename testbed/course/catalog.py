"""Where the course lives and which exercises it has (``course/NN-slug/`` folders, in number order)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import UsageError
from .model import Checker, ExerciseFile, Solution, load_yaml

COURSE_ENV = "MHLAB_COURSE_DIR"


def course_dir(explicit: str | Path | None = None) -> Path:
    """``explicit``, else ``$MHLAB_COURSE_DIR``, else the repository's course/ folder."""
    return Path(explicit or os.environ.get(COURSE_ENV) or Path(__file__).resolve().parents[2] / "course")


@dataclass(frozen=True)
class Exercise:
    number: int
    folder: Path

    @property
    def slug(self) -> str:
        return self.folder.name

    @cached_property
    def spec(self) -> ExerciseFile:
        return load_yaml(self.folder / "exercise.yaml", ExerciseFile)

    @cached_property
    def checker(self) -> Checker:
        return load_yaml(self.folder / "checker.yaml", Checker)

    @property
    def lab_file(self) -> Path:
        return (self.folder / self.spec.lab).resolve()

    @property
    def solution_dir(self) -> Path:
        return self.folder.parent / "solutions" / self.slug

    def solution(self) -> Solution:
        path = self.solution_dir / "solution.yaml"
        if not path.is_file():
            raise UsageError(f"exercise {self.number}: no reference solution ({path}): the teacher's copy has it")
        return load_yaml(path, Solution)

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.checker.criteria)


def exercises(root: str | Path | None = None) -> list[Exercise]:
    base = course_dir(root)
    out = []
    for p in sorted(base.glob("[0-9][0-9]-*")):
        if (p / "exercise.yaml").is_file():
            out.append(Exercise(int(p.name[:2]), p))
    return out


def exercise(number: int, root: str | Path | None = None) -> Exercise:
    found = {e.number: e for e in exercises(root)}
    if number not in found:
        known = ", ".join(str(n) for n in found) or "none"
        raise UsageError(f"no exercise {number} in {course_dir(root)} (exercises: {known})")
    return found[number]
