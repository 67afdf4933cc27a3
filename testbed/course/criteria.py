"""Grading a running lab: each criterion -> a Result (pass/fail, points, what was seen, the hint).

Behaviour criteria use the checker's own traffic; counters are read before and after it, so a result is
a delta caused by the check, never a total since boot.  Faults go through :func:`testbed.faults.prepare`
and are always undone; scenarios run with the lab attached, so the student's lab stays up.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from ..faults import prepare
from ..scenario.model import Fault
from ..scenario.run import run_scenario
from .catalog import Exercise
from .model import (AnswerCriterion, CommandCriterion, CounterCriterion, ReachCriterion, ScenarioCriterion,
                    UnderFaultCriterion, digest)
from .session import expand, substitute

_FAULT = TypeAdapter(Fault)


@dataclass(frozen=True)
class Result:
    name: str
    kind: str
    passed: bool
    points: int
    max_points: int
    detail: str
    hint: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    lab: Any
    exercise: Exercise
    answers: dict[str, Any]


def _command(c: CommandCriterion, ctx: Context) -> tuple[bool, str]:
    res = ctx.lab.node(c.node).run(expand(ctx.lab, c.run), timeout=60)
    out = res.stdout + res.stderr
    match, absent = (substitute(ctx.lab, x) if x else None for x in (c.match, c.absent))
    problems = []
    if c.rc is not None and res.returncode != c.rc:
        problems.append(f"exit {res.returncode}, expected {c.rc}")
    if match and not re.search(match, out, re.M):
        problems.append(f"output does not match /{match}/")
    if absent and re.search(absent, out, re.M):
        problems.append(f"output matches /{absent}/")
    found = re.search(match, out, re.M) if match else None
    seen = found.group(0).strip() if found else (out.strip().splitlines() or ["(no output)"])[-1]
    return not problems, "; ".join(problems) or f"ok: {seen[:120]}"


def _reach_one(c: ReachCriterion, lab: Any, node: str) -> tuple[bool, str]:
    if c.by_name:
        argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{remote_ip}", "--connect-timeout", "2",
                "-m", "4", f"http://{c.to}/"]
    else:
        dst = lab.net.plan.address(c.to, c.dst_isp)
        src = lab.net.plan.address(node, c.src_isp) if c.src_isp else None
        if c.tool == "ping":
            argv = ["ping", "-6", "-n", "-q", "-c", "1", "-W", "2", *(["-I", src] if src else []), dst]
        else:
            argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{local_ip}", "--connect-timeout", "2",
                    "-m", "4", *(["--interface", src] if src else []), f"http://[{dst}]/"]
    for _ in range(c.tries):
        res = lab.node(node).run(argv, timeout=10)
        ok = res.returncode == 0 and (c.tool == "ping" or res.stdout.startswith("200"))
        if ok:
            received = re.search(r"\d+ received", res.stdout)
            return True, received.group(0) if received else (res.stdout.strip() or "ok")
        time.sleep(0.5)
    return False, (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1][:100]


def _reach(c: ReachCriterion, ctx: Context) -> tuple[bool, str]:
    seen = []
    good = True
    for node in c.from_:
        ok, detail = _reach_one(c, ctx.lab, node)
        want = "works" if c.expect else "fails"
        good &= ok == c.expect
        seen.append(f"{node}->{c.to}: {'works' if ok else 'fails'} ({detail})" + ("" if ok == c.expect else
                                                                                   f", should {want[:-1]}"))
    return good, "; ".join(seen)


def ingress_total(lab: Any, node: str) -> int:
    return sum(lab.nft_counter(node, c) for c in lab.net.nodes[node].counters)


def _counter(c: CounterCriterion, ctx: Context) -> tuple[bool, str]:
    # "positive" may take a second round (a route still settling sends nothing to the ISP); "zero" must
    # hold over every round sent
    for _ in range(1 if c.delta == "zero" else 3):
        before = ingress_total(ctx.lab, c.node)
        for t in c.traffic:
            _reach(t, ctx)
        delta = ingress_total(ctx.lab, c.node) - before
        ok = delta == 0 if c.delta == "zero" else delta > 0
        if ok:
            break
    return ok, f"{c.node} ingress filter dropped {delta} packets of the checker's traffic"


def _under_fault(c: UnderFaultCriterion, ctx: Context) -> tuple[bool, str]:
    fault = _FAULT.validate_python({"at": 0, **c.fault})
    action = prepare(fault, ctx.lab)
    action.do()
    try:
        time.sleep(c.settle_ms / 1000)
        inner = [grade_one(sub, ctx) for sub in c.checks]
    finally:
        action.revert()
    ok = all(r.passed for r in inner)
    return ok, f"with {c.fault.get('kind')}: " + "; ".join(f"{r.name}: {r.detail}" for r in inner)


def _scenario(c: ScenarioCriterion, ctx: Context) -> tuple[bool, str]:
    path = ctx.exercise.folder / c.file
    out = Path(tempfile.mkdtemp(prefix=f"check-{ctx.exercise.number:02d}-", dir=_checks_dir(ctx.lab)))
    outcome = run_scenario(path, out, lab=ctx.lab)
    failed = [v.expectation for v in outcome.result.verdicts if not v.passed]
    return not failed, ("all expectations held" if not failed else "failed: " + "; ".join(failed)) + f" (report {out})"


def _checks_dir(lab: Any) -> Path:
    """Scenario reports live in the lab's run directory (gone with the lab)."""
    path = lab.rundir.path / "checks"
    path.mkdir(exist_ok=True)
    return path


def _answer(c: AnswerCriterion, ctx: Context) -> tuple[bool, str]:
    given = ctx.answers.get(c.question)
    if given in (None, ""):
        return False, f"no answer to {c.question} ({c.prompt})"
    return digest(given) in c.sha256, f"{c.question}: {given!r}"


_GRADERS = {"command": _command, "reach": _reach, "counter": _counter, "under-fault": _under_fault,
            "scenario": _scenario, "answer": _answer}


def grade_one(c: Any, ctx: Context) -> Result:
    try:
        ok, detail = _GRADERS[c.kind](c, ctx)
    except Exception as exc:  # a criterion that cannot even run is a failed criterion, said plainly
        ok, detail = False, f"could not run: {type(exc).__name__}: {exc}"[:300]
    return Result(c.name, c.kind, ok, c.points if ok else 0, c.points, detail, "" if ok else c.hint)


def grade(ex: Exercise, lab: Any, answers: dict[str, Any] | None = None) -> list[Result]:
    ctx = Context(lab, ex, answers or {})
    return [grade_one(c, ctx) for c in ex.checker.criteria]
