"""The scenario language's extension points: every fault and flow model has exactly one table entry."""

from __future__ import annotations

import typing

import pytest

from testbed.faults import FAULT_KINDS, fault_kind, prepare
from testbed.scenario.contract import FaultError, kind_name
from testbed.scenario.flowkinds import FLOW_KINDS, METRIC_KINDS
from testbed.scenario.model import FAULT_MODELS, FLOW_MODELS, METRICS, Fault, Flow, LinkDown, I2pRouterCrash


def _members(union: object) -> set[type]:
    return set(typing.get_args(typing.get_args(union)[0]))


def test_every_fault_model_has_a_fault_kind():
    assert _members(Fault) == set(FAULT_MODELS) == set(FAULT_KINDS)
    for model, kind in FAULT_KINDS.items():
        assert kind.model is model and kind.name == kind_name(model) and kind.lab_kinds


def test_every_flow_model_has_a_flow_kind():
    assert _members(Flow) == set(FLOW_MODELS) == set(FLOW_KINDS)
    for model, kind in FLOW_KINDS.items():
        assert kind.model is model and kind.metrics <= set(METRICS)


def test_every_metric_is_measured_by_some_flow_kind():
    assert set(METRIC_KINDS) == set(METRICS) and all(METRIC_KINDS.values())


class _Planned:
    """Just enough of a lab for prepare: a kind and no links."""

    def __init__(self, kind: str) -> None:
        self.topology = type("T", (), {"kind": kind})()
        self.name = "x"


def test_a_fault_kind_refuses_a_lab_of_another_kind():
    with pytest.raises(FaultError, match="i2p-router-crash does not apply to multihoming labs"):
        prepare(I2pRouterCrash(kind="i2p-router-crash", at=1), _Planned("multihoming"))
    with pytest.raises(FaultError, match="unknown fault kind"):
        fault_kind(object())
    assert fault_kind(LinkDown(kind="link-down", link="a-b", at=0)).name == "link-down"
