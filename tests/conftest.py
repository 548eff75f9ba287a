"""Fixtures: run the CLI in-process, and compare against snapshot files (regenerated
with `pytest --update-snapshots`)."""

from __future__ import annotations

import gc
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-snapshots", action="store_true", help="rewrite tests/snapshots from the code"
    )


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run `convcalc ARGS…` in this process; standard input may be given as text."""
    from convcalc.cli import main

    def run(*args: str, stdin: str | bytes = b"") -> Result:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        monkeypatch.setattr(sys, "argv", ["convcalc", *args])
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        code = 0
        limit, collecting = sys.getrecursionlimit(), gc.isenabled()
        try:
            main()
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        finally:
            # The console script raises the recursion limit and turns off the cycle
            # collector for its one run; the tests that follow get them back.
            sys.setrecursionlimit(limit)
            if collecting:
                gc.enable()
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def snapshot(request: pytest.FixtureRequest):
    """Compare text with tests/snapshots/NAME, or rewrite it with --update-snapshots."""

    def check(name: str, text: str) -> None:
        path = SNAPSHOTS / name
        if request.config.getoption("--update-snapshots"):
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
        assert path.exists(), f"no snapshot {name}: run pytest --update-snapshots"
        assert text == path.read_text()

    return check
