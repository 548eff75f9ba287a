"""PyTorch import (convcalc.imports.pytorch): modules traced with torch.fx.

Random networks (chains, residual blocks, concatenations, nested) are built twice from
the same drawing: as a torch.nn.Module, whose forward mixes modules, functions and tensor
methods, and as the model file a person would write for it. The traced model must be that
model file (names aside), give the same analysis, and agree with PyTorch: its output
shape with the forward pass, its parameters with `sum(p.numel())`. Then fixed networks
(a ResNet BasicBlock with `out += identity`, LeNet), each kind of node convcalc refuses,
and the command line.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from torch import nn

from convcalc import from_dict, from_torch
from convcalc.analysis.analyze import Analysis, analyze
from convcalc.errors import ConvcalcError
from convcalc.imports.pytorch import torch_document
from convcalc.opening import open_model
from tests.helpers import analyze_yaml

torch.set_num_threads(1)


def without_names(value: Any) -> Any:
    """A model document's layers without the `name`s the importer gives rows."""
    if isinstance(value, dict):
        return {key: without_names(item) for key, item in value.items() if key != "name"}
    if isinstance(value, list):
        return [without_names(item) for item in value]
    return value


MERGES = ("add", "concat", "mul")


def rows(analysis: Analysis) -> list[tuple[Any, ...]]:
    """Every row's numbers, without its names, place or what it reads (an import is a
    flat graph; the model file nests blocks, whose merges report the block's input)."""
    return [
        row._replace(
            path="",
            name=None,
            qualified_name="",
            inputs=(),
            input_shape=() if row.kind in MERGES else row.input_shape,
            input_field=None if row.kind in MERGES else row.input_field,
        )
        for row in analysis.rows
    ]


def agree(net: nn.Module, shape: tuple[int, ...], layers: list[Any]) -> Analysis:
    """Check the traced `net` against the model file `layers` and against PyTorch."""
    result = analyze(from_torch(net, shape))
    expected = analyze(from_dict({"input": list(shape), "layers": layers}))
    assert rows(result) == rows(expected)
    assert result.totals == expected.totals
    assert result.receptive_field == expected.receptive_field
    # The same warnings at the same places (the rows' names differ: see `rows`).
    assert [replace(w, name="") for w in result.warnings] == [
        replace(w, name="") for w in expected.warnings
    ]
    assert result.totals.params == sum(p.numel() for p in net.parameters())
    with torch.no_grad():
        output = net.eval()(torch.zeros(2, *shape))
    assert result.output_shape == tuple(output.shape[1:])
    return result


# ---------------------------------------------------------------------------------------
# Random networks: the same drawing as a module and as a model file


