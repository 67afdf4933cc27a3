"""An I2P scenario file under the same runner as the IPv6 ones: `mhlab run scenarios/i2p-router-crash.yaml`.

The lab (``topologies/i2p-primary.yaml``: 2 hosting routers that carry no transit tunnels, 2 plain routers,
balancer with the primary policy) deploys in ~15-30 s; the scenario runs 100 s: a SAM client's requests are
answered, the hosting router that carries them crashes (i2pd killed, chosen by where the echo backend saw the
requests), and the client is answered again through the survivor.  About 2-2.5 minutes in all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from testbed.scenario.run import run_scenario

pytestmark = [pytest.mark.lab, pytest.mark.skipif(shutil.which("i2pd") is None, reason="i2pd is not installed")]
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "i2p-router-crash.yaml"


def test_the_client_is_answered_again_after_the_carrier_crashes(tmp_path):
    outcome = run_scenario(SCENARIO, tmp_path, lab_name="sci2p")
    result = outcome.result
    verdicts = {v.expectation: (v.passed, v.measured) for v in result.verdicts}
    print(verdicts)
    assert result.passed, verdicts
    (crash,) = result.faults
    assert crash.detail.split()[0] in {"r1", "r2"}  # the router that actually died
    req = result.flows[0]
    assert req.kind == "sam" and req.attempts_total > 100 and req.failovers[0].failover_ms is not None
    made = json.loads((tmp_path / "report.json").read_text())["provenance"]
    assert made["lab"] == "sci2p" and made["lab_kind"] == "i2p" and len(made["scenario_sha256"]) == 64
