"""The table of a whole network, as people read it: its blocks as rows, to a depth,
fitted to a width; the totals and the field under it; then warnings and notes. The
command line prints it (`convcalc net`), the API returns its text (`summary()`) and
shows it in Rich and Jupyter (`__rich__`, `_repr_html_`).

Each line is built once as text (`Text`, with styles for a terminal: bold titles, dim
tree guides); a pipe gets the same text without them. Prose lines (the totals, the
field, warnings, notes) wrap at spaces, continued two spaces in.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Literal

from rich.cells import cell_len
from rich.text import Text

from convcalc.analysis.analyze import Analysis, Diagnostic, ReceptiveField, Row
from convcalc.render.columns import (
    Column,
    cells,
    field_size,
    format_axes,
    format_bytes,
    format_count,
    format_shape,
    format_si,
    row_name,
    summary_lines,
)
from convcalc.render.fit import GUTTER, fit, shorten
from convcalc.render.tree import Block, build, lines
from convcalc.text import printable

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

__all__ = ["DEFAULT_DEPTH", "NetworkTable", "explanations", "prose", "warnings"]

#: Rows down to this level of the names by default: ResNet's stages and their blocks
#: (`layer1`, `layer1.0`), torchinfo's `depth=2`.
DEFAULT_DEPTH = 2

#: The width of a console with no limit: wider than any line convcalc prints.
UNLIMITED = 100_000

#: How a note names the option that opens the table: the command line's, or the API's.
Asker = Literal["cli", "api"]


def _field_line(field: ReceptiveField | None, global_context: bool = False) -> str:
    if field is None:
        return "Receptive field: the whole input (no spatial axes left)"
    return (
        f"Receptive field: {field_size(field, global_context)}, effective stride "
        f"{format_axes(field.effective_stride)}, effective padding "
        f"{format_axes(field.effective_padding)}"
    )


def _totals_line(analysis: Analysis) -> str:
    totals = analysis.totals
    unused = f", unused {format_count(totals.unused_params)}" if totals.unused_params else ""
    return (
        f"Params {format_count(totals.params)} (trainable {format_count(totals.trainable_params)}, "
        f"{format_bytes(totals.param_bytes)}{unused}) · MACs {format_si(totals.macs)} · "
        f"FLOPs {format_si(totals.flops)} · activations {format_bytes(totals.activation_bytes)} "
        f"(every layer's output, batch {totals.batch}, float32)"
    )


def _depth_option(depth: int | None, asker: Asker) -> str:
    if asker == "api":
        return f"summary(depth={depth if depth is not None else repr('all')})"
    return f"--depth {depth if depth is not None else 'all'}"


def _cells_wide(text: str) -> int:
    """Cells a text takes: its length where it is ASCII (nearly always, and Rich's count
    costs more than the rest of a 100,000-row table), else Rich's count."""
    return len(text) if text.isascii() else cell_len(text)


def prose(console: Console, text: Text | str, width: int | None, indent: int = 0) -> list[Text]:
    """A line of prose within `width` cells (None: as it is), wrapped at spaces, its
    continuation lines two spaces further in than `indent`."""
    text = Text(text) if isinstance(text, str) else text
    if width is None or cell_len(text.plain) <= width:
        return [text]
    inner = max(width - indent - 2, 20)
    wrapped = text.wrap(console, inner, overflow="fold")
    for line in wrapped:
        line.rstrip()
    first, *rest = wrapped
    return [first, *(Text(" " * (indent + 2)) + line for line in rest)]


def _warning(warning: Diagnostic) -> str:
    """A warning after the word `warning`, naming its row as the table does."""
    place = warning.name or warning.path
    at = f" at {place}" if place else ""  # or about the whole model (an import's)
    return printable(f" {warning.code}{at}: {warning.message}")


def warnings(console: Console, analysis: Analysis, width: int | None) -> Iterator[Text]:
    """Each warning on its own, the word `warning` in yellow."""
    for warning in analysis.warnings:
        yield from prose(console, Text.assemble(("warning", "yellow"), _warning(warning)), width)


def explanations(console: Console, analysis: Analysis, width: int | None) -> Iterator[Text]:
    """Each row's arithmetic with its numbers (`--explain`), under its name."""
    from convcalc.render.explain import explain

    yield Text("Arithmetic:")
    for row in analysis.rows:
        yield from prose(console, printable(f"  {row_name(row)} · {row.kind}"), width, 2)
        for step in explain(row):
            yield from prose(console, f"    {step}", width, 4)


