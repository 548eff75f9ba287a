"""Property tests against PyTorch: random branching networks on 1, 2 and 3 spatial axes,
built as torch.nn module graphs (torch_build.exact_network: a small module per merge
that runs its branches, then sums or concatenates them).

The networks mix random leaves with blocks, nested up to three levels:

- residual blocks: a body of leaves and blocks that keeps the shape beside an identity
  (or a shape-keeping) shortcut; or a downsampling body (a strided convolution or pool
  with "same"-like padding) beside a strided 1×1 convolution shortcut (or ResNet-D's
  average pool then 1×1 convolution);
- add blocks of 2–3 branches giving a common shape, at stride 1 or all downsampling;
- concat blocks of 2–4 branches (the identity among them) with different kernels,
  dilations and paddings (symmetric, [before, after] pairs, "same") that keep the
  spatial size (or all downsample alike);
- encoder–decoder levels (U-Net): a pool or strided convolution down, inner layers and
  blocks (another level among them), then a transposed convolution or an upsampling
  back, concatenated with (or added to) an identity skip;
- repeat and sequential blocks, and flat add/concat/residual blocks of linear layers.

Checks, with PyTorch as the only source of expected values:

- every row (leaves and merge rows) has PyTorch's output shape, the path and kind that
  the document's structure gives, and the parameter total is PyTorch's;
- where convcalc rejects a network PyTorch must fail on it too, and the reverse;
- receptive fields against gradients on the positive float64 twin of the network
  (torch_build.field_network): in 1-D every row, in 2-D and 3-D every merge row and the
  last row. On each axis a probe is a unit index y and the whole slice of the row at y
  (torch_build.measure_rows): what it sees on that axis is what convcalc's per-axis
  field describes, over every position on the other axes (after a merge one unit's
  field need not be a box). Every probe away from the border must see exactly the
  first … last of convcalc's per-unit field (`Row.fields`), or nothing where that is
  empty (only within it where another axis has less than a period of interior units,
  too few for the slice to meet every branch). The summary against its definition
  (README, "What each number means"): with a whole period of consecutive interior
  units probed, the widest is the size r and the first widest (by phase) starts at
  y·S − P; S is the product of the layers' slopes (from their parameters, not from
  convcalc). Where a merge joined branches of different effective strides the field
  no longer repeats; after it (in that row and the rows it feeds) r need only bound
  every probe's field;
- deliberately broken merges (branches that do not fit) are rejected by PyTorch, and by
  convcalc with a ConvcalcError at the block's path listing each branch's shape (as
  PyTorch gives it).
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("hypothesis")

import torch
from hypothesis import event, example, given, note, reject, settings
from hypothesis import strategies as st

from convcalc.analysis.analyze import Analysis, analyze
from convcalc.analysis.field import AxisField
from convcalc.errors import ConvcalcError
from convcalc.loader import build_model
from convcalc.source import parse

from .test_leaf_stacks import SETTINGS, _activation, _axes, _layer, _written
from .torch_build import (
    Measured,
    NetworkRun,
    NoTwin,
    TorchRejects,
    block_of,
    exact_network,
    field_network,
    kind_params,
    measure_rows,
    merge_branches,
    network_geometry,
    run_exact_network,
)

#: Spatial sizes of the input: for shapes, and (larger, for interior units) for fields.
SHAPE_SIZES = {1: (6, 48), 2: (6, 28), 3: (4, 10)}
FIELD_SIZES = {1: (40, 120), 2: (16, 36), 3: (8, 14)}
#: Elements per sample any tensor may reach; a block or leaf past it ends the network.
SHAPE_BUDGET = 40_000
FIELD_BUDGET = {1: 4_000, 2: 30_000, 3: 30_000}
#: Output units probed per axis in the field tests.
PROBES = {1: 48, 2: 20, 3: 10}

LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class TooBig(Exception):
    """A tensor past the budget: the block being drawn is dropped."""


class Net:
    """What a drawing needs to know: the axes, whether fields will be measured (then
    only layers the field twin has: no padding_mode, upsampling by exact scales), and the
    element budget."""

    def __init__(self, ndim: int, field: bool) -> None:
        self.ndim, self.field = ndim, field
        self.budget = FIELD_BUDGET[ndim] if field else SHAPE_BUDGET


def run(layers: list[Any], x: torch.Tensor, net: Net) -> torch.Tensor:
    """PyTorch's output for `layers` on `x` (TorchRejects if it fails)."""
    try:
        with torch.no_grad():
            _, y = exact_network(layers, x)
    except NoTwin:
        reject()
    if y[0].numel() > net.budget:
        raise TooBig
    return y


# ---------------------------------------------------------------------------------------
# Drawing leaves that keep the spatial size (or give ceil(n / stride), like a strided
# 1×1 convolution)


