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
from collections import OrderedDict
from collections.abc import Callable
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


def warned(analysis: Analysis) -> list[tuple[str, int | None]]:
    """The warnings, in order, by code and the position of their row (None: the whole
    network): an import names rows as PyTorch does, and messages name rows."""
    position = {row.path: index for index, row in enumerate(analysis.rows)}
    return [(w.code, position.get(w.path)) for w in analysis.warnings]


def agree(net: nn.Module, shape: tuple[int, ...], layers: list[Any]) -> Analysis:
    """Check the traced `net` against the model file `layers` and against PyTorch."""
    result = analyze(from_torch(net, shape))
    expected = analyze(from_dict({"input": list(shape), "layers": layers}))
    assert rows(result) == rows(expected)
    assert result.totals == expected.totals
    assert result.receptive_field == expected.receptive_field
    assert warned(result) == warned(expected)
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
    # PyTorch refuses a group of one value (the import runs a batch of one).
    single = math.prod(x.shape[2:]) == 1
    divisors = [g for g in range(1, channels + 1) if channels % g == 0]
    divisors = [g for g in divisors if not (single and g == channels)]
    if choice == 1 and divisors:
        groups = draw(st.sampled_from(divisors))
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
        # nn.Identity calls no torch function: it is no row, as nothing is.
        (d.module(nn.Identity()), None),
    ]
    step, written = draw(st.sampled_from(activations))
    return step, [written] if written else []


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
            steps, layers, y = chain(d, x, draw(st.integers(0, 2)), depth, keep=True)
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
        # `a += b` on a tensor another branch reads changes what it reads.
        st.sampled_from(COMBINE if a_layers else [c for c in COMBINE if c is not plus_in_place])
    )
    step = ("add", a, b, combine)
    if bool(a_layers) != bool(b_layers):
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
    if not layers:  # nn.Identity and nothing else
        with pytest.raises(ConvcalcError, match=r"^the network returns its input unchanged$"):
            from_torch(net, shape)
        return
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
    assert warned(result) == warned(expected)
    # PyTorch: its parameters and its output. By hand: the stem 3·16·49 + 32, layer1
    # 2·(2·2304 + 2·32), layer2 4608 + 9216 + 512 + 3·64 and 2·9216 + 2·64, fc 32·10 + 10.
    assert result.totals.params == sum(p.numel() for p in net.parameters()) == 45_146
    assert result.output_shape == tuple(net(torch.zeros(1, 3, 64, 64)).shape[1:]) == (10,)
    # The rows are named after the modules, as print(model) names them; a merge after
    # the module whose forward makes it and the operation; a module's second call `_1`.
    named = [(row.qualified_name, row.inputs) for row in result.rows]
    assert named[:12] == [
        ("conv1", ("input",)),
        ("bn1", ("conv1",)),
        ("relu", ("bn1",)),
        ("maxpool", ("relu",)),
        ("layers.0.0.conv1", ("maxpool",)),
        ("layers.0.0.bn1", ("layers.0.0.conv1",)),
        ("layers.0.0.relu", ("layers.0.0.bn1",)),
        ("layers.0.0.conv2", ("layers.0.0.relu",)),
        ("layers.0.0.bn2", ("layers.0.0.conv2",)),
        ("layers.0.0.add", ("layers.0.0.bn2", "maxpool")),
        ("layers.0.0.relu_1", ("layers.0.0.add",)),
        ("layers.0.1.conv1", ("layers.0.0.relu_1",)),
    ]
    assert ("layers.1.0.add", ("layers.1.0.bn2", "layers.1.0.downsample.1")) in named


def test_resnet18_is_the_bundled_resnet18() -> None:
    """torchvision's ResNet-18, traced, against convcalc's bundled model of it (written
    from the paper and torchvision's code): every row's numbers, in order."""
    net = ResNet((2, 2, 2, 2), (64, 128, 256, 512), 1000)
    result = analyze(from_torch(net, (3, 224, 224)))
    expected = analyze(open_model("resnet18"))
    assert rows(result) == rows(expected)
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


