"""Fixtures for FRR's own dry run of rendered configs.

The dry run (``bgpd -C -u frr``) runs as user frr, and pytest's own folders are root's alone: an unreadable
config gives "can't open configuration file" and exit 0, which would pass any config.  ``frr_readable`` is a
folder frr can read; ``frr_dry_run(conf)`` runs the check and returns its problems (empty: accepted), and
fails the test if the daemon could not read the file at all.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from testbed.frr import check_argv, check_problems


@pytest.fixture
def frr_readable():
    path = Path(tempfile.mkdtemp(prefix="mhlab-frrcheck-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _dry_run(conf: Path, peers: int = 8) -> list[str]:
    for p in (conf.parent.parent, conf.parent.parent.parent):  # <frr_readable>/nodes/<router>/<daemon>.conf
        p.chmod(0o755)
    conf.parent.chmod(0o777)  # the daemon opens its log file there
    conf.chmod(0o644)
    daemon = conf.stem
    res = subprocess.run(check_argv(daemon, conf.parent, peers=peers), capture_output=True, text=True, timeout=60)
    out = res.stdout + res.stderr
    assert "can't open configuration file" not in out, out
    return check_problems(res.returncode, out)


@pytest.fixture
def frr_dry_run():
    return _dry_run
