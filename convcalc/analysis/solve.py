"""Inverse questions on one axis: which layer settings map an input size to an output
size, and how many layers of a pattern reach a target receptive field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from convcalc.errors import ConvcalcError
from convcalc.model.axes import (
    Transposed,
    dilated,
    sliding_output_size,
    transposed_output_size,
    unread_positions,
)

__all__ = ["MAX_FIELD_LAYERS", "FieldPlan", "Setting", "layers_for_field", "solve"]

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


def _splits(total: int, allowed: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """The most even ways to place `total` padding, before and after, among the allowed."""
    splits = [(before, total - before) for before in range(total + 1)]
    splits = [split for split in splits if allowed(*split)]
    evenest = min((abs(before - after) for before, after in splits), default=0)
    return [(before, after) for before, after in splits if abs(before - after) == evenest]


def _forward(size: int, output: int, kernel: int, stride: int, dilation: int) -> list[Setting]:
    span = dilated(kernel, dilation)
    lowest = max((output - 1) * stride + span - size, 0)
    settings = []

    def allowed(before: int, after: int) -> bool:
        # Every window must read some real pixel, not padding alone.
        return before < span and (output - 1) * stride - before <= size - 1

    for total in range(lowest, lowest + stride):
        for before, after in _splits(total, allowed):
            if sliding_output_size(size, span, stride, before, after) != output:
                continue
            dropped = unread_positions(size, output, kernel, dilation, stride, before)
            settings.append(Setting(kernel, stride, dilation, (before, after), dropped))
    return settings


def _transposed(size: int, output: int, kernel: int, stride: int, dilation: int) -> list[Setting]:
    span = dilated(kernel, dilation)
    settings = []
    taps = {len(Transposed(kernel, dilation, stride, 0).reads(y)) for y in range(stride)}
    for extra in range(max(stride, dilation)):  # PyTorch: output_padding < stride or dilation
        total = transposed_output_size(size, span, stride, 0, 0, extra) - output
        if total < 0:
            continue
        for before, after in _splits(total, lambda before, after: True):
            window = Transposed(kernel, dilation, stride, before)
            written = {i for y in range(output) for i in window.reads(y)}
            dropped = sum(1 for i in range(size) if i not in written)
            settings.append(
                Setting(kernel, stride, dilation, (before, after), dropped, extra, len(taps) > 1)
            )
    return settings


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
    if input_size < 1 or output_size < 1:
        raise ConvcalcError("sizes must be positive integers")
    settings = []
    for kernel in kernel_sizes:
        for stride in strides:
            for dilation in dilations:
                if kernel == 1 and dilation > 1:
                    continue  # a single tap has nothing to dilate
                find = _transposed if transpose else _forward
                settings.extend(find(input_size, output_size, kernel, stride, dilation))
    return sorted(settings, key=Setting.rank)


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
