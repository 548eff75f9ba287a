"""Inverse questions on one axis: which layer settings map an input size to an output
size, and how many layers of a pattern reach a target receptive field."""

from __future__ import annotations

from dataclasses import dataclass

from convcalc.errors import ConvcalcError
from convcalc.model.axes import (
    Transposed,
    dilated,
    sliding_output_size,
    transposed_output_size,
    unread_positions,
)
from convcalc.model.params import MAX_INT

__all__ = ["MAX_FIELD_LAYERS", "MAX_SETTINGS", "FieldPlan", "Setting", "layers_for_field", "solve"]

#: How many settings `solve` may try.
MAX_SETTINGS = 200_000

#: How many layers `layers_for_field` tries before it calls a target out of reach.
MAX_FIELD_LAYERS = 10_000


@dataclass(frozen=True)
class Setting:
    """One layer setting that maps the input size to the output size."""

    kernel_size: int
    stride: int
    dilation: int
    padding: tuple[int, int]  # (before, after)
    dropped: int  # real input pixels that the layer never reads (or, transposed, writes nowhere)
    output_padding: int | None = None  # transposed only
    checkerboard: bool = False  # transposed: output units take unequal numbers of taps

    def rank(self) -> tuple[int, ...]:
        """Best first: nothing dropped, even taps, symmetric padding, small kernels (and
        strides, dilations, padding)."""
        before, after = self.padding
        return (
            self.dropped > 0,
            self.dropped,
            self.checkerboard,
            before != after,
            dilated(self.kernel_size, self.dilation),
            self.kernel_size,
            self.stride,
            self.dilation,
            before + after,
            before,
            self.output_padding or 0,
        )