class Conv3DSimple(nn.Conv3d):
    """torchvision's r3d_18 convolution: a Conv3d subclass that adds only a staticmethod
    (the fx importer refused it, blaming the wrong thing)."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__(in_planes, out_planes, (3, 3, 3), 1, 1, bias=False)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


def test_subclasses_of_layers() -> None:
    agree(nn.Sequential(PlainConv(3, 4, 3)), (3, 8, 8), [conv_entry(4, 3)])
    result = checked(nn.Sequential(Conv3DSimple(3, 4)), (3, 4, 5, 5))
    # By hand: 3·4·27 weights, no bias.
    assert table(result) == [("0", "conv", (4, 4, 5, 5), 324)]


# ---------------------------------------------------------------------------------------
# The patterns of today's networks, and the former importer's bugs: each checked
# against PyTorch (`checked`) and against the rows a person expects (`table`)


def checked(net: nn.Module, shape: tuple[int, ...], last: tuple[str, ...] = ()) -> Analysis:
    """The import of `net`, checked against PyTorch: a row named as a module has the
    shape that module gives in the forward (channels last for the modules in `last`),
    the outputs the forward's, and params + unused_params are sum(p.numel())."""
    result = analyze(from_torch(net, shape))
    seen: dict[str, tuple[int, ...]] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                size = tuple(output.shape[1:])
                seen.setdefault(name, (size[-1], *size[:-1]) if name in last else size)

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if n]
    try:
        with torch.no_grad():
            output = net.eval()(torch.randn(2, *shape))
    finally:
        for handle in handles:
            handle.remove()
    for row in result.rows:
        if row.qualified_name in seen:
            assert row.output_shape == seen[row.qualified_name], row.qualified_name
    tensors = list(output.values()) if isinstance(output, dict) else [output]
    assert [o.shape for o in result.outputs] == [tuple(t.shape[1:]) for t in tensors]
    total = sum(p.numel() for p in net.parameters())
    assert result.totals.params + result.totals.unused_params == total
    return result


def table(analysis: Analysis) -> list[tuple[str, str, tuple[int, ...], int]]:
    """Each row's qualified name, kind, output shape and parameters."""
    return [(r.qualified_name, r.kind, r.output_shape, r.params) for r in analysis.rows]


def layers_of(net: nn.Module, shape: tuple[int, ...]) -> list[Any]:
    """The model file's layers of an import (its graph form)."""
    layers: list[Any] = torch_document(net, shape)["layers"]
    return layers


