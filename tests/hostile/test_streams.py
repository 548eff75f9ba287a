"""Standard streams: a reader that goes away (`| head`), standard input or output closed
at start, a full disk (/dev/full), and an output encoding without × and … (ASCII).

A closed pipe ends convcalc as it ends any Unix tool: killed by SIGPIPE, which the shell
shows as status 141 and Python's subprocess as -13, with nothing on standard error. The
rest ends in correct output or in one `error:` line with exit status 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.hostile.harness import CONTROL, TIME_BOUND, Result, assert_clean_error, run_convcalc

CONV = ["layer", "conv", "--input", "3x8x8", "--out-channels", "4", "--kernel-size", "3"]

#: Every command and output form.
EVERY_COMMAND = [
    ["net", "resnet152"],
    ["net", "resnet152", "--json"],
    ["net", "resnet152", "--format", "csv"],
    ["net", "resnet152", "--format", "markdown"],
    ["net", "resnet152", "--explain"],
    ["net", "resnet152", "--json", "--explain"],
    ["net", "resnet152", "--chart"],
    CONV,
    [*CONV, "--json"],
    [*CONV, "--explain"],
    ["models"],
    ["models", "--json"],
    ["solve", "--input", "224", "--output", "112"],
    ["solve", "--input", "224", "--output", "112", "--json"],
    ["solve", "--field", "100"],
    ["sizes", "resnet18", "--range", "200..230"],
    ["sizes", "resnet18", "--min", "--json"],
    ["schema"],
    ["export", "resnet18"],
    ["--help"],
    ["net", "--help"],
    ["--version"],
]

#: A model whose every output form is far larger than a pipe's buffer (64 KiB).
LARGE = """\
input: [3, 32, 32]
layers:
  - repeat:
      times: 1000
      layers:
        - conv: {out_channels: 3, kernel_size: 3, padding: 1}
        - relu
