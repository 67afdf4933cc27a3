"""Lab files come in kinds: ``multihoming`` (the default: ISPs and multihomed sites) and others, such as
``i2p`` (a private I2P network).  Each kind parses its own model and turns it into the one NetPlan that the
runtime knows how to deploy - so a new kind never touches lab.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import TopologyError
from .netplan import NetPlan, build_netplan
from .topology import Topology, parse_topology
from .yamlmarks import MarkedDoc, load_marked

KINDS = ("multihoming", "i2p")


def parse_lab(doc: MarkedDoc) -> Any:
    """A validated model of any kind; the ``kind:`` key picks the parser (default multihoming)."""
    kind = doc.data.get("kind", "multihoming") if isinstance(doc.data, dict) else "multihoming"
    if kind == "multihoming":
        from .mechanisms import mechanisms
        data = dict(doc.data)
        data.pop("kind", None)
        return parse_topology(MarkedDoc(data, doc.file, doc.lines), set(mechanisms()))
    if kind == "i2p":
        from .i2p.topology import parse_i2p  # noqa: PLC0415 - optional kind
        return parse_i2p(doc)
    raise TopologyError([doc.problem(("kind",), f"unknown lab kind {kind!r}; known: {', '.join(KINDS)}")])


def load_lab(path: str | Path) -> Any:
    return parse_lab(load_marked(path))


def netplan_for(model: Any) -> NetPlan:
    """The deployable plan of a model: multihoming topologies here, other kinds by their ``netplan()``."""
    if isinstance(model, Topology):
        return build_netplan(model)
    return model.netplan()
