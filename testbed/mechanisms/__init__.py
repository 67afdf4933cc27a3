"""Multihoming mechanisms as plug-ins, and the registry that finds them.

A mechanism is one module of this package defining ``MECHANISM = Mechanism(...)`` (the contract is in
``contract.py``); ``discovered()`` imports every module of the package and collects them, so adding a
mechanism is adding one file.  Modules whose name starts with ``_`` are private helpers and skipped.

The registry is a value: tests build one with an extra mechanism (``discovered().with_(mine)``) and pass
it to ``parse_topology``/``build_plan``/``build_netplan``; nothing global changes.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterator, Mapping

from ..errors import MhlabError, UnknownName
from .contract import FieldPath, FieldProblem, Mechanism, NoOptions, Options, Readiness

__all__ = ["FieldPath", "FieldProblem", "Mechanism", "MechanismError", "NoOptions", "Options", "Readiness",
           "Registry", "UnknownMechanism", "discover", "discovered", "get_mechanism", "mechanisms"]

NOT_MECHANISMS = frozenset({"contract"})


class UnknownMechanism(UnknownName):
    """A site (or a caller) names a mechanism the registry does not have."""

    def __init__(self, name: str, known) -> None:
        super().__init__("mechanism", name, known)


class MechanismError(MhlabError):
    """A mechanism module breaks the contract (no MECHANISM, a name taken twice)."""


@dataclass(frozen=True)
class Registry:
    """Mechanisms by name (discovered ones in module-name order, then those added with ``with_``)."""

    by_name: Mapping[str, Mechanism]

    @classmethod
    def of(cls, mechs) -> "Registry":
        table: dict[str, Mechanism] = {}
        for mech in mechs:
            if not isinstance(mech, Mechanism):
                raise MechanismError(f"{mech!r} is not a Mechanism")
            if mech.name in table:
                raise MechanismError(f"two mechanisms are named {mech.name!r}")
            table[mech.name] = mech
        return cls(MappingProxyType(table))

    def with_(self, *mechs: Mechanism) -> "Registry":
        """A new registry with ``mechs`` added (the name of each must be new)."""
        return Registry.of([*self.by_name.values(), *mechs])

    def only(self, names) -> "Registry":
        """A registry of just the mechanisms called ``names`` (UnknownMechanism for a name it lacks)."""
        wanted = set(names)
        for name in sorted(wanted - set(self.by_name)):
            raise UnknownMechanism(name, self.by_name)
        return Registry.of([m for m in self if m.name in wanted])

    def get(self, name: str) -> Mechanism:
        try:
            return self.by_name[name]
        except KeyError:
            raise UnknownMechanism(name, self.by_name) from None

    def names(self) -> list[str]:
        return list(self.by_name)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def __iter__(self) -> Iterator[Mechanism]:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)


def discover(package: str = __name__) -> Registry:
    """Import every module of ``package`` (in name order) and collect its ``MECHANISM``."""
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                   if not m.name.startswith("_") and m.name not in NOT_MECHANISMS)
    mechs = []
    for name in names:
        module = importlib.import_module(f"{package}.{name}")
        mech = getattr(module, "MECHANISM", None)
        if not isinstance(mech, Mechanism):
            raise MechanismError(f"{package}.{name} defines no MECHANISM = Mechanism(...); helper modules "
                                 "of the package start with '_'")
        mechs.append(mech)
    return Registry.of(mechs)


@functools.cache
def discovered() -> Registry:
    """The shipped mechanisms (discovered once; the registry is immutable)."""
    return discover()


def mechanisms() -> Mapping[str, Mechanism]:
    """All shipped mechanisms by name."""
    return discovered().by_name


def get_mechanism(name: str) -> Mechanism:
    """A shipped mechanism; UnknownMechanism (listing the known names) when there is none by that name."""
    return discovered().get(name)