class SqueezeExcitation(nn.Module):
    """torchvision's (ops/misc.py): pool, two 1×1 convolutions, a gate times the input."""

    def __init__(self, channels: int, squeezed: int, gate: nn.Module | None = None) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = gate or nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class SELayer(nn.Module):
    """The SENet paper's code: linear layers on the pooled vector, viewed back."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


def test_squeeze_and_excitation_with_convolutions() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), SqueezeExcitation(8, 2))
    result = checked(net, (3, 6, 5))
    # By hand: 3·8·9 + 8; 8·2 + 2; 2·8 + 8.
    assert table(result) == [
        ("0", "conv", (8, 6, 5), 224),
        ("1.avgpool", "adaptive_avg_pool", (8, 1, 1), 0),
        ("1.fc1", "conv", (2, 1, 1), 18),
        ("1.activation", "relu", (2, 1, 1), 0),
        ("1.fc2", "conv", (8, 1, 1), 24),
        ("1.scale_activation", "sigmoid", (8, 1, 1), 0),
        ("1.mul", "mul", (8, 6, 5), 0),
    ]
    assert result.rows[-1].inputs == ("1.scale_activation", "0")
    assert result.rows[-1].global_context


def test_squeeze_and_excitation_with_linear_layers_and_view() -> None:
    result = checked(SELayer(8, 4), (8, 6, 5))
    # By hand: 8·2 and 2·8 weights, no biases; the gate back to 8×1×1 by `view`.
    assert [(name, kind, params) for name, kind, _, params in table(result)] == [
        ("avg_pool", "adaptive_avg_pool", 0),
        ("flatten", "flatten", 0),
        ("fc.0", "linear", 16),
        ("fc.1", "relu", 0),
        ("fc.2", "linear", 16),
        ("fc.3", "sigmoid", 0),
        ("view", "unflatten", 0),
        ("mul", "mul", 0),
    ]
    # The product reads the input's own pixel, and the whole input through the gate.
    (mul,) = [row for row in result.rows if row.kind == "mul"]
    assert mul.receptive_field is not None and mul.receptive_field.size == (1, 1)
    assert mul.global_context


class LayerScale(nn.Module):
    """A convolution times a learned factor per channel: gamma (C, 1, 1), or (C,) on the
    value permuted channels last."""

    def __init__(self, channels: int, last: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.gamma = nn.Parameter(torch.full((channels,) if last else (channels, 1, 1), 0.1))
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.last:
            return (x.permute(0, 2, 3, 1) * self.gamma).permute(0, 3, 1, 2)
        return x * self.gamma


@pytest.mark.parametrize("last", [False, True])
def test_layer_scale(last: bool) -> None:
    result = checked(LayerScale(8, last), (3, 6, 5))
    # By hand: 3·8·9 + 8, and one factor per channel.
    assert table(result) == [("conv", "conv", (8, 6, 5), 224), ("mul", "scale", (8, 6, 5), 8)]


class Permute(nn.Module):
    """torchvision's ops.misc.Permute."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: a depthwise 7×7, then channels last LayerNorm,
    Linear, GELU, Linear, back to channels first, times a layer scale, plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale * self.block(x)