def _splits(total: int, low: int = 0, high: int | None = None) -> list[tuple[int, int]]:
    """The most even ways to place `total` padding, before and after, with `before` from
    `low` to `high`: the allowed `before` nearest to half, and its mirror if allowed."""
    low, high = max(low, 0), total if high is None else min(high, total)
    if low > high:
        return []
    nearest = min(max(total // 2, low), high)
    return sorted({(b, total - b) for b in (nearest, total - nearest) if low <= b <= high})


def _forward(size: int, output: int, kernel: int, stride: int, dilation: int) -> list[Setting]:
    span = dilated(kernel, dilation)
    lowest = max((output - 1) * stride + span - size, 0)
    settings = []
    for total in range(lowest, lowest + stride):
        # Every window must read some real pixel, not padding alone: the first starts
        # within the kernel's span, the last within the input.
        for before, after in _splits(total, (output - 1) * stride - size + 1, span - 1):
            if sliding_output_size(size, span, stride, before, after) != output:
                continue
            dropped = unread_positions(size, output, kernel, dilation, stride, before)
            settings.append(Setting(kernel, stride, dilation, (before, after), dropped))
    return settings


def _transposed(size: int, output: int, kernel: int, stride: int, dilation: int) -> list[Setting]:
    span = dilated(kernel, dilation)
    settings = []
    checkerboard = len(Transposed(kernel, dilation, stride, 0).tap_counts()) > 1
    for extra in range(max(stride, dilation)):  # PyTorch: output_padding < stride or dilation
        total = transposed_output_size(size, span, stride, 0, 0, extra) - output
        if total < 0:
            continue
        for before, after in _splits(total):
            dropped = size - _writing(size, output, kernel, dilation, stride, before)
            settings.append(
                Setting(kernel, stride, dilation, (before, after), dropped, extra, checkerboard)
            )
    return settings


def _writing(size: int, output: int, kernel: int, dilation: int, stride: int, before: int) -> int:
    """How many inputs i (0 … size − 1) of a transposed convolution write some output:
    i·stride + j·dilation falls in before … before + output − 1 for some tap j."""
    low, high = before, before + output - 1
    if dilation <= output:
        # The taps are closer than the outputs are wide: i writes an output if its taps'
        # hull i·stride … i·stride + (kernel − 1)·dilation meets them.
        first = max(-(-(low - (kernel - 1) * dilation) // stride), 0)
        return max(min(high // stride, size - 1) - first + 1, 0)
    # Taps are farther apart than the outputs are wide: at most one tap of each input
    # writes, so count (input, tap) pairs, over whichever of the two is fewer.
    taps = min(kernel, high // dilation + 1)
    if min(size, taps) > MAX_SETTINGS:
        raise ConvcalcError(
            f"the inputs ({size:,}) and taps ({taps:,}) are too many to check one by one"
        )
    if taps <= size:
        return sum(
            max(min((high - j * dilation) // stride, size - 1) + 1
                - max(-(-(low - j * dilation) // stride), 0), 0)
            for j in range(taps)
        )  # fmt: skip
    return sum(
        1
        for i in range(size)
        if max(-(-(low - i * stride) // dilation), 0)
        <= min((high - i * stride) // dilation, kernel - 1)
    )


def solve(
    input_size: int,
    output_size: int,
    *,
    transpose: bool = False,
    kernel_sizes: range | tuple[int, ...] = range(1, 12),
    strides: range | tuple[int, ...] = range(1, 5),
    dilations: range | tuple[int, ...] = range(1, 5),
) -> list[Setting]:
    """Every setting within the bounds that maps `input_size` to `output_size`, best first."""
    if not (0 < input_size <= MAX_INT and 0 < output_size <= MAX_INT):
        raise ConvcalcError("sizes must be positive integers of at most 2^63 − 1")
    if max(_largest(kernel_sizes), _largest(strides), _largest(dilations)) > MAX_INT:
        raise ConvcalcError("kernel sizes, strides and dilations must be at most 2^63 − 1")
    # Each kernel, stride and dilation is tried with up to max(stride, dilation) paddings
    # (or output paddings).
    widest = max(_largest(strides), _largest(dilations))
    tries = _count(kernel_sizes) * _count(strides) * _count(dilations) * widest
    if tries > MAX_SETTINGS:
        raise ConvcalcError(
            f"the search would try more than {MAX_SETTINGS:,} settings; "
            "fix or narrow the kernel sizes, strides or dilations"
        )
    settings = []
    for kernel in kernel_sizes:
        for stride in strides:
            for dilation in dilations:
                if kernel == 1 and dilation > 1:
                    continue  # a single tap has nothing to dilate
                find = _transposed if transpose else _forward
                settings.extend(find(input_size, output_size, kernel, stride, dilation))
    return sorted(settings, key=Setting.rank)


def _largest(values: range | tuple[int, ...]) -> int:
    """The largest value (of a range without going through it)."""
    if isinstance(values, range):
        return max(values[0], values[-1]) if values else 0
    return max(values, default=0)


def _count(values: range | tuple[int, ...]) -> int:
    """How many values there are (len() stops at 2^63 − 1)."""
    if isinstance(values, range):
        return max(-(-(values.stop - values.start) // values.step), 0)
    return len(values)


@dataclass(frozen=True)
class FieldPlan:
    """How many layers of one pattern reach a receptive field, and the field after each."""

    target: int
    kernel_size: int
    stride: int
    dilations: tuple[int, ...]
    sizes: tuple[int, ...]


def layers_for_field(
    target: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1, growth: int = 1
) -> FieldPlan:
    """Stack layers of `kernel_size` and `stride` (dilation starting at `dilation`, times
    `growth` per layer) until the field reaches `target`: r grows by
    (k − 1)·d·S per layer, S being the product of the strides below (Araujo et al. 2019)."""
    if target > MAX_INT:
        raise ConvcalcError("the field must be at most 2^63 − 1")
    if kernel_size == 1 and target > 1:
        raise ConvcalcError("a kernel of 1 never widens the field; give a kernel of at least 2")
    size, jump, current = 1, 1, dilation
    dilations: list[int] = []
    sizes: list[int] = []
    while size < target:
        if len(sizes) == MAX_FIELD_LAYERS:
            raise ConvcalcError(
                f"the field reaches only {size} after {MAX_FIELD_LAYERS:,} layers; use a "
                "larger kernel, a stride, or a dilation growth"
            )
        size += (kernel_size - 1) * current * jump
        jump *= stride
        dilations.append(current)
        sizes.append(size)
        current *= growth
    return FieldPlan(target, kernel_size, stride, tuple(dilations), tuple(sizes))
