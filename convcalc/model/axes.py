"""Arithmetic along one spatial axis: dilated kernels, padding, output sizes, windows.

A *window* says which input positions one output unit reads on one axis: output index
y reads the input positions `reads(y)` (positions below 0 or past the input are
padding). Every window here is periodic: what unit y + q reads is what unit y reads,
p positions on, when its slope is p/q in lowest terms; that is what lets
`analysis.field` compose windows exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from convcalc.errors import ConvcalcError

__all__ = [
    "AXIS_NAMES",
    "AdaptiveBins",
    "Interpolation",
    "Padding",
    "Sliding",
    "Transposed",
    "Window",
    "dilated",
    "per_axis",
    "resolve_padding",
    "sliding_output_size",
    "transposed_output_size",
    "unread_positions",
]

Padding = int | tuple[int | tuple[int, int], ...] | Literal["same", "valid"]

#: Names of the spatial axes by their count, for messages.
AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def per_axis(value: int | tuple[int, ...], ndim: int, name: str) -> tuple[int, ...]:
    """One value per spatial axis from a number (every axis) or a list (one per axis)."""
    if isinstance(value, int):
        return (value,) * ndim
    if len(value) != ndim:
        raise ConvcalcError(
            f"{name} has {len(value)} values, but the input has {ndim} spatial "
            f"ax{'is' if ndim == 1 else 'es'}"
        )
    return value


def dilated(kernel: int, dilation: int) -> int:
    """The extent a dilated kernel spans: (k − 1)·d + 1 (PyTorch Conv docs; Araujo et al. 2019)."""
    return (kernel - 1) * dilation + 1


def resolve_padding(
    padding: Padding, sizes: tuple[int, ...], spans: tuple[int, ...], strides: tuple[int, ...]
) -> tuple[tuple[int, int], ...]:
    """(before, after) per axis; `spans` are the dilated kernels.

    "same" is TensorFlow's rule at any stride: output = ceil(input / stride), total
    padding = max((output − 1)·stride + span − input, 0), the odd pixel after.
    """
    ndim = len(sizes)
    if padding == "valid":
        return ((0, 0),) * ndim
    if padding == "same":
        pairs = []
        for size, span, stride in zip(sizes, spans, strides, strict=True):
            total = max((-(-size // stride) - 1) * stride + span - size, 0)
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)
    if isinstance(padding, int):
        return ((padding, padding),) * ndim
    if len(padding) != ndim:
        raise ConvcalcError(
            f"padding has {len(padding)} values, but the input has {ndim} spatial "
            f"ax{'is' if ndim == 1 else 'es'}"
        )
    return tuple((p, p) if isinstance(p, int) else p for p in padding)


def sliding_output_size(
    size: int, span: int, stride: int, before: int, after: int, ceil_mode: bool = False
) -> int:
    """Output size of a sliding window (PyTorch Conv and pooling docs).

    floor((size + before + after − span) / stride) + 1; with ceil_mode the division
    rounds up, but the last window must start inside the input or its left padding.
    """
    reach = size + before + after - span
    if not ceil_mode:
        return reach // stride + 1
    out = -(-reach // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def transposed_output_size(
    size: int, span: int, stride: int, before: int, after: int, output_padding: int
) -> int:
    """(size − 1)·stride − before − after + span + output_padding (PyTorch ConvTranspose docs)."""
    return (size - 1) * stride - before - after + span + output_padding


def unread_positions(
    size: int, output: int, kernel: int, dilation: int, stride: int, before: int
) -> int:
    """How many of the real input positions 0 … size − 1 no tap of any window reads."""
    if dilation == 1 and stride <= kernel:
        # Windows overlap or touch: only positions past the last window go unread.
        return max(size - max((output - 1) * stride - before + kernel, 0), 0)
    return size - _sums_between(kernel, dilation, output, stride, before, before + size)


#: Most residue classes `_sums_between` goes through before it calls a pattern too irregular.
MAX_CLASSES = 1 << 16


def _sums_between(taps: int, spacing: int, windows: int, stride: int, low: int, high: int) -> int:
    """How many numbers in low … high − 1 are j·spacing + i·stride for some tap j < taps
    and window i < windows: the positions (shifted by the padding before) that are read.

    Counted per residue class modulo the stride, in time independent of the sizes: taps
    that are stride / gcd apart fall in the same class, where each reads a run of
    `windows` consecutive members, the runs spacing / gcd members apart.
    """
    common = math.gcd(spacing, stride)
    # The sums are symmetric in (taps, spacing) and (windows, stride): take the side
    # with fewer classes.
    if min(taps, stride // common) > min(windows, spacing // common):
        taps, spacing, windows, stride = windows, stride, taps, spacing
    period, step = stride // common, spacing // common
    classes = min(taps, period)
    if classes > MAX_CLASSES:
        raise ConvcalcError(
            f"the windows read a pattern of {classes:,} interleaved progressions (more than "
            f"{MAX_CLASSES:,}): too irregular to check which input positions they read"
        )
    width = min(windows, step)  # of every `step` members from a run's start, read

    def read_below(member: int) -> int:  # members 0 … member − 1 of the class that are read
        return member // step * width + min(member % step, width)

    count = 0
    for first in range(classes):
        start, residue = divmod(first * spacing, stride)
        # Members m (positions residue + m·stride) between low and high, counted from
        # the first tap's run; the class's last run ends `windows` after its start.
        below = max(-(-(low - residue) // stride) - start, 0)
        above = min(
            -(-(high - residue) // stride) - start,
            (-(-(taps - first) // period) - 1) * step + windows,
        )
        if below < above:
            count += read_below(above) - read_below(below)
    return count


@dataclass(frozen=True)
class Window:
    """Which input units output unit y reads on one axis."""

    def slope_ratio(self) -> tuple[int, int]:
        """How far the window moves along the input per output unit, as a fraction in
        lowest terms: (input positions, output units)."""
        raise NotImplementedError

    def reads(self, y: int) -> Sequence[int]:
        """Every input unit y reads, in increasing order (none, for some transposed
        convolutions)."""
        raise NotImplementedError

    def bounds(self, y: int) -> tuple[int, int] | None:
        """The first and the last input unit y reads, or None if it reads none."""
        units = self.reads(y)
        return (units[0], units[-1]) if units else None


@dataclass(frozen=True)
class Sliding(Window):
    """A convolution or pooling window: y reads y·stride − before … that + span − 1,
    one position in every `dilation`."""

    span: int
    stride: int
    before: int
    dilation: int = 1

    def slope_ratio(self) -> tuple[int, int]:
        return self.stride, 1

    def reads(self, y: int) -> Sequence[int]:
        start = y * self.stride - self.before
        return range(start, start + self.span, self.dilation)

    def bounds(self, y: int) -> tuple[int, int]:
        start = y * self.stride - self.before
        return start, start + self.span - 1


@dataclass(frozen=True)
class Transposed(Window):
    """A transposed convolution (Dumoulin & Visin 2016, §4): input i writes output
    i·stride − before + j·dilation for each kernel tap j, so output y reads the inputs
    i = (y + before − j·dilation) / stride that are whole numbers. Some outputs read
    nothing: where the kernel is shorter than the stride, or dilation and stride share
    a factor.
    """

    kernel: int
    dilation: int
    stride: int
    before: int

    def slope_ratio(self) -> tuple[int, int]:
        return 1, self.stride

    def reads(self, y: int) -> Sequence[int]:
        # Taps j with j·dilation ≡ y + before (mod stride): none unless the gcd divides
        # y + before, else every stride/gcd-th tap from the first, j0; the inputs they
        # read step down by dilation/gcd.
        target = y + self.before
        common = math.gcd(self.dilation, self.stride)
        if target % common:
            return range(0)
        period, step = self.stride // common, self.dilation // common
        first = target // common * pow(step, -1, period) % period
        if first >= self.kernel:
            return range(0)
        last = first + (self.kernel - 1 - first) // period * period
        return range(
            (target - last * self.dilation) // self.stride,
            (target - first * self.dilation) // self.stride + 1,
            step,
        )

    def tap_counts(self) -> list[int]:
        """How many taps output units read, each number that occurs, smallest first: the
        pattern repeats every `stride` units, over which the first tap j0 runs through
        every class modulo stride/gcd once (and, if the gcd is above 1, some units read
        none)."""
        common = math.gcd(self.dilation, self.stride)
        period = self.stride // common
        counts = {self.kernel // period, -(-self.kernel // period)} | ({0} if common > 1 else set())
        return sorted(counts)


@dataclass(frozen=True)
class Interpolation(Window):
    """Upsampling by PyTorch's index rule, exact (`ratio` is input size / output size).

    nearest: y reads floor(y·ratio); nearest-exact: floor((y + ½)·ratio). The linear
    family takes the source x = (y + ½)·ratio − ½ (align_corners false) or y·ratio (true,
    where ratio = (in − 1)/(out − 1)) and reads floor(x) and floor(x) + 1, cubic
    floor(x) − 1 … floor(x) + 2; where x is whole, the other taps weigh 0 and only
    floor(x) is read. Clamping at the border is left out: a field describes units away
    from the border.
    """

    ratio: Fraction
    mode: Literal["nearest", "nearest-exact", "linear", "cubic"]
    align_corners: bool = False

    def slope_ratio(self) -> tuple[int, int]:
        return self.ratio.numerator, self.ratio.denominator

    def _source(self, y: int) -> Fraction:
        if self.mode == "nearest" or self.align_corners:
            return y * self.ratio
        if self.mode == "nearest-exact":
            return (y + Fraction(1, 2)) * self.ratio
        return (y + Fraction(1, 2)) * self.ratio - Fraction(1, 2)

    def reads(self, y: int) -> Sequence[int]:
        source = self._source(y)
        whole = math.floor(source)
        if self.mode in ("nearest", "nearest-exact") or source.denominator == 1:
            return range(whole, whole + 1)
        return range(whole, whole + 2) if self.mode == "linear" else range(whole - 1, whole + 3)


@dataclass(frozen=True)
class AdaptiveBins(Window):
    """PyTorch's adaptive pooling bins: unit i pools floor(i·n/m) … ceil((i + 1)·n/m) − 1
    for input size n and output size m. Where m divides n this is the fixed pool with
    kernel = stride = n/m; otherwise the bins vary and the slope is the fraction n/m.
    """

    size: int
    output_size: int

    def slope_ratio(self) -> tuple[int, int]:
        common = math.gcd(self.size, self.output_size)
        return self.size // common, self.output_size // common

    def reads(self, y: int) -> Sequence[int]:
        return range(
            (y * self.size) // self.output_size, -(-((y + 1) * self.size) // self.output_size)
        )