class NetworkTable:
    """The table of `analysis` to `depth` levels of names (None: every layer); laid out
    for a width when rendered."""

    def __init__(
        self,
        analysis: Analysis,
        depth: int | None = DEFAULT_DEPTH,
        explained: bool = False,
        asker: Asker = "cli",
    ) -> None:
        self.analysis = analysis
        self.depth = depth
        self.explained = explained
        self.asker = asker
        root = build(analysis.rows)
        self.levels = root.levels
        self.body = [
            (line.guides, printable(line.name), self._cells(line.item))
            for line in lines(root, depth)
        ]
        totals = analysis.totals
        self.total = {
            **dict.fromkeys(Column, ""),
            Column.LAYER: "Total",
            Column.KIND: f"{len(analysis.rows)} layers",
            Column.PARAMS: format_count(totals.params),
            Column.MACS: format_si(totals.macs),
        }

    @staticmethod
    def _cells(item: Block | Row) -> dict[Column, str]:
        if not isinstance(item, Block):
            return cells(item)
        assert item.output is not None  # a block has rows
        return cells(item.output) | {
            Column.KIND: f"{item.layers} layers",
            Column.PARAMS: format_count(item.params),
            Column.MACS: format_si(item.macs),
        }

    def natural_widths(self) -> dict[Column, int]:
        """Each column's widest cell or title word, names with their guides."""
        widths = {column: max(map(cell_len, column.heading)) for column in Column}
        widths[Column.LAYER] = max(
            widths[Column.LAYER],
            cell_len(self.total[Column.LAYER]),
            *(_cells_wide(guides) + _cells_wide(name) for guides, name, _ in self.body),
        )
        for texts in (*(texts for _, _, texts in self.body), self.total):
            for column in Column:
                if column is not Column.LAYER:
                    widths[column] = max(widths[column], _cells_wide(texts[column]))
        return widths

    def prose(self) -> list[str]:
        """The lines under the table: totals, field, outputs and global context."""
        analysis = self.analysis
        return [
            _totals_line(analysis),
            _field_line(analysis.receptive_field, analysis.global_context),
            *summary_lines(analysis),
        ]

    def depth_note(self) -> str | None:
        """How to open the table further, when rows are folded into their blocks."""
        if self.depth is None or self.depth >= self.levels:
            return None
        default = " (the default)" if self.depth == DEFAULT_DEPTH else ""
        return (
            f"Depth {self.depth} of {self.levels}{default}: "
            f"{_depth_option(self.depth + 1, self.asker)} opens one more level, "
            f"{_depth_option(None, self.asker)} shows all {len(self.analysis.rows)} layers."
        )

    def render(self, console: Console, width: int | None) -> Iterator[Text]:
        """Every line, the table within `width` cells (None: no limit) where it can."""
        analysis = self.analysis
        title = f"{printable(analysis.name)} · " if analysis.name else ""
        yield from prose(
            console,
            Text(
                f"{title}input {format_shape(analysis.input_shape)} → output "
                f"{format_shape(analysis.output_shape)}",
                style="bold",
            ),
            width,
        )
        fitted = fit(self.natural_widths(), width)
        columns = fitted.widths
        gap = " " * GUTTER

        def line(texts: Mapping[Column, str], style: str = "", guides: str = "") -> Text:
            """One line of cells (the names after their `guides`), padded to the widths:
            plain text and a span or two, made fast for models of 100,000 rows."""
            cells = []
            for column, size in columns.items():
                text = guides + texts[column] if column is Column.LAYER else texts[column]
                pad = " " * (size - _cells_wide(text))
                cells.append(pad + text if column.numeric else text + pad)
            row = Text(gap.join(cells).rstrip(), style=style)
            if guides:
                row.stylize("dim", 0, len(guides))
            return row

        headings = [c.heading for c in columns]
        if any(first for first, _ in headings):
            yield line({c: h[0] for c, h in zip(columns, headings, strict=True)}, "bold")
        yield line({c: h[1] for c, h in zip(columns, headings, strict=True)}, "bold")
        rule = Text("─" * fitted.width, style="dim")
        yield rule
        for guides, name, texts in self.body:
            guides, name = shorten(guides, name, columns[Column.LAYER])
            yield line({**texts, Column.LAYER: name}, guides=guides)
        yield rule
        yield line(dict(self.total), "bold")
        for text in self.prose():
            yield from prose(console, text, width)
        if self.explained:
            yield from explanations(console, analysis, width)
        yield from warnings(console, analysis, width)
        if fitted.dropped:
            left_out = ", ".join(column.title for column in fitted.dropped)
            yield from prose(
                console,
                f"Left out to fit {width} columns: {left_out}; every column shows from "
                f"{fitted.full_width} columns.",
                width,
            )
        note = self.depth_note()
        if note is not None:
            yield from prose(console, note, width)

    def text(self, width: int | None) -> str:
        """The table as a pipe gets it, within `width` columns (None: no limit), without
        the last line's newline (as `print` adds one)."""
        import io

        from rich.console import Console

        out = io.StringIO()
        console = Console(
            file=out, width=width or UNLIMITED, color_system=None, force_terminal=False,
            highlight=False, markup=False, emoji=False,
        )  # fmt: skip
        for line in self.render(console, width):
            console.print(line, soft_wrap=True)
        return out.getvalue().removesuffix("\n")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """For Rich (`rich.print(analysis)`): the table at the console's width."""
        for text in self.render(console, options.max_width):
            yield text
            yield Text("\n")

    def to_html(self) -> str:
        """An HTML table with every column, for Jupyter: names with their guides,
        numbers right-aligned, then the same lines as under the text table."""

        def cell(tag: str, text: str, column: Column) -> str:
            align = "right" if column.numeric else "left"
            style = f"text-align:{align}"
            if column is Column.LAYER:
                style += ";white-space:pre;font-family:monospace"
            return f'<{tag} style="{style}">{html.escape(text)}</{tag}>'

        def row(tag: str, texts: dict[Column, str]) -> str:
            return "<tr>" + "".join(cell(tag, texts[c], c) for c in Column) + "</tr>"

        analysis = self.analysis
        title = f"{analysis.name} · " if analysis.name else ""
        parts = [
            f"<p><b>{html.escape(printable(title))}input {format_shape(analysis.input_shape)} "
            f"→ output {format_shape(analysis.output_shape)}</b></p>",
            "<table>",
            "<thead>" + row("th", {c: c.title for c in Column}) + "</thead>",
            "<tbody>",
            *(row("td", texts | {Column.LAYER: g + name}) for g, name, texts in self.body),
            "</tbody>",
            "<tfoot>" + row("th", self.total) + "</tfoot>",
            "</table>",
        ]
        notes = [*self.prose(), *("warning" + _warning(w) for w in analysis.warnings)]
        note = self.depth_note()
        notes += [note] if note is not None else []
        parts.append("<p>" + "<br>".join(html.escape(text) for text in notes) + "</p>")
        return "\n".join(parts)
