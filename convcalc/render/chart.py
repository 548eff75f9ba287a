"""Analysis → a bar chart of the receptive field in the terminal (`net --chart`): one bar
per row of the table, its length proportional to the field size, the size at its end.
Rich only; a pipe gets plain text (Rich writes no escape codes off a terminal)."""

from __future__ import annotations

import math
from typing import IO

from convcalc.analysis.analyze import Analysis
from convcalc.render.columns import Column, cells
from convcalc.render.table import console_for

__all__ = ["bar", "print_chart"]

#: Bar lengths in eighths of a cell: the block characters for 1/8 … 7/8.
_EIGHTHS = "▏▎▍▌▋▊▉"
#: The bars' width in cells off a terminal, and at most on one.
_WIDTH = 40
#: Above this ratio of the largest field to the smallest, the bars are on a log scale.
_LOG_ABOVE = 16


def bar(fraction: float, width: int) -> str:
    """A bar `fraction` (0 … 1) of `width` cells long, to the nearest eighth of a cell."""
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest - 1] if rest else "")


def print_chart(analysis: Analysis, file: IO[str] | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    console = console_for(file)
    # A field per row: the largest over its axes draws the bar, the table's text ends it.
    sizes = [
        max(row.receptive_field.size) if row.receptive_field else None for row in analysis.rows
    ]
    known = [size for size in sizes if size is not None]
    if not known:
        console.print("No layer has a receptive field (the model has no spatial axes).")
        return
    largest, smallest = max(known), min(known)
    log = largest > _LOG_ABOVE * smallest

    def fraction(size: int) -> float:
        return math.log(size) / math.log(largest) if log else size / largest

    texts = [cells(row) for row in analysis.rows]
    width = _WIDTH
    if console.is_terminal:
        names = max(len(text[Column.LAYER]) for text in texts)
        numbers = max(len(text[Column.FIELD_SIZE]) for text in texts)
        width = max(10, min(_WIDTH, console.width - names - numbers - 2))
    uneven = any(
        len(set(row.receptive_field.size)) > 1 for row in analysis.rows if row.receptive_field
    )
    console.print(
        f"Receptive field per layer ({'log' if log else 'linear'} scale, bars up to {largest}"
        f"{'; the largest axis where axes differ' if uneven else ''})",
        soft_wrap=True,
    )
    chart = Table.grid(padding=(0, 1))
    chart.add_column(no_wrap=True)
    chart.add_column(min_width=width, no_wrap=True)
    chart.add_column(no_wrap=True, justify="right")
    for text, size in zip(texts, sizes, strict=True):
        drawn = bar(fraction(size), width) if size is not None else ""
        chart.add_row(
            Text(text[Column.LAYER]), Text(drawn, style="cyan"), Text(text[Column.FIELD_SIZE])
        )
    console.print(chart)
