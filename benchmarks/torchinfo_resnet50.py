"""Side by side with torchinfo on ResNet-50: both as a user runs them, from a fresh
process to the answer, and the work alone once each tool is imported (convcalc: load,
analyze, JSON; torchinfo: build the modules, summary with a forward pass); medians of
interleaved runs; and both parameter counts.

    pip install torch==2.13.0 torchinfo     # for this benchmark only
    python benchmarks/torchinfo_resnet50.py [--runs 7]

torchinfo needs the network as PyTorch modules and a forward pass. torchvision has no
CPU build on these machines, so ResNet-50 is written out below as torchvision defines
it (v1.5: the stride on the 3×3 convolution), independently of convcalc's model file.
Goal (issue 5): convcalc at least 10× faster, with the same parameter count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TORCHINFO = """
import torch
from torch import nn
from torchinfo import summary


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        width, out = planes, planes * 4
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


def resnet50():
    layers, inplanes = [], 64
    for planes, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for index in range(blocks):
            layers.append(Bottleneck(inplanes, planes, stride if index == 0 else 1))
            inplanes = planes * 4
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1), *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2048, 1000),
    )


def work():
    return summary(resnet50(), input_size=(1, 3, 224, 224), verbose=0).total_params
"""

# The work alone, once the tools are imported: the median of repetitions in one process.
CONVCALC = """
from convcalc.analysis.analyze import analyze
from convcalc.opening import open_model
from convcalc.render.data import to_json


def work():
    return to_json(analyze(open_model("resnet50")))
"""
REPEAT = """
import json, statistics, time
times = []
for _ in range(REPEATS):
    start = time.perf_counter()
    work()
    times.append(time.perf_counter() - start)
print(json.dumps(statistics.median(times)))
"""


def run(args: list[str]) -> tuple[float, str]:
    # Bytecode caches are written (an installed package has them), whatever the shell says.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, *args], check=True, capture_output=True, text=True, env=env
    ).stdout
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    # Whole runs, as a user starts them, and the work alone in a warm process.
    processes = {
        "convcalc": ["-m", "convcalc", "net", "resnet50", "--json"],
        "torchinfo": ["-c", TORCHINFO + "\nprint(work())"],
    }
    works = {
        "convcalc": ["-c", CONVCALC + REPEAT.replace("REPEATS", "20")],
        "torchinfo": ["-c", TORCHINFO + REPEAT.replace("REPEATS", "5")],
    }
    for args in processes.values():
        run(args)  # a first run writes the bytecode caches
    process: dict[str, list[float]] = {name: [] for name in processes}
    work: dict[str, list[float]] = {name: [] for name in works}
    outputs: dict[str, str] = {}
    for _ in range(runs):  # interleaved, so that machine noise falls on both alike
        for name in processes:
            seconds, outputs[name] = run(processes[name])
            process[name].append(seconds)
            work[name].append(float(run(works[name])[1]))
    import json

    params = {
        "convcalc": json.loads(outputs["convcalc"])["totals"]["params"],
        "torchinfo": int(outputs["torchinfo"]),
    }
    whole = {name: statistics.median(values) for name, values in process.items()}
    alone = {name: statistics.median(values) for name, values in work.items()}
    print(f"{'tool':<10} {'process s':>10} {'work s':>8} {'params':>12}")
    for name in processes:
        print(f"{name:<10} {whole[name]:>10.3f} {alone[name]:>8.4f} {params[name]:>12,}")
    print(
        f"convcalc is {whole['torchinfo'] / whole['convcalc']:.1f}× faster as a process, "
        f"{alone['torchinfo'] / alone['convcalc']:.1f}× at the work alone"
    )
    same = params["convcalc"] == params["torchinfo"]
    print("same parameter count" if same else "PARAMETER COUNTS DIFFER")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
