"""Start-up: convcalc's commands against a minimal two-command Typer program that prints
a JSON line, as ratios of medians measured side by side (interleaved) in one run.

    python benchmarks/startup.py [--runs 21]

Goals (issue 5): `layer … --json` at most 1.15× the minimal program; `net resnet50
--json` at most 1.3×.
"""

from __future__ import annotations

import argparse
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


def seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        minimal = Path(folder) / "minimal.py"
        minimal.write_text(MINIMAL)
        times: dict[str, list[float]] = {"minimal typer": []} | {name: [] for name in COMMANDS}
        for _ in range(runs):  # interleaved, so that machine noise falls on all alike
            times["minimal typer"].append(seconds([str(minimal), "one"]))
            for name, args in COMMANDS.items():
                times[name].append(seconds(args))
    base = statistics.median(times["minimal typer"])
    print(f"{'command':<16} {'median s':>9} {'ratio':>6}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<16} {median:>9.3f} {median / base:>6.2f}")


if __name__ == "__main__":
    main()
