"""The files of an exercise, as pydantic models: exercise.yaml, checker.yaml, solution.yaml, answers.

Criteria are a tagged union on ``kind``.  Configuration criteria (``command``) read what the student set;
behaviour criteria (``reach``, ``counter``, ``under-fault``, ``scenario``) send the checker's own traffic,
inject faults and score what survives; ``answer`` grades a written answer against stored SHA-256 digests
(so the checker does not give the answer away).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UsageError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Command(Strict):
    """A command run inside a node; ``{addr:NODE:ISP}`` / ``{addr:NODE}`` expand to the plan's addresses and
    ``$MHLAB_NODE_DIR`` is the node's folder (its configs)."""

    node: str
    run: str = Field("", description="a shell command run inside the node")
    restart: str = Field("", description="a daemon of the node to restart with the argv it was started with "
                                         "(after its config file was edited), like `mhlab fault LAB daemon-kill "
                                         "NODE DAEMON` then `mhlab restore LAB`")


class CriterionBase(Strict):
    name: str = Field(description="what the student sees in the table")
    points: int = Field(1, ge=0)
    hint: str = Field("", description="shown when the criterion fails")


class CommandCriterion(CriterionBase):
    """A command's exit status and output (like kathara-lab-checker's command-output assertions)."""

    kind: Literal["command"]
    node: str
    run: str
    rc: int | None = Field(0, description="expected exit status (null: any)")
    match: str | None = Field(None, description="regex the output must match")
    absent: str | None = Field(None, description="regex the output must not match")


class ReachCriterion(CriterionBase):
    """Real connections: curl (HTTP) or ping from every ``from`` node to ``to`` (a node or a DNS name)."""

    kind: Literal["reach"]
    from_: list[str] = Field(alias="from")
    to: str
    src_isp: str | None = Field(None, description="bind the client to its address from this ISP")
    dst_isp: str | None = Field(None, description="connect to the destination's address from this ISP")
    by_name: bool = Field(False, description="`to` is a DNS name: the client resolves it (curl, no binding)")
    tool: Literal["curl", "ping"] = "curl"
    expect: bool = Field(True, description="false: the connection must fail")
    tries: int = Field(2, ge=1, description="attempts per client; one success is enough")


class CounterCriterion(CriterionBase):
    """A DELTA of an ISP's ingress-filter drop counters over the checker's own test traffic."""

    kind: Literal["counter"]
    node: str = Field(description="the router whose ingress counters are read (an ISP)")
    traffic: list[ReachCriterion] = Field(description="what the checker sends meanwhile (its outcome is ignored)")
    delta: Literal["zero", "positive"]


class UnderFaultCriterion(CriterionBase):
    """Apply a fault (the scenario language's fault objects), wait, run inner criteria, undo the fault."""

    kind: Literal["under-fault"]
    fault: dict[str, Any]
    settle_ms: int = Field(2000, ge=0)
    checks: list["Criterion"]


class ScenarioCriterion(CriterionBase):
    """Run a scenario file (relative to the exercise) on the student's running lab; it stays up."""

    kind: Literal["scenario"]
    file: str


class AnswerCriterion(CriterionBase):
    """A written answer (``answers-NN.yaml``: question: answer), normalised (case, spaces), against digests."""

    kind: Literal["answer"]
    question: str
    prompt: str
    sha256: list[str] = Field(description="digests of the normalised accepted answers (see `normalise`)")


Criterion = Annotated[Union[CommandCriterion, ReachCriterion, CounterCriterion, UnderFaultCriterion,
                            ScenarioCriterion, AnswerCriterion], Field(discriminator="kind")]
UnderFaultCriterion.model_rebuild()


class Checker(Strict):
    criteria: list[Criterion]


class ExerciseFile(Strict):
    title: str
    lab: str = Field(description="the starting lab file, relative to the exercise folder")
    thesis: str = ""
    setup: list[Command] = Field([], description="run after deploy: what breaks the lab for the exercise")
    hints: list[str] = []


class Solution(Strict):
    commands: list[Command] = []
    answers: dict[str, str] = {}


def normalise(answer: Any) -> str:
    return " ".join(str(answer).strip().lower().split())


def digest(answer: Any) -> str:
    return hashlib.sha256(normalise(answer).encode()).hexdigest()


def load_yaml(path: Path, model: type[BaseModel]) -> Any:
    """Parse a course file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"{path}: {problems}") from None
