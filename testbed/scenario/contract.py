"""The two extension points of the scenario language: a fault kind and a flow kind, each a table entry.

A **fault kind** is its pydantic model (a member of ``model.Fault``), the lab kinds it applies to, and a
``prepare(fault, lab) -> Action`` handler that resolves the fault against the lab *before* anything runs
(raising :class:`FaultError` on a bad reference) and returns the apply/undo pair.  A **flow kind** is its
model (a member of ``model.Flow``), the agent command lines that start it in a node, the parser that
turns the agents' JSON-lines events into a :class:`~testbed.scenario.measures.FlowTrace`, and the
metrics that are defined for it.  The tables live in :mod:`testbed.faults` and
:mod:`testbed.scenario.flowkinds`; a unit test checks that every member of both unions has an entry.

This module is a leaf: it imports nothing of the project but the error types.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import LabError, MhlabError

MULTIHOMING = "multihoming"
I2P = "i2p"
Events = list[dict[str, Any]]


class FaultError(MhlabError):
    """A fault cannot apply to this lab (bad reference, wrong lab kind, missing kernel feature)."""


class FlowError(MhlabError):
    """A flow cannot run on this lab (no such address, wrong lab kind); ``index`` is the flow's position."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass
class Action:
    """A prepared fault: ``do()`` at its time, ``revert()`` at ``until`` (or at the end of the run)."""

    name: str
    describe: str
    apply: Callable[[], None]
    undo: Callable[[], None] | None = None
    applied: bool = field(default=False)

    def do(self) -> None:
        self.apply()
        self.applied = True

    def revert(self) -> None:
        if self.applied and self.undo is not None:
            self.undo()
            self.applied = False


def kind_name(model: type) -> str:
    """The ``kind:`` literal of a fault or flow model class (its discriminator value)."""
    return typing.get_args(model.model_fields["kind"].annotation)[0]


def lab_kind(topology: Any) -> str:
    """The kind of a lab's model: its ``kind`` field, else the default multihoming kind."""
    return str(getattr(topology, "kind", MULTIHOMING))


@dataclass(frozen=True)
class FaultKind:
    """One fault kind: ``prepare(fault, lab)`` where ``lab`` has ``.net`` (the NetPlan), ``.topology``,
    ``.name`` and node handles (``lab[node]``); handlers touch nodes only inside the returned Action."""

    model: type
    prepare: Callable[[Any, Any], Action]
    lab_kinds: frozenset[str] = frozenset({MULTIHOMING})

    @property
    def name(self) -> str:
        return kind_name(self.model)


@dataclass(frozen=True)
class Endpoints:
    """What a flow's agents need besides the flow itself: resolved addresses, a port, the lab's model."""

    src: str
    dst: str
    port: int
    lab: Any = None


# (flow, lab model, node -> {address space: [addresses]}) -> (src, dst) as the agents take them
Resolve = Callable[[Any, Any, Callable[[str], Mapping[str, Sequence[str]]]], tuple[str, str]]


@dataclass(frozen=True)
class FlowKind:
    """One traffic kind.  ``client``/``server`` return ``[module, args...]`` for ``python -m`` (no server:
    the kind needs none); ``parse(client_events, server_events)`` returns FlowTrace fields; ``resolve``
    turns the flow's ``src``/``dst`` into what the agents take (default: addresses from the lab's plan)."""

    model: type
    client: Callable[[Any, Endpoints], list[str]]
    parse: Callable[[Events, Events], dict[str, Any]]
    metrics: frozenset[str]
    server: Callable[[Any, Endpoints], list[str]] | None = None
    resolve: Resolve | None = None
    lab_kinds: frozenset[str] = frozenset({MULTIHOMING})
    to_is_node: bool = True  # False: ``to`` names something that is not a node (an I2P Destination)

    @property
    def name(self) -> str:
        return kind_name(self.model)


def resolve_address(selector: Any, node: str, addresses: Mapping[str, Sequence[str]]) -> str:
    """A flow end as most kinds resolve it (kinds with their own ``resolve`` reuse it): a literal address
    as is; ``{isp: X}`` (an ``IspAddress``: ``isp``, ``index``) -> the node's address from ISP X; None ->
    the node's first."""
    if isinstance(selector, str):
        return selector
    if selector is None:
        for addrs in addresses.values():
            if addrs:
                return addrs[0]
        raise LabError(f"node {node} has no addresses to send from or to")
    addrs = addresses.get(selector.isp, ())
    if selector.index >= len(addrs):
        known = ", ".join(f"{isp}: {len(a)}" for isp, a in addresses.items()) or "none"
        raise LabError(f"node {node} has no address #{selector.index} from ISP {selector.isp} (it has {known})")
    return addrs[selector.index]
