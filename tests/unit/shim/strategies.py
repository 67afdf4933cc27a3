"""Hypothesis strategies for every Shim6 message and option, derived from their declarations."""

from hypothesis import strategies as st

from agents.shim import messages

from codec.strategies import addresses, values_of


def _preference_elements(field, values):
    element = st.tuples(*[st.integers(0, 255)] * values[field.size])
    return st.lists(element, max_size=6).map(tuple)


RULES = {
    messages.SizedTuples: _preference_elements,
    (messages.LocatorPreferences, "element_len"): lambda f, v: st.sampled_from([1, 2, 3]),
}


def for_class(cls):
    return values_of(cls, RULES)


unknown_options = st.builds(
    messages.UnknownOption,
    type=st.integers(0, (1 << 15) - 1).filter(lambda t: t not in messages.OPTIONS),
    data=st.binary(max_size=40),
    critical=st.booleans(),
)
options = st.one_of([for_class(c) for c in messages.OPTIONS.values()] + [unknown_options])
control_messages = st.one_of([for_class(c) for c in messages.MESSAGES.values()])

__all__ = ["addresses", "control_messages", "for_class", "options", "unknown_options"]
