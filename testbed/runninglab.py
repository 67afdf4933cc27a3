"""What code outside the runtime may use of a running lab, and a condition on it that deploy waits for.

Both lab kinds (their readiness, checks and inspect) and mechanisms (``Mechanism.conditions``,
``Mechanism.inspect``) look at a running lab; this leaf module is what they share, so neither contract
names a type of the other.  It imports nothing of mhlab's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol


class RunningLab(Protocol):
    """What readiness conditions, checks and inspect functions may use of a running lab (``testbed.lab.Lab``)."""

    @property
    def name(self) -> str: ...

    @property
    def net(self) -> Any: ...  # the NetPlan; ``net.topology`` is the kind's own model

    @property
    def plan(self) -> Any: ...

    def node(self, name: str) -> Any: ...  # a NodeHandle: run(), popen(), spawn(), dir

    def __getitem__(self, name: str) -> Any: ...

    def vtysh_json(self, router: str, command: str) -> dict: ...

    def bgp_sessions(self) -> dict[str, dict[str, str]]: ...

    def nft_counter(self, node: str, counter: str) -> int: ...


@dataclass(frozen=True)
class Condition:
    """One condition deploy waits for once the services run.  ``pending(lab)`` lists what is still missing
    (empty: ready); deploy polls it for at most ``timeout`` seconds and fails naming what was left.
    ``targets`` lists what it waits for (from the NetPlan alone), for the readiness report: deploy records
    it with how many polls it took and what was still pending at the first one (the retries it needed)."""

    name: str
    pending: Callable[[RunningLab], list[str]]
    timeout: float = 90.0
    interval: float = 0.2
    targets: Callable[[Any], list[str]] = lambda net: []


def merged(conds: list[Condition]) -> Condition:
    """Conditions of one name (one per site) as one: what any of them still misses is pending, the longest
    timeout and the shortest interval apply, and the report lists every target once."""
    if len(conds) == 1:
        return conds[0]
    return Condition(conds[0].name, lambda lab: [p for c in conds for p in c.pending(lab)],
                     max(c.timeout for c in conds), min(c.interval for c in conds),
                     targets=lambda n: [t for c in conds for t in c.targets(n)])
