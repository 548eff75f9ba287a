"""Scaling: `convcalc net --json` on generated flat models of growing length, in time
and peak memory, each in a fresh process.

    python benchmarks/scaling.py [--sizes 1000 10000 100000] [--format yaml|json]

Goal (issue 5): 100,000 layers in at most 2 s, and at most 12× the time of 10,000.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PATTERN = [
    {"conv": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
    "batch_norm",
    "relu",
]


def model(layers: int, form: str) -> str:
    document = {"input": [8, 64, 64], "layers": [PATTERN[i % 3] for i in range(layers)]}
    if form == "json":
        return json.dumps(document)
    lines = ["input: [8, 64, 64]", "layers:"]
    lines += [f"  - {json.dumps(layer)}" for layer in document["layers"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--format", choices=["yaml", "json"], default="yaml")
    options = parser.parse_args()
    print(f"{'layers':>8} {'seconds':>8} {'peak MB':>8} {'× previous':>10}")
    previous = None
    with tempfile.TemporaryDirectory() as folder:
        for size in options.sizes:
            path = Path(folder) / f"flat_{size}.{options.format}"
            path.write_text(model(size, options.format))
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "convcalc", "net", str(path), "--json"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            elapsed = time.perf_counter() - start
            peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
            growth = f"{elapsed / previous:.1f}" if previous else ""
            print(f"{size:>8} {elapsed:>8.2f} {peak:>8.0f} {growth:>10}")
            previous = elapsed


if __name__ == "__main__":
    main()
