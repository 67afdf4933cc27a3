"""Hypothesis strategies derived from a ``fields_desc`` (so every declared format is covered).

``values_of(cls)`` draws field by field, so a field sized or chosen by an earlier one (a
``Count``, a ``Switch``, Locator Preferences' element length) sees the values drawn before it.
Fields no rule covers raise: a new field kind must come with its strategy.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from hypothesis import strategies as st

from agents import wirecodec as wc

addresses = st.binary(min_size=16, max_size=16).map(ipaddress.IPv6Address)
MAX_ITEMS = 5

#: Extra rules: a field kind (or a (struct class, field name) pair) -> f(field, values so far) -> strategy.
Rule = Callable[[Any, dict[str, Any]], st.SearchStrategy[Any]]


def _octets_max(bits: int | None) -> int:
    return 64 if bits is None else min(64, (1 << bits) - 1)


def _counters(cls: type[wc.Struct]) -> dict[str, wc.Count]:
    return {f.name: f for f in cls.fields_desc if isinstance(f, wc.Count)}


def for_field(f: Any, cls: type[wc.Struct], values: dict[str, Any], sizes: dict[str, int], rules: dict[Any, Rule]) -> st.SearchStrategy[Any]:
    counters = _counters(cls)
    rule = rules.get((cls, getattr(f, "name", None))) or rules.get(type(f))
    if rule is not None:
        return rule(f, values)
    if isinstance(f, wc.UInt):
        return st.integers(0, (1 << f.bits) - 1)
    if isinstance(f, wc.Flag):
        return st.booleans()
    if isinstance(f, wc.IPv6):
        return addresses
    if isinstance(f, wc.Attr):
        return st.booleans() if isinstance(f.default, bool) else st.just(f.default)
    if isinstance(f, (wc.Bytes, wc.Text)):
        if f.size is not None:
            return st.binary(min_size=f.size, max_size=f.size) if isinstance(f, wc.Bytes) else st.just("x" * f.size)
        limit = _octets_max(f.prefix if f.length is None else counters[f.length].bits)
        if isinstance(f, wc.Bytes):
            return st.binary(max_size=limit)
        return st.text(max_size=min(limit, 40)).filter(lambda s: len(s.encode(f.encoding)) <= limit)
    if isinstance(f, wc.Nested):
        return values_of(f.cls, rules)
    if isinstance(f, wc.Switch):
        return for_field(f.choose(values), cls, values, sizes, rules)
    if isinstance(f, wc.Absent):
        return st.none()
    if isinstance(f, wc.List):
        cap = MAX_ITEMS if f.limit is None else min(MAX_ITEMS, f.limit)
        if f.count is not None:
            cap = min(cap, (1 << counters[f.count].bits) - 1)
            if f.count in sizes:
                n = sizes[f.count]
                item = for_field(f.item, cls, values, sizes, rules)
                return st.lists(item, min_size=n, max_size=n).map(tuple)
        item = for_field(f.item, cls, values, sizes, rules)
        return st.lists(item, max_size=cap).map(tuple)
    if isinstance(f, wc.TLV):
        known = [values_of(c, rules) for c in f.registry.values()]
        unknown = st.builds(
            f.unknown,
            type=st.integers(0, (1 << f.type_bits) - 1).filter(lambda t: t not in f.registry),
            data=st.binary(max_size=40),
            **({f.flag: st.booleans()} if f.flag else {}),
        )
        return st.lists(st.one_of(*known, unknown), max_size=4).map(tuple)
    raise AssertionError(f"no strategy for {cls.__name__}.{getattr(f, 'name', f)!r} ({type(f).__name__})")


def _valid(obj: wc.Struct) -> bool:
    try:
        obj.validate()
    except type(obj).decode_error:
        return False
    return True


def values_of(cls: type[wc.Struct], rules: dict[Any, Rule] | None = None) -> st.SearchStrategy[Any]:
    """Valid instances of ``cls`` (``validate`` accepts them); lists sharing one Count get equal
    lengths.  ``rules`` may give a whole structure's strategy (keyed by its class)."""
    rules = rules or {}
    if cls in rules:
        return rules[cls](None, {})

    @st.composite
    def build(draw: Any) -> Any:
        values: dict[str, Any] = {}
        sizes: dict[str, int] = {}
        for f in cls.fields_desc:
            if isinstance(f, wc.Count) and not isinstance(f.of, str):
                sizes[f.name] = draw(st.integers(0, min(MAX_ITEMS, (1 << f.bits) - 1)))
            if f.public:
                values[f.name] = draw(for_field(f, cls, values, sizes, rules))
        return cls(**values)

    return build().filter(_valid)
