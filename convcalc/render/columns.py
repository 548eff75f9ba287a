"""The columns of a network's table, shared by every renderer, and number formatting.

Numbers are exact in the core; here, at the edge, they become text: exact for CSV
(`exact=True`), readable at a glance for people (thousands separators, K/M/G).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from fractions import Fraction

from convcalc.analysis.analyze import Analysis, ReceptiveField, Row
from convcalc.text import printable

__all__ = [
    "Column",
    "cells",
    "field_size",
    "format_axes",
    "format_bytes",
    "format_count",
    "format_number",
    "format_shape",
    "format_si",
    "row_name",
    "summary_lines",
]


class Column(Enum):
    """A column: its machine key (CSV header) and its title for people."""

    LAYER = ("name", "Layer")
    KIND = ("kind", "Kind")
    OUTPUT_SHAPE = ("output_shape", "Output shape")
    PARAMS = ("params", "Params")
    MACS = ("macs", "MACs")
    FIELD_SIZE = ("field_size", "Field")
    EFFECTIVE_STRIDE = ("effective_stride", "Eff. stride")
    EFFECTIVE_PADDING = ("effective_padding", "Eff. padding")

    def __init__(self, key: str, title: str) -> None:
        self.key = key
        self.title = title

    @property
    def numeric(self) -> bool:
        return self in (Column.PARAMS, Column.MACS)

    @property
    def heading(self) -> tuple[str, str]:
        """The title on two lines, as a narrow table sets it: "Eff." over "stride"."""
        first, _, second = self.title.rpartition(" ")
        return first, second


def format_count(value: int) -> str:
    return f"{value:,}"


def format_si(value: int) -> str:
    """4089184256 → 4.09G: three significant figures, for figures read at a glance."""
    for divisor, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if abs(value) >= divisor:
            return (
                f"{value / divisor:.3g}{suffix}"
                if value / divisor < 100
                else f"{value / divisor:.0f}{suffix}"
            )
    return str(value)


def format_bytes(value: int) -> str:
    for divisor, suffix in ((10**9, "GB"), (10**6, "MB"), (10**3, "kB")):
        if value >= divisor:
            return f"{value / divisor:.2f} {suffix}"
    return f"{value} B"


def format_number(value: int | Fraction) -> str:
    """A whole number as is, anything else as the fraction it is (1/2, 3/2)."""
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def format_axes(values: Iterable[int | Fraction], separator: str = "×") -> str:
    """One value per spatial axis; a single value when every axis agrees."""
    texts = [format_number(Fraction(v)) for v in values]
    return texts[0] if len(set(texts)) == 1 else separator.join(texts)


def format_shape(shape: tuple[int, ...], separator: str = "×") -> str:
    return separator.join(map(str, shape))


_FIELD = (Column.FIELD_SIZE, Column.EFFECTIVE_STRIDE, Column.EFFECTIVE_PADDING)


def _exact_axes(values: Iterable[int | Fraction]) -> str:
    return "x".join(format_number(Fraction(v)) for v in values)


def _field(field: ReceptiveField | None, exact: bool) -> dict[Column, str]:
    if field is None:  # no spatial axes, or past a global pooling: the whole input
        return dict.fromkeys(_FIELD, "" if exact else "—")
    axes = _exact_axes if exact else format_axes
    values: tuple[tuple[int | Fraction, ...], ...] = (
        field.size,
        field.effective_stride,
        field.effective_padding,
    )
    return {column: axes(value) for column, value in zip(_FIELD, values, strict=True)}


def row_name(row: Row) -> str:
    """How a row is named wherever people read it (table, CSV, Markdown, warnings): its
    qualified name, or its path where nothing names it (a layer on its own)."""
    return row.qualified_name or row.path


def cells(row: Row, exact: bool = False) -> dict[Column, str]:
    """A row's text in every column: exact (CSV) or readable (table, Markdown); names
    (an imported model's may hold anything) with control characters escaped."""
    field = _field(row.receptive_field, exact)
    if row.receptive_field is not None and not exact:
        field[Column.FIELD_SIZE] = field_size(row.receptive_field, row.global_context)
    return {
        Column.LAYER: printable(row_name(row)),
        Column.KIND: printable(row.kind),
        Column.OUTPUT_SHAPE: format_shape(row.output_shape, "x" if exact else "×"),
        Column.PARAMS: str(row.params) if exact else format_count(row.params),
        Column.MACS: str(row.macs) if exact else format_si(row.macs),
        **field,
    }


def summary_lines(analysis: Analysis) -> list[str]:
    """What a table's summary says of a graph: each output's shape and field where there
    are several (a detector's P3/P4/P5 fields are the point), and where global context
    comes in."""
    lines = []
    if len(analysis.outputs) > 1:
        for output in analysis.outputs:
            field = output.receptive_field
            seen = (
                "the whole input"
                if field is None
                else f"field {field_size(field, output.global_context)}, "
                f"effective stride {format_axes(field.effective_stride)}, effective padding "
                f"{format_axes(field.effective_padding)}"
            )
            lines.append(f"Output {printable(output.name)}: {format_shape(output.shape)}, {seen}")
    if analysis.global_context_from is not None:
        lines.append(
            f"Global context from {printable(analysis.global_context_from)} on: fields marked "
            "+g also see the whole input, through a global pooling or normalisation"
        )
    return lines


def field_size(field: ReceptiveField, global_context: bool) -> str:
    """A field's size as tables show it: `427`, or `427+g` where the units also see the
    whole input through a global path (SPEC §6.5)."""
    return format_axes(field.size) + ("+g" if global_context else "")
