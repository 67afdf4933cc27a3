"""A rendered FRR config with a line FRR cannot parse fails the deploy, naming the router, the file and
FRR's own words, and leaves nothing behind (FRR 8.4's dry run exits 0 on such a line: mhlab reads its
output as well)."""

import pytest

import testbed.lab as lab_module
from testbed.errors import LabError
from testbed.lab import Lab
from testbed.rundir import run_root

pytestmark = pytest.mark.lab


def test_an_unknown_frr_command_is_a_deploy_error_naming_router_file_and_line(monkeypatch):
    real = lab_module.render

    def render_with_a_typo(net, out, rundir_of=None):
        written = real(net, out, rundir_of)
        conf = out / "nodes" / "ra" / "bgpd.conf"
        conf.write_text(conf.read_text() + "router bgp 65100\n neighbour 2001:db8::1 remote-as 65010\n")
        return written
    monkeypatch.setattr(lab_module, "render", render_with_a_typo)
    with pytest.raises(LabError) as err:
        Lab.deploy("topologies/two-isp-site.yaml", name="frrbad")
    text = str(err.value)
    assert "ra/bgpd.conf" in text and "neighbour 2001:db8::1 remote-as 65010" in text, text
    assert "No such command on config line" in text, text
    assert not (run_root() / "frrbad").exists()
