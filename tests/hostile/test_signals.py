"""Ctrl-C (SIGINT) at any point: starting up, reading a large model, analysing it,
writing the answer, or while a PyTorch module's code loops. convcalc ends as any Unix
tool ends on Ctrl-C: at once, killed by the signal (the shell shows status 130,
Python's subprocess -2), with nothing on standard error: no KeyboardInterrupt
traceback. A program started with Ctrl-C ignored (`nohup`, `&` in a script) keeps
ignoring it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.harness import TIME_BOUND

#: Rows enough that analysing them takes seconds, from a model file of three lines.
MANY_ROWS = "input: [1, 8]\nlayers:\n  - repeat: {times: 300000, layers: [relu]}\n"

#: An answer far larger than a pipe's buffer, quickly.
LARGE_ANSWER = "input: [1, 8]\nlayers:\n  - repeat: {times: 5000, layers: [relu]}\n"

#: A model file of a million lines, which takes seconds to read.
LONG_FILE = "input: [1, 8]\nlayers:\n" + "  - relu\n" * 1_000_000


def start(*args: str, **options: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "convcalc", *args], stderr=subprocess.PIPE, **options
    )


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIME_BOUND
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.001)


def status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as file:
        return dict(line.rstrip("\n").split(":\t", 1) for line in file if ":\t" in line)


def caught(pid: int) -> bool:
    """Whether the process has a handler for SIGINT (Python's, raising KeyboardInterrupt)."""
    return has(status(pid)["SigCgt"], signal.SIGINT)


def has(mask: str, signum: int) -> bool:
    return bool(int(mask, 16) >> (signum - 1) & 1)


def interrupted(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to the process; it must die of it, saying nothing."""
    process.send_signal(signal.SIGINT)
    assert process.wait(TIME_BOUND) == -signal.SIGINT
    assert process.stderr is not None
    assert process.stderr.read() == b""
    process.stderr.close()


def test_while_starting_up() -> None:
    # Python catches SIGINT from early in its start; convcalc's first line gives it back
    # its default action, before it imports the command line (Typer, Click, Rich).
    process = start("net", "resnet152", stdout=subprocess.DEVNULL)
    wait_until(lambda: caught(process.pid), "started Python")
    wait_until(lambda: not caught(process.pid), "ran convcalc's first line")
    interrupted(process)


def test_while_reading_a_large_model() -> None:
    process = start("net", "-", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert process.stdin is not None
    process.stdin.write(LONG_FILE.encode())
    process.stdin.close()  # all read; it is parsing now
    time.sleep(0.5)
    assert process.poll() is None
    interrupted(process)


def test_while_analysing(tmp_path: Path) -> None:
    (tmp_path / "many.yaml").write_text(MANY_ROWS)
    process = start("net", str(tmp_path / "many.yaml"), "--json", stdout=subprocess.DEVNULL)
    time.sleep(1)
    assert process.poll() is None
    interrupted(process)


def test_while_writing_to_a_reader_that_waits(tmp_path: Path) -> None:
    (tmp_path / "large.yaml").write_text(LARGE_ANSWER)
    process = start("net", str(tmp_path / "large.yaml"), "--json", stdout=subprocess.PIPE)

    def blocked_writing() -> bool:
        with open(f"/proc/{process.pid}/wchan") as file:
            return "pipe_write" in file.read()

    wait_until(blocked_writing, "blocked writing to its pipe")
    interrupted(process)
    assert process.stdout is not None
    process.stdout.close()


def test_ctrl_c_at_a_terminal_reaches_the_whole_group(tmp_path: Path) -> None:
    (tmp_path / "many.yaml").write_text(MANY_ROWS)
    process = start(
        "net", str(tmp_path / "many.yaml"), stdout=subprocess.DEVNULL, start_new_session=True
    )
    time.sleep(1)
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(TIME_BOUND) == -signal.SIGINT


def test_the_shell_sees_130(tmp_path: Path) -> None:
    (tmp_path / "many.yaml").write_text(MANY_ROWS)
    # `set -m`: a job of its own, as at a terminal (a script's `&` would ignore SIGINT).
    script = 'set -m; "$@" > /dev/null & sleep 1; kill -INT $!; wait $!; echo $?'
    done = subprocess.run(
        ["bash", "-c", script, "bash", sys.executable, "-m", "convcalc", "net", "many.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=TIME_BOUND,
    )
    assert done.stdout == "130\n"
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr


def test_ctrl_c_ignored_at_start_stays_ignored() -> None:
    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = start("net", "-", stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=ignore)
    assert process.stdin is not None and process.stdout is not None
    wait_until(lambda: has(status(process.pid)["SigIgn"], signal.SIGINT), "ignored SIGINT")
    time.sleep(0.3)  # well into the program
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(b"input: [1, 8]\nlayers: [relu]\n", timeout=TIME_BOUND)
    assert (process.returncode, err) == (0, b"")
    assert b"relu" in out


LOOPING = """
    import os
    from torch import nn

    class Net(nn.Module):
        def forward(self, x):
            with open("looping", "w") as file:
                file.write(str(os.getpid()))
            while True:
                pass
"""


def test_while_a_pytorch_module_loops(tmp_path: Path) -> None:
    """Its child process, where the module's code runs, ends with convcalc."""
    pytest.importorskip("torch")
    (tmp_path / "looping_net.py").write_text(textwrap.dedent(LOOPING))
    process = start(
        "net", "looping_net:Net", "--input", "3x8x8", stdout=subprocess.DEVNULL, cwd=tmp_path
    )
    marker = tmp_path / "looping"
    wait_until(lambda: marker.exists() and marker.read_text() != "", "looped")
    child = int(marker.read_text())
    interrupted(process)

    def child_gone() -> bool:
        try:
            return status(child)["State"].startswith("Z")  # dead, not yet reaped
        except FileNotFoundError:
            return True

    wait_until(child_gone, "ended the module's process")
