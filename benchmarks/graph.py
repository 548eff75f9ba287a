"""Graphs against stacks: `convcalc net --json` on a generated 100,000-layer stack (the
model of benchmarks/scaling.py) and on a 100,000-node graph that reads earlier nodes
with `from` (every third node an `add` of two named nodes), side by side, each in a
fresh process, best of `--runs`.

    python benchmarks/graph.py [--nodes 100000] [--runs 3]

Goal (issue 11): the graph in at most 1.5 times the stack's time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling import model as stack


def graph(nodes: int) -> str:
    """conv a, conv b (from a), add [a, b], … : a chain of small diamonds."""
    layers: list[object] = []
    for index in range(nodes // 3):
        a, b = f"a{index}", f"b{index}"
        before = f"s{index - 1}" if index else "input"
        layers.append({"conv": {"name": a, "from": before, "out_channels": 8, "kernel_size": 3,
                                "padding": 1}})  # fmt: skip
        layers.append({"conv": {"name": b, "from": a, "out_channels": 8, "kernel_size": 1}})
        layers.append({"add": {"name": f"s{index}", "from": [a, b]}})
    return json.dumps({"input": [8, 64, 64], "layers": layers})


def timed(path: Path, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "convcalc", "net", str(path), "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        flat, dag = Path(folder) / "stack.json", Path(folder) / "graph.json"
        flat.write_text(stack(options.nodes, "json"))
        dag.write_text(graph(options.nodes))
        seconds = {
            name: timed(path, options.runs) for name, path in (("stack", flat), ("graph", dag))
        }
    print(f"{'model':>8} {'nodes':>8} {'seconds':>8}")
    for name, value in seconds.items():
        print(f"{name:>8} {options.nodes:>8} {value:>8.2f}")
    print(f"graph / stack: {seconds['graph'] / seconds['stack']:.2f} (goal: at most 1.5)")


if __name__ == "__main__":
    main()
