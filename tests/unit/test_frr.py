"""Reading FRR's dry run: the problems are the lines about the config, whatever the exit status."""

from testbed.frr import check_problems

# bgpd -C of FRR 8.4.4 on a config with two bad lines: exit status 0
TYPO = """2026/12/01 11:52:59 BGP: [SHWNK-NWT5S][EC 100663304] No such command on config line 2: frobnicate the thing
2026/12/01 11:52:59 BGP: [SHWNK-NWT5S][EC 100663304] No such command on config line 5:  neighbour 1.1.1.1 remote-as 1
"""
# ospf6d -C of a good config: talk about interfaces, nothing about the config
NOISE = """2026/12/01 11:53:07 OSPF6: [WF9PF-G40PR] Interface ra is down, can't execute [InterfaceUp]
2026/12/01 11:53:07 ZEBRA: [NNACN-54BDA][EC 4043309110] Disabling MPLS support (no kernel support)
"""


def test_unparsed_lines_are_problems_even_when_frr_exits_zero():
    assert check_problems(0, TYPO) == ["No such command on config line 2: frobnicate the thing",
                                       "No such command on config line 5:  neighbour 1.1.1.1 remote-as 1"]


def test_other_output_of_a_good_config_is_no_problem():
    assert check_problems(0, NOISE) == [] and check_problems(0, "") == []


def test_a_failed_dry_run_without_config_lines_reports_its_exit_and_output():
    assert check_problems(1, "can't open configuration file\n") == ["exit 1: can't open configuration file"]
