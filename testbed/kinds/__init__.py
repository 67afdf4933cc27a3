"""Lab files come in kinds: ``multihoming`` (ISPs and multihomed sites; files without a ``kind:`` key) and
others, such as ``i2p`` (a private I2P network).  Each kind is a plug-in module of this package defining
``KIND`` (a :class:`~testbed.kinds.contract.LabKind`): it parses its own model and turns it into the one
NetPlan the runtime deploys, and says what deploy waits for, what `mhlab check` runs and what
`mhlab inspect` shows.  Adding a kind is adding one module here; nothing else names a kind.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import TopologyError
from ..yamlmarks import MarkedDoc, load_marked
from .contract import LabKind


class KindError(KeyError):
    """An unknown kind name, or a model no kind owns."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Kinds:
    """The registry: every kind found, by name (an immutable value; :func:`kinds` builds it)."""

    by_name: Mapping[str, LabKind]

    @property
    def implicit(self) -> LabKind:
        return next(k for k in self.by_name.values() if k.implicit)

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def get(self, name: str) -> LabKind:
        try:
            return self.by_name[name]
        except KeyError:
            raise KindError(f"unknown lab kind {name!r}; known: {', '.join(self.names())}") from None

    def of(self, model: Any) -> LabKind:
        """The kind whose parser makes models like ``model``."""
        for kind in self.by_name.values():
            if isinstance(model, kind.model):
                return kind
        raise KindError(f"no lab kind owns a {type(model).__name__} (kinds: {', '.join(self.names())})")

    def parse(self, doc: MarkedDoc) -> Any:
        """A validated model of any kind; the ``kind:`` key picks the parser."""
        name = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if name is None:
            return self.implicit.parse(doc)
        if not isinstance(name, str) or name not in self.by_name:
            raise TopologyError([doc.problem(("kind",), f"unknown lab kind {name!r}; known: "
                                             f"{', '.join(self.names())}")])
        return self.by_name[name].parse(doc)


def discover(package: str = __name__, path: Path = Path(__file__).parent) -> Kinds:
    """Import every module of the package that defines ``KIND`` and register it under its name."""
    found: dict[str, LabKind] = {}
    for info in sorted(pkgutil.iter_modules([str(path)]), key=lambda i: i.name):
        module = importlib.import_module(f"{package}.{info.name}")
        kind = getattr(module, "KIND", None)
        if isinstance(kind, LabKind):
            if kind.name in found:
                raise ValueError(f"lab kind {kind.name!r} is defined twice ({info.name})")
            found[kind.name] = kind
    if sum(k.implicit for k in found.values()) != 1:
        raise ValueError(f"exactly one lab kind must be implicit (files without `kind:`); found "
                         f"{[k.name for k in found.values() if k.implicit]}")
    return Kinds(MappingProxyType(found))


def kinds() -> Kinds:
    """The registry of every lab kind (modules are imported once; the value is rebuilt, never mutated)."""
    return discover()


def parse_lab(doc: MarkedDoc) -> Any:
    return kinds().parse(doc)


def load_lab(path: str | Path) -> Any:
    return parse_lab(load_marked(path))


def kind_of(model: Any) -> LabKind:
    return kinds().of(model)


def netplan_for(model: Any):
    """The deployable NetPlan of a model of any kind."""
    return kind_of(model).netplan(model)
