"""The leaf layer kinds: frozen values that know their own arithmetic.

`Layer.apply(shape)` gives what the layer does to an input of that shape: the output
shape, the parameters and multiply-accumulates it adds, the window each output unit reads
on every spatial axis (the step of the receptive field), and findings about silent
mistakes. Parameter names and defaults are PyTorch's; each dataclass field made with
`param` is one, checked by the loader. Adding a kind is one class here plus one entry in
`KINDS` at the bottom.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

from convcalc.errors import ConvcalcError, Where
from convcalc.model.axes import (
    AXIS_NAMES,
    AdaptiveBins,
    Interpolation,
    Padding,
    Sliding,
    Transposed,
    Window,
    dilated,
    per_axis,
    resolve_padding,
    sliding_output_size,
    transposed_output_size,
    unread_positions,
)
from convcalc.model.params import (
    axis_non_negative,
    axis_positive,
    boolean,
    choice,
    integer,
    number,
    optional,
    output_sizes,
    padding_form,
    param,
    positive_int,
    probability,
    scale_factors,
)

__all__ = [
    "KINDS",
    "POINTWISE",
    "Effect",
    "Finding",
    "Layer",
    "Shape",
    "SizeRule",
    "format_shape",
    "parameters",
]

#: Channels first, without the batch: [C, L], [C, H, W], [C, D, H, W], or [N] once flat.
Shape = tuple[int, ...]

#: The most elements a tensor holds: PyTorch's int64 element count.
MAX_ELEMENTS = 2**63 - 1

#: Every output unit reads the same position of the input on this axis.
POINTWISE = Sliding(span=1, stride=1, before=0)


def format_shape(shape: Shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


@dataclass(frozen=True)
class Finding:
    """A silent mistake a layer makes: a stable `code` and a sentence for people."""

    code: str
    message: str


@dataclass(frozen=True)
class SizeRule:
    """How one axis's output size follows from its input size, as numbers to show
    (`--explain`): which formula, and what goes into it."""

    rule: Literal["sliding", "transposed", "scale", "size", "adaptive"]
    size: int
    output: int
    kernel: int = 1
    dilation: int = 1
    stride: int = 1
    before: int = 0
    after: int = 0
    output_padding: int = 0
    ceil_mode: bool = False
    scale: Fraction | None = None


@dataclass(frozen=True)
class Effect:
    """What a layer does to one input shape.

    `windows` has one window per spatial axis of the input, or is None when every output
    unit sees the whole input (no spatial axes left, or a global pooling).
    """

    output_shape: Shape
    params: int = 0
    macs: int = 0
    windows: tuple[Window, ...] | None = None
    findings: tuple[Finding, ...] = ()
    rules: tuple[SizeRule, ...] = ()  # one per spatial axis where the size is computed

    def __post_init__(self) -> None:
        # Numbers of any size are exact here, but no tensor can be this large (PyTorch
        # counts elements in int64), and refusing it keeps every total printable.
        elements = math.prod(self.output_shape)
        largest = max(elements, self.params)
        if largest > MAX_ELEMENTS:
            raise ConvcalcError(
                f"the {'output' if elements == largest else 'weights'} would have at least "
                f"2^{largest.bit_length() - 1} elements, more than 2^63 − 1, the most a "
                "PyTorch tensor can hold"
            )


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Layer:
    """A leaf layer: its parameters, and `apply`, its arithmetic on one input shape."""

    kind: ClassVar[str]

    def __post_init__(self) -> None:
        # Parameters are checked however a layer is made (a model file, flags, Python) and
        # kept in one form (lists become tuples); a bad one is named as the error's place.
        for name, field in parameters(type(self)).items():
            try:
                object.__setattr__(self, name, field.metadata["check"](getattr(self, name)))
            except ConvcalcError as error:
                raise error.at(Where(name)) from None

    # Equality, hash and repr are written once here for every kind (the kinds say eq=False,
    # repr=False): generated per class they cost about 5 ms of every start (issue 5).
    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in parameters(type(self)))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in parameters(type(self)))
        return f"{type(self).__name__}({values})"

    def apply(self, shape: Shape) -> Effect:
        raise NotImplementedError

    def global_statistics(self) -> bool:
        """Whether every output also depends, through statistics over all positions, on
        the whole input (instance and group normalisation, at inference too): a global
        path, beside the layer's own window (SPEC §6.5)."""
        return False


_PARAMETERS: dict[type[Layer], dict[str, dataclasses.Field[Any]]] = {}


def parameters(kind: type[Layer]) -> dict[str, dataclasses.Field[Any]]:
    """The parameters a kind of layer takes (its fields made with `param`, each with its
    check, default and description), by name: the one table the loader, the schema and
    the layers' own checks read."""
    found = _PARAMETERS.get(kind)
    if found is None:
        fields = dataclasses.fields(kind)
        found = _PARAMETERS[kind] = {f.name: f for f in fields if "check" in f.metadata}
    return found


def _spatial(kind: str, shape: Shape) -> tuple[int, ...]:
    if len(shape) < 2:
        raise ConvcalcError(
            f"{kind} needs spatial axes, an input [C, L], [C, H, W] or [C, D, H, W]; "
            f"got {format_shape(shape)}"
        )
    return shape[1:]


def _pointwise(shape: Shape, params: int = 0) -> Effect:
    windows = (POINTWISE,) * (len(shape) - 1) if len(shape) > 1 else None
    return Effect(shape, params, windows=windows)


