"""Waiting for BGP in a big lab: each session asked about from one end a poll, the busiest routers first,
and a session seen Established not asked about again - yet nothing missing is ever reported as ready."""

from testbed.checks import bgp_converging
from testbed.generate import n_sites
from testbed.netplan import build_netplan


class FakeLab:
    """Answers `show bgp summary json` from a table of session states; counts who was asked."""

    def __init__(self, net, established: set[frozenset[str]]):
        self.net, self.established, self.asked = net, established, []
        self.addr = {r.name: {nb.address: nb.peer for nb in r.bgp.neighbors} for r in net.routers() if r.bgp}

    def vtysh_json(self, router: str, command: str) -> dict:
        if command.startswith("show bgp ipv6"):
            return {"routes": {p: [] for prefixes in self.net.await_routes.values() for p in prefixes}}
        self.asked.append(router)
        peers = {a: {"state": "Established" if frozenset((router, p)) in self.established else "Active"}
                 for a, p in self.addr[router].items()}
        return {"ipv6Unicast": {"peers": peers}}


def _pairs(net):
    return {frozenset((r.name, nb.peer)) for r in net.routers() if r.bgp for nb in r.bgp.neighbors}


def test_the_two_isps_answers_cover_every_session():
    net = build_netplan(n_sites(30))
    lab = FakeLab(net, set())
    pending = bgp_converging(net)
    missing = pending(lab)
    assert len(missing) == len(_pairs(net)) and sorted(lab.asked) == ["ispa", "ispb"]
    lab.established = _pairs(net)
    lab.asked.clear()
    assert pending(lab) == [] and sorted(lab.asked) == ["ispa", "ispb"]
    lab.asked.clear()
    assert pending(lab) == [] and lab.asked == []  # nothing left to ask about


def test_one_session_down_is_reported_until_it_is_up():
    net = build_netplan(n_sites(5))
    down = frozenset(("ispb", "s3b"))
    lab = FakeLab(net, _pairs(net) - {down})
    pending = bgp_converging(net)
    assert pending(lab) == ["ispb->s3b: Active"]
    lab.asked.clear()
    assert pending(lab) == ["ispb->s3b: Active"] and lab.asked == ["ispb"]
    lab.established.add(down)
    assert pending(lab) == []
