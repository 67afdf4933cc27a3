"""When does a flow deserve a shim context? (thesis 6.4.3.2: establishment is asynchronous).

RFC 5533 section 4 suggests heuristics such as "more than 50 packets" or "a timer while
packets flow"; the lab can choose: immediately, after N packets, or after T seconds of a
flow's life.  The policy only looks at per-flow counters the engine keeps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContextPolicy:
    kind: str = "immediate"  # "immediate" | "packets" | "seconds"
    threshold: float = 0

    def __post_init__(self) -> None:
        if self.kind not in {"immediate", "packets", "seconds"}:
            raise ValueError(f"unknown context policy {self.kind!r}")

    @classmethod
    def parse(cls, text: str) -> "ContextPolicy":
        """``immediate``, ``packets:N`` or ``seconds:T``."""
        kind, _, value = text.partition(":")
        return cls(kind, float(value) if value else 0)

    def due(self, packets: int, first_seen: float, now: float) -> bool:
        if self.kind == "immediate":
            return True
        if self.kind == "packets":
            return packets >= self.threshold
        return now - first_seen >= self.threshold

    def __str__(self) -> str:
        return self.kind if self.kind == "immediate" else f"{self.kind}:{self.threshold:g}"


@dataclass
class FlowStats:
    first_seen: float
    packets: int = 0
