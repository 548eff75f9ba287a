"""Run convcalc as a hostile or careless user would, in a child process under a time
bound and an address-space limit, and check that it ends as promised: exit status 2,
nothing on standard output, exactly one line on standard error that begins `error:`,
no traceback and no control character.

Each file of this folder is one category of the catalogue (onnx, files, streams,
signals, names, numbers, user modules), so a reader sees what is covered.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Seconds a child may take. Each takes well under one; this only tells slow from hung.
TIME_BOUND = 20

#: Bytes of address space a child may map: enough for Python, Rich and the ONNX package,
#: far too little for a file or a list read without bound. Children that import torch
#: (user modules) map more and pass their own limit.
MEMORY_BOUND = 1 << 30

#: C0 and C1 control characters and DEL, but not the newline that ends a line.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def run_convcalc(
    args: Sequence[str],
    *,
    stdin: bytes | str | int | None = b"",
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = TIME_BOUND,
    memory: int | None = MEMORY_BOUND,
) -> Result:
    """`python -m convcalc ARGS…` in a child process under the bounds; standard input
    is the given bytes, or a descriptor to read from (None: /dev/null)."""
    data = stdin.encode() if isinstance(stdin, str) else stdin

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    done = subprocess.run(
        [sys.executable, "-m", "convcalc", *args],
        input=data if isinstance(data, bytes) else None,
        stdin=subprocess.DEVNULL if data is None else data if isinstance(data, int) else None,
        capture_output=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        preexec_fn=limit,
    )
    return Result(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def assert_clean_error(result: Result, where: str = "", says: str = "") -> None:
    """Exit 2, empty standard output, one `error:` line that begins with `where` after
    `error: ` and contains `says`; no traceback, no control character."""
    assert (result.code, result.stdout) == (2, ""), result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.startswith(f"error: {where}"), result.stderr
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not CONTROL.search(result.stderr[:-1]), repr(result.stderr)