def test_convnext_block() -> None:
    last = ("block.1", "block.2", "block.3", "block.4", "block.5")
    result = checked(CNBlock(8), (8, 6, 5), last)
    # By hand: 8·49 + 8; 2·8; 8·32 + 32; 32·8 + 8; 8.
    assert table(result) == [
        ("block.0", "conv", (8, 6, 5), 400),
        ("block.2", "layer_norm", (8, 6, 5), 16),
        ("block.3", "conv", (32, 6, 5), 288),
        ("block.4", "gelu", (32, 6, 5), 0),
        ("block.5", "conv", (8, 6, 5), 264),
        ("mul", "scale", (8, 6, 5), 8),
        ("add", "add", (8, 6, 5), 0),
    ]
    assert result.rows[-1].inputs == ("input", "mul")
    assert layers_of(CNBlock(8), (8, 6, 5))[2]["conv"]["kernel_size"] == 1


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit of stride 1: half the channels through a branch (split by
    `how`), concatenated with the other half, then shuffled (reshape–transpose–reshape)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.branch2 = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "chunk":
            x1, x2 = x.chunk(2, dim=1)
        elif self.how == "split":
            x1, x2 = torch.split(x, [4, 4], 1)
        else:
            x1, x2 = x[:, :4], x[:, 4:]
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        b, c, h, w = out.size()
        out = torch.transpose(out.view(b, 2, c // 2, h, w), 1, 2).contiguous()
        return out.view(b, -1, h, w)


@pytest.mark.parametrize(
    ("how", "op"), [("chunk", "split"), ("split", "split"), ("x[:, a:b]", "slice")]
)
def test_channel_split_and_shuffle(how: str, op: str) -> None:
    result = checked(ShuffleUnit(how), (8, 6, 5))
    assert table(result) == [
        (op, "channel_slice", (4, 6, 5), 0),
        (f"{op}_1", "channel_slice", (4, 6, 5), 0),
        ("branch2.0", "conv", (4, 6, 5), 20),
        ("branch2.1", "relu", (4, 6, 5), 0),
        ("cat", "concat", (8, 6, 5), 0),
        ("channel_shuffle", "channel_shuffle", (8, 6, 5), 0),
    ]
    layers = layers_of(ShuffleUnit(how), (8, 6, 5))
    assert layers[1]["channel_slice"] == {"name": f"{op}_1", "from": "input", "start": 4, "end": 8}
    assert layers[-1]["channel_shuffle"]["groups"] == 2


def test_hardsigmoid_gate_and_scalar_arithmetic() -> None:
    def gate(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return x * m.gate(m.conv(x.mean((2, 3), keepdim=True)))

    result = checked(Wrap(gate, conv=nn.Conv2d(8, 8, 1), gate=nn.Hardsigmoid()), (8, 4, 4))
    assert table(result) == [
        ("mean", "adaptive_avg_pool", (8, 1, 1), 0),
        ("conv", "conv", (8, 1, 1), 72),
        ("gate", "hardsigmoid", (8, 1, 1), 0),
        ("mul", "mul", (8, 4, 4), 0),
    ]

    # A hard sigmoid written out, and a factor: arithmetic with numbers is no row.
    def written(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(m.conv(x) * 0.5 + 3) / 6

    result = checked(Wrap(written, conv=nn.Conv2d(3, 4, 1)), (3, 4, 4))
    assert table(result) == [("conv", "conv", (4, 4, 4), 16), ("relu6", "relu6", (4, 4, 4), 0)]


def stochastic_depth(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """torchvision's ops.stochastic_depth (mode "row"): the identity at inference."""
    if not training or p == 0.0:
        return x
    noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1)).bernoulli_(1 - p)
    return x * noise / (1 - p)


class StochasticDepth(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.training)


def test_stochastic_depth_is_the_identity_and_the_mode_is_put_back() -> None:
    net = Wrap(lambda m, x: x + m.drop(m.conv(x)), conv=nn.Conv2d(8, 8, 3, padding=1),
               drop=StochasticDepth(0.2))  # fmt: skip
    net.train()
    result = analyze(from_torch(net, (8, 4, 4)))
    assert table(result) == [("conv", "conv", (8, 4, 4), 584), ("add", "add", (8, 4, 4), 0)]
    assert net.training and net.drop.training  # as it was given
    checked(net, (8, 4, 4))


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's (layers/norm_act.py), cut short: F.batch_norm on its own parameters, after
    reading x.ndim, then an activation."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.drop = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4, f"expected 4D input (got {x.ndim}D input)"
        x = F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            self.training, self.momentum, self.eps,
        )  # fmt: skip
        return self.act(self.drop(x))


def test_timm_batch_norm_act() -> None:
    result = checked(nn.Sequential(nn.Conv2d(3, 8, 3), BatchNormAct2d(8)), (3, 6, 5))
    assert table(result) == [
        ("0", "conv", (8, 4, 3), 224),
        # The row with the module's own parameters carries the module's name.
        ("1", "batch_norm", (8, 4, 3), 16),
        ("1.act", "relu", (8, 4, 3), 0),
    ]


class StdConv2d(nn.Conv2d):
    """Weight standardisation (BiT's StdConv2d, NFNet's ScaledStdConv2d with `gain`):
    the weight computed in forward, written out or with F.batch_norm as timm does."""

    def __init__(self, *args: Any, gain: bool, timm: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1)) if gain else None
        self.timm = timm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.timm:
            gain = self.gain.reshape(-1) if self.gain is not None else None
            flat = self.weight.reshape(1, self.out_channels, -1)
            w = F.batch_norm(flat, None, None, gain, training=True, momentum=0.0, eps=1e-5)
            weight = w.reshape_as(self.weight)
        else:
            mean = self.weight.mean(dim=(1, 2, 3), keepdim=True)
            var = self.weight.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
            weight = (self.weight - mean) / torch.sqrt(var + 1e-10)
            if self.gain is not None:
                weight = weight * self.gain
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


@pytest.mark.parametrize("timm", [False, True])
@pytest.mark.parametrize("gain", [False, True])
def test_convolutions_with_a_computed_weight(gain: bool, timm: bool) -> None:
    net = nn.Sequential(StdConv2d(3, 8, 3, stride=2, gain=gain, timm=timm), nn.ReLU())
    result = checked(net, (3, 7, 7))
    # By hand: 3·8·9 + 8, and one gain per output channel, a row of its own (conv(x, w·g)
    # is conv(x, w)·g).
    gained = [("0.gain", "scale", (8, 3, 3), 8)] if gain else []
    assert table(result) == [("0", "conv", (8, 3, 3), 224), *gained, ("1", "relu", (8, 3, 3), 0)]


def test_dict_outputs_are_named_outputs() -> None:
    def heads(m: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """torchvision's segmentation models: the heads back to the input's size."""
        features = m.backbone(x)
        out = F.interpolate(m.classifier(features), size=x.shape[-2:], mode="bilinear")
        return {"out": out, "aux": m.aux(features)}

    net = Wrap(heads, backbone=nn.Conv2d(3, 8, 3, stride=2, padding=1),
               classifier=nn.Conv2d(8, 5, 1), aux=nn.Conv2d(8, 2, 1))  # fmt: skip
    result = checked(net, (3, 8, 8))
    assert [(o.name, o.shape) for o in result.outputs] == [("out", (5, 8, 8)), ("aux", (2, 4, 4))]
    assert result.output_shape == (5, 8, 8)
    # By hand: 3·8·9 + 8, 8·5 + 5, 8·2 + 2; an output's row takes the key's name.
    assert table(result) == [
        ("backbone", "conv", (8, 4, 4), 224),
        ("classifier", "conv", (5, 4, 4), 45),
        ("out", "upsample", (5, 8, 8), 0),
        ("aux", "conv", (2, 4, 4), 18),
    ]


def test_dead_branches_are_dropped_with_a_warning() -> None:
    def forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        m.unused(x).relu()  # computed, never read
        return m.conv(x)

    net = Wrap(forward, conv=nn.Conv2d(3, 4, 1), unused=nn.Conv2d(3, 2, 1))
    result = analyze(from_torch(net, (3, 8, 8)))
    assert table(result) == [("conv", "conv", (4, 8, 8), 16)]
    assert [(w.code, w.message) for w in result.warnings] == [
        ("dead-branches",
         "the forward computes unused, relu without any output reading the result: left out"),
    ]  # fmt: skip
    # Their parameters ran, so they are no unused parameters: params counts the rows.
    assert result.totals.params == 16
    assert result.totals.unused_params == 0


class AuxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.conv(x), 1), 1))