class Net(nn.Module):
    """Runs `steps`: ("module", key) calls a submodule; ("call", f) calls f(x), a function
    of the input written with torch functions or tensor methods; ("add", a, b, combine)
    and ("cat", branches, dim) are blocks of branches (lists of steps)."""

    def __init__(self, steps: list[Any], modules: dict[str, nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(modules)
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(self.steps, x)

    def run(self, steps: list[Any], x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            if step[0] == "module":
                x = self.layers[step[1]](x)
            elif step[0] == "call":
                x = step[1](x)
            elif step[0] == "add":
                x = step[3](self.run(step[1], x), self.run(step[2], x))
            else:
                x = torch.cat([self.run(branch, x) for branch in step[1]], step[2])
        return x


def plus(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + b


def plus_in_place(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a += b
    return a


COMBINE: list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = [
    plus,
    plus_in_place,
    torch.add,
    lambda a, b: a.add(b),
]


class Drawing:
    """A network being drawn: its modules, and its input running through PyTorch (so
    channels and sizes come from PyTorch at every step)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.modules: dict[str, nn.Module] = {}

    def module(self, module: nn.Module) -> tuple[str, str]:
        key = f"m{len(self.modules)}"
        self.modules[key] = module.eval()
        return ("module", key)

    def one_of(self, *forms: Any) -> Any:
        return self.draw(st.sampled_from(forms))


def entry(kind: str, **params: Any) -> dict[str, Any]:
    return {kind: params}


def conv_entry(out: int, kernel: int, stride: int = 1, padding: Any = 0, **rest: Any) -> Any:
    """A conv entry as a person writes it: only what differs from the defaults."""
    params = {"out_channels": out, "kernel_size": kernel}
    params |= {"stride": stride} if stride != 1 else {}
    params |= {"padding": padding} if padding != 0 else {}
    return entry("conv", **params, **{k: v for k, v in rest.items() if v not in (1, True)})


def run(steps: list[Any], modules: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return Net(steps, modules).eval().run(steps, x)


def pointwise(d: Drawing, x: torch.Tensor) -> tuple[Any, list[Any]]:
    """A layer that keeps the shape: an activation, a normalisation, a dropout, a
    softmax, as a module or a function or a method."""
    channels, n = x.shape[1], x.dim() - 2
    draw = d.draw
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return d.module(
            nn.BatchNorm1d(channels) if n == 0 else getattr(nn, f"BatchNorm{n}d")(channels)
        ), [entry("batch_norm")]
    if choice == 1:
        groups = draw(st.sampled_from([g for g in range(1, channels + 1) if channels % g == 0]))
        return d.module(nn.GroupNorm(groups, channels)), [entry("group_norm", num_groups=groups)]
    if choice == 2:
        p = draw(st.sampled_from([0.1, 0.5]))
        params = {"p": p} if p != 0.5 else {}
        step = d.one_of(
            d.module(nn.Dropout(p)),
            ("call", lambda x: F.dropout(x, p, training=False)),
            *([d.module(getattr(nn, f"Dropout{n}d")(p))] if n else []),
        )
        return step, [entry("dropout", **params)]
    if choice == 3:
        rank = n + 2
        step = d.one_of(
            d.module(nn.Softmax(dim=1)),
            ("call", lambda x: F.softmax(x, dim=1)),
            ("call", lambda x: x.softmax(1 - rank)),
            ("call", lambda x: torch.softmax(x, 1)),
        )
        return step, [entry("softmax")]
    activations: list[tuple[Any, Any]] = [
        (d.module(nn.ReLU()), entry("relu")),
        (d.module(nn.ReLU(inplace=True)), entry("relu", inplace=True)),
        (("call", F.relu), entry("relu")),
        (("call", torch.relu), entry("relu")),
        (("call", lambda x: x.relu()), entry("relu")),
        (d.module(nn.ReLU6()), entry("relu6")),
        (("call", F.relu6), entry("relu6")),
        (d.module(nn.LeakyReLU(0.2)), entry("leaky_relu", negative_slope=0.2)),
        (("call", lambda x: F.leaky_relu(x, 0.2)), entry("leaky_relu", negative_slope=0.2)),
        (d.module(nn.GELU()), entry("gelu")),
        (("call", lambda x: F.gelu(x, approximate="tanh")), entry("gelu", approximate="tanh")),
        (d.module(nn.SiLU()), entry("silu")),
        (("call", F.silu), entry("silu")),
        (d.module(nn.Sigmoid()), entry("sigmoid")),
        (("call", torch.sigmoid), entry("sigmoid")),
        (("call", lambda x: x.sigmoid()), entry("sigmoid")),
        (d.module(nn.Tanh()), entry("tanh")),
        (("call", lambda x: x.tanh()), entry("tanh")),
        (d.module(nn.Hardswish()), entry("hardswish")),
        (("call", F.hardswish), entry("hardswish")),
        (d.module(nn.Identity()), entry("identity")),
    ]
    step, written = draw(st.sampled_from(activations))
    return step, [written]


def keeping(d: Drawing, x: torch.Tensor) -> tuple[Any, list[Any]]:
    """A layer that keeps the spatial sizes (it may change the channels or features)."""
    channels, n = x.shape[1], x.dim() - 2
    draw = d.draw
    choice = draw(st.integers(0, 3))
    if n == 0 and choice < 2:
        out = draw(st.integers(1, 8))
        bias = draw(st.booleans())
        params = {"out_features": out} | ({} if bias else {"bias": False})
        return d.module(nn.Linear(channels, out, bias=bias)), [entry("linear", **params)]
    if n and choice == 0:
        out = draw(st.integers(1, 8))
        kernel, dilation = draw(st.sampled_from([(1, 1), (3, 1), (3, 2)]))
        groups = channels if out % channels == 0 and draw(st.booleans()) else 1
        padding = "same" if draw(st.booleans()) else dilation * (kernel // 2)
        module = getattr(nn, f"Conv{n}d")(
            channels, out, kernel, padding=padding, dilation=dilation, groups=groups
        )
        written = conv_entry(out, kernel, padding=padding, dilation=dilation, groups=groups)
        return d.module(module), [written]
    if n and choice == 1:
        # PyTorch's 3-D average pool wants the unpadded input to hold a kernel.
        small = n == 3 and min(x.shape[2:]) < 3
        kind = "max_pool" if small else d.one_of("max_pool", "avg_pool")
        cls = getattr(nn, f"{'MaxPool' if kind == 'max_pool' else 'AvgPool'}{n}d")
        function = getattr(F, f"{kind}{n}d")
        step = d.one_of(d.module(cls(3, 1, 1)), ("call", lambda x: function(x, 3, 1, 1)))
        return step, [entry(kind, kernel_size=3, stride=1, padding=1)]
    return pointwise(d, x)


def changing(d: Drawing, x: torch.Tensor) -> tuple[Any, list[Any]]:
    """A layer that may change the sizes, or flatten."""
    channels, n, sizes = x.shape[1], x.dim() - 2, tuple(x.shape[2:])
    draw = d.draw
    if n == 0:
        return keeping(d, x)
    choice = draw(st.integers(0, 6))
    flat = math.prod(x.shape[1:])
    if choice == 0:
        stride = draw(st.integers(1, 2))
        kernel = min(draw(st.integers(1, 3)), min(sizes) + 2)
        padding = draw(st.integers(0, 1)) if min(sizes) + 2 >= kernel else 1
        padding = padding if min(sizes) + 2 * padding >= kernel else 1
        out = draw(st.integers(1, 8))
        module = getattr(nn, f"Conv{n}d")(channels, out, kernel, stride, padding, bias=False)
        return d.module(module), [conv_entry(out, kernel, stride, padding, bias=False)]
    if choice == 1 and max(sizes) <= 8:
        stride = draw(st.integers(1, 2))
        extra = draw(st.integers(0, stride - 1))
        out = draw(st.integers(1, 4))
        module = getattr(nn, f"ConvTranspose{n}d")(channels, out, 2, stride, output_padding=extra)
        params = {"out_channels": out, "kernel_size": 2}
        params |= ({"stride": stride} if stride > 1 else {}) | (
            {"output_padding": extra} if extra else {}
        )
        return d.module(module), [entry("conv_transpose", **params)]
    if choice == 2 and min(sizes) >= 2:
        kind = d.one_of("max_pool", "avg_pool")
        cls = getattr(nn, f"{'MaxPool' if kind == 'max_pool' else 'AvgPool'}{n}d")
        function = getattr(F, f"{kind}{n}d")
        # A module keeps stride = kernel_size when it is not given; a function call does not.
        return d.one_of(
            (d.module(cls(2)), [entry(kind, kernel_size=2, stride=2)]),
            (("call", lambda x: function(x, 2)), [entry(kind, kernel_size=2)]),
        )
    if choice == 3:
        size = draw(st.integers(1, 2))
        kind = d.one_of("avg", "max")
        cls = getattr(nn, f"Adaptive{kind.title()}Pool{n}d")
        function = getattr(F, f"adaptive_{kind}_pool{n}d")
        step = d.one_of(d.module(cls(size)), ("call", lambda x: function(x, size)))
        return step, [entry(f"adaptive_{kind}_pool", output_size=size)]
    if choice == 4 and max(sizes) <= 8:
        return d.one_of(
            (d.module(nn.Upsample(scale_factor=2)), [entry("upsample", scale_factor=2.0)]),
            (
                ("call", lambda x: F.interpolate(x, scale_factor=2)),
                [entry("upsample", scale_factor=2)],
            ),
        )
    if choice == 5:
        axes = tuple(range(2, n + 2))
        keepdim = draw(st.booleans())
        step = d.one_of(
            ("call", lambda x: x.mean(axes, keepdim=keepdim)),
            ("call", lambda x: torch.mean(x, list(axes), keepdim)),
        )
        pooled = [entry("adaptive_avg_pool", output_size=1)]
        return step, pooled if keepdim else [*pooled, entry("flatten")]
    if choice == 6:
        step = d.one_of(
            d.module(nn.Flatten()),
            ("call", lambda x: torch.flatten(x, 1)),
            ("call", lambda x: x.flatten(1)),
            ("call", lambda x: x.view(x.size(0), -1)),
            ("call", lambda x: x.reshape(x.shape[0], -1)),
            ("call", lambda x: x.view(-1, flat)),
        )
        return step, [entry("flatten")]
    return keeping(d, x)


def chain(
    d: Drawing, x: torch.Tensor, length: int, depth: int, keep: bool
) -> tuple[list[Any], list[Any], torch.Tensor]:
    """`length` steps from `x`: their steps, their model-file layers, and the output."""
    steps: list[Any] = []
    layers: list[Any] = []
    for _ in range(length):
        if depth and d.draw(st.integers(0, 3)) == 0:
            step, written, x = block(d, x, depth - 1, keep)
        else:
            step, written = (keeping if keep else changing)(d, x)
            x = run([step], d.modules, x)
        steps.append(step)
        layers += written
    return steps, layers, x


def to_channels(
    d: Drawing, x: torch.Tensor, channels: int
) -> tuple[list[Any], list[Any], torch.Tensor]:
    """A 1×1 convolution (or a linear layer) to `channels`, where they differ."""
    if x.shape[1] == channels:
        return [], [], x
    n = x.dim() - 2
    if n == 0:
        step = d.module(nn.Linear(x.shape[1], channels))
        written = entry("linear", out_features=channels)
    else:
        step = d.module(getattr(nn, f"Conv{n}d")(x.shape[1], channels, 1))
        written = conv_entry(channels, 1)
    return [step], [written], run([step], d.modules, x)


def block(
    d: Drawing, x: torch.Tensor, depth: int, keep: bool
) -> tuple[Any, list[Any], torch.Tensor]:
    """A residual block, an add of two branches, or a concatenation."""
    draw = d.draw
    n = x.dim() - 2
    choice = draw(st.integers(0, 2))
    if choice == 2 or (choice == 1 and (keep or n == 0)):
        # Branches that keep the sizes, joined on the channels (dim 1, or counted back).
        count = draw(st.integers(2, 3))
        branches, written, outputs = [], [], []
        for _ in range(count):
            # One branch at most is empty: graph.to_layers joins cat(x, x, …) with another
            # cat(x, x) (DenseNet's concatenations), which can make such a network one it
            # cannot nest.
            least = 1 if any(not branch for branch in branches) else 0
            steps, layers, y = chain(d, x, draw(st.integers(least, 2)), depth, keep=True)
            branches.append(steps)
            written.append(layers)
            outputs.append(y)
        dim = d.one_of(1, -(n + 1))
        return ("cat", branches, dim), [{"concat": written}], torch.cat(outputs, 1)
    if choice == 1:
        # A strided block with a projection shortcut, as ResNet's first block of a stage.
        channels = draw(st.integers(1, 8))
        conv = getattr(nn, f"Conv{n}d")
        norm = getattr(nn, f"BatchNorm{n}d")
        body = [
            d.module(conv(x.shape[1], channels, 3, 2, 1, bias=False)),
            d.module(norm(channels)),
            ("call", F.relu),
            d.module(conv(channels, channels, 3, 1, 1, bias=False)),
        ]
        shortcut = [d.module(conv(x.shape[1], channels, 1, 2, bias=False))]
        written = [
            conv_entry(channels, 3, 2, 1, bias=False),
            entry("batch_norm"),
            entry("relu"),
            conv_entry(channels, 3, 1, 1, bias=False),
        ]
        step = ("add", body, shortcut, draw(st.sampled_from(COMBINE)))
        y = run([step], d.modules, x)
        return step, [{"add": [written, [conv_entry(channels, 1, 2, bias=False)]]}], y
    # Two branches that end in the same shape, added: a residual when one is empty.
    first, first_layers, y = chain(d, x, draw(st.integers(0, 3)), depth, keep=True)
    more, more_layers, y = to_channels(d, y, x.shape[1])
    second, second_layers, z = chain(d, x, draw(st.integers(0, 2)), depth, keep=True)
    last, last_layers, z = to_channels(d, z, x.shape[1])
    a, a_layers = first + more, first_layers + more_layers
    b, b_layers = second + last, second_layers + last_layers
    combine = draw(
        st.sampled_from(COMBINE if a else [c for c in COMBINE if c is not plus_in_place])
    )
    step = ("add", a, b, combine)
    if bool(a) != bool(b):
        written: Any = {"residual": {"body": a_layers or b_layers}}
    else:
        written = {"add": [a_layers, b_layers]}
    return step, [written], run([step], d.modules, x)


@st.composite
def networks(draw: st.DrawFn) -> tuple[Net, tuple[int, ...], list[Any]]:
    n = draw(st.sampled_from([0, 1, 2, 2, 3]))
    channels = draw(st.integers(1, 4)) if n else draw(st.integers(1, 16))
    high = {0: 1, 1: 16, 2: 10, 3: 5}[n]
    shape = (channels, *(draw(st.integers(2, high)) for _ in range(n)))
    d = Drawing(draw)
    steps, layers, _ = chain(d, torch.zeros(2, *shape), draw(st.integers(1, 5)), 2, False)
    return Net(steps, d.modules), shape, layers


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(networks())
def test_random_networks_agree_with_their_model_file_and_pytorch(
    network: tuple[Net, tuple[int, ...], list[Any]],
) -> None:
    net, shape, layers = network
    note(f"input {shape}, layers {layers}")
    agree(net, shape, layers)


# ---------------------------------------------------------------------------------------
# Fixed networks


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (torchvision/models/resnet.py)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet of BasicBlocks, with stages of `blocks` blocks of `widths`
    channels (ResNet-18: (2, 2, 2, 2) and (64, 128, 256, 512), 1000 classes)."""

    def __init__(self, blocks: tuple[int, ...], widths: tuple[int, ...], classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, inplanes = [], widths[0]
        for index, (count, planes) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if index == 0 else 2
            stage = [BasicBlock(inplanes, planes, stride)]
            stage += [BasicBlock(planes, planes) for _ in range(count - 1)]
            stages.append(nn.Sequential(*stage))
            inplanes = planes
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


SMALL_RESNET = """
input: [3, 64, 64]
x-block: &block
  - conv: {out_channels: 16, kernel_size: 3, padding: 1, bias: false}
  - batch_norm
  - relu
  - conv: {out_channels: 16, kernel_size: 3, padding: 1, bias: false}
  - batch_norm
x-wide: &wide
  - conv: {out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - batch_norm
  - relu
  - conv: {out_channels: 32, kernel_size: 3, padding: 1, bias: false}
  - batch_norm
layers:
  - conv: {out_channels: 16, kernel_size: 7, stride: 2, padding: 3, bias: false}
  - batch_norm
  - relu
  - max_pool: {kernel_size: 3, stride: 2, padding: 1}
  - residual: {body: *block}
  - relu
  - residual: {body: *block}
  - relu
  - add:
    - - conv: {out_channels: 32, kernel_size: 3, stride: 2, padding: 1, bias: false}
      - batch_norm
      - relu
      - conv: {out_channels: 32, kernel_size: 3, padding: 1, bias: false}
      - batch_norm
    - - conv: {out_channels: 32, kernel_size: 1, stride: 2, bias: false}
      - batch_norm
  - relu
  - residual: {body: *wide}
  - relu
  - adaptive_avg_pool: {output_size: 1}
  - flatten
  - linear: {out_features: 10}
"""


def test_a_resnet_of_basic_blocks_with_in_place_adds() -> None:
    net = ResNet((2, 2), (16, 32), 10)
    result = analyze(from_torch(net, (3, 64, 64)))
    expected = analyze_yaml(SMALL_RESNET)
    assert rows(result) == rows(expected)
    assert result.receptive_field == expected.receptive_field
    # The same warnings at the same places (the rows' names differ: see `rows`).
    assert [replace(w, name="") for w in result.warnings] == [
        replace(w, name="") for w in expected.warnings
    ]
    # PyTorch: its parameters and its output. By hand: the stem 3·16·49 + 32, layer1
    # 2·(2·2304 + 2·32), layer2 4608 + 9216 + 512 + 3·64 and 2·9216 + 2·64, fc 32·10 + 10.
    assert result.totals.params == sum(p.numel() for p in net.parameters()) == 45_146
    assert result.output_shape == tuple(net(torch.zeros(1, 3, 64, 64)).shape[1:]) == (10,)
    # The rows are named after the modules, as print(model) names them.
    names = [row.name for row in result.rows]
    assert names[:5] == ["conv1", "bn1", "relu", "maxpool", "layers.0.0.conv1"]
    assert "layers.1.0.downsample.0" in names
    # A function's row: its fx name, within the module whose forward calls it.
    assert "layers.0.0.add" in names


def test_resnet18_is_the_bundled_resnet18() -> None:
    """torchvision's ResNet-18, traced, against convcalc's bundled model of it (written
    from the paper and torchvision's code): every row's numbers, in order."""
    net = ResNet((2, 2, 2, 2), (64, 128, 256, 512), 1000)
    result = analyze(from_torch(net, (3, 224, 224)))
    expected = analyze(open_model("resnet18"))

    def numbers(analysis: Analysis) -> list[tuple[Any, ...]]:
        return [(row.kind, *row[3:8]) for row in analysis.rows]

    assert numbers(result) == numbers(expected)
    assert result.receptive_field == expected.receptive_field
    assert result.totals.params == sum(p.numel() for p in net.parameters()) == 11_689_512


class LeNet(nn.Module):
    """The PyTorch tutorial's network: functional pools, view(-1, 16 * 5 * 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def test_lenet() -> None:
    conv = {"conv": {"out_channels": 6, "kernel_size": 5}}
    layers = [
        conv, {"relu": {}}, {"max_pool": {"kernel_size": 2}},
        {"conv": {"out_channels": 16, "kernel_size": 5}}, {"relu": {}},
        {"max_pool": {"kernel_size": 2}}, {"flatten": {}},
        {"linear": {"out_features": 120}}, {"relu": {}},
        {"linear": {"out_features": 84}}, {"relu": {}}, {"linear": {"out_features": 10}},
    ]  # fmt: skip
    result = agree(LeNet(), (1, 32, 32), layers)
    assert result.totals.params == 61_706  # the tutorial's network in PyTorch


class Sizes(nn.Module):
    """Sizes read from shapes and computed: x.size(), x.shape[2:], products."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        up = F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)
        b, c, h, w = up.size()
        return up.reshape(b, c * h * w)


def test_sizes_read_from_shapes() -> None:
    layers = [
        {"conv": {"out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1}},
        {"upsample": {"size": [12, 10], "mode": "bilinear", "align_corners": False}},
        {"flatten": {}},
    ]
    agree(Sizes(), (3, 12, 10), layers)


class PlainConv(nn.Conv2d):
    """A subclass that only renames: followed as the Conv2d it is."""


class StandardisedConv(nn.Conv2d):
    """A subclass with its own forward: traced into, where it reads self.weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight - self.weight.mean()
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


def test_subclasses_of_layers() -> None:
    agree(nn.Sequential(PlainConv(3, 4, 3)), (3, 8, 8), [conv_entry(4, 3)])
    with pytest.raises(ConvcalcError, match=r"node 'weight' \(get_attr weight\): reads the "):
        from_torch(StandardisedConv(3, 4, 3), (3, 8, 8))


# ---------------------------------------------------------------------------------------
# What it refuses


class Wrap(nn.Module):
    """A module whose forward is `function(self, x)`."""

    def __init__(self, function: Callable[..., Any], **modules: nn.Module) -> None:
        super().__init__()
        self.function = function
        for name, module in modules.items():
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> Any:
        return self.function(self, x)


conv3 = nn.Conv2d(3, 3, 3, padding=1)


@pytest.mark.parametrize(
    ("net", "message"),
    [
        (Wrap(lambda m, x: torch.sort(x, 1)[0]),
         "node 'sort' (torch.sort): convcalc cannot follow this operation; convcalc follows "
         "the torch.nn layers"),
        (Wrap(lambda m, x: m.lstm(x)[0], lstm=nn.LSTM(8, 4)),
         "node 'lstm' (lstm: LSTM): convcalc does not follow the module LSTM; it follows "
         "AdaptiveAvgPool1d"),
        (Wrap(lambda m, x: x * 2), "node 'mul' (operator.mul): convcalc cannot follow"),
        (Wrap(lambda m, x: x.permute(0, 2, 3, 1)), "node 'permute' (.permute): convcalc cannot"),
        (Wrap(lambda m, x: x[:, :2]), "node 'getitem' (operator.getitem): convcalc cannot"),
        (Wrap(lambda m, x: x + 1), "node 'add' (operator.add): adds something other than two "
         "tensors"),
        (Wrap(lambda m, x: x + m.conv(x)[:, :1], conv=conv3), "node 'getitem' (operator."),
        (Wrap(lambda m, x: x + F.max_pool2d(x, 2)),
         "node 'add' (operator.add): adds tensors of shapes [3, 8, 8] and [3, 4, 4]; "
         "convcalc's add takes the same shape (no broadcasting)"),
        (Wrap(lambda m, x: torch.cat([x, x], 2)),
         "node 'cat' (torch.cat): concatenates along dimension 2 of 4 (batch first); "
         "convcalc's concat joins the channels (dim=1)"),
        (Wrap(lambda m, x: torch.cat([x, F.max_pool2d(x, 2)], 1)),
         "node 'cat' (torch.cat): concatenates tensors of shapes [3, 8, 8], [3, 4, 4]"),
        (Wrap(lambda m, x: torch.flatten(x)),
         "node 'flatten' (torch.flatten): flattening dimensions 0 to 3 of an input with 4"),
        (Wrap(lambda m, x: x.view(x.size(0), 3, -1)),
         "node 'view' (.view): reshapes [3, 8, 8] (after the batch) to (batch, 3, -1); "
         "convcalc follows a reshape only to (batch, -1)"),
        (Wrap(lambda m, x: x.mean(1)), "node 'mean' (.mean): takes the mean over dimensions 1"),
        (Wrap(lambda m, x: F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)),
         "node 'interpolate' (torch.nn.functional.interpolate): antialias=true has no convcalc "
         "equivalent"),
        (Wrap(lambda m, x: F.max_pool2d(x, 2, return_indices=True)[0]),
         "node 'max_pool2d_with_indices' (torch.nn.functional.max_pool2d_with_indices): "
         "convcalc cannot follow this operation"),
        (Wrap(lambda m, x: m.pool(x)[0], pool=nn.MaxPool2d(2, return_indices=True)),
         "node 'pool' (pool: MaxPool2d): return_indices=True gives a pair"),
        (Wrap(lambda m, x: F.conv2d(x, torch.ones(3, 3, 1, 1))),
         "node '_tensor_constant0' (get_attr _tensor_constant0): reads the parameter or "
         "buffer '_tensor_constant0' itself"),
        (Wrap(lambda m, x: (x, x)),
         "node 'output' (return): forward returns tuple; convcalc follows a network with one "
         "output tensor"),
        (Wrap(lambda m, x: m.conv(x) if x.sum() > 0 else x, conv=conv3),
         "torch.fx cannot trace Wrap: symbolically traced variables cannot be used as inputs "
         "to control flow"),
        (Wrap(lambda m, x: (m.conv(x), x)[1], conv=conv3),
         "the output 'x' does not depend on 'conv'"),
        (Wrap(lambda m, x: m.conv(x), conv=nn.Conv2d(4, 3, 3)),
         "node 'conv' (conv: Conv2d): in_channels is 4, but the input [3, 8, 8] has 3 channels"),
        (Wrap(lambda m, x: m.conv(x), conv=nn.Conv1d(3, 3, 3)),
         "node 'conv' (conv: Conv1d): takes an input [C, L], but the input [3, 8, 8] has 2 "
         "spatial axes"),
        (Wrap(lambda m, x: m.conv(x), conv=nn.Conv2d(3, 3, 9)),
         "node 'conv' (conv: Conv2d): the output would be empty on axis H"),
        (Wrap(lambda m, x: m.bn(x), bn=nn.BatchNorm2d(3, bias=False)),
         "node 'bn' (bn: BatchNorm2d): affine=True with bias=False learns a scale but no shift"),
        (Wrap(lambda m, x: m.up(x), up=nn.Upsample(scale_factor=2, mode="area")),
         "node 'up' (up: Upsample): mode: expected one of nearest"),
    ],
)  # fmt: skip
def test_what_it_cannot_follow_is_an_error_naming_the_node(net: nn.Module, message: str) -> None:
    with pytest.raises(ConvcalcError) as error:
        from_torch(net, (3, 8, 8))
    assert str(error.value).startswith(message), str(error.value)


class TwoInputs(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class OptionalInput(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return F.relu(x)


def test_inputs_and_what_is_not_a_module() -> None:
    with pytest.raises(ConvcalcError, match=r"node 'y' .*: forward takes a second input, 'y'"):
        from_torch(TwoInputs(), (3, 8, 8))
    # A second argument with a default that forward leaves unused is no input.
    assert analyze(from_torch(OptionalInput(), (3, 8, 8))).output_shape == (3, 8, 8)
    with pytest.raises(ConvcalcError, match=r"^expected a torch\.nn\.Module, got function$"):
        from_torch(F.relu, (3, 8, 8))
    with pytest.raises(ConvcalcError, match=r"^input_shape: expected a shape"):
        from_torch(nn.ReLU(), (3, 0, 8))


# ---------------------------------------------------------------------------------------
# The command line, the lazy export, and a machine without torch


NETS = """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, classes=10):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            self.fc = nn.Linear(8 * 16 * 16, classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.features(x), 1))

    net = Net(classes=5)
    number = 3

    def broken():
        raise RuntimeError("no weights here")
"""


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A Python module of networks in the current directory; its name."""
    name = "nets_" + re.sub(r"\W", "_", request.node.name)
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(NETS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_net_and_export_from_the_command_line(cli: Any, nets: str) -> None:
    result = cli("net", f"{nets}:Net", "--input", "3x32x32", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    # PyTorch: Net() has 3·8·9 + 8 + 2048·10 + 10 parameters and 10 outputs.
    assert data["totals"]["params"] == 8 * 27 + 8 + 2048 * 10 + 10
    assert data["output_shape"] == [10]
    assert [row["name"] for row in data["layers"]] == [
        "features.0", "features.1", "features.2", "flatten", "fc",
    ]  # fmt: skip
    # An instance, and the model file `export` writes reads back to the same analysis.
    instance = cli("net", f"{nets}:net", "--input", "3x32x32", "--json")
    assert json.loads(instance.stdout)["output_shape"] == [5]
    exported = cli("export", f"{nets}:Net", "--input", "3x32x32")
    assert exported.code == 0, exported.stderr
    Path("net.yaml").write_text(exported.stdout)
    again = json.loads(cli("net", "net.yaml", "--json").stdout)
    assert again["layers"] == data["layers"] and again["totals"] == data["totals"]


@pytest.mark.parametrize(
    ("reference", "args", "message"),
    [
        (":Net", [], "{}:Net: a PyTorch module has no input shape of its own: give "
         "--input, such as 3x224x224"),
        (":Nope", ["--input", "3x32x32"], "{}:Nope: {} has no attribute 'Nope'"),
        (":number", ["--input", "3x32x32"], "{}:number: number is a int: expected a "
         "torch.nn.Module, or a callable that returns one"),
        (":broken", ["--input", "3x32x32"], "{}:broken: calling broken() raised RuntimeError: "
         "no weights here"),
        (":Net", ["--input", "1x32x32"], "{}:Net: node 'features_0' (features.0: Conv2d): "
         "in_channels is 3, but the input [1, 32, 32] has 1 channels"),
    ],
)  # fmt: skip
def test_command_line_errors(
    cli: Any, nets: str, reference: str, args: list[str], message: str
) -> None:
    result = cli("net", nets + reference, *args)
    assert result.code == 2
    assert result.stderr == "error: " + message.format(nets, nets) + "\n"


def test_modules_that_do_not_import(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raising_net.py").write_text("raise ValueError('bad module')\n")
    (tmp_path / "needing_net.py").write_text("import no_such_dependency\n")
    for name in ("raising_net", "needing_net", "no_such_net"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    expected = {
        "raising_net": "error: raising_net:Net: importing raising_net raised ValueError: bad "
        "module\n",
        "needing_net": "error: needing_net:Net: importing needing_net failed: No module named "
        "'no_such_dependency'\n",
        "no_such_net": "error: no_such_net:Net: no such file, and no Python module "
        "'no_such_net' (looked in the current directory and on sys.path)\n",
    }
    for name, message in expected.items():
        result = cli("net", f"{name}:Net", "--input", "3x8x8")
        assert (result.code, result.stderr) == (2, message)
    assert str(tmp_path) not in sys.path  # the current directory is put back


def test_from_torch_is_exported_lazily() -> None:
    code = (
        "import sys, convcalc; f = convcalc.from_torch; "
        "from convcalc.imports.pytorch import from_torch; assert f is from_torch; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_without_torch(cli: Any, nets: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(ConvcalcError) as error:
        from_torch(object(), (3, 8, 8))
    assert "pip install 'convcalc[torch]'" in str(error.value)
    assert "torch==2.13.0" in str(error.value)
    result = cli("net", f"{nets}:Net", "--input", "3x32x32")
    assert result.code == 2
    assert result.stderr.startswith("error: importing PyTorch modules needs torch: pip install")
