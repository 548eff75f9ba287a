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
    """The input positions first(y) … last(y) seen by output unit y on one axis.

    Units 0 … T − 1 are tabulated (T, the period, is the length of the tables); unit
    y + T sees what unit y sees, `shift` positions on. The effective stride is
    shift / T. Keeping the shift (a whole number) rather than the stride keeps the
    common arithmetic in integers.
    """

    shift: int
    firsts: tuple[int, ...]
    lasts: tuple[int, ...]

    @staticmethod
    def identity() -> AxisField:
        """The input itself: unit y sees position y."""
        return AxisField(1, (0,), (0,))

    @property
    def period(self) -> int:
        return len(self.firsts)

    @property
    def effective_stride(self) -> Fraction:
        return Fraction(self.shift, len(self.firsts))

    def first(self, y: int) -> int:
        if len(self.firsts) == 1:
            return self.firsts[0] + y * self.shift
        periods, phase = divmod(y, len(self.firsts))
        return self.firsts[phase] + periods * self.shift

    def last(self, y: int) -> int:
        if len(self.lasts) == 1:
            return self.lasts[0] + y * self.shift
        periods, phase = divmod(y, len(self.lasts))
        return self.lasts[phase] + periods * self.shift

    def through(self, window: Window) -> AxisField:
        """The field one layer further on: unit y of the layer reads the units
        window.first(y) … window.last(y) of this field, and sees the union of theirs.
        First and last are monotone in y, so that union spans from the first of the
        first to the last of the last (Araujo et al. 2019, eq. 1–2, for integer strides).
        """
        moves, units = window.slope_ratio()  # the window moves `moves` units per `units`
        # The new period: a multiple of the window's own (`units`) over which the window
        # moves a whole number of this field's periods.
        period = units * self.period // math.gcd(self.period, moves)
        if period > MAX_PERIOD:
            raise ConvcalcError(
                f"the receptive field repeats only every {period} units "
                f"(more than {MAX_PERIOD}): too irregular to compute exactly"
            )
        # Over the new period the window moves period·moves/units of this field's units.
        shift = period * moves * self.shift // (units * self.period)
        return AxisField(
            shift,
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
        stride = max(self.effective_stride, other.effective_stride)
        if self.effective_stride == other.effective_stride:
            period = math.lcm(self.period, other.period)
        else:
            period = units * stride.denominator
        if period > MAX_PERIOD:
            raise ConvcalcError(
                f"the receptive field repeats only every {period} units "
                f"(more than {MAX_PERIOD}): too irregular to compute exactly"
            )
        return AxisField(
            int(period * stride),
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