def _check_in(name: str, given: int | None, actual: int) -> None:
    if given is not None and given != actual:
        raise ConvcalcError(f"{name} is {given}, but the input has {actual}")


def _check_groups(groups: int, in_channels: int, out_channels: int) -> None:
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise ConvcalcError(f"groups ({groups}) must divide {name} ({channels})")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True)
class _Slide:
    """A sliding window resolved on every axis: the shared arithmetic of convolutions
    and pools."""

    sizes: tuple[int, ...]
    output_sizes: tuple[int, ...]
    windows: tuple[Sliding, ...]
    findings: tuple[Finding, ...]
    rules: tuple[SizeRule, ...]


def _native(padding: Padding) -> bool:
    """Whether PyTorch takes this padding as it is: "valid", a number, one per axis, or
    pairs that are the same before and after."""
    return (
        padding == "valid"
        or isinstance(padding, int)
        or (isinstance(padding, tuple) and all(isinstance(p, int) or p[0] == p[1] for p in padding))
    )


def _slide(
    sizes: tuple[int, ...],
    kernel_size: int | tuple[int, ...],
    stride: int | tuple[int, ...],
    padding: Padding,
    dilation: int | tuple[int, ...] = 1,
    ceil_mode: bool = False,
    pool: bool = False,
) -> _Slide:
    ndim = len(sizes)
    kernels = per_axis(kernel_size, ndim, "kernel_size")
    strides = per_axis(stride, ndim, "stride")
    dilations = per_axis(dilation, ndim, "dilation")
    spans = tuple(map(dilated, kernels, dilations))
    pads = resolve_padding(padding, sizes, spans, strides)
    if pool and padding != "same":
        # PyTorch refuses pool padding over half the kernel (undilated, even for a
        # dilated max pool): windows that would read padding alone. "same" is
        # TensorFlow's rule, which PyTorch takes as an explicit pad in front.
        for pad, kernel in zip(pads, kernels, strict=True):
            if max(pad) > kernel // 2:
                raise ConvcalcError(
                    f"padding {max(pad)} is more than half the kernel size {kernel} "
                    f"({kernel // 2} at most), as PyTorch requires of pools"
                )
    outputs, windows, findings, rules = [], [], [], []
    for axis, size, kernel, dil, span, step, (before, after) in zip(
        AXIS_NAMES[ndim], sizes, kernels, dilations, spans, strides, pads, strict=True
    ):
        out = sliding_output_size(size, span, step, before, after, ceil_mode)
        formula = f"({size} + {before} + {after} − {span}) / {step} + 1"
        if out < 1:
            raise ConvcalcError(
                f"the output would be empty on axis {axis}: {formula} = {out}; the padded "
                f"input ({size + before + after}) must be at least the kernel's span ({span})"
            )
        # Real input positions past the last window: the seed's "(W − K + 2P)/S is not
        # an integer" case. Positions in the right padding that no window reaches are not.
        dropped = size + before - ((out - 1) * step + span)
        if dropped > 0:
            more = step - (size + before + after - span) % step
            findings.append(
                Finding(
                    "dropped-input",
                    f"the last {_plural(dropped, 'input position')} of axis {axis} "
                    f"(of {size}) {'is' if dropped == 1 else 'are'} never read: "
                    f"({size} + {before} + {after} − {span}) / {step} is not a whole number; "
                    f'pad {more} more after, or use padding "same"',
                )
            )
        skipped = unread_positions(size, out, kernel, dil, step, before) - max(dropped, 0)
        if skipped > 0:
            findings.append(
                Finding(
                    "uncovered-input",
                    f"{_plural(skipped, 'input position')} of {size} on axis {axis} fall "
                    f"between the windows and {'is' if skipped == 1 else 'are'} never read: "
                    + (
                        f"the stride {step} is larger than the kernel's span {span}; use a "
                        f"stride of at most {span} or a larger kernel"
                        if step > span
                        else f"the dilated kernel reads one position in every {dil} and the "
                        f"stride {step} never fills the gaps; use a stride of 1 or no dilation"
                    ),
                )
            )
        if padding == "same" and before != after:
            findings.append(
                Finding(
                    "asymmetric-padding",
                    f'padding "same" pads axis {axis} by {before} before and {after} after '
                    f"(kernel span {span}, stride {step}): PyTorch's symmetric padding cannot "
                    f"express it; to match TensorFlow pad [[{before}, {after}]] explicitly, or "
                    "use an odd kernel at stride 1",
                )
            )
        outputs.append(out)
        windows.append(Sliding(span, step, before, dil))
        rules.append(SizeRule("sliding", size, out, kernel, dil, step, before, after, 0, ceil_mode))
    return _Slide(sizes, tuple(outputs), tuple(windows), tuple(findings), tuple(rules))


def _check_padding_mode(mode: str, rule: SizeRule) -> None:
    """PyTorch's limits on padding that copies the input instead of adding zeros."""
    widest = max(rule.before, rule.after)
    if mode == "reflect" and widest >= rule.size:
        raise ConvcalcError(
            f"reflect padding ({widest}) must be smaller than the input ({rule.size})"
        )
    if mode == "circular" and widest > rule.size:
        raise ConvcalcError(
            f"circular padding ({widest}) may not exceed the input ({rule.size}): it would "
            "wrap around more than once"
        )


