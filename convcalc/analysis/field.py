"""Receptive fields, exact, after Araujo, Norris & Sim, *Computing Receptive Fields of
Convolutional Neural Networks* (Distill, 2019).

For a chain of integer strides, output unit y sees input positions y·S − P … y·S − P + r − 1
(size r, effective stride S, effective padding P). Transposed convolutions, upsampling and
uneven adaptive pools make S a fraction and let the field vary from unit to unit; it
still repeats with a period T (T·S a whole number). `AxisField` keeps the first and last
input position seen by the units 0 … T − 1 and extends them by that period, so every
composition stays exact. A chain of ordinary layers keeps T = 1: one pair per axis.

`Field` holds the axes together: where branches merge, a unit's field need not be a box
of per-axis fields any more (see there).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from convcalc.errors import ConvcalcError
from convcalc.model.axes import Window

__all__ = ["MAX_PERIOD", "MAX_REACH", "AxisField", "AxisSummary", "Field"]

#: Longest period a field may have before it is refused as too irregular to tabulate.
MAX_PERIOD = 1 << 16

#: Farthest a field may reach, in input positions: its numbers stay printable as floats.
MAX_REACH = 1 << 1000


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

    def _covering(self, units: Sequence[int]) -> tuple[int, int]:
        """What the given units see together: from the smallest first to the largest last."""
        if len(units) > 2 * self.period:
            # A window reads a progression of units, whose phases modulo the period T
            # repeat within T units; unit y + T sees what y sees, shifted on (never back):
            # the smallest first is among the first T units, the largest last the last T.
            units = [*units[: self.period], *units[-self.period :]]
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
        bounds = window.bounds(0)
        if len(self.firsts) == 1 and units == 1 and bounds and self.firsts[0] <= self.lasts[0]:
            # The common case, a chain of integer strides: Araujo et al.'s recurrence in
            # integers, which the general path below gives too, only slower.
            shift = moves * self.shift
            first = self.firsts[0] + bounds[0] * self.shift
            last = self.lasts[0] + bounds[1] * self.shift
            if max(shift, abs(first), abs(last)) <= MAX_REACH:
                return AxisField(shift, (first,), (last,))
            return _reachable(shift, [(first, last)])  # which says why not
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
        return _reachable(shift, rows)

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

    def sees_nothing(self) -> bool:
        """Whether no unit sees anything."""
        if len(self.firsts) == 1:
            return self.firsts[0] > self.lasts[0]
        return all(first > last for first, last in zip(self.firsts, self.lasts, strict=True))

    def empty_alike(self, other: AxisField) -> bool:
        """Whether the units that see nothing are the same in both fields (a common
        period too long to compare counts as not)."""
        period = math.lcm(self.period, other.period)
        return period <= MAX_PERIOD and all(
            (self.seen(y) is None) == (other.seen(y) is None) for y in range(period)
        )

    def emptied(self) -> AxisField:
        """The same effective stride, with units that see nothing."""
        return AxisField(self.shift, (_EMPTY[0],) * self.period, (_EMPTY[1],) * self.period)

    def mean_edges(self, period: int) -> tuple[Fraction, Fraction] | None:
        """The first and the last position seen, each averaged over the units of
        `period` that see something (None if none does): two branches whose fields
        share a centre or an edge on average look at the same place."""
        seen = [s for y in range(period) if (s := self.seen(y)) is not None]
        if not seen:
            return None
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


def _reachable(shift: int, rows: list[tuple[int, int]]) -> AxisField:
    """The field of these rows, unless it reaches too far to report."""
    if max(shift, *(abs(position) for row in rows for position in row)) > MAX_REACH:
        raise ConvcalcError(
            "the receptive field reaches past 2^1000 input positions: too far to report"
        )
    return AxisField.of(shift, rows)


Term = tuple[AxisField, ...]  # a box: one field per spatial axis


def _joinable(a: Term, b: Term) -> bool:
    """Whether the union of two boxes' fields, axis by axis, is exact for every unit
    and every layer after: where they differ on one axis at most, or where their units
    see nothing at the same places (so that the two are live together)."""
    differ = [i for i, (f, g) in enumerate(zip(a, b, strict=True)) if f != g]
    return len(differ) <= 1 or all(a[i].empty_alike(b[i]) for i in differ)


class Field(NamedTuple):  # made at every layer: a named tuple is made fastest
    """The field of the units of one row on all its spatial axes.

    Through a chain of layers a unit sees a box: on each axis, the positions its
    `AxisField` gives. A merge's unit sees the union of its branches' boxes (SPEC §3),
    and that is no box where a branch's units see nothing at some places (the empty
    units of a transposed convolution): at one position on axis b a unit may see that
    branch on axis a, and its neighbour on b not. So the boxes (`terms`) stay apart,
    and go through the later layers one by one, unless joining them axis by axis is
    exact (`_joinable`); a box with an axis on which no unit sees anything is dropped,
    being empty everywhere (unless every box is).

    `axes` is what a row reports, per axis a: what the units at index y on a see on a,
    taken over every position on the other axes (the union of the live boxes).
    """

    terms: tuple[Term, ...]
    axes: Term

    @staticmethod
    def identity(ndim: int) -> Field:
        """The input itself."""
        term = (AxisField.identity(),) * ndim
        return Field((term,), term)

    @staticmethod
    def of(terms: Sequence[Term], sizes: Sequence[int]) -> Field:
        """The field of the union of the boxes `terms`, on axes of `sizes` units."""
        live = [t for t in terms if not any(f.sees_nothing() for f in t)]
        if not live:  # the units see nothing at all
            term = tuple(f.emptied() for f in terms[0])
            return Field((term,), term)
        joined: list[Term] = []
        for term in live:
            at = next((i for i, j in enumerate(joined) if _joinable(j, term)), None)
            if at is None:
                joined.append(term)
            else:
                joined[at] = tuple(
                    f.union(g, n) for f, g, n in zip(joined[at], term, sizes, strict=True)
                )
        axes = joined[0]
        for term in joined[1:]:
            axes = tuple(f.union(g, n) for f, g, n in zip(axes, term, sizes, strict=True))
        return Field(tuple(joined), axes)

    def through(self, windows: Sequence[Window], sizes: Sequence[int]) -> Field:
        """The field one layer further on (`windows`, one per axis, onto `sizes` units)."""
        terms = [tuple(f.through(w) for f, w in zip(t, windows, strict=True)) for t in self.terms]
        if len(terms) == 1 and not any(f.sees_nothing() for f in terms[0]):
            return Field((terms[0],), terms[0])  # one box that sees something, as almost always
        return Field.of(terms, sizes)

    @staticmethod
    def merge(branches: Sequence[Field], sizes: Sequence[int]) -> Field:
        """The field of a merge of branches: the union of all their boxes."""
        return Field.of([t for branch in branches for t in branch.terms], sizes)
