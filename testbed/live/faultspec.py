"""Command-line words -> a fault of the scenario language (testbed.scenario.model's ``Fault`` union).

``link-down ispa-ra``, ``loss ispa-ra 30%``, ``rate-limit ra-ispa 1mbit burst=80kb``, ``flap ispa-ra 4000 1000``,
``daemon-kill ra bgpd``: each kind takes its main fields as positional words (in the order of
:data:`POSITIONAL`) and any other field of its model as ``field=value``.  The result is validated by the
same pydantic model a scenario file is, so a mistake reads the same here as there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import MhlabError
from ..scenario.model import Fault, FaultBase
from .faultwords import POSITIONAL

LINK_FIELDS = ("link",)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Fault)


class FaultWordsError(MhlabError):
    """The words do not make a fault (unknown kind, missing or bad field): a usage error."""


def _value(field: str, text: str) -> Any:
    if field == "percent":
        return text.rstrip("%")
    return text


def fault_from_words(kind: str, words: Sequence[str], *, name: str = "", until: float | None = None,
                     link_ref: Callable[[str], Any] = lambda w: w) -> FaultBase:
    """Build and validate one fault; ``link_ref`` turns a link word into the model's link reference."""
    if kind not in POSITIONAL:
        raise FaultWordsError(f"unknown fault kind {kind!r}; kinds: {', '.join(POSITIONAL)}")
    fields = POSITIONAL[kind]
    data: dict[str, Any] = {"kind": kind, "at": 0, "name": name}
    positional = [w for w in words if "=" not in w]
    if len(positional) > len(fields):
        raise FaultWordsError(f"{kind} takes {' '.join(f.rstrip('?').upper() for f in fields)}; "
                              f"too many words: {' '.join(positional[len(fields):])}")
    for field, word in zip(fields, positional):
        data[field.rstrip("?")] = _value(field.rstrip("?"), word)
    missing = [f for f in fields[len(positional):] if not f.endswith("?")]
    if missing:
        raise FaultWordsError(f"{kind} needs {' '.join(f.upper() for f in missing)} "
                              f"(usage: {kind} {' '.join(f.rstrip('?').upper() for f in fields)})")
    for word in words:
        if "=" in word:
            key, _, value = word.partition("=")
            data[key.replace("-", "_")] = value
    for key in LINK_FIELDS:
        if key in data:
            data[key] = link_ref(data[key])
    if until is not None:
        data["until"] = until
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"][1:]) or kind  # [0] is the union tag
            problems.append(f"{loc}: {err['msg']}")
        raise FaultWordsError(f"{kind}: " + "; ".join(problems)) from None


def target_of(fault: FaultBase) -> str:
    """What a fault acts on, as one word (for default names and listings)."""
    for key in ("link", "isp", "node"):
        value = getattr(fault, key, None)
        if value:
            return ",".join(value) if isinstance(value, tuple) else str(value)
    return ""


def default_name(fault: FaultBase, taken: set[str]) -> str:
    """``link-down-ispa-ra``; ``-2``, ``-3``… when that name is still in force."""
    base = f"{fault.kind}-{target_of(fault)}".replace(",", "-").strip("-")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name
