"""Start-up: convcalc's commands against a minimal two-command Typer program that prints
a JSON line, as ratios of medians measured side by side (interleaved) in one run.

    python benchmarks/startup.py [--runs 21]

Both wall time and CPU time (user + system, of the child) are shown: on a shared machine
the wall time carries the other users' load, the CPU time much less of it.

Goals (issue 5): `layer … --json` at most 1.15× the minimal program; `net resnet50
--json` at most 1.3×.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINIMAL = """
import typer

app = typer.Typer(add_completion=False)


@app.command()
def one(name: str = "x") -> None:
    print('{"ok": true}')


@app.command()
def two() -> None:
    print("two")


app()
"""

COMMANDS = {
    "layer": ["-m", "convcalc", "layer", "conv", "--input", "3x224x224", "--out-channels",
              "64", "--kernel-size", "3", "--json"],
    "net resnet50": ["-m", "convcalc", "net", "resnet50", "--json"],
}  # fmt: skip


# Bytecode caches are written (an installed package has them), whatever this shell says.
ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def seconds(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, env=ENVIRONMENT)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"{args} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        minimal = Path(folder) / "minimal.py"
        minimal.write_text(MINIMAL)
        times: dict[str, list[tuple[float, float]]] = {"minimal typer": []}
        times |= {name: [] for name in COMMANDS}
        for args in [[str(minimal), "one"], *COMMANDS.values()]:
            seconds(args)  # a first run writes the bytecode caches
        for _ in range(runs):  # interleaved, so that machine noise falls on all alike
            times["minimal typer"].append(seconds([str(minimal), "one"]))
            for name, args in COMMANDS.items():
                times[name].append(seconds(args))
    medians = {
        name: [statistics.median(run[kind] for run in runs) for kind in (0, 1)]
        for name, runs in times.items()
    }
    wall, cpu = medians["minimal typer"]
    print(f"{'command':<16} {'wall s':>7} {'ratio':>6} {'cpu s':>7} {'ratio':>6}")
    for name, (w, c) in medians.items():
        print(f"{name:<16} {w:>7.3f} {w / wall:>6.2f} {c:>7.3f} {c / cpu:>6.2f}")


if __name__ == "__main__":
    main()
