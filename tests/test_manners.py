"""Command-line manners: --version, help with an example per command, shell completion,
NO_COLOR and FORCE_COLOR, and errors on standard error only. These run the installed
program in a child process, where the environment and the terminal are real."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer.main

import convcalc
from convcalc.cli import app
from tests.helpers import ROOT

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
#: A layer whose output drops a pixel, so the table carries a (yellow) warning.
WARNED = ["layer", "conv", "--input", "3x10x10", "--out-channels", "4", "--kernel-size", "3",
          "--stride", "2"]  # fmt: skip
COLOUR = re.compile(r"\x1b\[(3\d|9\d|38;)[\d;]*m")  # a foreground colour, not bold


def run(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "convcalc", *args],
        capture_output=True,
        text=True,
        env={**env, **environment},
        timeout=60,
    )


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout == f"convcalc {convcalc.__version__}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example_and_is_in_the_readme(command: str) -> None:
    out = run(command, "--help")
    assert out.returncode == 0
    assert re.search(rf"Examples?: convcalc {command}\b", out.stdout), out.stdout
    assert f"convcalc {command}" in (ROOT / "README.md").read_text()


def test_the_top_level_help_lists_every_command_and_completion() -> None:
    out = run("--help").stdout
    for command in COMMANDS:
        assert re.search(rf"^  {command}\s", out, re.MULTILINE), command
    assert "--install-completion" in out
    assert "--show-completion" in out


def test_completion_completes_commands_and_options() -> None:
    words = {"_CONVCALC_COMPLETE": "complete_bash", "COMP_CWORD": "1"}
    assert run(**words, COMP_WORDS="convcalc ne").stdout.split() == ["net"]
    words["COMP_CWORD"] = "2"
    assert "--json" in run(**words, COMP_WORDS="convcalc net --j").stdout.split()


def test_a_pipe_gets_no_escape_codes() -> None:
    out = run(*WARNED)
    assert "dropped-input" in out.stdout
    assert "\x1b" not in out.stdout


def test_force_color_colours_a_pipe() -> None:
    out = run(*WARNED, FORCE_COLOR="1")
    assert COLOUR.search(out.stdout), repr(out.stdout[:200])


def test_no_color_wins_over_force_color() -> None:
    """no-color.org: no colours; bold and italics may stay."""
    out = run(*WARNED, FORCE_COLOR="1", NO_COLOR="1")
    assert "dropped-input" in out.stdout
    assert not COLOUR.search(out.stdout), repr(out.stdout[:200])


@pytest.mark.parametrize(
    "args",
    [
        ["net", "no-such-model"],
        ["layer", "conv", "--input", "3x8x8"],
        ["net", "resnet18", "--no-such-option"],
        ["no-such-command"],
    ],
    ids=["bad-model", "missing-parameter", "unknown-option", "unknown-command"],
)
def test_errors_go_to_standard_error_only(args: list[str]) -> None:
    out = run(*args, FORCE_COLOR="1")
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith("error: ")
    assert out.stderr.count("\n") == 1
    assert "\x1b" not in out.stderr
