"""Every experiment and benchmark runs as the README shows it (``python experiments/x.py``), from any
directory: each answers ``--help`` with its usage, and every ``--help`` command the README shows works."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
SCRIPTS = sorted([*REPO.glob("experiments/*.py"), *REPO.glob("benchmarks/*.py")])
BIN = Path(sys.executable).parent


def readme_help_commands() -> list[str]:
    """Commands the README shows with ``--help``: code-block lines and inline code spans."""
    blocks = re.findall(r"```(?:\w+)?\n(.*?)```", README, re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    return [c.split("#")[0].strip() for c in lines + spans if "--help" in c.split("#")[0]]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_the_readme_shows_help_commands():
    cmds = readme_help_commands()
    assert any("experiments/" in c for c in cmds) and any("mhlab" in c for c in cmds), cmds


@pytest.mark.parametrize("command", readme_help_commands())
def test_readme_help_command_works_as_written(command):
    argv = shlex.split(command)
    argv = argv[1:] if argv[0] == "sudo" else argv  # --help needs no root
    res = run(argv, REPO)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in SCRIPTS])
def test_script_answers_help_from_anywhere(script, tmp_path):
    res = run([sys.executable, str(script), "--help"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout


def test_every_script_the_readme_names_exists():
    named = set(re.findall(r"\b((?:experiments|benchmarks)/[\w.-]+\.py)\b", README))
    assert named, "the README names no experiment"
    assert not [n for n in named if not (REPO / n).exists()]


def readme_invocations() -> dict[tuple[str, ...], list[tuple[str, list[str]]]]:
    """(script,) or ("mhlab", verb) -> [(command as the README shows it, its --options)], for every command
    of the README's code blocks and inline spans (a line with ``&&`` or ``|`` holds several; options after
    ``--`` belong to the command run inside a node)."""
    blocks = re.findall(r"```(?:\w+)?\n(.*?)```", README, re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    out: dict[tuple[str, ...], list[tuple[str, list[str]]]] = {}
    for text in [line for block in blocks for line in block.splitlines()] + spans:
        for part in re.split(r"&&|\||;", text.split(" #")[0]):
            try:
                argv = shlex.split(part.strip().removeprefix("$ "))
            except ValueError:
                continue
            while argv and (argv[0] in ("sudo", "python", "python3") or "=" in argv[0] or argv[0].endswith("/python")):
                argv = argv[1:]
            if argv and re.fullmatch(r"(experiments|benchmarks)/[\w.-]+\.py", argv[0]):
                key: tuple[str, ...] = (argv[0],)
            elif len(argv) > 1 and argv[0].endswith("mhlab") and not argv[1].startswith("-"):
                key = ("mhlab", argv[1])
            else:
                continue
            argv = argv[:argv.index("--")] if "--" in argv else argv
            out.setdefault(key, []).append((part.strip(), [a.split("=")[0] for a in argv if a.startswith("--")]))
    return out


INVOCATIONS = readme_invocations()


def test_the_readme_shows_commands_with_options():
    assert len(INVOCATIONS) > 20 and sum(bool(f) for uses in INVOCATIONS.values() for _, f in uses) > 25


@pytest.mark.parametrize("key", sorted(INVOCATIONS), ids=[" ".join(k) for k in sorted(INVOCATIONS)])
def test_readme_commands_use_only_options_their_help_lists(key):
    """A README command with an option the script or verb no longer has (renamed, misspelt) fails here."""
    argv = [sys.executable, key[0], "--help"] if len(key) == 1 else [str(BIN / "mhlab"), key[1], "--help"]
    res = run(argv, REPO)
    assert res.returncode == 0, res.stderr
    unknown = [(cmd, opt) for cmd, opts in INVOCATIONS[key] for opt in opts
               if opt != "--help" and not re.search(re.escape(opt) + r"(?![\w-])", res.stdout)]
    assert not unknown, unknown