# What the parameters several kinds share mean, after PyTorch's torch.nn documentation;
# `convcalc schema` gives each parameter's `doc` to editors.
_OUT_CHANNELS = "Number of channels produced (C_out)."
_KERNEL_SIZE = "Size of the kernel (window): one number for every spatial axis, or one per axis."
_STRIDE = "Stride of the window: one number for every spatial axis, or one per axis."
_POOL_STRIDE = _STRIDE + " Default: kernel_size (windows that do not overlap)."
_PADDING = (
    "Padding added to both sides of the input: a number for every side, a list with one "
    "per axis, a list of [before, after] pairs (one per axis), 'valid' (none), or 'same' "
    "(TensorFlow's rule: output = ceil(input / stride), the odd pixel after)."
)
_DILATION = (
    "Spacing between kernel elements (a kernel k wide spans (k - 1) * dilation + 1): one "
    "number for every spatial axis, or one per axis."
)
_GROUPS = "Number of blocked connections from input to output channels; divides both."
_BIAS = "If true, adds a learnable bias to the output."
_IN_CHANNELS = "Number of input channels: follows from the input; if given, must agree."
_CEIL_MODE = (
    "If true, uses ceil instead of floor for the output size; the last window must still "
    "start inside the input or its left padding."
)
_AFFINE = "If true, a learnable scale and shift per channel (2 * C parameters)."
_EPS = "A value added to the denominator for numerical stability."
_INPLACE = "If true, does the operation in place (no effect on shapes or counts)."
_MOMENTUM = (
    "The weight of each batch in the running mean and variance; null for a cumulative "
    "moving average."
)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Conv(Layer):
    """Convolution over 1 to 3 spatial axes (torch.nn.Conv1d/2d/3d)."""

    kind = "conv"
    out_channels: int = param(positive_int, doc=_OUT_CHANNELS)
    kernel_size: int | tuple[int, ...] = param(axis_positive, doc=_KERNEL_SIZE)
    stride: int | tuple[int, ...] = param(axis_positive, 1, _STRIDE)
    padding: Padding = param(padding_form, 0, _PADDING)
    dilation: int | tuple[int, ...] = param(axis_positive, 1, _DILATION)
    groups: int = param(positive_int, 1, _GROUPS)
    bias: bool = param(boolean, True, _BIAS)
    in_channels: int | None = param(optional(positive_int), None, _IN_CHANNELS)
    padding_mode: str = param(
        choice("zeros", "reflect", "replicate", "circular"),
        "zeros",
        "How the padding is filled: with zeros, or by reflecting, replicating or wrapping "
        "around (circular) the input.",
    )

    def apply(self, shape: Shape) -> Effect:
        channels = shape[0]
        slide = _slide(
            _spatial(self.kind, shape), self.kernel_size, self.stride, self.padding, self.dilation
        )
        _check_in("in_channels", self.in_channels, channels)
        _check_groups(self.groups, channels, self.out_channels)
        for rule in slide.rules:
            _check_padding_mode(self.padding_mode, rule)
        kernel = math.prod(per_axis(self.kernel_size, len(slide.sizes), "kernel_size"))
        weights = self.out_channels * (channels // self.groups) * kernel
        output = (self.out_channels, *slide.output_sizes)
        # Each output element is one dot product over C_in/groups × kernel volume inputs.
        macs = math.prod(output) * (channels // self.groups) * kernel
        return Effect(
            output,
            weights + self.out_channels * self.bias,
            macs,
            slide.windows,
            slide.findings,
            slide.rules,
        )


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class ConvTranspose(Layer):
    """Transposed convolution (torch.nn.ConvTranspose1d/2d/3d)."""

    kind = "conv_transpose"
    out_channels: int = param(positive_int, doc=_OUT_CHANNELS)
    kernel_size: int | tuple[int, ...] = param(axis_positive, doc=_KERNEL_SIZE)
    stride: int | tuple[int, ...] = param(axis_positive, 1, _STRIDE)
    padding: Padding = param(
        padding_form,
        0,
        "Trims the output: dilation * (kernel_size - 1) - padding zeros are added to both "
        "sides of the input. A number for every side, one per axis, or [before, after] "
        "pairs ('same' is not defined for transposed convolution).",
    )
    output_padding: int | tuple[int, ...] = param(
        axis_non_negative,
        0,
        "Size added to one side (the end) of each spatial axis of the output, smaller than "
        "the stride or the dilation: one number for every spatial axis, or one per axis.",
    )
    dilation: int | tuple[int, ...] = param(axis_positive, 1, _DILATION)
    groups: int = param(positive_int, 1, _GROUPS)
    bias: bool = param(boolean, True, _BIAS)
    in_channels: int | None = param(optional(positive_int), None, _IN_CHANNELS)

    def apply(self, shape: Shape) -> Effect:
        channels, sizes = shape[0], _spatial(self.kind, shape)
        ndim = len(sizes)
        if self.padding == "same":
            raise ConvcalcError(
                'padding "same" is not defined for conv_transpose; give a number, one per '
                "axis, or [before, after] pairs"
            )
        kernels = per_axis(self.kernel_size, ndim, "kernel_size")
        strides = per_axis(self.stride, ndim, "stride")
        dilations = per_axis(self.dilation, ndim, "dilation")
        extras = per_axis(self.output_padding, ndim, "output_padding")
        spans = tuple(map(dilated, kernels, dilations))
        pads = resolve_padding(self.padding, sizes, spans, strides)
        _check_in("in_channels", self.in_channels, channels)
        _check_groups(self.groups, channels, self.out_channels)
        outputs, windows, findings, rules = [], [], [], []
        for axis, size, kernel, span, step, dil, extra, (before, after) in zip(
            AXIS_NAMES[ndim], sizes, kernels, spans, strides, dilations, extras, pads, strict=True
        ):
            if extra >= max(step, dil):
                raise ConvcalcError(
                    f"output_padding ({extra}) must be smaller than the stride ({step}) "
                    f"or the dilation ({dil}) on axis {axis}"
                )
            out = transposed_output_size(size, span, step, before, after, extra)
            if out < 1:
                raise ConvcalcError(
                    f"the output would be empty on axis {axis}: ({size} − 1)·{step} − {before} "
                    f"− {after} + {span} + {extra} = {out}"
                )
            window = Transposed(kernel, dil, step, before)
            taps = window.tap_counts()
            if len(taps) > 1:
                findings.append(
                    Finding(
                        "checkerboard",
                        f"on axis {axis} the kernel ({kernel}) is not a multiple of the stride "
                        f"({step}): output units take {' or '.join(map(str, taps))} input taps "
                        "by position, the checkerboard pattern of Odena et al. (2016); "
                        + (
                            f"use a dilation that shares no factor with the stride {step}"
                            if math.gcd(dil, step) > 1
                            else f"use kernel {-(-kernel // step) * step}, or upsample then "
                            "convolve"
                        ),
                    )
                )
            outputs.append(out)
            windows.append(window)
            rules.append(SizeRule("transposed", size, out, kernel, dil, step, before, after, extra))
        kernel_volume = math.prod(kernels)
        weights = channels * (self.out_channels // self.groups) * kernel_volume
        # Each input element is scattered to C_out/groups × kernel volume outputs.
        macs = math.prod(shape) * (self.out_channels // self.groups) * kernel_volume
        return Effect(
            (self.out_channels, *outputs),
            weights + self.out_channels * self.bias,
            macs,
            tuple(windows),
            tuple(findings),
            tuple(rules),
        )


def _pool(
    kind: str,
    shape: Shape,
    kernel_size: int | tuple[int, ...],
    stride: int | tuple[int, ...] | None,
    padding: Padding,
    dilation: int | tuple[int, ...],
    ceil_mode: bool,
) -> Effect:
    """Max and average pooling: a sliding window that keeps the channels."""
    slide = _slide(
        _spatial(kind, shape),
        kernel_size,
        kernel_size if stride is None else stride,
        padding,
        dilation,
        ceil_mode,
        pool=True,
    )
    return Effect(
        (shape[0], *slide.output_sizes),
        windows=slide.windows,
        findings=slide.findings,
        rules=slide.rules,
    )


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class MaxPool(Layer):
    """Max pooling (torch.nn.MaxPool1d/2d/3d)."""

    kind = "max_pool"
    kernel_size: int | tuple[int, ...] = param(axis_positive, doc=_KERNEL_SIZE)
    stride: int | tuple[int, ...] | None = param(optional(axis_positive), None, _POOL_STRIDE)
    padding: Padding = param(padding_form, 0, _PADDING + " At most half the kernel size.")
    dilation: int | tuple[int, ...] = param(axis_positive, 1, _DILATION)
    ceil_mode: bool = param(boolean, False, _CEIL_MODE)

    def apply(self, shape: Shape) -> Effect:
        return _pool(
            self.kind,
            shape,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
        )


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class AvgPool(Layer):
    """Average pooling (torch.nn.AvgPool1d/2d/3d)."""

    kind = "avg_pool"
    kernel_size: int | tuple[int, ...] = param(axis_positive, doc=_KERNEL_SIZE)
    stride: int | tuple[int, ...] | None = param(optional(axis_positive), None, _POOL_STRIDE)
    padding: Padding = param(padding_form, 0, _PADDING + " At most half the kernel size.")
    ceil_mode: bool = param(boolean, False, _CEIL_MODE)
    count_include_pad: bool = param(
        boolean, True, "If true, the zero padding counts in the average (no effect on shapes)."
    )

    def apply(self, shape: Shape) -> Effect:
        if len(shape) == 4 and _native(self.padding):
            # PyTorch's 3-D average pool alone wants the unpadded input to hold a kernel.
            kernels = per_axis(self.kernel_size, 3, "kernel_size")
            if any(size < kernel for size, kernel in zip(shape[1:], kernels, strict=True)):
                raise ConvcalcError(
                    f"the input {format_shape(shape)} is smaller than the kernel "
                    f"{format_shape(kernels)} on some axis, which PyTorch's 3-D average "
                    "pooling refuses even with padding"
                )
        return _pool(
            self.kind, shape, self.kernel_size, self.stride, self.padding, 1, self.ceil_mode
        )


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class AdaptiveAvgPool(Layer):
    """Adaptive average pooling to a fixed output size (torch.nn.AdaptiveAvgPool1d/2d/3d)."""

    kind = "adaptive_avg_pool"
    output_size: int | tuple[int | None, ...] = param(
        output_sizes,
        doc="The output size: one number for every spatial axis, or one per axis (null "
        "keeps that axis's size).",
    )

    def apply(self, shape: Shape) -> Effect:
        sizes = _spatial(self.kind, shape)
        wanted = (
            (self.output_size,) * len(sizes)
            if isinstance(self.output_size, int)
            else self.output_size
        )
        if len(wanted) != len(sizes):
            per_axis((0,) * len(wanted), len(sizes), "output_size")
        outputs = tuple(
            size if out is None else out for size, out in zip(sizes, wanted, strict=True)
        )
        if all(out == 1 for out in outputs):
            windows = None  # a global pooling: every output unit sees the whole input
        else:
            windows = tuple(map(AdaptiveBins, sizes, outputs))
        rules = tuple(
            SizeRule("adaptive", size, out) for size, out in zip(sizes, outputs, strict=True)
        )
        return Effect((shape[0], *outputs), windows=windows, rules=rules)


class AdaptiveMaxPool(AdaptiveAvgPool):
    """Adaptive max pooling to a fixed output size (torch.nn.AdaptiveMaxPool1d/2d/3d)."""

    kind = "adaptive_max_pool"


_MODES = {
    "nearest": "nearest",
    "nearest-exact": "nearest-exact",
    "linear": "linear",
    "bilinear": "linear",
    "trilinear": "linear",
    "bicubic": "cubic",
}
# PyTorch ties each interpolating mode to a number of spatial axes.
_MODE_AXES = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Upsample(Layer):
    """Upsampling by a scale factor or to a size (torch.nn.Upsample)."""

    kind = "upsample"
    scale_factor: Fraction | tuple[Fraction, ...] | None = param(
        optional(scale_factors),
        None,
        "Multiplier for the spatial size (output = floor(input * scale_factor)): one number "
        "for every spatial axis, or one per axis. Give this or size.",
    )
    size: int | tuple[int, ...] | None = param(
        optional(axis_positive),
        None,
        "The output spatial size: one number for every spatial axis, or one per axis. Give "
        "this or scale_factor.",
    )
    mode: str = param(
        choice(*_MODES),
        "nearest",
        "The upsampling algorithm: nearest, nearest-exact, linear (1 spatial axis), "
        "bilinear or bicubic (2), trilinear (3).",
    )
    align_corners: bool | None = param(
        optional(boolean),
        None,
        "For the linear and cubic modes: if true, the corner pixels of input and output "
        "are aligned.",
    )

    def apply(self, shape: Shape) -> Effect:
        sizes = _spatial(self.kind, shape)
        ndim = len(sizes)
        if (self.scale_factor is None) == (self.size is None):
            raise ConvcalcError("give exactly one of scale_factor and size")
        axes = _MODE_AXES.get(self.mode, ndim)
        if axes != ndim:
            raise ConvcalcError(
                f"mode {self.mode} works on {axes} spatial ax{'is' if axes == 1 else 'es'}, "
                f"but the input has {ndim} (use linear, bilinear or trilinear to match)"
            )
        if self.align_corners is not None and self.mode.startswith("nearest"):
            raise ConvcalcError("align_corners applies only to the linear and cubic modes")
        if self.scale_factor is not None:
            scales = (
                (self.scale_factor,) * ndim
                if isinstance(self.scale_factor, Fraction)
                else self.scale_factor
            )
            if len(scales) != ndim:
                per_axis((0,) * len(scales), ndim, "scale_factor")
            outputs = tuple(
                math.floor(size * scale) for size, scale in zip(sizes, scales, strict=True)
            )
            rules = tuple(
                SizeRule("scale", size, out, scale=scale)
                for size, out, scale in zip(sizes, outputs, scales, strict=True)
            )
            # PyTorch maps indices with 1/scale_factor when it is given, not in/out.
            ratios = tuple(1 / scale for scale in scales)
        else:
            assert self.size is not None
            outputs = per_axis(self.size, ndim, "size")
            rules = tuple(
                SizeRule("size", size, out) for size, out in zip(sizes, outputs, strict=True)
            )
            ratios = tuple(Fraction(size, out) for size, out in zip(sizes, outputs, strict=True))
        for axis, size, out in zip(AXIS_NAMES[ndim], sizes, outputs, strict=True):
            if out < 1:
                raise ConvcalcError(f"the output would be empty on axis {axis}: {size} → {out}")
        if self.align_corners:
            ratios = tuple(
                Fraction(size - 1, out - 1) if out > 1 else Fraction(0)
                for size, out in zip(sizes, outputs, strict=True)
            )
        mode: Any = _MODES[self.mode]
        windows = tuple(Interpolation(ratio, mode, bool(self.align_corners)) for ratio in ratios)
        return Effect((shape[0], *outputs), windows=windows, rules=rules)


def _two_spatial(kind: str, shape: Shape) -> tuple[int, int]:
    """The height and width of an input [C, H, W]: PyTorch's pixel shuffles rearrange the
    last two dimensions, and nothing else."""
    if len(shape) != 3:
        raise ConvcalcError(
            f"{kind} works on 2 spatial axes, an input [C, H, W], as PyTorch's does (it "
            f"rearranges the last two dimensions); got {format_shape(shape)}"
        )
    return shape[1], shape[2]


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class PixelShuffle(Layer):
    """Rearranges C·r² × H × W into C × rH × rW, sub-pixel convolution's upsampling
    (torch.nn.PixelShuffle; Shi et al. 2016)."""

    kind = "pixel_shuffle"
    upscale_factor: int = param(
        positive_int, doc="The factor r by which height and width grow; r² divides the channels."
    )

    def apply(self, shape: Shape) -> Effect:
        sizes, step = _two_spatial(self.kind, shape), self.upscale_factor
        if shape[0] % (step * step):
            raise ConvcalcError(
                f"upscale_factor² ({step}² = {step * step}) must divide the channels ({shape[0]})"
            )
        outputs = tuple(size * step for size in sizes)
        # Output position y takes its value from input position y // r, as a nearest
        # upsampling by r does (the channel it reads depends on y % r; a field is taken
        # over all the channels of a position): the effective stride becomes 1/r.
        window = POINTWISE if step == 1 else Interpolation(Fraction(1, step), "nearest")
        rules = tuple(
            SizeRule("scale", size, out, scale=Fraction(step))
            for size, out in zip(sizes, outputs, strict=True)
        )
        return Effect((shape[0] // (step * step), *outputs), windows=(window,) * 2, rules=rules)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class PixelUnshuffle(Layer):
    """Rearranges C × rH × rW into C·r² × H × W, space-to-depth (torch.nn.PixelUnshuffle)."""

    kind = "pixel_unshuffle"
    downscale_factor: int = param(
        positive_int, doc="The factor r by which height and width shrink; r divides both."
    )

    def apply(self, shape: Shape) -> Effect:
        sizes, step = _two_spatial(self.kind, shape), self.downscale_factor
        for axis, size in zip(AXIS_NAMES[2], sizes, strict=True):
            if size % step:
                raise ConvcalcError(
                    f"downscale_factor ({step}) must divide the input's size on axis {axis} "
                    f"({size})"
                )
        outputs = tuple(size // step for size in sizes)
        # Output position y holds input positions y·r … y·r + r − 1, one in each of r²
        # channels: over all its channels, a window r wide at stride r.
        rules = tuple(
            SizeRule("sliding", size, out, kernel=step, stride=step)
            for size, out in zip(sizes, outputs, strict=True)
        )
        return Effect(
            (shape[0] * step * step, *outputs),
            windows=(Sliding(step, step, 0),) * 2,
            rules=rules,
        )


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Pad(Layer):
    """A padding layer of its own (torch.nn.functional.pad; torch.nn.ZeroPad2d,
    ConstantPad2d, ReflectionPad2d, ReplicationPad2d, CircularPad2d)."""

    kind = "pad"
    padding: Padding = param(
        padding_form,
        doc="Padding added to the spatial axes: a number for every side, a list with one per "
        "axis, or a list of [before, after] pairs (one per axis); 'valid' is none ('same' "
        "needs a kernel, which a pad layer has not).",
    )
    mode: str = param(
        choice("constant", "reflect", "replicate", "circular"),
        "constant",
        "How the padding is filled: with `value`, or by reflecting, replicating or wrapping "
        "around (circular) the input.",
    )
    value: float = param(number, 0.0, "The fill value of constant padding.")

    def apply(self, shape: Shape) -> Effect:
        sizes = _spatial(self.kind, shape)
        ndim = len(sizes)
        if self.padding == "same":
            raise ConvcalcError(
                'padding "same" needs a kernel and a stride; a pad layer takes a number, one '
                "per axis, or [before, after] pairs"
            )
        if self.mode != "constant" and self.value != 0:
            raise ConvcalcError(f"value ({self.value}) applies to constant padding only")
        pads = resolve_padding(self.padding, sizes, (1,) * ndim, (1,) * ndim)
        rules = tuple(
            SizeRule("sliding", size, size + before + after, before=before, after=after)
            for size, (before, after) in zip(sizes, pads, strict=True)
        )
        for rule in rules:
            _check_padding_mode(self.mode, rule)
        # A window of one position, shifted by the padding before: as for a convolution,
        # output units in the padding see padding, whatever fills it (SPEC §3 reports the
        # units away from the border).
        return Effect(
            (shape[0], *(rule.output for rule in rules)),
            windows=tuple(POINTWISE if b == 0 else Sliding(1, 1, b) for b, _ in pads),
            rules=rules,
        )


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class ChannelSlice(Layer):
    """Channels start … end − 1 of the input, by Python's slice rules: x[:, start:end],
    a part of torch.split or torch.chunk (of the features, on a flat input)."""

    kind = "channel_slice"
    start: int = param(integer, 0, "The first channel kept; a negative index counts from the end.")
    end: int | None = param(
        optional(integer),
        None,
        "One past the last channel kept; a negative index counts from the end; null: to the end.",
    )

    def apply(self, shape: Shape) -> Effect:
        channels = shape[0]
        # Python's rules exactly: negative indices count from the end, then both clamp.
        first, stop, _ = slice(self.start, self.end).indices(channels)
        if stop <= first:
            end = "" if self.end is None else self.end
            raise ConvcalcError(
                f"the slice {self.start}:{end} of {channels} channels is empty (Python's "
                f"slice rules make it {first}:{stop}); keep at least one channel"
            )
        return _pointwise((stop - first, *shape[1:]))


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle: reshape to groups × C/groups, transpose, flatten
    (torch.nn.ChannelShuffle)."""

    kind = "channel_shuffle"
    groups: int = param(positive_int, doc="Number of groups to interleave; divides the channels.")

    def apply(self, shape: Shape) -> Effect:
        _spatial(self.kind, shape)  # PyTorch's takes no flat input
        if shape[0] % self.groups:
            raise ConvcalcError(f"groups ({self.groups}) must divide the channels ({shape[0]})")
        return _pointwise(shape)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Linear(Layer):
    """A fully connected layer on a flat input (torch.nn.Linear)."""

    kind = "linear"
    out_features: int = param(positive_int, doc="Size of each output sample.")
    bias: bool = param(boolean, True, _BIAS)
    in_features: int | None = param(
        optional(positive_int),
        None,
        "Size of each input sample: follows from the (flat) input; if given, must agree.",
    )

    def apply(self, shape: Shape) -> Effect:
        if len(shape) != 1:
            raise ConvcalcError(
                f"linear needs a flat input [N]; got {format_shape(shape)} "
                "(add flatten or a global pooling before it)"
            )
        _check_in("in_features", self.in_features, shape[0])
        weights = shape[0] * self.out_features
        return Effect((self.out_features,), weights + self.out_features * self.bias, weights)


class Flatten(Layer):
    """Flattens channels and spatial axes into one (torch.nn.Flatten)."""

    kind = "flatten"

    def apply(self, shape: Shape) -> Effect:
        return Effect((math.prod(shape),))


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Unflatten(Layer):
    """A flat input [N] as N channels at one position, [N, 1, …, 1]: a gate computed
    with Linear layers, brought back as `x.view(b, c, 1, 1)` to multiply a map
    (torch.nn.Unflatten(1, (C, 1, 1)))."""

    kind = "unflatten"
    axes: int = param(positive_int, doc="Number of spatial axes of size 1 to add: 1, 2 or 3.")

    def apply(self, shape: Shape) -> Effect:
        if self.axes > 3:
            raise ConvcalcError(f"axes is {self.axes}; convcalc takes 1, 2 or 3 spatial axes")
        if len(shape) != 1:
            raise ConvcalcError(f"unflatten needs a flat input [N]; got {format_shape(shape)}")
        # Every unit depends on the whole flat input: no window (windows=None).
        return Effect((shape[0], *[1] * self.axes))


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class BatchNorm(Layer):
    """Batch normalisation over the channels (torch.nn.BatchNorm1d/2d/3d)."""

    kind = "batch_norm"
    affine: bool = param(boolean, True, _AFFINE)
    eps: float = param(number, 1e-5, _EPS)
    momentum: float | None = param(optional(probability), 0.1, _MOMENTUM)

    def apply(self, shape: Shape) -> Effect:
        # A scale and a shift per channel; running statistics are buffers, not parameters.
        return _pointwise(shape, 2 * shape[0] * self.affine)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class GroupNorm(Layer):
    """Group normalisation (torch.nn.GroupNorm)."""

    kind = "group_norm"
    num_groups: int = param(
        positive_int, doc="Number of groups to separate the channels into; divides them."
    )
    affine: bool = param(boolean, True, _AFFINE)
    eps: float = param(number, 1e-5, _EPS)

    def apply(self, shape: Shape) -> Effect:
        if shape[0] % self.num_groups:
            raise ConvcalcError(
                f"num_groups ({self.num_groups}) must divide the channels ({shape[0]})"
            )
        return _pointwise(shape, 2 * shape[0] * self.affine)

    def global_statistics(self) -> bool:
        return True  # each group's mean and variance over every position


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class LayerNorm(Layer):
    """Layer normalisation over the channels at each position, ConvNeXt's LayerNorm2d
    (torch.nn.LayerNorm(C) on channels last); over the features of a flat input."""

    kind = "layer_norm"
    elementwise_affine: bool = param(
        boolean, True, "If true, a learnable scale per channel, and a shift if bias."
    )
    bias: bool = param(boolean, True, "With elementwise_affine, a learnable shift per channel too.")
    eps: float = param(number, 1e-5, _EPS)

    def apply(self, shape: Shape) -> Effect:
        return _pointwise(shape, shape[0] * self.elementwise_affine * (1 + self.bias))


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class InstanceNorm(Layer):
    """Instance normalisation: each channel of each sample over its spatial positions
    (torch.nn.InstanceNorm1d/2d/3d)."""

    kind = "instance_norm"
    affine: bool = param(boolean, False, _AFFINE)
    eps: float = param(number, 1e-5, _EPS)
    momentum: float | None = param(optional(probability), 0.1, _MOMENTUM)
    track_running_stats: bool = param(
        boolean,
        False,
        "If true, keeps running statistics (buffers) and normalises with them at inference.",
    )

    def apply(self, shape: Shape) -> Effect:
        sizes = _spatial(self.kind, shape)
        if not self.track_running_stats and math.prod(sizes) == 1:
            raise ConvcalcError(
                f"instance_norm normalises each channel over its spatial positions, and the "
                f"input {format_shape(shape)} has one (PyTorch refuses it; with "
                "track_running_stats it normalises with running statistics instead)"
            )
        # The mean and variance come from every position: a global path (SPEC §6.5). With
        # it held constant, each output reads its own position.
        return _pointwise(shape, 2 * shape[0] * self.affine)

    def global_statistics(self) -> bool:
        # Each channel's mean and variance over every position, unless kept running.
        return not self.track_running_stats


# What divides each channel (PyTorch's LocalResponseNorm documentation).
_LRN = "(k + alpha / size * the sum of squares over size channels)^beta"


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class LocalResponseNorm(Layer):
    """Local response normalisation across neighbouring channels at each position
    (torch.nn.LocalResponseNorm; AlexNet)."""

    kind = "local_response_norm"
    size: int = param(positive_int, doc="Number of neighbouring channels used to normalise.")
    alpha: float = param(number, 1e-4, f"The multiplier alpha in {_LRN}.")
    beta: float = param(number, 0.75, f"The exponent beta in {_LRN}.")
    k: float = param(number, 1.0, f"The additive k in {_LRN}.")

    def apply(self, shape: Shape) -> Effect:
        _spatial(self.kind, shape)  # PyTorch's takes no flat input
        return _pointwise(shape)


class Scale(Layer):
    """A learned factor per channel, layer scale (Touvron et al. 2021; ConvNeXt's gamma):
    x · γ with γ a torch.nn.Parameter of C values."""

    kind = "scale"

    def apply(self, shape: Shape) -> Effect:
        return _pointwise(shape, shape[0])


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class PReLU(Layer):
    """x, or a learned slope·x below zero (torch.nn.PReLU)."""

    kind = "prelu"
    num_parameters: int = param(
        positive_int, 1, "Number of learned slopes: 1 (shared) or the channels (one each)."
    )
    init: float = param(number, 0.25, "The slopes' initial value.")

    def apply(self, shape: Shape) -> Effect:
        if self.num_parameters not in (1, shape[0]):
            raise ConvcalcError(
                f"num_parameters ({self.num_parameters}) must be 1 or the channels ({shape[0]})"
            )
        return _pointwise(shape, self.num_parameters)


# Kinds that add no parameters are plain subclasses: they inherit their parent's dataclass
# methods, and decorating them would only generate the same methods again at every start,
# about 0.4 ms a class (issue 5).
class Elementwise(Layer):
    """A layer that keeps the shape, has no parameters, and reads one position."""

    def apply(self, shape: Shape) -> Effect:
        return _pointwise(shape)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class ReLU(Elementwise):
    """max(0, x) (torch.nn.ReLU)."""

    kind = "relu"
    inplace: bool = param(boolean, False, _INPLACE)


class ReLU6(ReLU):
    """min(max(0, x), 6) (torch.nn.ReLU6)."""

    kind = "relu6"


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class LeakyReLU(ReLU):
    """x, or negative_slope·x below zero (torch.nn.LeakyReLU)."""

    kind = "leaky_relu"
    negative_slope: float = param(number, 0.01, "The slope of the line below zero.")


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class GELU(Elementwise):
    """The Gaussian error linear unit (torch.nn.GELU)."""

    kind = "gelu"
    approximate: str = param(
        choice("none", "tanh"), "none", "The approximation: none (exact) or tanh."
    )


class SiLU(ReLU):
    """x·sigmoid(x) (torch.nn.SiLU)."""

    kind = "silu"


class Hardswish(ReLU):
    """x·relu6(x + 3)/6 (torch.nn.Hardswish)."""

    kind = "hardswish"


class Sigmoid(Elementwise):
    """1/(1 + e^−x) (torch.nn.Sigmoid)."""

    kind = "sigmoid"


class Tanh(Elementwise):
    """The hyperbolic tangent (torch.nn.Tanh)."""

    kind = "tanh"


class Softmax(Elementwise):
    """Softmax over the channels (torch.nn.Softmax(dim=1)): each unit still reads one
    spatial position."""

    kind = "softmax"


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Dropout(Elementwise):
    """Random zeroing while training; the identity for shapes (torch.nn.Dropout)."""

    kind = "dropout"
    p: float = param(probability, 0.5, "The probability of an element to be zeroed.")
    inplace: bool = param(boolean, False, _INPLACE)


class Identity(Elementwise):
    """The identity (torch.nn.Identity)."""

    kind = "identity"


class Hardsigmoid(ReLU):
    """relu6(x + 3)/6 (torch.nn.Hardsigmoid)."""

    kind = "hardsigmoid"


class Mish(ReLU):
    """x·tanh(softplus(x)) (torch.nn.Mish)."""

    kind = "mish"


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class ELU(ReLU):
    """x, or alpha·(e^x − 1) below zero (torch.nn.ELU)."""

    kind = "elu"
    alpha: float = param(number, 1.0, "The value the curve tends to below zero is −alpha.")


class SELU(ReLU):
    """The scaled exponential linear unit (torch.nn.SELU)."""

    kind = "selu"


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class Softplus(Elementwise):
    """log(1 + e^(beta·x))/beta, linear above the threshold (torch.nn.Softplus)."""

    kind = "softplus"
    beta: float = param(number, 1.0, "The beta in log(1 + e^(beta * x)) / beta.")
    threshold: float = param(number, 20.0, "Above beta·x = threshold, the identity.")


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class DropPath(Elementwise):
    """Stochastic depth (timm's DropPath, torchvision.ops.StochasticDepth): drops a whole
    residual branch per sample while training; at inference torch.nn.Identity."""

    kind = "drop_path"
    drop_prob: float = param(probability, 0.0, "The probability of a sample's path to be dropped.")


#: The loader's table of leaf kinds, by the name a model file uses.
KINDS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        Conv,
        ConvTranspose,
        MaxPool,
        AvgPool,
        AdaptiveAvgPool,
        AdaptiveMaxPool,
        Upsample,
        Linear,
        Flatten,
        Unflatten,
        BatchNorm,
        GroupNorm,
        ReLU,
        ReLU6,
        LeakyReLU,
        GELU,
        SiLU,
        Sigmoid,
        Tanh,
        Hardswish,
        Softmax,
        Dropout,
        Identity,
        ChannelSlice,
        ChannelShuffle,
        PixelShuffle,
        PixelUnshuffle,
        Pad,
        LayerNorm,
        InstanceNorm,
        LocalResponseNorm,
        Scale,
        PReLU,
        Hardsigmoid,
        Mish,
        ELU,
        SELU,
        Softplus,
        DropPath,
    )
}
