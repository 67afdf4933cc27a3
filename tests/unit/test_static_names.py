"""Every name the code uses is defined and every import is used (ruff's pyflakes rules, F).  A name
dropped from an import still imports cleanly and fails only when the line that uses it runs - in a lab,
minutes later, or never in the tests: this catches it at once."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ["testbed", "agents", "tests", "benchmarks", "experiments", "scripts", "course"]


def test_no_undefined_or_unused_names():
    ruff = Path(sys.executable).parent / "ruff"
    folders = [f for f in FOLDERS if (ROOT / f).is_dir()]
    done = subprocess.run([str(ruff), "check", "--no-cache", "--select", "F", "--output-format", "concise",
                           *folders], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
