"""Analysis → Rich tables for people. Rich is imported only here, only when a table is
printed; a pipe gets no colour or markup codes (Rich turns them off off a terminal).

Text is printed as it is: Rich's markup ([bold]) and emoji codes (:smile:) are off, so a
name is never read as either; names, paths and messages have their control characters
escaped (convcalc.text)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

from convcalc.analysis.analyze import Analysis
from convcalc.analysis.sizes import Period
from convcalc.analysis.solve import FieldPlan, Setting
from convcalc.render.columns import (
    field_size,
    format_axes,
    format_count,
    format_shape,
    format_si,
)
from convcalc.render.data import SizesReport
from convcalc.text import printable

if TYPE_CHECKING:
    from rich.text import Text

__all__ = [
    "console_for",
    "print_field_plan",
    "print_layer",
    "print_models",
    "print_network",
    "print_sizes",
    "print_solutions",
]


def console_for(file: IO[str] | None = None):  # type: ignore[no-untyped-def]
    """The Rich console every renderer prints with (Rich is imported only here, when a
    table is printed): a terminal's width; off a terminal, COLUMNS if set (Rich reads
    it), else no limit, so that a file or a pipe gets whole lines."""
    from rich.console import Console

    from convcalc.render.network import UNLIMITED

    def plain(width: int | None = None) -> Console:
        return Console(file=file, width=width, highlight=False, markup=False, emoji=False)

    console = plain()
    return console if console.is_terminal or _columns() is not None else plain(UNLIMITED)


def _columns() -> int | None:
    text = os.environ.get("COLUMNS", "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def table_width(console) -> int | None:  # type: ignore[no-untyped-def]
    """The width a network's table fits: the console's, or None where it has no limit."""
    from convcalc.render.network import UNLIMITED

    return None if console.width >= UNLIMITED else int(console.width)


def _print(console, lines: Iterable[Text]) -> None:  # type: ignore[no-untyped-def]
    """Lines laid out already, printed at once (a call per line would cost more than
    the rest for a model of 100,000 rows); Rich must neither wrap nor crop them again."""
    from rich.text import Text

    lines = list(lines)
    if console.no_color or console.color_system is None:  # a pipe: the text is all
        console.file.write("".join(f"{line.plain}\n" for line in lines))
    elif lines:
        console.print(Text("\n").join(lines), soft_wrap=True)


def print_network(
    analysis: Analysis,
    explained: bool = False,
    file: IO[str] | None = None,
    depth: int | None = 2,
) -> None:
    """The network's table to `depth` levels of names (None: every layer; 2 is
    `network.DEFAULT_DEPTH`), fitted to the terminal (`convcalc.render.fit`), then its
    totals, warnings and notes."""
    from convcalc.render.network import NetworkTable

    console = console_for(file)
    _print(console, NetworkTable(analysis, depth, explained).render(console, table_width(console)))


def print_layer(analysis: Analysis, explained: bool = False, file: IO[str] | None = None) -> None:
    from rich.table import Table

    console = console_for(file)
    (row,) = analysis.rows
    table = Table(title=f"{row.kind}", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    field = row.receptive_field
    facts = [
        ("Input shape", format_shape(row.input_shape)),
        ("Output shape", format_shape(row.output_shape)),
        ("Params", format_count(row.params)),
        ("MACs", format_count(row.macs)),
        ("FLOPs", format_count(2 * row.macs)),
    ]
    if field is not None:
        facts += [
            ("Field size", format_axes(field.size)),
            ("Effective stride", format_axes(field.effective_stride)),
            ("Effective padding", format_axes(field.effective_padding)),
        ]
    else:
        facts.append(("Field", "the whole input"))
    for name, value in facts:
        table.add_row(name, value)
    console.print(table)
    from convcalc.render.network import explanations, warnings

    width = table_width(console)
    if explained:
        _print(console, explanations(console, analysis, width))
    _print(console, warnings(console, analysis, width))


def print_models(analyses: list[tuple[str, Analysis]], file: IO[str] | None = None) -> None:
    from rich.table import Table

    console = console_for(file)
    table = Table(title="Bundled models (convcalc net NAME)", title_justify="left")
    for title, right in (
        ("Name", False), ("Input", False), ("Params", True), ("MACs", True), ("Field", False),
        ("Eff. stride", False),
    ):  # fmt: skip
        table.add_column(title, justify="right" if right else "left")
    for name, analysis in analyses:
        field = analysis.receptive_field
        table.add_row(
            name,
            format_shape(analysis.input_shape),
            format_count(analysis.totals.params),
            format_si(analysis.totals.macs),
            field_size(field, analysis.global_context) if field else "—",
            format_axes(field.effective_stride) if field else "—",
        )
    console.print(table)


def _padding(setting: Setting) -> str:
    before, after = setting.padding
    return str(before) if before == after else f"[{before}, {after}]"


def print_solutions(
    input: int, output: int, transpose: bool, settings: list[Setting], limit: int,
    file: IO[str] | None = None,
) -> None:  # fmt: skip
    from rich.table import Table

    console = console_for(file)
    kind = "conv_transpose" if transpose else "conv"
    if not settings:
        console.print(f"No {kind} setting within the bounds maps {input} to {output}.")
        return
    shown = settings if limit == 0 else settings[:limit]
    table = Table(title=f"{kind}: {input} → {output}, best first", title_justify="left")
    titles = ["Kernel", "Stride", "Dilation", "Padding"]
    titles += ["Output padding", "Even taps"] if transpose else []
    for title in [*titles, "Dropped"]:
        table.add_column(title, justify="right")
    for setting in shown:
        cells = [setting.kernel_size, setting.stride, setting.dilation, _padding(setting)]
        if transpose:
            cells += [setting.output_padding, "no" if setting.checkerboard else "yes"]
        table.add_row(*map(str, [*cells, setting.dropped]))
    console.print(table)
    if len(shown) < len(settings):
        console.print(f"… and {len(settings) - len(shown)} more (--limit 0 shows all)")


def print_field_plan(plan: FieldPlan, limit: int = 0, file: IO[str] | None = None) -> None:
    """The plan's layers; beyond `limit` rows (0: no limit), the first and the last of
    them, the last being where the field is reached."""
    from rich.table import Table

    console = console_for(file)
    layers = len(plan.sizes)
    console.print(
        f"{layers} layer{'s' if layers != 1 else ''} of kernel {plan.kernel_size}, stride "
        f"{plan.stride} reach a field of {plan.target}:",
        soft_wrap=True,
    )
    table = Table()
    for title in ("Layer", "Dilation", "Field"):
        table.add_column(title, justify="right")
    cells = [
        (str(index), str(dilation), str(size))
        for index, (dilation, size) in enumerate(zip(plan.dilations, plan.sizes, strict=True), 1)
    ]
    shortened = 0 < limit < layers
    if shortened:
        tail = (limit + 1) // 2  # the larger half: --limit 1 shows the last layer
        cells = [*cells[: limit - tail], ("…", "…", "…"), *cells[layers - tail :]]
    for row in cells:
        table.add_row(*row)
    console.print(table)
    if shortened:
        console.print(
            f"… {layers - limit} of the {layers} layers left out (--limit 0 shows all)",
            soft_wrap=True,
        )


def describe_period(period: Period) -> str:
    """ "N % 16 == 0 (from 16)", or "every N from 63" for period 1."""
    if period.period == 1:
        return f"every N from {period.start}"
    if len(period.residues) == 1:
        condition = f"N % {period.period} == {period.residues[0]}"
    else:
        condition = f"N % {period.period} in {{{', '.join(map(str, period.residues))}}}"
    return f"{condition} (from {period.start})"


def print_sizes(report: SizesReport, file: IO[str] | None = None) -> None:
    from rich.table import Table

    console = console_for(file)
    if report.checks:
        table = Table()
        for title in ("Input", "Valid", "Clean", "Output shape", "Issues"):
            table.add_column(title)
        for check in report.checks:
            issues = "; ".join(f"{i.name or i.path}: {i.message}" for i in check.issues[:1])
            if len(check.issues) > 1:
                issues += f" (+{len(check.issues) - 1} more)"
            table.add_row(
                format_shape(check.input_shape),
                "yes" if check.valid else "no",
                "yes" if check.clean else "no",
                format_shape(check.output_shape) if check.output_shape else "—",
                printable(issues),
            )
        console.print(table)
    if report.searched:
        found = report.smallest
        console.print(
            f"Smallest valid input: {found}" if found else "No valid input size up to 4096",
            soft_wrap=True,
        )
    for word, period in (("Valid", report.valid_when), ("Clean", report.clean_when)):
        if report.checks:
            text = describe_period(period) if period else "no period within the range"
            console.print(f"{word} when {text}", soft_wrap=True)