"""


def ids(cases: Sequence[Sequence[str]]) -> list[str]:
    return [" ".join(case) for case in cases]


def convcalc(*args: str) -> list[str]:
    return [sys.executable, "-m", "convcalc", *args]


def closing(*descriptors: int) -> Callable[[], None]:
    """For preexec_fn: start the program with these descriptors closed."""

    def close() -> None:
        for descriptor in descriptors:
            os.close(descriptor)

    return close


def finished(process: subprocess.Popen[bytes]) -> Result:
    out, err = process.communicate(timeout=TIME_BOUND)
    return Result(process.returncode, out.decode(), err.decode())


# --- A reader that goes away


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=ids(EVERY_COMMAND))
def test_a_reader_gone_before_the_first_write(args: list[str]) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # the first write finds no reader: EPIPE, and SIGPIPE
    try:
        done = subprocess.run(
            convcalc(*args), stdout=writer, stderr=subprocess.PIPE, timeout=TIME_BOUND
        )
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (-signal.SIGPIPE, b"")


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("streams") / "large.yaml"
    path.write_text(LARGE)
    return str(path)


FORMS = [[], ["--json"], ["--format", "csv"], ["--format", "markdown"], ["--explain"], ["--chart"]]


@pytest.mark.parametrize("form", FORMS, ids=ids(FORMS))
def test_a_reader_gone_after_the_first_line(large: str, form: list[str]) -> None:
    process = subprocess.Popen(
        convcalc("net", large, *form), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline(4096)  # a line, or the first 4 KiB of JSON
    process.stdout.close()
    assert process.wait(TIME_BOUND) == -signal.SIGPIPE
    assert process.stderr.read() == b""
    process.stderr.close()


def test_the_shell_sees_141(large: str) -> None:
    script = '"$@" | head -1 > /dev/null; echo "${PIPESTATUS[0]}"'
    done = subprocess.run(
        ["bash", "-c", script, "bash", *convcalc("net", large)],
        capture_output=True,
        text=True,
        timeout=TIME_BOUND,
    )
    assert (done.stdout, done.stderr) == ("141\n", "")


# --- Closed at start


def test_standard_input_closed() -> None:
    done = subprocess.run(
        convcalc("net", "-"), capture_output=True, text=True, preexec_fn=closing(0)
    )
    assert_clean_error(
        Result(done.returncode, done.stdout, done.stderr),
        "<stdin>: ",
        "cannot read: standard input is closed",
    )


@pytest.mark.parametrize(
    "args", [["net", "resnet18"], ["net", "resnet18", "--json"], ["--version"]], ids=ids
)
def test_standard_output_closed(args: list[str]) -> None:
    done = subprocess.run(convcalc(*args), capture_output=True, text=True, preexec_fn=closing(1))
    assert_clean_error(
        Result(done.returncode, done.stdout, done.stderr),
        "cannot write standard output: it is closed",
    )


def test_standard_output_closed_is_no_matter_when_nothing_goes_there(tmp_path: Path) -> None:
    done = subprocess.run(
        convcalc("export", "resnet18", "-o", "model.yaml"),
        capture_output=True,
        text=True,
        preexec_fn=closing(1),
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "model.yaml").read_text().count("conv:") > 0


def test_standard_output_and_error_closed() -> None:
    # Nowhere to say anything: the status alone tells.
    done = subprocess.run(convcalc("net", "no-such-model"), preexec_fn=closing(1, 2))
    assert done.returncode == 2


# --- A full disk


@pytest.mark.parametrize(
    "args",
    [["net", "resnet18"], ["net", "resnet18", "--json"], ["schema"], ["--help"], ["--version"]],
    ids=ids,
)
def test_a_full_disk(args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            convcalc(*args), stdout=full, stderr=subprocess.PIPE, text=True, timeout=TIME_BOUND
        )
    assert_clean_error(
        Result(done.returncode, "", done.stderr),
        "cannot write standard output: No space left on device",
    )


def test_a_full_disk_for_errors_too() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(convcalc("net", "no-such-model"), stderr=full, timeout=TIME_BOUND)
    assert done.returncode == 2


# --- An output encoding without × and …

ASCII = {"PYTHONIOENCODING": "ascii"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["net", "resnet18"], "resnet18 - input 3x224x224 -> output 1000"),
        (["net", "resnet18", "--format", "markdown"], "| 64x112x112 |"),
        (["net", "resnet18", "--format", "csv"], "64x112x112"),
        (["net", "resnet18", "--json"], '"output_shape": [1000]'),
        (["net", "resnet18", "--chart"], "#"),
        ([*CONV, "--explain"], "field 3 = 1 + (3 - 1)*1"),
        (["sizes", "alexnet", "--range", "60..64"], "3x60x60"),
        (["solve", "--input", "224", "--output", "112"], "224 -> 112"),
        (["models"], "3x224x224"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_ascii_output_spells_what_it_cannot_encode(args: list[str], expected: str) -> None:
    result = run_convcalc(args, env=ASCII)
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout.isascii()
    assert expected in result.stdout


def test_an_error_line_in_ascii() -> None:
    # convcalc's own characters spelled in ASCII; the user's escaped.
    result = run_convcalc([*CONV, "--stride", "99999999999999999999"], env=ASCII)
    assert_clean_error(result, "--stride: ", "at most 2^63 - 1")
    result = run_convcalc(["net", "modèle.yaml"], env=ASCII)
    assert_clean_error(result, "mod\\xe8le.yaml: ", "no such file")


@pytest.mark.parametrize(
    "env",
    [
        {"LC_ALL": "C", "LANG": "C"},  # Python reads it as UTF-8 (PEP 538, PEP 540)
        {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"},
    ],
    ids=["C", "C-not-coerced"],
)
def test_the_c_locale(env: dict[str, str]) -> None:
    result = run_convcalc(["net", "resnet18", "--format", "markdown"], env=env)
    assert (result.code, result.stderr) == (0, "")
    assert "64" in result.stdout and "112" in result.stdout
    assert not CONTROL.search(result.stdout.replace("\n", ""))
