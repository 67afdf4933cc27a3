"""Every exercise of the course, on a real lab: the starting lab fails exactly the criteria the exercise
teaches (each with a hint), and the reference solution applied to the same running lab gets full marks.

One lab per exercise, shared by both halves (start -> check fails -> solution -> check passes -> destroy).
Labs are named co<NN>co (prefix "co", student "co")."""

import time

import pytest

from testbed.course import catalog, session
from testbed.course.criteria import grade

pytestmark = pytest.mark.lab

# exercise -> the criteria the starting lab must fail (all others must pass)
EXPECTED_FAILURES = {
    1: {"ra's BGP session with ispa is Established", "ra has a default route learned by BGP",
        "ispa learns the site's /48 from ra (AS path 65100)", "h1 fetches a page from srv",
        "srv fetches a page from h1 (inbound)", "the AS path of ispa's route to the site",
        "the prefix core routes h1's address by"},
    2: {"q1 - the router that drops", "q2 - the counter that grows", "q3 - what the filter does not accept",
        "q4 - the router that sent them to the wrong ISP"},
    3: {"ra has a default route from ISP B's prefix", "rb has a default route from ISP A's prefix",
        "every host's ISP-B address reaches srv", "no ingress-filter drop at ispa over the checker's traffic",
        "after ISP A's upstream is cut, the ISP-B addresses still reach srv",
        "scenario - new connections during ISP A's upstream cut"},
    4: {"rb's babeld redistributes its default as from ISP B's prefix",
        "rc has a babel route \"default from 2001:db8:b001::/48\"", "h1's ISP-B address reaches srv",
        "after ra's access link fails, the ISP-B address still reaches srv",
        "q1 - the protocol that carries source-specific routes here", "q2 - the RFC that specifies it"},
    5: {"the DNS gives h1's ISP-B address",
        "after ISP A's upstream is cut, new connections to h1 by name still work"},
    6: {"h1 picks its ISP-A address to reach srv", "h2 picks its ISP-A address to reach srv",
        "h1's policy table labels ISP A's prefix",
        "after ISP B's upstream is cut, plain clients on h1 and h2 still reach srv",
        "q1 - the RFC of default address selection"},
    7: {"q1 - locator pairs", "q2 - the RFC of HBA addresses", "q3 - the failure detection protocol",
        "q4 - the event of a switch"},
    8: {"you ran the redirection attack and hB refused it (proof failures counted)",
        "q1 - why the forged update fails", "q2 - what HBA does not protect against",
        "q3 - flooding a third party"},
}


def test_every_exercise_has_its_expectations():
    assert set(EXPECTED_FAILURES) == {e.number for e in catalog.exercises()}


# measured 13-52 s each (exercise 7, the shim lab and its 8 s scenario, is the longest): none is slow
@pytest.mark.parametrize("number", sorted(EXPECTED_FAILURES))
def test_starting_lab_fails_as_taught_and_the_solution_gets_full_marks(number):
    ex = catalog.exercise(number)
    t0 = time.monotonic()
    lab = session.start(ex, "co", prefix="co")
    try:
        assert lab.name == f"co{number:02d}co"
        before = grade(ex, lab, {})
        failed = {r.name for r in before if not r.passed}
        assert failed == EXPECTED_FAILURES[number], [(r.name, r.detail) for r in before]
        assert all(r.hint for r in before if not r.passed), "a failure without a hint"
        answers = session.apply_solution(ex, lab)
        after = grade(ex, lab, answers)
        assert all(r.passed for r in after), [(r.name, r.detail) for r in after if not r.passed]
        assert sum(r.points for r in after) == ex.max_points
    finally:
        lab.destroy()
    print(f"exercise {number}: {time.monotonic() - t0:.1f} s")
