"""The grade as a table for the student, or JSON for an LMS."""

from __future__ import annotations

import json

from .catalog import Exercise
from .criteria import Result


def total(results: list[Result]) -> tuple[int, int]:
    return sum(r.points for r in results), sum(r.max_points for r in results)


def table(ex: Exercise, lab: str, student: str, results: list[Result]) -> str:
    got, out_of = total(results)
    width = max([len(r.name) for r in results] + [9])
    lines = [f"exercise {ex.number} ({ex.spec.title}) - lab {lab}, student {student}", "",
             f"{'result':<6}  {'points':>6}  {'criterion':<{width}}  seen", "-" * (width + 40)]
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL':<6}  {r.points:>2}/{r.max_points:<3}  {r.name:<{width}}  {r.detail}")
        if r.hint:
            lines.append(f"{'':<16}{'':<{width}}  hint: {r.hint}")
    lines += ["", f"total: {got}/{out_of}" + ("  - full marks" if got == out_of else "")]
    return "\n".join(lines)


def to_json(ex: Exercise, lab: str, student: str, results: list[Result]) -> str:
    got, out_of = total(results)
    return json.dumps({"exercise": ex.number, "slug": ex.slug, "title": ex.spec.title, "lab": lab,
                       "student": student, "points": got, "max_points": out_of, "full_marks": got == out_of,
                       "criteria": [r.as_dict() for r in results]}, indent=2)