def _same_padding(draw: st.DrawFn, totals: tuple[int, ...]) -> Any:
    """A padding of `totals` on each axis (the dilated kernel less one): then a layer
    of stride s gives ceil(n / s), n at stride 1. Symmetric, [before, after] pairs or
    TensorFlow's "same"."""
    forms = ["same", "pairs", "pairs"]
    if all(t % 2 == 0 for t in totals):
        forms += ["symmetric", "symmetric", "symmetric"]
    form = draw(st.sampled_from(forms))
    if form == "same":
        return "same"
    if form == "symmetric":
        return _written(draw, tuple(t // 2 for t in totals))
    befores = [draw(st.integers(0, t)) for t in totals]
    return [[b, t - b] for b, t in zip(befores, totals, strict=True)]


def _common_groups(draw: st.DrawFn, a: int, b: int) -> int:
    shared = [g for g in range(2, min(a, b) + 1) if a % g == 0 and b % g == 0]
    if shared and draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(shared))
    return 1


def same_conv(
    draw: st.DrawFn, x: torch.Tensor, out: int, stride: tuple[int, ...] | None = None
) -> dict[str, Any]:
    channels, ndim = x.shape[1], x.dim() - 2
    kernel = _axes(draw, ndim, st.integers(1, 3 if ndim == 3 else 5))
    dilation = _axes(draw, ndim, st.sampled_from([1, 1, 1, 2, 3]))
    params: dict[str, Any] = {"out_channels": out, "kernel_size": _written(draw, kernel)}
    if stride is not None and set(stride) != {1}:
        params["stride"] = _written(draw, stride)
    if set(dilation) != {1} or draw(st.integers(0, 5)) == 0:
        params["dilation"] = _written(draw, dilation)
    totals = tuple((k - 1) * d for k, d in zip(kernel, dilation, strict=True))
    if set(totals) != {0} or draw(st.booleans()):
        params["padding"] = _same_padding(draw, totals)
    groups = _common_groups(draw, channels, out)
    if groups > 1:
        params["groups"] = groups
    if draw(st.integers(0, 2)) == 0:
        params["bias"] = draw(st.booleans())
    return {"conv": params}


def pointwise_conv(
    draw: st.DrawFn, out: int, stride: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """A 1×1 convolution: a projection, a ResNet shortcut when strided."""
    params: dict[str, Any] = {"out_channels": out, "kernel_size": 1}
    if stride is not None and set(stride) != {1}:
        params["stride"] = _written(draw, stride)
    if draw(st.booleans()):
        params["bias"] = False
    return {"conv": params}


def same_pool(draw: st.DrawFn, x: torch.Tensor, stride: tuple[int, ...]) -> dict[str, Any]:
    ndim = x.dim() - 2
    kind = draw(st.sampled_from(["max_pool", "avg_pool"]))
    kernel = _axes(draw, ndim, st.integers(1, 3 if ndim == 3 else 4))
    if kind == "avg_pool" and ndim == 3:
        # AvgPool3d wants its unpadded input to hold a kernel (convcalc knows it).
        kernel = tuple(min(k, n) for k, n in zip(kernel, x.shape[2:], strict=True))
    dilation = _axes(draw, ndim, st.sampled_from([1, 1, 2])) if kind == "max_pool" else (1,) * ndim
    params: dict[str, Any] = {"kernel_size": _written(draw, kernel)}
    if stride != kernel or draw(st.booleans()):
        params["stride"] = _written(draw, stride)
    if set(dilation) != {1}:
        params["dilation"] = _written(draw, dilation)
    # Each side at most half the kernel (PyTorch's limit), or "same" (no PyTorch
    # padding: convcalc's, emulated by torch_build, with no such limit).
    totals = tuple((k - 1) * d for k, d in zip(kernel, dilation, strict=True))
    limits = [(max(0, t - k // 2), min(t, k // 2)) for t, k in zip(totals, kernel, strict=True)]
    if any(low > high for low, high in limits) or draw(st.integers(0, 4)) == 0:
        params["padding"] = "same"
    elif set(totals) != {0} or draw(st.booleans()):
        befores = [draw(st.integers(low, high)) for low, high in limits]
        pairs = [[b, t - b] for b, t in zip(befores, totals, strict=True)]
        if all(b == a for b, a in pairs) and draw(st.booleans()):
            params["padding"] = _written(draw, tuple(b for b, _ in pairs))
        else:
            params["padding"] = pairs
    if kind == "avg_pool" and draw(st.integers(0, 3)) == 0:
        params["count_include_pad"] = False
    return {kind: params}


def pointwise_layer(draw: st.DrawFn, x: torch.Tensor) -> Any:
    channels = x.shape[1]
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return "batch_norm"
    if choice == 1:
        groups = [g for g in range(1, channels + 1) if channels % g == 0]
        return {"group_norm": {"num_groups": draw(st.sampled_from(groups))}}
    return _activation(draw, tuple(x.shape[1:]), False)


def up_layer(draw: st.DrawFn, x: torch.Tensor, factor: tuple[int, ...], net: Net) -> list[Any]:
    """Layers that multiply every spatial size by `factor` exactly: a transposed
    convolution (kernel, dilation, output_padding and padding chosen so that
    d·(k − 1) + output_padding + 1 − padding = stride), or an upsampling."""
    ndim = net.ndim
    scales = {1, 2, 4} | ({3} if not net.field else set())
    linear_ok = set(factor) <= scales
    nearest_ok = set(factor) <= {1, 2, 3, 4}
    if draw(st.integers(0, 2)) == 0 and (linear_ok or nearest_ok):
        modes = (["nearest", "nearest"] if nearest_ok else []) + (
            ["nearest-exact", LINEAR_MODES[ndim]] if linear_ok else []
        )
        mode = draw(st.sampled_from(modes))
        params: dict[str, Any] = {"scale_factor": _written(draw, factor)}
        if mode != "nearest" or draw(st.booleans()):
            params["mode"] = mode
        if mode == LINEAR_MODES[ndim] and draw(st.booleans()):
            params["align_corners"] = False if net.field else draw(st.booleans())
        return [{"upsample": params}]
    channels = x.shape[1]
    out = draw(st.integers(1, 6))
    kernels, dilations, extras, pads = [], [], [], []
    for s in factor:
        options = [
            (k, d, op)
            for k in range(1, 4 if ndim == 3 else 5)
            for d in (1, 2)
            for op in range(max(s, d))
            if (k - 1) * d + op + 1 - s >= 0 and (k > 1 or d == 1)
        ]
        k, d, op = draw(st.sampled_from(options))
        total = (k - 1) * d + op + 1 - s
        b = draw(st.integers(0, total))
        kernels.append(k)
        dilations.append(d)
        extras.append(op)
        pads.append([b, total - b])
    params = {"out_channels": out, "kernel_size": _written(draw, tuple(kernels))}
    params["stride"] = _written(draw, factor)
    if any(b != a for b, a in pads) or draw(st.booleans()):
        params["padding"] = pads
    elif any(b for b, _ in pads) or draw(st.booleans()):
        params["padding"] = _written(draw, tuple(b for b, _ in pads))
    if any(extras) or draw(st.booleans()):
        params["output_padding"] = _written(draw, tuple(extras))
    if set(dilations) != {1}:
        params["dilation"] = _written(draw, tuple(dilations))
    groups = _common_groups(draw, channels, out)
    if groups > 1:
        params["groups"] = groups
    if draw(st.booleans()):
        params["bias"] = draw(st.booleans())
    return [{"conv_transpose": params}]


def down_layer(draw: st.DrawFn, x: torch.Tensor, stride: tuple[int, ...], exact: bool) -> list[Any]:
    """One layer giving ceil(n / stride) on every axis ("same"-like padding); with
    `exact` (n a multiple of the stride) also a pool whose window is its stride."""
    choice = draw(st.integers(0, 3 if exact else 2))
    if choice == 3:
        kind = draw(st.sampled_from(["max_pool", "avg_pool"]))
        return [{kind: {"kernel_size": _written(draw, stride)}}]
    if choice == 2:
        return [same_pool(draw, x, stride)]
    return [same_conv(draw, x, draw(st.integers(1, 6)), stride)]


def _stride(draw: st.DrawFn, ndim: int, sizes: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """A downsampling stride, more than 1 on some axis; dividing `sizes` if given."""
    if sizes is None:
        choices = [[1, 2, 2, 3]] * ndim
    else:
        # Stride 1 always (an axis of size 1 too), the others where they leave 2 or more.
        choices = [[1] + [s for s in (2, 2, 3) if n % s == 0 and n // s >= 2] for n in sizes]
    if draw(st.booleans()) and all(c == choices[0] for c in choices):
        factor = (draw(st.sampled_from(choices[0])),) * ndim
    else:
        factor = tuple(draw(st.sampled_from(c)) for c in choices)
    if set(factor) == {1}:
        axis = draw(st.sampled_from([a for a, c in enumerate(choices) if len(c) > 1]))
        factor = tuple(
            draw(st.sampled_from(c[1:])) if a == axis else f
            for a, (c, f) in enumerate(zip(choices, factor, strict=True))
        )
    return factor


# ---------------------------------------------------------------------------------------
# Drawing blocks


def keep(
    draw: st.DrawFn,
    x: torch.Tensor,
    depth: int,
    net: Net,
    channels: int | None = None,
    least: int = 1,
) -> tuple[list[Any], torch.Tensor]:
    """1 to 3 layers and blocks that keep the spatial size (and end with `channels`
    channels if given)."""
    layers: list[Any] = []
    for _ in range(draw(st.integers(least, 3))):
        choice = draw(st.integers(0, 9 if depth > 0 else 4))
        if choice <= 2:
            spec = [same_conv(draw, x, draw(st.integers(1, 6)))]
        elif choice == 3:
            spec = [same_pool(draw, x, (1,) * net.ndim)]
        elif choice == 4:
            spec = [pointwise_layer(draw, x)]
        else:
            spec = [draw_block(draw, x, depth - 1, net, keep_size=True)]
        try:
            x = run(spec, x, net)
        except TorchRejects:
            event("drawing: an inner item PyTorch rejects, left out")
            continue
        layers += spec
    if channels is not None and x.shape[1] != channels:
        spec = [
            same_conv(draw, x, channels) if draw(st.booleans()) else pointwise_conv(draw, channels)
        ]
        x = run(spec, x, net)
        layers += spec
    return layers, x


def residual(
    draw: st.DrawFn, x: torch.Tensor, depth: int, net: Net, keep_size: bool
) -> dict[str, Any]:
    channels = x.shape[1]
    body, _ = keep(draw, x, depth, net, channels)
    value: dict[str, Any] = {"body": body}
    shortcut = draw(st.sampled_from(["absent", "empty", "empty", "norm", "conv"]))
    if shortcut == "empty":
        value["shortcut"] = []
    elif shortcut == "norm":
        value["shortcut"] = ["batch_norm"]
    elif shortcut == "conv":
        value["shortcut"] = [pointwise_conv(draw, channels)]
    return {"residual": value}


def residual_down(
    draw: st.DrawFn, x: torch.Tensor, depth: int, net: Net, keep_size: bool
) -> dict[str, Any] | None:
    """A downsampling residual block: the body's first layer strided, the shortcut a
    strided 1×1 convolution (or ResNet-D's average pool then 1×1 convolution)."""
    if keep_size:
        return None
    stride = _stride(draw, net.ndim)
    out = draw(st.integers(1, 8))
    first = down_layer(draw, x, stride, exact=False)
    rest, _ = keep(draw, run(first, x, net), depth, net, out, least=0)
    if draw(st.integers(0, 3)) == 0:
        pool: dict[str, Any] = {"kernel_size": _written(draw, stride), "ceil_mode": True}
        if draw(st.booleans()):
            pool["count_include_pad"] = False
        shortcut = [{"avg_pool": pool}, pointwise_conv(draw, out)]
    else:
        shortcut = [pointwise_conv(draw, out, stride)]
    if draw(st.booleans()):
        shortcut.append("batch_norm")
    return {"residual": {"body": first + rest, "shortcut": shortcut}}


def add_block(
    draw: st.DrawFn, x: torch.Tensor, depth: int, net: Net, keep_size: bool
) -> dict[str, Any]:
    """2–3 branches giving one shape: all at stride 1 (the identity among them when
    the channels stay) or all downsampling alike."""
    down = _stride(draw, net.ndim) if not keep_size and draw(st.integers(0, 2)) == 0 else None
    channels = x.shape[1] if down is None and draw(st.booleans()) else draw(st.integers(1, 6))
    branches = []
    for _ in range(draw(st.integers(2, 3))):
        if down is None and channels == x.shape[1] and draw(st.integers(0, 3)) == 0:
            branches.append([])
        elif down is None:
            branches.append(keep(draw, x, depth, net, channels)[0])
        else:
            first = down_layer(draw, x, down, exact=False)
            branches.append(first + keep(draw, run(first, x, net), depth, net, channels, 0)[0])
    return {"add": branches}


def concat_block(
    draw: st.DrawFn, x: torch.Tensor, depth: int, net: Net, keep_size: bool
) -> dict[str, Any]:
    """2–4 branches of different kernels, dilations and paddings that keep the spatial
    size (the identity among them), or that all downsample alike."""
    down = _stride(draw, net.ndim) if not keep_size and draw(st.integers(0, 4)) == 0 else None
    branches = []
    for _ in range(draw(st.integers(2, 4))):
        if down is not None:
            first = down_layer(draw, x, down, exact=False)
            more = draw(st.booleans())
            branches.append(first + (keep(draw, run(first, x, net), depth, net)[0] if more else []))
            continue
        choice = draw(st.integers(0, 5))
        if choice == 0:
            branches.append([])
        elif choice <= 2:
            branches.append([same_conv(draw, x, draw(st.integers(1, 4)))])
        elif choice == 3:
            branches.append([same_pool(draw, x, (1,) * net.ndim)])
        else:
            branches.append(keep(draw, x, depth, net)[0])
    return {"concat": branches}


def unet_level(
    draw: st.DrawFn, x: torch.Tensor, depth: int, net: Net, keep_size: bool
) -> dict[str, Any] | None:
    """An encoder–decoder level: down by a stride dividing the sizes, inner layers and
    blocks (maybe another level), up by the same factor, beside an identity skip;
    concatenated (U-Net) or added (then back to the input's channels). None when no
    axis has a size divisible by 2 or 3."""
    sizes = tuple(x.shape[2:])
    if all((n % 2 and n % 3) or n < 4 for n in sizes):  # no stride of _stride fits
        return None
    factor = _stride(draw, net.ndim, sizes)
    down = down_layer(draw, x, factor, exact=True)
    inner, y = keep(draw, run(down, x, net), depth, net)
    up = up_layer(draw, y, factor, net)
    path = down + inner + up
    mode = draw(st.sampled_from(["concat", "concat", "add"]))
    if mode == "add":
        z = run(up, y, net)
        if z.shape[1] != x.shape[1]:
            path.append(pointwise_conv(draw, x.shape[1]))
    branches = [[], path] if draw(st.booleans()) else [path, []]
    return {mode: branches}


def repeat_block(
    draw: st.DrawFn, x: torch.Tensor, depth: int, net: Net, keep_size: bool
) -> dict[str, Any]:
    layers, _ = keep(draw, x, depth, net, x.shape[1])
    return {"repeat": {"times": draw(st.integers(1, 3)), "layers": layers}}


def sequential_block(
    draw: st.DrawFn, x: torch.Tensor, depth: int, net: Net, keep_size: bool
) -> dict[str, Any]:
    return {"sequential": keep(draw, x, depth, net)[0]}


def flat_block(draw: st.DrawFn, x: torch.Tensor) -> dict[str, Any]:
    """Blocks on a flat input: branches of linear layers."""
    features = x.shape[1]
    kind = draw(st.sampled_from(["add", "concat", "residual"]))
    if kind == "residual":
        return {"residual": {"body": [{"linear": {"out_features": features}}, "relu"]}}
    out = draw(st.integers(1, 8))
    branches: list[list[Any]] = []
    for _ in range(draw(st.integers(2, 3))):
        width = out if kind == "add" else draw(st.integers(1, 8))
        if kind == "concat" and draw(st.integers(0, 3)) == 0:
            branches.append([])
        else:
            branches.append([{"linear": {"out_features": width}}])
    return {kind: branches}


BLOCKS = {
    "residual": (residual, 4),
    "residual_down": (residual_down, 2),
    "add": (add_block, 2),
    "concat": (concat_block, 4),
    "unet": (unet_level, 4),
    "repeat": (repeat_block, 1),
    "sequential": (sequential_block, 1),
}


def draw_block(
    draw: st.DrawFn,
    x: torch.Tensor,
    depth: int,
    net: Net,
    keep_size: bool = False,
    weights: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A block for the input `x`; with `keep_size` one that keeps the spatial size."""
    weights = weights or {name: weight for name, (_, weight) in BLOCKS.items()}
    names = [n for n, w in weights.items() for _ in range(w)]
    for _ in range(3):
        name = draw(st.sampled_from(names))
        block = BLOCKS[name][0](draw, x, max(depth, 0), net, keep_size)
        if block is not None:
            event(f"block {name}")
            return block
    return residual(draw, x, max(depth, 0), net, keep_size)


def _input(draw: st.DrawFn, ndim: int, field: bool) -> list[int]:
    """Channels and spatial sizes, often multiples of 4 or 6 (room for U-Net levels)."""
    low, high = (FIELD_SIZES if field else SHAPE_SIZES)[ndim]
    channels = draw(st.integers(1, 4))

    def size() -> int:
        n = draw(st.integers(low, high))
        if draw(st.integers(0, 2)) > 0:
            base = draw(st.sampled_from([4, 6, 8]))
            n = max(base, n - n % base)
        return n

    sizes = (size(),) * ndim if draw(st.booleans()) else tuple(size() for _ in range(ndim))
    return [channels, *sizes]


@st.composite
def networks(
    draw: st.DrawFn,
    ndims: tuple[int, ...],
    field: bool,
    weights: dict[str, int] | None = None,
    leaves: bool = True,
) -> dict[str, Any]:
    """A model document: an input, then 1 to 4 items, mostly blocks (nested up to
    `depth` levels below the top), some random leaves of test_leaf_stacks. Each item is
    drawn for the shape PyTorch gives before it; an item PyTorch rejects ends it."""
    ndim = draw(st.sampled_from(ndims))
    net = Net(ndim, field)
    shape = _input(draw, ndim, field)
    depth = draw(st.integers(0, 2))
    x = torch.zeros(2, *shape)
    layers: list[Any] = []
    for _ in range(draw(st.integers(1, 4))):
        flat = x.dim() == 2
        if flat:
            spec = flat_block(draw, x)
        elif leaves and draw(st.integers(0, 4)) == 0:
            spec = _layer(draw, tuple(x.shape[1:]), field)
        else:
            try:
                spec = draw_block(draw, x, depth, net, weights=weights)
            except TooBig:
                break
            except TorchRejects:
                event("drawing: a block PyTorch rejects on the way, left out")
                continue
        try:
            x = run([spec], x, net)
        except TorchRejects:
            layers.append(spec)
            break
        except TooBig:
            break
        layers.append(spec)
    if not layers:
        layers = [residual(draw, torch.zeros(2, *shape), 0, net, True)]
    return {"input": shape, "layers": layers}


# ---------------------------------------------------------------------------------------
# Checks


def expected_rows(layers: list[Any]) -> list[tuple[str, str]]:
    """(path, kind) of every row, from the document's structure (SPEC §5): a block's
    leaves, then its merge row at the block's own path; repeat iterations numbered."""
    rows: list[tuple[str, str]] = []

    def walk(items: list[Any], base: str) -> None:
        for index, spec in enumerate(items):
            path = f"{base}[{index}]"
            block = block_of(spec)
            if block is None:
                rows.append((path, kind_params(spec)[0]))
                continue
            kind, value = block
            if kind == "sequential":
                walk(value, f"{path}.sequential")
            elif kind == "repeat":
                for iteration in range(value["times"]):
                    walk(value["layers"], f"{path}.repeat[{iteration}].layers")
            elif kind == "residual":
                walk(value["body"], f"{path}.residual.body")
                walk(value.get("shortcut") or [], f"{path}.residual.shortcut")
                rows.append((path, "add"))
            else:
                for number, branch in enumerate(value):
                    walk(branch, f"{path}.{kind}[{number}]")
                rows.append((path, kind))

    walk(layers, "layers")
    return rows


def nesting(layers: list[Any]) -> int:
    """How many blocks deep the deepest leaf of the document stands."""
    deepest = 0
    for spec in layers:
        block = block_of(spec)
        if block is None:
            continue
        kind, value = block
        if kind == "sequential":
            inner = [value]
        elif kind == "repeat":
            inner = [value["layers"]]
        elif kind == "residual":
            inner = [value["body"], value.get("shortcut") or []]
        else:
            inner = value
        deepest = max(deepest, 1 + max(nesting(list(branch)) for branch in inner))
    return deepest


def analyse(document: dict[str, Any]) -> Analysis:
    return analyze(build_model(parse(json.dumps(document), "model.json")))


def compare_with_torch(document: dict[str, Any]) -> tuple[Analysis, NetworkRun] | None:
    """Every row's shape, path and kind, and the parameter total, against PyTorch; None
    when both reject the network."""
    note(json.dumps(document))
    try:
        exact: NetworkRun | None = run_exact_network(document)
        refusal = None
    except TorchRejects as error:
        exact, refusal = None, str(error)
    try:
        analysis = analyse(document)
    except ConvcalcError as error:
        assert refusal is not None, f"convcalc rejects a network PyTorch runs: {error}"
        event("rejected by both")
        return None
    assert exact is not None, f"convcalc accepts a network PyTorch rejects: {refusal}"
    depth = nesting(document["layers"])
    event(f"accepted, blocks nested {min(depth, 3)}{'+' if depth > 3 else ''} deep")
    expected = expected_rows(document["layers"])
    assert exact.kinds == [kind for _, kind in expected]  # the torch graph's own order
    assert [(row.path, row.kind) for row in analysis.rows] == expected
    for row, shape in zip(analysis.rows, exact.shapes, strict=True):
        assert row.output_shape == shape, (
            f"{row.path} ({row.kind}): convcalc {row.output_shape}, torch {shape}"
        )
    assert analysis.output_shape == exact.shapes[-1]
    assert analysis.totals.params == exact.params, (
        f"params: convcalc {analysis.totals.params}, torch {exact.params}"
    )
    geometry = network_geometry(document["layers"], tuple(document["input"]), exact.shapes)
    for row, g in zip(analysis.rows, geometry, strict=True):
        assert (row.receptive_field is None) == g.whole, f"{row.path}: {row.receptive_field}"
    with_field = [row.receptive_field for row in analysis.rows if row.receptive_field]
    assert analysis.receptive_field == (with_field[-1] if with_field else None)
    return analysis, exact


def longest_run(measured: list[Measured]) -> int:
    """The most consecutive probed units away from the border."""
    run_length = longest = 0
    previous = None
    for unit in sorted(m.unit for m in measured if not m.border):
        run_length = run_length + 1 if previous is not None and unit == previous + 1 else 1
        longest, previous = max(longest, run_length), unit
    return longest


def check_axis(
    measured: list[Measured],
    exact: AxisField,
    size: int,
    stride: Fraction,
    padding: Fraction,
    period: int | None,
    complete: bool,
) -> bool:
    """One axis of a row's field against what its probed units see (SPEC §3 and the
    README's "What each number means"):

    - every unit away from the border sees exactly the first … last of convcalc's
      per-unit field (`Row.fields`), or nothing where that is empty;
    - the summary: r is the largest field over the units away from the border, and P
      that of the first unit (by phase in the period) with that largest field, which
      sees y·S − P … y·S − P + r − 1; a unit a period further on sees the same, moved
      by period·S. `period` is a multiple of the field's period, from the layers'
      parameters; None after a merge of branches with different effective strides,
      where the field no longer repeats and r need only bound every unit's field.

    convcalc's field on this axis is what the units at an index see over every
    position on the other axes; a probe's slice holds only the real ones. Unless
    `complete` (on every other axis a whole period of consecutive units away from the
    border, so that the slice meets every place where some branch's units see nothing
    or something), a probe may see less: then what it sees need only lie within
    convcalc's field, and r and P are not compared.

    False when r and P were not compared: not `complete`, fewer than a period of
    consecutive interior units probed, or no period."""
    interior = [m for m in measured if not m.border]
    note(
        "units away from the border (unit: first..last): "
        + ", ".join(f"{m.unit}: {m.first}..{m.last}" for m in interior)
    )
    note(f"convcalc: size {size}, stride {stride}, padding {padding}; period divides {period}")
    for m in interior:
        seen = None if m.first is None or m.last is None else (m.first, m.last)
        said = exact.seen(m.unit)
        if complete:
            assert seen == said, f"unit {m.unit} sees {seen}, convcalc's field says {said}"
        elif seen is not None:
            assert said is not None and said[0] <= seen[0] and seen[1] <= said[1], (
                f"unit {m.unit} sees {seen}, outside convcalc's field {said}"
            )
    seeing = [m for m in interior if m.first is not None]
    for m in seeing:
        assert m.span <= size, f"unit {m.unit} sees {m.span} positions, more than the field {size}"
    if not seeing or period is None or not complete:
        return False
    by_unit = {m.unit: m for m in seeing}
    for m in seeing:
        later = by_unit.get(m.unit + period)
        if later is not None:
            assert later.first - m.first == period * stride, f"units {m.unit} and {later.unit}"
            assert later.last - m.last == period * stride, f"units {m.unit} and {later.unit}"
    if longest_run(measured) < period:
        return False
    assert max(m.span for m in seeing) == size, "the widest interior unit is not the field's size"
    first = min((m for m in seeing if m.span == size), key=lambda m: (m.unit % period, m.unit))
    assert first.first == first.unit * stride - padding, (
        f"the first widest unit {first.unit} starts at {first.first}, "
        f"not y·S − P = {first.unit * stride - padding}"
    )
    if period == 1:
        for m in seeing:
            assert (m.first, m.span) == (m.unit * stride - padding, size), f"unit {m.unit}"
    return True


def check_fields(
    document: dict[str, Any], analysis: Analysis, exact: NetworkRun, every_row: bool
) -> None:
    input_shape = tuple(document["input"])
    ndim = len(input_shape) - 1
    rows = [i for i, row in enumerate(analysis.rows) if row.receptive_field is not None]
    if not rows:
        event("field: none")
        return
    merges = [i for i in rows if analysis.rows[i].kind in ("add", "concat")]
    wanted = rows if every_row else sorted({*merges, rows[-1]})
    geometry = network_geometry(document["layers"], input_shape, exact.shapes)
    twin = field_network(document["layers"], input_shape, exact.shapes)
    measured = measure_rows(twin, input_shape, exact.shapes, wanted, PROBES[ndim])
    for i in wanted:
        row, g = analysis.rows[i], geometry[i]
        field, fields = row.receptive_field, row.fields
        assert field is not None and fields is not None
        note(f"field of row {i}: {row.path} ({row.kind})")
        where = "merge row" if row.kind in ("add", "concat") else "leaf row"
        if g.unaligned:
            # Branches of different strides merged at or before this row: the field no
            # longer repeats, and convcalc tabulates it over the real units.
            event(f"field: after a merge of unaligned branches, at a {where}")
        else:
            assert field.effective_stride == g.stride, (
                f"{row.path}: effective stride {field.effective_stride}, the layers give {g.stride}"
            )
        runs = [longest_run(units) for units in measured[i]]
        for axis, units in enumerate(measured[i]):
            # g.period also bounds where units that see nothing recur, aligned or not.
            complete = all(
                run >= g.period[other] for other, run in enumerate(runs) if other != axis
            )
            if not complete:
                none = any(run == 0 for other, run in enumerate(runs) if other != axis)
                event(
                    "field: another axis has "
                    + ("no interior unit" if none else "less than a period of interior units")
                    + " (within the field only)"
                )
            whole = check_axis(
                units,
                fields[axis],
                field.size[axis],
                field.effective_stride[axis],
                field.effective_padding[axis],
                None if g.unaligned else g.period[axis],
                complete,
            )
            if g.unaligned or not complete:
                continue
            fractional = " (fractional stride)" if g.stride[axis].denominator > 1 else ""
            if whole:
                event(f"field: a whole period compared at a {where}{fractional}")
            else:
                event(f"field: less than a period of interior units at a {where}")


# ---------------------------------------------------------------------------------------
# Properties


@settings(max_examples=150, **SETTINGS)
@given(networks(ndims=(1, 2, 3), field=False))
def test_shapes_and_params_match_torch(document: dict[str, Any]) -> None:
    compare_with_torch(document)


# Found by these tests, once convcalc's bugs (the networks at their smallest):
#: A branch none of whose units sees anything (a transposed convolution's empty units,
#: all skipped by a stride): convcalc divided by zero placing its centre.
NOTHING_SEEN = {
    "input": [1, 8],
    "layers": [
        {"conv_transpose": {"out_channels": 1, "kernel_size": 1, "stride": 2, "output_padding": 1}},
        {
            "concat": [
                [
                    {
                        "conv": {
                            "out_channels": 1,
                            "kernel_size": 2,
                            "dilation": 2,
                            "stride": 2,
                            "padding": 1,
                        }
                    },
                    {"upsample": {"scale_factor": 2}},
                ],
                [],
            ]
        },
    ],
}
#: After a merge a unit's field is no box: the transposed convolution's branch is empty
#: on odd rows, which the last convolution alone reads, so on the width its units see
#: only the identity's column (field 1); convcalc kept the union per axis and said 3.
NOT_A_BOX = {
    "input": [1, 8, 8],
    "layers": [
        {
            "concat": [
                [
                    {
                        "conv": {
                            "out_channels": 1,
                            "kernel_size": [1, 3],
                            "stride": [2, 1],
                            "padding": [0, 1],
                        }
                    },
                    {
                        "conv_transpose": {
                            "out_channels": 1,
                            "kernel_size": 1,
                            "stride": [2, 1],
                            "output_padding": [1, 0],
                        }
                    },
                ],
                [],
            ]
        },
        {
            "conv": {
                "out_channels": 1,
                "kernel_size": 1,
                "stride": [2, 1],
                "padding": [[1, 0], [0, 0]],
            }
        },
    ],
}


@settings(max_examples=80, **SETTINGS)
@given(networks(ndims=(1,), field=True))
@example(NOTHING_SEEN)
def test_fields_match_gradients_1d(document: dict[str, Any]) -> None:
    compared = compare_with_torch(document)
    if compared is not None:
        check_fields(document, *compared, every_row=True)


@settings(max_examples=50, **SETTINGS)
@given(networks(ndims=(2, 3), field=True))
@example(NOT_A_BOX)
def test_fields_match_gradients_2d_3d(document: dict[str, Any]) -> None:
    compared = compare_with_torch(document)
    if compared is not None:
        check_fields(document, *compared, every_row=False)


DECODERS = {"unet": 6, "concat": 2, "residual": 1, "residual_down": 1, "add": 1}


@settings(max_examples=60, **SETTINGS)
@given(networks(ndims=(1, 2), field=True, weights=DECODERS, leaves=False))
def test_decoder_fields_match_gradients(document: dict[str, Any]) -> None:
    """Mostly encoder–decoder levels: transposed convolutions and upsampling give
    fractional strides and fields that vary from unit to unit within a period."""
    compared = compare_with_torch(document)
    if compared is not None:
        check_fields(document, *compared, every_row=len(document["input"]) == 2)


@st.composite
def broken_merges(draw: st.DrawFn) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A document whose last item is a merge that does not fit (one branch strided, or
    for a sum one with other channels), after some size-keeping layers and maybe inside
    a sequential block; that merge's row path, and the merge."""
    ndim = draw(st.sampled_from((1, 2, 3)))
    net = Net(ndim, False)
    shape = _input(draw, ndim, False)
    x = torch.zeros(2, *shape)
    prefix, x = keep(draw, x, 0, net, least=0)
    kind = draw(st.sampled_from(["residual", "add", "concat"]))
    if kind != "concat" and draw(st.booleans()):
        misfit = pointwise_conv(draw, x.shape[1] + draw(st.integers(1, 3)))
    else:
        misfit = down_layer(draw, x, _stride(draw, ndim), exact=False)[0]
    branches: list[list[Any]] = [[], [misfit]]
    if kind != "residual" and draw(st.booleans()):
        branches.append([])
    branches = draw(st.permutations(branches))
    block: dict[str, Any] = (
        {"residual": {"body": branches[0], "shortcut": branches[1]}}
        if kind == "residual"
        else {kind: branches}
    )
    item, path = block, f"layers[{len(prefix)}]"
    if draw(st.booleans()):
        item, path = {"sequential": [block]}, f"{path}.sequential[0]"
    return {"input": shape, "layers": [*prefix, item]}, path, block


@settings(max_examples=60, **SETTINGS)
@given(broken_merges())
def test_mismatched_merges_are_rejected_naming_the_block_and_branches(
    case: tuple[dict[str, Any], str, dict[str, Any]],
) -> None:
    document, path, block = case
    note(json.dumps(document))
    with pytest.raises(TorchRejects):
        run_exact_network(document)
    # Each branch's output shape as PyTorch gives it, in the order the error names them.
    x = torch.zeros(2, *document["input"])
    with torch.no_grad():
        x = exact_network(document["layers"][:-1], x)[1]
    ((kind, value),) = block.items()
    _, branches = merge_branches(kind, value)
    labels = ["body", "shortcut"] if kind == "residual" else [str(i) for i in range(len(branches))]
    with torch.no_grad():
        shapes = [tuple(exact_network(branch, x)[1].shape[1:]) for branch in branches]
    listed = ", ".join(
        f"[{', '.join(map(str, s))}] ({label})" for s, label in zip(shapes, labels, strict=True)
    )
    what = "spatial size" if kind == "concat" else "shape"
    with pytest.raises(ConvcalcError) as raised:
        analyse(document)
    assert raised.value.where is not None and raised.value.where.path == path
    assert (
        raised.value.message == f"{kind} needs every branch to give the same {what}; got {listed}"
    )
