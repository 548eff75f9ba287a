"""PyTorch versions of convcalc model documents, for the property tests.

Two builders, both working one leaf layer at a time from the tensor torch actually
produces (so input channels, features and sizes always come from torch, never from
convcalc):

- `run_exact` builds the network as PyTorch has it: the real `nn` modules, with the
  padding forms PyTorch lacks emulated by explicit padding or cropping. It gives every
  layer's output shape and `sum(p.numel())`, or raises `TorchRejects`.
- `measure_fields` builds a linear twin of the network for receptive fields: float64,
  every weight positive, biases off, pools as all-ones depthwise convolutions with the
  same window (max replaced by average, as the gradient method needs), pointwise
  layers as identities (they do not change which positions a unit sees), channel
  slices, shuffles and pixel shuffles as themselves. An output unit is every channel at
  one position (a field is over all the channels, SPEC §3); each unit probed gets its
  own copy of the input in the batch, and one backward pass gives the input positions
  every probed unit depends on.

  Every padding position (and every position a transposed convolution or a linear
  interpolation would read past the border) is made explicit and carries a marker `e`,
  one per axis and probe, that is zero in value but tracked by autograd: a unit whose
  gradient reaches `e[axis]` touches the border on that axis, and its measured span
  there is clipped. Only units that reach no marker are compared with convcalc: they are
  the "units away from the border" of SPEC §3, decided by torch alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)


class DropPath(nn.Module):
    """Stochastic depth as timm's DropPath: while training, each sample's input is zeroed
    with probability drop_prob (the rest scaled up); at inference, the identity."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty(x.shape[0], *[1] * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "hardswish": nn.Hardswish,
    "softmax": lambda: nn.Softmax(dim=1),
    "dropout": nn.Dropout,
    "identity": nn.Identity,
    "hardsigmoid": nn.Hardsigmoid,
    "mish": nn.Mish,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "softplus": nn.Softplus,
    "drop_path": DropPath,
}

#: Pointwise kinds: the shape is kept and each unit reads one position. (Instance
#: normalisation reads every position through its statistics, a global path: the field
#: twin holds it constant, as SPEC §6.5 measures a local field.)
POINTWISE = {
    *ACTIVATIONS,
    "batch_norm",
    "group_norm",
    "layer_norm",
    "instance_norm",
    "local_response_norm",
    "scale",
    "prelu",
}


class TorchRejects(Exception):
    """PyTorch cannot build or run this layer on this input."""


class NoTwin(Exception):
    """The layer has no faithful PyTorch twin here; the example is drawn again."""


def kind_params(spec: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A layer as written in a model document: a bare kind, or {kind: params}."""
    if isinstance(spec, str):
        return spec, {}
    ((kind, params),) = spec.items()
    return kind, dict(params or {})


def per_axis(value: Any, ndim: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (value,) * ndim


def dilated(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


def tf_same(size: int, span: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (SPEC §2): output ceil(size / stride), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def pad_pairs(
    padding: Any, sizes: tuple[int, ...], spans: tuple[int, ...], strides: tuple[int, ...]
) -> tuple[tuple[int, int], ...]:
    """(before, after) on every spatial axis for each padding form of SPEC §2."""
    ndim = len(sizes)
    if padding == "valid":
        return ((0, 0),) * ndim
    if padding == "same":
        return tuple(map(tf_same, sizes, spans, strides))
    if len(per_axis(padding, ndim)) != ndim:
        raise TorchRejects(f"padding {padding} does not have one entry per axis")
    return tuple(
        (p[0], p[1]) if isinstance(p, list | tuple) else (p, p) for p in per_axis(padding, ndim)
    )


def _flat_pad(pairs: tuple[tuple[int, int], ...]) -> list[int]:
    """F.pad's order: the last axis first."""
    return [side for pair in reversed(pairs) for side in pair]


def _module(name: str, ndim: int) -> Any:
    return getattr(nn, f"{name}{ndim}d")


class Pad(nn.Module):
    def __init__(
        self,
        pairs: tuple[tuple[int, int], ...],
        value: float | None = 0.0,
        mode: str = "constant",
    ) -> None:
        super().__init__()
        self.pad, self.value, self.mode = _flat_pad(pairs), value, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad, mode=self.mode, value=self.value)


class LayerNorm2d(nn.Module):
    """ConvNeXt's LayerNorm2d: torch.nn.LayerNorm over the channels, channels last."""

    def __init__(self, channels: int, **options: Any) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, **options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


