"""Polling with bounds: the one way mhlab waits for something to become true.

Modelled on FRR topotests' ``run_and_expect``: call a function until its value is what we want, sleeping
``interval`` between calls; give up after ``timeout`` seconds - but never before ``min_timeout`` (so a fast
first failure on a loaded machine is not mistaken for the answer) - and say *what* was awaited and the last
value seen.  The last value is returned on success, so a caller gets the state it waited for.
"""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from .errors import LabError

T = TypeVar("T")


class WaitTimeout(LabError):
    """Something awaited did not happen in time; carries what, how long, and the last value seen."""

    def __init__(self, what: str, timeout: float, last: Any) -> None:
        self.what, self.timeout, self.last = what, timeout, last
        super().__init__(f"{what}: not reached within {timeout:g} s (last: {_short(last)})")


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.1, min_timeout: float = 0.0,
               *, what: str = "condition", ok: Callable[[T], bool] = bool,
               ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``predicate()`` until ``ok(value)`` (default: the value is truthy) and return that value.

    ``ignore`` lists exceptions that mean "not yet" (a socket not created yet): they count as the last
    value.  Raises :class:`WaitTimeout` naming ``what`` after ``max(timeout, min_timeout)`` seconds."""
    limit = max(timeout, min_timeout)
    start = time.monotonic()
    while True:
        try:
            last: Any = predicate()
            if ok(last):
                return last
        except ignore as exc:
            last = exc
        if time.monotonic() - start >= limit:
            raise WaitTimeout(what, limit, last)
        time.sleep(interval)


def _short(value: Any, width: int = 400) -> str:
    text = repr(value) if not isinstance(value, str) else value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        text = "; ".join(value) or "nothing"
    return text if len(text) <= width else text[:width] + " ..."
