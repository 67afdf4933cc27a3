"""The error types mhlab raises, so faces (CLI, pytest) can tell user mistakes from runtime failures."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


class MhlabError(Exception):
    """Base of every error mhlab raises on purpose."""


@dataclass
class Problem:
    """One thing wrong in an input file, located as precisely as we can."""

    message: str
    file: str = "<input>"
    line: int | None = None
    field: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """``"; did you mean 'interval_ms'?"`` when one candidate is close to ``word``, else ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class TopologyError(MhlabError):
    """A lab (topology) file is invalid; nothing was built.  Carries every problem found."""

    problems: list[Problem] = field(default_factory=list)
    what = "topology"  # how faces name the file: "invalid topology", "invalid scenario"

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class ScenarioError(TopologyError):
    """A scenario file is invalid (or does not fit its lab); nothing was built or run."""

    what = "scenario"


class UsageError(MhlabError):
    """A command-line argument breaks a rule (``--name``, an output path that is a file, the wrong verb);
    exit status 2, nothing was done."""


class LabError(MhlabError):
    """The runtime could not do what was asked (deploy, exec, destroy)."""


class DependencyError(MhlabError):
    """A required program is missing or has an untested version."""


class UnknownName(MhlabError, LookupError):
    """A lookup by name (an ISP, a segment, a mechanism…) found nothing; the message lists what exists."""

    def __init__(self, kind: str, name: str, known) -> None:
        self.kind, self.name, self.known = kind, name, tuple(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(sorted(self.known)) or 'none'}")
