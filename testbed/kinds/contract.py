"""The contract of a lab kind: what a kind of lab file (``kind: multihoming``, ``kind: i2p``) provides so
the runtime and the faces (CLI, pytest plugin) work on it without knowing its name or its model.

A kind is one module ``testbed/kinds/<name>.py`` defining ``KIND = LabKind(...)``; the registry
(:mod:`testbed.kinds`) finds it.  The runtime reads only the kind's functions and the NetPlan they build:
never an attribute of a particular model.  This module imports nothing of mhlab's but the leaf modules it
names in annotations, so every other module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..runninglab import Condition, RunningLab
from ..yamlmarks import MarkedDoc

__all__ = ["Check", "Condition", "LabKind", "RunningLab", "Section"]


@dataclass(frozen=True)
class Check:
    """One line of `mhlab check`: what was checked, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str = ""
    src: str = ""
    dst: str = ""
    isp: str = ""


@dataclass(frozen=True)
class Section:
    """A block of `mhlab inspect` a kind adds: a title and (key, value) rows, e.g. ("r1", "up, 3 leases")."""

    title: str
    rows: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        return {"title": self.title, "rows": dict(self.rows)}


@dataclass(frozen=True)
class LabKind:
    """A kind of lab.  ``model`` is the class ``parse`` returns (the registry finds a model's kind by it);
    ``implicit`` marks the one kind of files that have no ``kind:`` key."""

    name: str
    summary: str
    model: type
    parse: Callable[[MarkedDoc], Any]  # a marked document (its ``kind:`` key included) -> validated model
    netplan: Callable[[Any], Any]  # model -> NetPlan (pure: no kernel, no root)
    readiness: Callable[[Any], tuple[Condition, ...]] = lambda net: ()  # NetPlan -> what deploy waits for
    checks: Callable[[RunningLab], list[Check]] = lambda lab: []  # what `mhlab check` runs
    inspect: Callable[[RunningLab], list[Section]] = lambda lab: []  # what `mhlab inspect` adds
    implicit: bool = False
