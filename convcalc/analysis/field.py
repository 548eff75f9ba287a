"""Receptive fields, exact, after Araujo, Norris & Sim, *Computing Receptive Fields of
Convolutional Neural Networks* (Distill, 2019).

For a chain of integer strides, output unit y sees input positions y·S − P … y·S − P + r − 1
(size r, effective stride S, effective padding P). Transposed convolutions, upsampling and
uneven adaptive pools make S a fraction and let the field vary from unit to unit; it
still repeats with a period T (T·S a whole number). `AxisField` keeps the first and last
input position seen by the units 0 … T − 1 and extends them by that period, so every
composition stays exact. A chain of ordinary layers keeps T = 1: one pair per axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from convcalc.errors import ConvcalcError
from convcalc.model.axes import Window

__all__ = ["MAX_PERIOD", "AxisField", "AxisSummary"]

#: Longest period a field may have before it is refused as too irregular to tabulate.
MAX_PERIOD = 1 << 16


@dataclass(frozen=True)
class AxisSummary:
    """What one axis of a field amounts to: the largest size over the units, the
    effective stride, and the effective padding of a unit with that largest size."""

    size: int
    effective_stride: Fraction
    effective_padding: Fraction


@dataclass(frozen=True)
class AxisField:
    """The input positions first(y) … last(y) seen by output unit y on one axis."""

    effective_stride: Fraction
    firsts: tuple[int, ...]
    lasts: tuple[int, ...]

    @staticmethod
    def identity() -> AxisField:
        """The input itself: unit y sees position y."""
        return AxisField(Fraction(1), (0,), (0,))

    @property
    def period(self) -> int:
        return len(self.firsts)

    def _shift(self, periods: int) -> int:
        return int(periods * self.period * self.effective_stride)

    def first(self, y: int) -> int:
        periods, phase = divmod(y, self.period)
        return self.firsts[phase] + self._shift(periods)

    def last(self, y: int) -> int:
        periods, phase = divmod(y, self.period)
        return self.lasts[phase] + self._shift(periods)

    def through(self, window: Window) -> AxisField:
        """The field one layer further on: unit y of the layer reads the units
        window.first(y) … window.last(y) of this field, and sees the union of theirs.
        First and last are monotone in y, so that union spans from the first of the
        first to the last of the last (Araujo et al. 2019, eq. 1–2, for integer strides).
        """
        slope = window.slope
        # The new period: a multiple of the window's own period (slope's denominator)
        # over which the window advances a whole number of this field's periods.
        steps = slope.numerator
        period = slope.denominator * self.period // math.gcd(self.period, steps)
        if period > MAX_PERIOD:
            raise ConvcalcError(
                f"the receptive field repeats only every {period} units "
                f"(more than {MAX_PERIOD}): too irregular to compute exactly"
            )
        return AxisField(
            self.effective_stride * slope,
            tuple(self.first(window.first(y)) for y in range(period)),
            tuple(self.last(window.last(y)) for y in range(period)),
        )

    def union(self, other: AxisField, units: int) -> AxisField:
        """The field of units that see what this field's unit and `other`'s unit see
        (a merge of branches; SPEC §3). Where the effective strides agree the union
        repeats with both periods; where they differ the branches are not aligned and
        the union no longer repeats: it is tabulated over the `units` real units (the
        size of this axis), extended beyond them by the coarser stride.
        """
        if self.effective_stride == other.effective_stride:
            stride = self.effective_stride
            period = math.lcm(self.period, other.period)
        else:
            stride = max(self.effective_stride, other.effective_stride)
            period = units * stride.denominator
        if period > MAX_PERIOD:
            raise ConvcalcError(
                f"the receptive field repeats only every {period} units "
                f"(more than {MAX_PERIOD}): too irregular to compute exactly"
            )
        return AxisField(
            stride,
            tuple(min(self.first(y), other.first(y)) for y in range(period)),
            tuple(max(self.last(y), other.last(y)) for y in range(period)),
        )

    def mean_edges(self, period: int) -> tuple[Fraction, Fraction]:
        """The first and the last position seen, each averaged over `period` units: two
        branches whose fields share a centre or an edge on average look at the same place."""
        return (
            Fraction(sum(self.first(y) for y in range(period)), period),
            Fraction(sum(self.last(y) for y in range(period)), period),
        )

    def summary(self) -> AxisSummary:
        sizes = [last - first + 1 for first, last in zip(self.firsts, self.lasts, strict=True)]
        widest = max(range(self.period), key=sizes.__getitem__)
        stride = self.effective_stride
        return AxisSummary(sizes[widest], stride, widest * stride - self.firsts[widest])
