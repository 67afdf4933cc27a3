"""The policy's port rows and the exit path cache on one host (topologies/stage2-all.yaml): the port row
(TCP 8000-8099 through ISP B) wins over the cache's source for srv (ISP A, learnt from web) while ISP B
works, the chosen flows do not teach the cache (web keeps leaving through A), and when ISP B's access link
is down the port row's connections are still made: the exit path races them once their SYN is sent again.
Counted at the ISPs' routers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import TypeAdapter

from testbed.faults import prepare
from testbed.scenario.model import Fault
from testbed.te_runtime import connect_many, measure_split, site_exits
from testbed.wait import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/stage2-all.yaml", name="ldpolx")]
BULK_PORT = 8080  # in the port row 8000-8099 -> ISP B
LISTEN = ("import socket; s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
          f"s.bind(('::', {BULK_PORT})); s.listen(64)\nwhile True: s.accept()[0].close()")


@pytest.fixture(scope="module")
def bulk_server(lab):
    proc = lab.node("srv").popen([sys.executable, "-c", LISTEN], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    srv = lab.plan.address("srv")
    wait_until(lambda: connect_many(lab, "c1", [srv], BULK_PORT) == 1, 10, 0.2, what=f"srv listening on {BULK_PORT}")
    yield srv
    proc.terminate()
    proc.wait(5)


def test_the_port_row_wins_over_the_cache_and_does_not_teach_it(lab, bulk_server):
    srv, exits = bulk_server, site_exits(lab, "site")
    # web (port 80) follows the address row (srv through A); the exit path caches A for srv
    assert measure_split(lab, exits, "out", lambda: connect_many(lab, "h1", [srv] * 3, 80)) == {"ispa": 100.0, "ispb": 0.0}
    bulk = measure_split(lab, exits, "out", lambda: connect_many(lab, "h1", [srv] * 5, BULK_PORT))
    assert bulk == {"ispa": 0.0, "ispb": 100.0}, "the port row's source was rewritten to the cache's"
    web = measure_split(lab, exits, "out", lambda: connect_many(lab, "h1", [srv] * 3, 80))
    assert web == {"ispa": 100.0, "ispb": 0.0}, "the chosen flows taught the cache ISP B for srv"


def test_with_isp_b_down_the_port_row_connections_are_raced_and_made(lab, bulk_server):
    srv, exits = bulk_server, site_exits(lab, "site")
    action = prepare(TypeAdapter(Fault).validate_python({"kind": "link-down", "link": "ispb-rb", "at": 0}), lab)
    action.do()
    try:
        made = []
        split = measure_split(lab, exits, "out", lambda: made.append(connect_many(lab, "h1", [srv] * 4, BULK_PORT)))
        assert made == [4], "a port-row connection to srv failed with ISP B down"
        assert split["ispa"] > 0, split
    finally:
        action.revert()