class WithAuxiliary(nn.Module):
    """torchvision's GoogLeNet: an auxiliary classifier run only in training."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.aux1 = AuxHead()
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.training:
            self.aux1(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def test_parameters_the_forward_never_uses() -> None:
    result = checked(WithAuxiliary(), (3, 6, 6))
    # By hand: conv1 3·8·9 + 8 and fc 8·10 + 10 run; aux1.conv 8·4 + 4 and aux1.fc
    # 4·10 + 10 do not.
    assert (result.totals.params, result.totals.unused_params) == (314, 86)
    assert [(w.code, w.message) for w in result.warnings] == [
        ("unused-parameters",
         "the forward never uses the parameters of aux1 (86): 86 parameters, counted in "
         "unused_params, not in params"),
    ]  # fmt: skip
    # Under the outermost module none of whose parameters run.
    assert torch_document(WithAuxiliary(), (3, 6, 6))["unused_params"] == {"aux1": 86}


class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame: TensorFlow's "same" padding, computed from x.shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.weight.shape[-2:], self.stride, strict=True):
            pads.append(max((math.ceil(size / s) - 1) * s + k - size, 0))
        pad_h, pad_w = pads
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride)


@pytest.mark.parametrize(("size", "padding", "padded"), [(8, [[0, 1], [0, 1]], 9), (7, 1, 9)])
def test_tensorflow_same_padding_read_from_the_shape(size: int, padding: Any, padded: int) -> None:
    net = nn.Sequential(Conv2dSame(3, 8, 3, stride=2))
    result = checked(net, (3, size, size))
    # By hand: ceil(size / 2) = 4 outputs need (4 − 1)·2 + 3 = 9 positions.
    assert table(result) == [
        ("0.pad", "pad", (3, padded, padded), 0),
        ("0", "conv", (8, 4, 4), 224),
    ]
    assert layers_of(net, (3, size, size))[0]["pad"]["padding"] == padding


class DenseBlock(nn.Module):
    """torchvision's DenseNet: each layer reads the concatenation of every output before
    it, starting with torch.cat([x], 1)."""

    def __init__(self, channels: int, growth: int, count: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth, 3, padding=1) for i in range(count)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


def test_densenet_concatenations() -> None:
    result = checked(DenseBlock(4, 2, 3), (4, 5, 5))
    # By hand: 4·2·9 + 2, 6·2·9 + 2, 8·2·9 + 2.
    assert [
        (r.qualified_name, r.kind, r.output_shape, r.params, r.inputs) for r in result.rows
    ] == [
        ("cat", "concat", (4, 5, 5), 0, ("input",)),
        ("layers.0", "conv", (2, 5, 5), 74, ("cat",)),
        ("cat_1", "concat", (6, 5, 5), 0, ("input", "layers.0")),
        ("layers.1", "conv", (2, 5, 5), 110, ("cat_1",)),
        ("cat_2", "concat", (8, 5, 5), 0, ("input", "layers.0", "layers.1")),
        ("layers.2", "conv", (2, 5, 5), 146, ("cat_2",)),
        ("cat_3", "concat", (10, 5, 5), 0, ("input", "layers.0", "layers.1", "layers.2")),
    ]


def test_interpolate_to_another_value_s_size_is_like_it() -> None:
    def fpn(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        lateral = m.lateral(x)
        return lateral + F.interpolate(m.down(x), size=lateral.shape[-2:])

    net = Wrap(fpn, down=nn.Conv2d(3, 4, 3, stride=2, padding=1), lateral=nn.Conv2d(3, 4, 1))
    result = checked(net, (3, 9, 9))
    assert table(result) == [
        ("lateral", "conv", (4, 9, 9), 16),
        ("down", "conv", (4, 5, 5), 112),
        ("interpolate", "upsample", (4, 9, 9), 0),
        ("add", "add", (4, 9, 9), 0),
    ]
    assert layers_of(net, (3, 9, 9))[2] == {"upsample": {"name": "interpolate", "like": "lateral"}}


@pytest.mark.parametrize(
    ("net", "shape", "size"),
    [
        (ShuffleUnit("chunk"), (8, 5, 5), (1, 1)),
        (CNBlock(8), (8, 15, 15), (7, 7)),
        (DenseBlock(4, 2, 3), (4, 15, 15), (7, 7)),
        (nn.Sequential(Conv2dSame(3, 8, 3, stride=2), Conv2dSame(8, 8, 3)), (3, 16, 16), (7, 7)),
    ],
)
def test_fields_are_what_the_gradient_reaches(
    net: nn.Module, shape: tuple[int, ...], size: tuple[int, int]
) -> None:
    """The field of the middle output unit, measured: the input positions with a nonzero
    gradient (by hand: 1×1 convolutions; a 7×7; three 3×3; a 3×3 of stride 2, then a 3×3)."""
    result = analyze(from_torch(net, shape))
    x = torch.randn(1, *shape, dtype=torch.float64, requires_grad=True)
    y = net.double().eval()(x)
    middle = tuple(n // 2 for n in y.shape[2:])
    y[(0, slice(None), *middle)].sum().backward()
    assert x.grad is not None
    reached = x.grad.abs().sum(dim=(0, 1)).nonzero()
    measured = tuple(int(reached[:, a].max() - reached[:, a].min()) + 1 for a in range(2))
    assert result.receptive_field is not None
    assert result.receptive_field.size == measured == size


# ---------------------------------------------------------------------------------------
# What it refuses: one line naming the module path and the operation


class Wrap(nn.Module):
    """A module whose forward is `function(self, x)`, with these modules and parameters."""

    def __init__(self, function: Callable[..., Any], **modules: nn.Module | nn.Parameter) -> None:
        super().__init__()
        self.function = function
        for name, module in modules.items():
            if isinstance(module, nn.Parameter):
                self.register_parameter(name, module)
            else:
                self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> Any:
        return self.function(self, x)


def body(function: Callable[..., Any], **modules: nn.Module | nn.Parameter) -> nn.Module:
    """A network whose one module `body` runs `function(body, x)`."""
    return nn.Sequential(OrderedDict(body=Wrap(function, **modules)))


conv3 = nn.Conv2d(3, 3, 3, padding=1)
bn3 = nn.BatchNorm2d(3)


@pytest.mark.parametrize(
    ("net", "message"),
    [
        (body(lambda m, x: torch.sort(x, 1)[0]),
         "body (torch.sort): convcalc cannot follow this operation"),
        (body(lambda m, x: x - F.relu(x)),
         "body (torch.Tensor.sub): convcalc follows the sum and the product of two tensors"),
        (body(lambda m, x: x + x.mean((2, 3), keepdim=True)),
         "body (torch.Tensor.add): adds tensors of shapes [3, 8, 8] and [3, 1, 1]; convcalc's "
         "add takes one shape"),
        (body(lambda m, x: x * m.w, w=nn.Parameter(torch.ones(8, 8))),
         "body (torch.Tensor.mul): combines the input with the parameters body.w (shape [8, 8]); "
         "convcalc follows a product with one factor per channel (scale)"),
        (body(lambda m, x: x * torch.ones(2, 1, 1, 1)),
         "body (torch.Tensor.mul): broadcasts the input [3, 8, 8] with a constant to "
         "[2, 3, 8, 8] (batch first)"),
        (body(lambda m, x: x[:, :, :2]),
         "body (torch.Tensor.__getitem__): indexes the tensor; convcalc follows x[:, a:b] "
         "(channels)"),
        (body(lambda m, x: x[0]),
         "body (torch.Tensor.__getitem__): indexes the tensor; convcalc follows x[:, a:b]"),
        (body(lambda m, x: x.permute(0, 2, 1, 3)),
         "body (torch.Tensor.permute): permutes dimensions to [0, 2, 1, 3]; convcalc follows a "
         "permute to channels last and back, and the transpose of a channel shuffle"),
        (body(lambda m, x: m.conv(x.permute(0, 2, 3, 1)), conv=nn.Conv2d(8, 3, 1)),
         "body.conv (torch.nn.functional.conv2d): convcalc follows conv on channels first, "
         "not last"),
        (body(lambda m, x: x.permute(0, 2, 3, 1)), "output: returns a tensor channels last"),
        (body(lambda m, x: F.batch_norm(x, m.bn.running_mean, m.bn.running_var,
                                        m.bn.weight, m.bn.bias, training=True), bn=bn3),
         "body (torch.nn.functional.batch_norm): normalises with the statistics of the batch "
         "(no running statistics, or training=True); convcalc follows batch_norm at inference"),
        (body(lambda m, x: m.bn(x), bn=nn.BatchNorm2d(3, track_running_stats=False)),
         "body.bn (torch.nn.functional.batch_norm): normalises with the statistics of the "
         "batch"),
        (body(lambda m, x: m.bn(x), bn=nn.BatchNorm2d(3, bias=False)),
         "body.bn (torch.nn.functional.batch_norm): has a scale or a shift but not both"),
        (body(lambda m, x: torch.cat([x, x], 2)),
         "body (torch.cat): concatenates along another dimension than the channels"),
        (body(lambda m, x: torch.flatten(x)),
         "body (torch.flatten): reshapes the batch too, to [192]"),
        (body(lambda m, x: m.conv(x.view(x.size(0), 3, -1)), conv=nn.Conv1d(3, 3, 1)),
         "body.conv (torch.nn.functional.conv1d): reads a tensor of shape [3, 64] made by "
         "reshaping [3, 8, 8]; convcalc follows reshapes to (batch, -1), channel shuffles, and "
         "reshapes undone before the next layer"),
        (body(lambda m, x: x.mean(1)),
         "body (torch.Tensor.mean): takes the mean over dimensions 1 of 4; convcalc follows a "
         "mean over every spatial axis (a global average pooling)"),
        (body(lambda m, x: F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)),
         "body (torch.nn.functional.interpolate): antialias=True has no convcalc equivalent"),
        (body(lambda m, x: m.up(x), up=nn.Upsample(scale_factor=2, mode="area")),
         "body.up (torch.nn.functional.interpolate): mode: expected one of nearest"),
        (body(lambda m, x: m.pool(x)[0], pool=nn.MaxPool2d(2, return_indices=True)),
         "body.pool (torch.nn.functional.max_pool2d_with_indices): return_indices=True gives a "
         "pair (output, indices); convcalc follows one tensor"),
        (body(lambda m, x: F.conv2d(x, torch.ones(3, 3, 1, 1))),
         "body (torch.nn.functional.conv2d): its weight is not a parameter (nor computed from "
         "one)"),
        (body(lambda m, x: m.conv(x) if x.sum() > 0 else x, conv=conv3),
         "body (torch.Tensor.sum): convcalc follows a sum over the groups of a tensor "
         "regrouped"),
        (body(lambda m, x: (m.conv(x), x)[1], conv=conv3),
         "the network returns its input unchanged"),
        # The module's own code fails on this input: the innermost module it left.
        (body(lambda m, x: m.conv(x), conv=nn.Conv2d(4, 3, 3)),
         "body.conv (Conv2d): running Sequential on an input of shape [1, 3, 8, 8] raised "
         "RuntimeError: Given groups=1, weight of size [3, 4, 3, 3], expected input[1, 3, 8, 8] "
         "to have 4 channels, but got 3 channels instead"),
        (body(lambda m, x: x + F.max_pool2d(x, 2)),
         "body (Wrap): running Sequential on an input of shape [1, 3, 8, 8] raised "
         "RuntimeError: The size of tensor a (8) must match the size of tensor b (4)"),
    ],
)  # fmt: skip
def test_what_it_cannot_follow_is_an_error_naming_the_module(net: nn.Module, message: str) -> None:
    with pytest.raises(ConvcalcError) as error:
        from_torch(net, (3, 8, 8))
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_a_recurrent_layer_is_refused() -> None:
    lstm = body(lambda m, x: m.lstm(x)[0], lstm=nn.LSTM(8, 4))
    with pytest.raises(
        ConvcalcError, match=r"^body\.lstm \(torch\.lstm\): convcalc cannot follow this operation "
    ):
        from_torch(lstm, (8,))


class TwoInputs(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class OptionalInput(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return F.relu(x)


def test_inputs_and_what_is_not_a_module() -> None:
    with pytest.raises(
        ConvcalcError,
        match=r"^running TwoInputs on an input of shape \[1, 3, 8, 8\] raised TypeError: .*'y'$",
    ):
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
        (":Net", ["--input", "1x32x32"], "{}:Net: features.0 (Conv2d): running Net on an "
         "input of shape [1, 1, 32, 32] raised RuntimeError: Given groups=1, weight of size "
         "[8, 3, 3, 3], expected input[1, 1, 32, 32] to have 3 channels, but got 1 channels "
         "instead"),
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
