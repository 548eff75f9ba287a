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

import itertools
import math
from collections.abc import Iterable
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


#: How an empty unit (one that sees nothing) is tabulated: first after last.
_EMPTY = (1, 0)


@dataclass(frozen=True)
class AxisField:
    """The input positions first(y) … last(y) seen by output unit y on one axis.

    Units 0 … T − 1 are tabulated (T, the period, is the length of the tables); unit
    y + T sees what unit y sees, `shift` positions on. The effective stride is
    shift / T. Keeping the shift (a whole number) rather than the stride keeps the
    common arithmetic in integers. A unit that sees nothing (after some transposed
    convolutions) is tabulated with first > last.
    """

    shift: int
    firsts: tuple[int, ...]
    lasts: tuple[int, ...]

    @staticmethod
    def identity() -> AxisField:
        """The input itself: unit y sees position y."""
        return AxisField(1, (0,), (0,))

    @staticmethod
    def of(shift: int, rows: list[tuple[int, int]]) -> AxisField:
        """A field from (first, last) of each unit of one period."""
        firsts, lasts = zip(*rows, strict=True)
        return AxisField(shift, firsts, lasts)

    @property
    def period(self) -> int:
        return len(self.firsts)

    @property
    def effective_stride(self) -> Fraction:
        return Fraction(self.shift, len(self.firsts))

    def regular(self) -> bool:
        """Every unit sees something, and first and last never decrease from one unit
        to the next: then the units u … v together see first(u) … last(v). Every chain
        of integer strides is regular; some transposed convolutions are not."""
        if len(self.firsts) == 1:  # the shift is never negative
            return self.firsts[0] <= self.lasts[0]
        ends = (
            (*self.firsts, self.firsts[0] + self.shift),
            (*self.lasts, self.lasts[0] + self.shift),
        )
        return all(f <= t for f, t in zip(self.firsts, self.lasts, strict=True)) and all(
            a <= b for values in ends for a, b in itertools.pairwise(values)
        )

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

    def seen(self, y: int) -> tuple[int, int] | None:
        """The first and last position unit y sees, or None if it sees nothing."""
        first, last = self.first(y), self.last(y)
        return (first, last) if first <= last else None

    def _covering(self, units: Iterable[int]) -> tuple[int, int]:
        """What the given units see together: from the smallest first to the largest last."""
        seen = [s for u in units if (s := self.seen(u)) is not None]
        if not seen:
            return _EMPTY
        return min(first for first, _ in seen), max(last for _, last in seen)

    def through(self, window: Window) -> AxisField:
        """The field one layer further on: unit y of the layer reads the units
        window.reads(y) of this field and sees the union of what they see (Araujo et
        al. 2019, eq. 1–2, for integer strides).
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
        if self.regular():
            # The union of what units u … v see is first(u) … last(v).
            spans = [window.bounds(y) for y in range(period)]
            rows = [(self.first(b[0]), self.last(b[1])) if b else _EMPTY for b in spans]
        else:
            rows = [self._covering(window.reads(y)) for y in range(period)]
        return AxisField.of(shift, rows)

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
        rows = []
        for y in range(period):
            seen = [s for s in (self.seen(y), other.seen(y)) if s is not None]
            rows.append((min(s[0] for s in seen), max(s[1] for s in seen)) if seen else _EMPTY)
        return AxisField.of(int(period * stride), rows)

    def mean_edges(self, period: int) -> tuple[Fraction, Fraction]:
        """The first and the last position seen, each averaged over the units of
        `period` that see something: two branches whose fields share a centre or an
        edge on average look at the same place."""
        seen = [s for y in range(period) if (s := self.seen(y)) is not None]
        return (
            Fraction(sum(first for first, _ in seen), len(seen)),
            Fraction(sum(last for _, last in seen), len(seen)),
        )

    def summary(self) -> AxisSummary:
        if len(self.firsts) == 1:  # the common case, in integers
            first = self.firsts[0]
            return AxisSummary(self.lasts[0] - first + 1, Fraction(self.shift), Fraction(-first))
        sizes = [last - first + 1 for first, last in zip(self.firsts, self.lasts, strict=True)]
        widest = max(range(self.period), key=sizes.__getitem__)
        stride = self.effective_stride
        return AxisSummary(sizes[widest], stride, widest * stride - self.firsts[widest])