class Scale(nn.Module):
    """Layer scale: a learned factor per channel (timm's LayerScale, channels first)."""

    def __init__(self, channels: int, ndim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels, *[1] * ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class ChannelSlice(nn.Module):
    def __init__(self, start: int, end: int | None) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start : self.end]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's reshape–transpose–reshape (what torch.nn.ChannelShuffle computes)."""
    batch, channels, *sizes = x.shape
    y = x.reshape(batch, groups, channels // groups, *sizes).transpose(1, 2)
    return y.reshape(batch, channels, *sizes)


class Crop(nn.Module):
    """Remove `before` and `after` positions on every spatial axis: a transposed
    convolution's padding, which PyTorch only has the same on both sides."""

    def __init__(self, pairs: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        self.pairs = pairs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index: list[slice] = [slice(None), slice(None)]
        for axis, (before, after) in enumerate(self.pairs):
            size = x.shape[2 + axis]
            if size - before - after < 1:
                raise TorchRejects("the transposed convolution's output would be empty")
            index.append(slice(before, size - after))
        return x[tuple(index)]


def _native_or_pairs(padding: Any, ndim: int) -> bool:
    """Whether PyTorch takes this padding as it is (the same on both sides of each axis)."""
    if isinstance(padding, int | str):
        return True
    return all(isinstance(p, int) or p[0] == p[1] for p in padding) and len(padding) == ndim


def _symmetric(padding: Any) -> Any:
    if isinstance(padding, int):
        return padding
    return tuple(p if isinstance(p, int) else p[0] for p in padding)


def _check_pool_padding(pairs: tuple[tuple[int, int], ...], kernels: tuple[int, ...]) -> None:
    """PyTorch's own check (pooling_shape_check: pad <= kernel_size / 2), applied to
    each side of padding that has to be emulated."""
    for (before, after), kernel in zip(pairs, kernels, strict=True):
        if max(before, after) > kernel // 2:
            raise TorchRejects(
                f"pad should be smaller than or equal to half of kernel size ({before}, {after})"
            )


def exact_layer(spec: str | dict[str, Any], x: torch.Tensor) -> nn.Module:
    """The PyTorch module for one layer of a model document, for the input `x`."""
    kind, p = kind_params(spec)
    p.pop("name", None)
    p = {k: tuple(v) if isinstance(v, list) and k != "padding" else v for k, v in p.items()}
    channels, sizes = x.shape[1], tuple(x.shape[2:])
    ndim = len(sizes)
    if kind in ACTIVATIONS:
        p.pop("inplace", None)
        return ACTIVATIONS[kind](**p)
    if kind == "flatten":
        return nn.Flatten()
    if kind == "linear":
        p.pop("in_features", None)
        return nn.Linear(channels, p.pop("out_features"), **p)
    if kind == "batch_norm":
        return _module("BatchNorm", max(ndim, 1))(channels, **p)
    if kind == "group_norm":
        return nn.GroupNorm(p.pop("num_groups"), channels, **p)
    if kind == "layer_norm":
        return nn.LayerNorm(channels, **p) if ndim == 0 else LayerNorm2d(channels, **p)
    if kind == "local_response_norm":
        return nn.LocalResponseNorm(**p)
    if kind == "scale":
        return Scale(channels, ndim)
    if kind == "prelu":
        return nn.PReLU(**p)
    if kind == "channel_slice":
        return ChannelSlice(p.get("start", 0), p.get("end"))
    if kind == "channel_shuffle":
        return nn.ChannelShuffle(p["groups"])
    if ndim == 0:
        raise TorchRejects(f"{kind} on a flat input")
    if kind == "instance_norm":
        return _module("InstanceNorm", ndim)(channels, **p)
    if kind == "pad":
        pairs = pad_pairs(p["padding"], sizes, (1,) * ndim, (1,) * ndim)
        return Pad(pairs, p.get("value"), p.get("mode", "constant"))
    if kind in ("pixel_shuffle", "pixel_unshuffle"):
        # PyTorch's rearrange the last two dimensions, whatever comes before them.
        if ndim != 2:
            raise ValueError("the tests give pixel shuffles [C, H, W] inputs only")
        if kind == "pixel_shuffle":
            return nn.PixelShuffle(p["upscale_factor"])
        return nn.PixelUnshuffle(p["downscale_factor"])
    if kind == "conv":
        p.pop("in_channels", None)
        padding = p.pop("padding", 0)
        stride = per_axis(p.get("stride", 1), ndim)
        spans = tuple(
            map(dilated, per_axis(p["kernel_size"], ndim), per_axis(p.get("dilation", 1), ndim))
        )
        out, kernel = p.pop("out_channels"), p.pop("kernel_size")
        if padding == "same" and any(s != 1 for s in stride):
            # PyTorch has "same" at stride 1 only; elsewhere the rule of SPEC §2.
            pre = Pad(pad_pairs(padding, sizes, spans, stride))
            return nn.Sequential(pre, _module("Conv", ndim)(channels, out, kernel, **p))
        if _native_or_pairs(padding, ndim):
            padding = padding if isinstance(padding, str) else _symmetric(padding)
            return _module("Conv", ndim)(channels, out, kernel, padding=padding, **p)
        if p.get("padding_mode", "zeros") != "zeros":
            raise ValueError("the tests give padding_mode only with PyTorch's own padding")
        pre = Pad(pad_pairs(padding, sizes, spans, stride))
        return nn.Sequential(pre, _module("Conv", ndim)(channels, out, kernel, **p))
    if kind == "conv_transpose":
        p.pop("in_channels", None)
        padding = p.pop("padding", 0)
        out, kernel = p.pop("out_channels"), p.pop("kernel_size")
        if padding == "valid":
            padding = 0  # convcalc's "valid" is no padding; PyTorch takes numbers only here
        if padding == "same" or _native_or_pairs(padding, ndim):
            padding = padding if isinstance(padding, str) else _symmetric(padding)
            if isinstance(padding, list):
                padding = tuple(padding)
            return _module("ConvTranspose", ndim)(channels, out, kernel, padding=padding, **p)
        layer = _module("ConvTranspose", ndim)(channels, out, kernel, **p)
        return nn.Sequential(layer, Crop(pad_pairs(padding, sizes, (1,) * ndim, (1,) * ndim)))
    if kind in ("max_pool", "avg_pool"):
        name = "MaxPool" if kind == "max_pool" else "AvgPool"
        padding = p.pop("padding", 0)
        kernels = per_axis(p["kernel_size"], ndim)
        strides = per_axis(p.get("stride") or p["kernel_size"], ndim)
        spans = tuple(map(dilated, kernels, per_axis(p.get("dilation", 1), ndim)))
        if padding == "valid":
            padding = 0
        if padding != "same" and _native_or_pairs(padding, ndim):
            return _module(name, ndim)(padding=_symmetric(padding), **p)
        pairs = pad_pairs(padding, sizes, spans, strides)
        if padding != "same":
            _check_pool_padding(pairs, kernels)
        # The part the same on both sides stays PyTorch's (its ceil_mode rule counts the
        # left padding); the rest is padded in front (-inf for max, which never wins; 0
        # for average, as its own padding). ("same" is no PyTorch padding, and PyTorch's
        # limit does not apply to it: all of it goes in front.)
        native = tuple(0 if padding == "same" else min(pair) for pair in pairs)
        rest = tuple((b - n, a - n) for (b, a), n in zip(pairs, native, strict=True))
        if p.get("ceil_mode") and padding != "same" and any(a > b for b, a in rest):
            raise ValueError("ceil_mode with more padding after than before has no torch twin")
        if kind == "avg_pool" and ndim == 3:
            # AvgPool3d wants its own (unpadded) input to hold a kernel; convcalc checks
            # that for padding PyTorch takes as it is, not for this emulation.
            grown = [n + b + a for n, (b, a) in zip(sizes, rest, strict=True)]
            if any(size < kernel for size, kernel in zip(grown, kernels, strict=True)):
                raise NoTwin("AvgPool3d's input check on emulated padding")
        value = -math.inf if kind == "max_pool" else 0.0
        return nn.Sequential(Pad(rest, value), _module(name, ndim)(padding=native, **p))
    if kind in ("adaptive_avg_pool", "adaptive_max_pool"):
        name = "AdaptiveAvgPool" if kind == "adaptive_avg_pool" else "AdaptiveMaxPool"
        size = p["output_size"]
        if ndim == 1 and size == (None,):
            size = sizes  # null keeps the size: PyTorch's 2-D and 3-D pools only take it
        return _module(name, ndim)(size)
    if kind == "upsample":
        scale = p.pop("scale_factor", None)
        if isinstance(scale, tuple):
            scale = tuple(float(s) for s in scale)
        elif scale is not None:
            scale = float(scale)
        return nn.Upsample(scale_factor=scale, **p)
    raise ValueError(f"no torch twin for {kind}")


@dataclass
class ExactRun:
    shapes: list[tuple[int, ...]]  # every layer's output, without the batch
    params: int


M = TypeVar("M", bound=nn.Module)


def _build_and_run(make: Callable[[], M], x: torch.Tensor) -> tuple[M, torch.Tensor]:
    """A module from `make` and its output on `x`; PyTorch's failures as TorchRejects."""
    try:
        module = make()
        with torch.no_grad():
            y = module(x)
    except (TorchRejects, NoTwin):
        raise
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as error:
        if "the tests give" in str(error) or "has no torch twin" in str(error):
            raise  # a mistake of the test itself, not a rejection
        raise TorchRejects(str(error)) from error
    if y.numel() == 0:
        raise TorchRejects(f"empty output {tuple(y.shape)}")
    return module, y


def run_one(spec: str | dict[str, Any], x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Build and run one layer; its output and parameter count, or TorchRejects."""
    module, y = _build_and_run(lambda: exact_layer(spec, x).eval(), x)
    return y, sum(q.numel() for q in module.parameters())


def run_exact(document: dict[str, Any]) -> ExactRun:
    x = torch.zeros(2, *document["input"])  # 2: group_norm refuses one value per group
    shapes, params = [], 0
    for spec in document["layers"]:
        x, count = run_one(spec, x)
        shapes.append(tuple(x.shape[1:]))
        params += count
    return ExactRun(shapes, params)


# ---------------------------------------------------------------------------------------
# Receptive fields by gradients


def _positive(module: nn.Module, generator: torch.Generator) -> nn.Module:
    module = module.double()
    with torch.no_grad():
        for q in module.parameters():
            q.copy_(torch.rand(q.shape, generator=generator, dtype=torch.float64) + 0.5)
    return module


def marked_pad(
    x: torch.Tensor, pairs: tuple[tuple[int, int], ...], e: torch.Tensor
) -> torch.Tensor:
    """Zero padding whose positions on axis a hold e[:, a] (zero, tracked by autograd)."""
    y = F.pad(x, _flat_pad(pairs))
    for axis, (before, after) in enumerate(pairs):
        if before == after == 0:
            continue
        length = y.shape[2 + axis]
        mask = torch.zeros(length, dtype=y.dtype)
        mask[:before] = 1
        mask[length - after :] = 1
        shape = [1] * y.dim()
        shape[2 + axis] = length
        y = y + e[:, axis].view(-1, *[1] * (y.dim() - 1)) * mask.view(shape)
    return y


def _crop(x: torch.Tensor, starts: tuple[int, ...], lengths: tuple[int, ...]) -> torch.Tensor:
    index = [slice(None), slice(None)]
    for start, length in zip(starts, lengths, strict=True):
        index.append(slice(start, start + length))
    y = x[tuple(index)]
    assert tuple(y.shape[2:]) == lengths, (y.shape, starts, lengths)
    return y


Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def field_layer(
    spec: str | dict[str, Any],
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    generator: torch.Generator,
) -> Step:
    """The linear twin of one layer (see the module docstring), mapping (x, e) → y."""
    kind, p = kind_params(spec)
    channels, sizes = in_shape[0], in_shape[1:]
    outs = out_shape[1:]
    ndim = len(sizes)
    if kind == "batch_norm" and p.get("affine", True):
        norm = _positive(_module("BatchNorm", ndim)(channels), generator).eval()
        with torch.no_grad():
            norm.bias.zero_()
        return lambda x, e: norm(x)
    if kind in POINTWISE:
        return lambda x, e: x
    if kind == "channel_slice":
        part = slice(p.get("start", 0), p.get("end"))
        return lambda x, e: x[:, part]
    if kind == "channel_shuffle":
        return lambda x, e: channel_shuffle(x, p["groups"])
    if kind == "pixel_shuffle":
        return lambda x, e: F.pixel_shuffle(x, p["upscale_factor"])
    if kind == "pixel_unshuffle":
        return lambda x, e: F.pixel_unshuffle(x, p["downscale_factor"])
    if kind == "pad":
        # Whatever fills the padding, a unit that reads it touches the border: marked.
        pairs = pad_pairs(p["padding"], sizes, (1,) * ndim, (1,) * ndim)
        return lambda x, e: marked_pad(x, pairs, e)
    # Flat rows have no field; their twins only let a network run on past its last field.
    if kind == "flatten":
        return lambda x, e: x.flatten(1)
    if kind == "linear":
        linear = _positive(nn.Linear(channels, p["out_features"], bias=False), generator)
        return lambda x, e: linear(x)
    kernels = per_axis(p.get("kernel_size", 1), ndim)
    dilations = per_axis(p.get("dilation", 1), ndim)
    spans = tuple(map(dilated, kernels, dilations))
    if kind == "conv":
        strides = per_axis(p.get("stride", 1), ndim)
        pairs = pad_pairs(p.get("padding", 0), sizes, spans, strides)
        conv = _module("Conv", ndim)(
            channels,
            p["out_channels"],
            kernels,
            stride=strides,
            dilation=dilations,
            groups=p.get("groups", 1),
            bias=False,
        )
        conv = _positive(conv, generator)
        return lambda x, e: conv(marked_pad(x, pairs, e))
    if kind == "conv_transpose":
        strides = per_axis(p.get("stride", 1), ndim)
        extras = per_axis(p.get("output_padding", 0), ndim)
        pairs = pad_pairs(p.get("padding", 0), sizes, spans, strides)
        # Enough marked input on both sides that every tap of a kept output lands on
        # an input or a marked position (PyTorch would read nothing there).
        margins = tuple(
            -(-(span + extra) // s) + 1
            for span, extra, s in zip(spans, extras, strides, strict=True)
        )
        conv = _module("ConvTranspose", ndim)(
            channels,
            p["out_channels"],
            kernels,
            stride=strides,
            dilation=dilations,
            groups=p.get("groups", 1),
            bias=False,
        )
        conv = _positive(conv, generator)
        starts = tuple(b + q * s for (b, _), q, s in zip(pairs, margins, strides, strict=True))
        return lambda x, e: _crop(
            conv(marked_pad(x, tuple((q, q) for q in margins), e)), starts, outs
        )
    if kind in ("max_pool", "avg_pool"):
        strides = per_axis(p.get("stride") or p["kernel_size"], ndim)
        pairs = pad_pairs(p.get("padding", 0), sizes, spans, strides)
        # ceil_mode's last window may hang past the right padding: pad it explicitly
        # (marked) so that the all-ones convolution gives as many windows as PyTorch.
        pairs = tuple(
            (b, a + max(0, (o - 1) * s + span - (n + b + a)))
            for (b, a), o, s, span, n in zip(pairs, outs, strides, spans, sizes, strict=True)
        )
        pool = _module("Conv", ndim)(
            channels,
            channels,
            kernels,
            stride=strides,
            dilation=dilations,
            groups=channels,
            bias=False,
        )
        pool = _positive(pool, generator)
        return lambda x, e: pool(marked_pad(x, pairs, e))
    if kind in ("adaptive_avg_pool", "adaptive_max_pool"):
        pool = _module("AdaptiveAvgPool", ndim)(outs)
        return lambda x, e: pool(x)
    if kind == "upsample":
        assert "size" not in p and not p.get("align_corners"), "field tests use scale_factor"
        scales = tuple(Fraction(str(s)) for s in per_axis(p["scale_factor"], ndim))
        mode = p.get("mode", "nearest")
        factor = tuple(float(s) for s in scales)
        if mode.startswith("nearest"):
            return lambda x, e: F.interpolate(x, scale_factor=factor, mode=mode)
        # Linear interpolation clamps at the border: give it marked positions instead.
        margins = tuple(2 * s.denominator for s in scales)
        starts = tuple(int(q * s) for q, s in zip(margins, scales, strict=True))
        return lambda x, e: _crop(
            F.interpolate(
                marked_pad(x, tuple((q, q) for q in margins), e),
                scale_factor=factor,
                mode=mode,
                align_corners=False,
            ),
            starts,
            outs,
        )
    raise ValueError(f"no field twin for {kind}")


@dataclass(frozen=True)
class Measured:
    """What one probed unit sees on one axis."""

    unit: int
    first: int | None  # None: the unit depends on no input position
    last: int | None
    border: bool  # it reaches padding (or the border) on this axis

    @property
    def span(self) -> int:
        assert self.first is not None and self.last is not None
        return self.last - self.first + 1


def probe_units(size: int, most: int) -> list[int]:
    """Consecutive units to probe on an axis of `size` units: all, or `most` in the middle."""
    if size <= most:
        return list(range(size))
    start = (size - most) // 2
    return list(range(start, start + most))


def measure_fields(
    layers: list[Any], input_shape: tuple[int, ...], shapes: list[tuple[int, ...]], most: int
) -> list[list[Measured]]:
    """Per spatial axis, what each probed output unit of the last layer sees.

    `shapes` are PyTorch's output shapes of `layers` (from `run_exact`); the twin is
    checked to reproduce them.
    """
    generator = torch.Generator().manual_seed(0)
    steps = []
    shape = tuple(input_shape)
    for spec, out in zip(layers, shapes, strict=True):
        steps.append(field_layer(spec, shape, out, generator))
        shape = out
    ndim = len(input_shape) - 1
    units = [probe_units(size, most) for size in shapes[-1][1:]]
    batch = max(map(len, units))
    # Shorter axes repeat their last unit: a probe is a unit on every axis at once.
    columns = [torch.tensor(u + [u[-1]] * (batch - len(u))) for u in units]
    x = torch.ones(batch, *input_shape, dtype=torch.float64, requires_grad=True)
    e = torch.zeros(batch, ndim, dtype=torch.float64, requires_grad=True)
    y = x
    for step, out in zip(steps, shapes, strict=True):
        y = step(y, e)
        assert tuple(y.shape[1:]) == out, f"field twin gives {tuple(y.shape[1:])}, torch {out}"
    # A unit is every channel at a position: a pixel unshuffle puts a position's r²
    # inputs in r² channels.
    y.sum(dim=1)[(torch.arange(batch), *columns)].sum().backward()
    assert x.grad is not None
    marks = e.grad if e.grad is not None else torch.zeros_like(e)  # None: nothing padded
    seen = x.grad != 0
    result = []
    for axis in range(ndim):
        others = [d for d in range(1, ndim + 2) if d != axis + 2]
        profile = seen.any(dim=others[-1])
        for d in reversed(others[:-1]):
            profile = profile.any(dim=d)
        measured = []
        for probe, unit in enumerate(units[axis]):
            where = torch.nonzero(profile[probe]).flatten().tolist()
            border = bool(marks[probe, axis] != 0)
            measured.append(
                Measured(unit, where[0] if where else None, where[-1] if where else None, border)
            )
        result.append(measured)
    return result


def period_bound(
    layers: list[Any], input_shape: tuple[int, ...], shapes: list[tuple[int, ...]]
) -> tuple[int, ...]:
    """Per axis, a number of output units after which every unit's field repeats shifted
    (a multiple of the field's period): the product of the denominators of the layers'
    slopes (input positions per output unit), from the layers' parameters and PyTorch's
    sizes. Transposed convolutions step 1/stride, upsampling 1/scale, adaptive pools n/m.
    """
    ndim = len(input_shape) - 1
    bound = [1] * ndim
    sizes = input_shape[1:]
    for spec, out in zip(layers, shapes, strict=True):
        kind, p = kind_params(spec)
        for axis in range(ndim):
            if kind == "conv_transpose":
                slope = Fraction(1, per_axis(p.get("stride", 1), ndim)[axis])
            elif kind == "pixel_shuffle":
                slope = Fraction(1, p["upscale_factor"])
            elif kind == "upsample":
                slope = 1 / Fraction(str(per_axis(p["scale_factor"], ndim)[axis]))
            elif kind.startswith("adaptive"):
                slope = Fraction(sizes[axis], out[1 + axis])
            else:
                slope = Fraction(1)
            bound[axis] *= slope.denominator
        sizes = out[1:]
    return tuple(bound)


# ---------------------------------------------------------------------------------------
# Networks with blocks (SPEC §2): sequential, repeat, residual, add, concat
#
# The same two builders for whole model documents. A merge is a small module that runs
# its branches (an empty branch is the identity) and sums them (`torch.stack(...).sum(0)`,
# which, unlike `+`, refuses branches of different shapes instead of broadcasting them)
# or concatenates them along the channels (`torch.cat`). Rows come out in convcalc's
# order: a block's leaves, then its merge.

BLOCK_KINDS = ("sequential", "repeat", "residual", "add", "concat")


def block_of(spec: Any) -> tuple[str, Any] | None:
    """(kind, value) of a block as a model document writes it; None for a leaf."""
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, value),) = spec.items()
        if kind in BLOCK_KINDS:
            return kind, value
    return None


def merge_branches(kind: str, value: Any) -> tuple[str, list[list[Any]]]:
    """ "add" or "concat", and the branches (lists of layers) of a merging block."""
    if kind == "residual":
        return "add", [list(value["body"]), list(value.get("shortcut") or [])]
    return kind, [list(branch) for branch in value]


def merged(mode: str, outputs: list[torch.Tensor]) -> torch.Tensor:
    if mode == "add":
        return torch.stack(outputs).sum(0)
    return torch.cat(outputs, dim=1)


class LeafModule(nn.Module):
    """One leaf layer of a model document (what convcalc gives a row)."""

    def __init__(self, kind: str, module: nn.Module) -> None:
        super().__init__()
        self.kind, self.module = kind, module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class MergeModule(nn.Module):
    """A residual, add or concat block: its branches on the same input, then merged."""

    def __init__(self, mode: str, branches: list[nn.Module]) -> None:
        super().__init__()
        self.kind, self.branches = mode, nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return merged(self.kind, [branch(x) for branch in self.branches])


def _leaf_module(spec: Any, x: torch.Tensor) -> tuple[LeafModule, torch.Tensor]:
    """One leaf's module and output, PyTorch's failures as TorchRejects."""
    return _build_and_run(lambda: LeafModule(kind_params(spec)[0], exact_layer(spec, x).eval()), x)


def exact_network(layers: list[Any], x: torch.Tensor) -> tuple[nn.Sequential, torch.Tensor]:
    """The PyTorch module graph of a list of layers (blocks included) for the input `x`,
    and its output; TorchRejects where PyTorch cannot build or run it."""
    modules: list[nn.Module] = []
    for spec in layers:
        block = block_of(spec)
        if block is None:
            module, x = _leaf_module(spec, x)
            modules.append(module)
            continue
        kind, value = block
        if kind in ("sequential", "repeat"):
            inner = value if kind == "sequential" else value["layers"]
            for _ in range(1 if kind == "sequential" else value["times"]):
                module, x = exact_network(list(inner), x)
                modules.append(module)
            continue
        mode, branches = merge_branches(kind, value)
        built, outputs = [], []
        for branch in branches:
            module, y = exact_network(branch, x)
            built.append(module)
            outputs.append(y)
        try:
            x = merged(mode, outputs)
        except RuntimeError as error:
            raise TorchRejects(f"{kind}: {error}") from error
        modules.append(MergeModule(mode, built))
    return nn.Sequential(*modules), x


@dataclass
class NetworkRun:
    shapes: list[tuple[int, ...]]  # every row's output (leaves and merges), without the batch
    kinds: list[str]  # every row's kind: the leaf's, or "add" / "concat"
    params: int
    module: nn.Module


def run_exact_network(document: dict[str, Any]) -> NetworkRun:
    """Build the document's module graph, then run it afresh, recording the output of
    every leaf and merge module in execution order (forward hooks fire when a module
    returns: a merge after its branches' leaves)."""
    shape = tuple(document["input"])
    with torch.no_grad():
        module, _ = exact_network(list(document["layers"]), torch.zeros(2, *shape))
    module.eval()
    shapes: list[tuple[int, ...]] = []
    kinds: list[str] = []

    def record(m: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        shapes.append(tuple(output.shape[1:]))
        kinds.append(m.kind)

    hooks = [
        m.register_forward_hook(record)
        for m in module.modules()
        if isinstance(m, LeafModule | MergeModule)
    ]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        module(torch.rand(2, *shape, generator=generator))
    for hook in hooks:
        hook.remove()
    params = sum(q.numel() for q in module.parameters())
    return NetworkRun(shapes, kinds, params, module)


@dataclass(frozen=True)
class RowGeometry:
    """What a row's layers make of the input along each axis, from the document's
    parameters and PyTorch's sizes alone: the effective stride (the product of the
    slopes, input positions per output unit), a multiple of the field's period (see
    `period_bound`), whether an earlier merge joined branches of different strides
    (then the field no longer repeats), and whether the units see the whole input
    (flat, or after an adaptive pool to 1 on every axis)."""

    stride: tuple[Fraction, ...]
    period: tuple[int, ...]
    unaligned: bool
    whole: bool


def _slope(spec: Any, sizes: tuple[int, ...], out: tuple[int, ...], axis: int) -> Fraction:
    kind, p = kind_params(spec)
    ndim = len(sizes)
    if kind in ("conv", "max_pool", "avg_pool"):
        key = "stride" if kind == "conv" or p.get("stride") else "kernel_size"
        return Fraction(per_axis(p.get(key, 1), ndim)[axis])
    if kind == "conv_transpose":
        return Fraction(1, per_axis(p.get("stride", 1), ndim)[axis])
    if kind == "pixel_shuffle":
        return Fraction(1, p["upscale_factor"])
    if kind == "pixel_unshuffle":
        return Fraction(p["downscale_factor"])
    if kind == "upsample" and p.get("scale_factor") is not None:
        return 1 / Fraction(str(per_axis(p["scale_factor"], ndim)[axis]))
    if kind == "upsample" or kind.startswith("adaptive"):
        return Fraction(sizes[axis], out[axis])
    return Fraction(1)


def network_geometry(
    layers: list[Any], input_shape: tuple[int, ...], shapes: list[tuple[int, ...]]
) -> list[RowGeometry]:
    """RowGeometry of every row, in row order; `shapes` are PyTorch's (NetworkRun)."""
    rows: list[RowGeometry] = []
    ndim = len(input_shape) - 1
    start = RowGeometry((Fraction(1),) * ndim, (1,) * ndim, False, False)

    def walk(items: list[Any], shape: tuple[int, ...], g: RowGeometry) -> tuple[Any, ...]:
        for spec in items:
            block = block_of(spec)
            if block is None:
                out = shapes[len(rows)]
                if len(out) < 2 or len(shape) < 2 or g.whole:  # no field from here on
                    g = RowGeometry((), (), g.unaligned, True)
                else:
                    slopes = [_slope(spec, shape[1:], out[1:], a) for a in range(ndim)]
                    kind = kind_params(spec)[0]
                    g = RowGeometry(
                        tuple(s * q for s, q in zip(g.stride, slopes, strict=True)),
                        tuple(t * q.denominator for t, q in zip(g.period, slopes, strict=True)),
                        g.unaligned,
                        g.whole or (kind.startswith("adaptive") and set(out[1:]) == {1}),
                    )
                rows.append(g)
                shape = out
                continue
            kind, value = block
            if kind in ("sequential", "repeat"):
                inner = value if kind == "sequential" else value["layers"]
                for _ in range(1 if kind == "sequential" else value["times"]):
                    shape, g = walk(list(inner), shape, g)
                continue
            ends = [walk(branch, shape, g) for branch in merge_branches(kind, value)[1]]
            out = shapes[len(rows)]
            ends_g = [e[1] for e in ends]
            if len(out) < 2 or any(e.whole for e in ends_g):
                g = RowGeometry((), (), any(e.unaligned for e in ends_g), True)
            else:
                strides = {e.stride for e in ends_g}
                g = RowGeometry(
                    max(strides),  # only meaningful when aligned
                    tuple(
                        math.lcm(*axis) for axis in zip(*(e.period for e in ends_g), strict=True)
                    ),
                    any(e.unaligned for e in ends_g) or len(strides) > 1,
                    False,
                )
            rows.append(g)
            shape = out
        return shape, g

    walk(list(layers), tuple(input_shape), start)
    assert len(rows) == len(shapes)
    return rows


Twin = Callable[[torch.Tensor, torch.Tensor, list[torch.Tensor]], torch.Tensor]


def field_network(
    layers: list[Any], input_shape: tuple[int, ...], shapes: list[tuple[int, ...]]
) -> Twin:
    """The linear twin (see the module docstring) of a list of layers with blocks:
    twin(x, e, rows) gives the output and appends every row's output to `rows`. A merge
    sums (add) or concatenates its branches' twins: with positive weights and inputs a
    unit's gradient reaches the union of what its branches' units see."""
    generator = torch.Generator().manual_seed(0)
    taken = [0]

    def leaf(step: Step, out: tuple[int, ...]) -> Twin:
        def run(x: torch.Tensor, e: torch.Tensor, rows: list[torch.Tensor]) -> torch.Tensor:
            y = step(x, e)
            assert tuple(y.shape[1:]) == out, f"field twin gives {tuple(y.shape[1:])}, torch {out}"
            rows.append(y)
            return y

        return run

    def chain(twins: list[Twin]) -> Twin:
        def run(x: torch.Tensor, e: torch.Tensor, rows: list[torch.Tensor]) -> torch.Tensor:
            for twin in twins:
                x = twin(x, e, rows)
            return x

        return run

    def merge(mode: str, twins: list[Twin], out: tuple[int, ...]) -> Twin:
        def run(x: torch.Tensor, e: torch.Tensor, rows: list[torch.Tensor]) -> torch.Tensor:
            y = merged(mode, [twin(x, e, rows) for twin in twins])
            assert tuple(y.shape[1:]) == out, f"field twin gives {tuple(y.shape[1:])}, torch {out}"
            rows.append(y)
            return y

        return run

    def build(items: list[Any], shape: tuple[int, ...]) -> tuple[Twin, tuple[int, ...]]:
        twins: list[Twin] = []
        for spec in items:
            block = block_of(spec)
            if block is None:
                out = shapes[taken[0]]
                taken[0] += 1
                twins.append(leaf(field_layer(spec, shape, out, generator), out))
                shape = out
                continue
            kind, value = block
            if kind in ("sequential", "repeat"):
                inner = value if kind == "sequential" else value["layers"]
                for _ in range(1 if kind == "sequential" else value["times"]):
                    twin, shape = build(list(inner), shape)
                    twins.append(twin)
                continue
            mode, branches = merge_branches(kind, value)
            built = [build(branch, shape)[0] for branch in branches]
            shape = shapes[taken[0]]
            taken[0] += 1
            twins.append(merge(mode, built, shape))
        return chain(twins), shape

    twin, _ = build(list(layers), tuple(input_shape))
    assert taken[0] == len(shapes)
    return twin


def measure_rows(
    twin: Twin,
    input_shape: tuple[int, ...],
    shapes: list[tuple[int, ...]],
    wanted: list[int],
    most: int,
) -> dict[int, list[list[Measured]]]:
    """Per wanted row and spatial axis, what each probed unit index on that axis sees
    there: one forward pass, then one backward pass per row and axis, probe p in batch
    element p. The probe of index u on axis a is the whole slice of the row at u on a
    (every channel, every position on the other axes), and what it sees on a is the
    union of what those units see, as convcalc's per-axis field has it. (One unit is
    not enough: after a merge its field need not be a box. Where one branch's units see
    nothing, as a transposed convolution's may, a unit sees on axis a only the other
    branches' positions at some positions on the other axes, and all of them at others.)
    Border marks are per axis: e[p, a] marks padding on axis a, whatever the position
    on the other axes."""
    ndim = len(input_shape) - 1
    units = {i: [probe_units(size, most) for size in shapes[i][1:]] for i in wanted}
    batch = max((len(u) for axes in units.values() for u in axes), default=1)
    x = torch.ones(batch, *input_shape, dtype=torch.float64, requires_grad=True)
    e = torch.zeros(batch, ndim, dtype=torch.float64, requires_grad=True)
    rows: list[torch.Tensor] = []
    twin(x, e, rows)
    assert len(rows) == len(shapes)
    result = {}
    for i in wanted:
        output = rows[i].sum(dim=1)  # batch, *spatial
        per_axis_result = []
        for axis, probed in enumerate(units[i]):
            slices = torch.zeros(batch, shapes[i][1 + axis], dtype=torch.float64)
            slices[torch.arange(len(probed)), probed] = 1
            view = [batch] + [1] * ndim
            view[1 + axis] = shapes[i][1 + axis]
            target = (output * slices.view(view)).sum()
            x_grad, e_grad = torch.autograd.grad(
                target, [x, e], retain_graph=True, allow_unused=True
            )
            assert x_grad is not None
            marks = e_grad if e_grad is not None else torch.zeros_like(e)
            others = [d for d in range(1, ndim + 2) if d != axis + 2]  # channels, other axes
            profile = (x_grad != 0).any(dim=others[-1])
            for d in reversed(others[:-1]):
                profile = profile.any(dim=d)
            measured = []
            for probe, unit in enumerate(probed):
                where = torch.nonzero(profile[probe]).flatten().tolist()
                border = bool(marks[probe, axis] != 0)
                measured.append(
                    Measured(
                        unit, where[0] if where else None, where[-1] if where else None, border
                    )
                )
            per_axis_result.append(measured)
        result[i] = per_axis_result
    return result
