"""Analysis → pictures, SVG or PNG by the file's extension, drawn with matplotlib (the
`plot` extra, imported only inside the drawing functions).

Two pictures: the growth of the receptive field and of the feature map, layer by layer,
on a log scale; and, with `--field-of`, the input grid with the exact positions one
output unit sees, the way the seed article draws a field. The second reads each row's
exact per-unit fields (`Row.fields`, first … last input position of every unit), so it
is right after transposed convolutions and uneven adaptive pools too, where y·S − P is
only the largest field's formula.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convcalc.analysis.analyze import Analysis, Row
from convcalc.errors import ConvcalcError, Where
from convcalc.model.axes import AXIS_NAMES
from convcalc.render.columns import format_axes, format_shape
from convcalc.text import printable, quote

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FORMATS", "UnitField", "unit_field", "write_plot"]

#: The file extensions a picture may have, and the format each means.
FORMATS = {".svg": "svg", ".png": "png"}

#: Dots per inch of a PNG.
_DPI = 150
#: Above this many positions on an axis the picture draws no line between cells.
_MAX_GRID = 100
#: At most this many layer names under the growth picture: beyond, every n-th.
_MAX_LABELS = 48
#: Longest layer name under the growth picture: deep paths keep their two ends.
_LONGEST_TICK = 33


def _label(row: Row, longest: int = 200) -> str:
    """A row as the table names it: its qualified name (the middle left out beyond
    `longest` characters), control characters escaped."""
    text = printable(row.qualified_name or row.path)
    if len(text) <= longest:
        return text
    half = (longest - 1) // 2
    return f"{text[:half]}…{text[len(text) - half :]}"


def _number(value: float) -> str:
    """A position as the axes print it, with a true minus sign: −3, 1.5."""
    return f"{value:g}".replace("-", "−")


Span = tuple[int, int]  # first and last position on one axis


@dataclass(frozen=True)
class UnitField:
    """What one output unit sees, per spatial axis of the input: the span of positions
    (None if the unit sees nothing), and how much padding to show around the input:
    as far as any unit of the same layer reaches beyond it."""

    row: Row
    unit: tuple[int, ...]
    input_size: tuple[int, ...]
    spans: tuple[Span | None, ...]
    border: tuple[tuple[int, int], ...]  # (before, after) per axis

    @property
    def sees_nothing(self) -> bool:
        return any(span is None for span in self.spans)

    def outside(self, rows: int | None, cols: int) -> list[tuple[Span, Span]]:
        """The part of the field in padding, as rectangles (row span, column span) on
        the drawn axes `rows` and `cols` (indices into the spatial axes; `rows` None for
        a 1-D input): the bands above and below the input, then left and right of it."""
        col_span = self.spans[cols]
        row_span = self.spans[rows] if rows is not None else (0, 0)
        if col_span is None or row_span is None:
            return []
        (top, bottom), (left, right) = row_span, col_span
        height = self.input_size[rows] if rows is not None else 1
        width = self.input_size[cols]
        pieces = []
        if top < 0:
            pieces.append(((top, min(bottom, -1)), (left, right)))
        if bottom >= height:
            pieces.append(((max(top, height), bottom), (left, right)))
        inner = (max(top, 0), min(bottom, height - 1))
        if inner[0] <= inner[1]:
            if left < 0:
                pieces.append((inner, (left, min(right, -1))))
            if right >= width:
                pieces.append((inner, (max(left, width), right)))
        return pieces


def _find_row(analysis: Analysis, layer: str | None) -> Row:
    """The row named `layer` (its qualified name or its path; a block's name: its output,
    the block's last row), or by default the last row with a field (the network's field,
    SPEC §3)."""
    if layer is None:
        for row in reversed(analysis.rows):
            if row.fields is not None:
                return row
        raise ConvcalcError(
            "no layer has a receptive field (the model has no spatial axes)", Where("--field-of")
        )
    from convcalc.render.tree import find

    found = find(analysis.rows, layer)
    if found is None:
        raise ConvcalcError(
            f"no layer or block with the name or path {quote(layer)}; the table's Layer "
            "column names them (--depth all shows every layer)",
            Where("--layer"),
        )
    row = found
    if row.fields is None:
        raise ConvcalcError(
            f"{quote(layer)} has no field of its own: its units see the whole input (no spatial "
            "axes, or after a global pooling)",
            Where("--layer"),
        )
    return row


def unit_field(analysis: Analysis, unit_text: str, layer: str | None = None) -> UnitField:
    """The field of output unit `unit_text` ("y,x"; one index per spatial axis) of the
    row `layer` (default: the last row with a field)."""
    row = _find_row(analysis, layer)
    assert row.fields is not None  # _find_row returns only rows with fields
    sizes = row.output_shape[1:]
    names = AXIS_NAMES[len(sizes)]
    parts = unit_text.split(",")
    if len(parts) != len(sizes) or not all(p.isascii() and p.isdigit() for p in parts):
        raise ConvcalcError(
            f"expected one unit index per spatial axis ({', '.join(names)}), such as "
            f"{','.join('0' * len(sizes))}, for {_label(row)}, whose output is "
            f"{format_shape(row.output_shape)}; got {quote(unit_text)}",
            Where("--field-of"),
        )
    unit = tuple(int(p) for p in parts)
    for axis, index, size in zip(names, unit, sizes, strict=True):
        if index >= size:
            raise ConvcalcError(
                f"unit {quote(unit_text)} is outside {_label(row)}'s output "
                f"{format_shape(row.output_shape)}: on axis {axis} the indices run 0 … "
                f"{size - 1}",
                Where("--field-of"),
            )
    input_size = analysis.input_shape[1:]
    spans = tuple(field.seen(index) for field, index in zip(row.fields, unit, strict=True))
    border = []
    for field, size, units in zip(row.fields, input_size, sizes, strict=True):
        # Padding shown: as far as the layer's farthest-reaching unit goes past each edge.
        seen = [span for y in range(units) if (span := field.seen(y)) is not None]
        first = min((span[0] for span in seen), default=0)
        last = max((span[1] for span in seen), default=size - 1)
        border.append((max(0, -first), max(0, last - (size - 1))))
    return UnitField(row, unit, input_size, spans, tuple(border))


def _check_path(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ConvcalcError(
            f"expected a file name ending in .svg or .png, got {quote(path)}", Where("--plot")
        )
    return FORMATS[suffix]


@contextmanager
def _matplotlib() -> Iterator[None]:
    """matplotlib, imported here (only when a picture is asked for), quiet and the same
    everywhere while the picture is drawn and written: its defaults rather than the
    user's matplotlibrc (which may ask for TeX), text shown as written (a `$` in a layer
    name is no mathtext), and nothing on standard error. Its log (a font cache being
    built, a configuration folder it cannot write) goes nowhere unless the program has
    set up logging; its warnings (a glyph missing from the font) are dropped. Nothing
    outside is changed."""
    import logging
    import warnings

    quiet = logging.NullHandler()  # a logger with a handler leaves out Python's last resort
    log = logging.getLogger("matplotlib")
    log.addHandler(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import matplotlib.figure  # and matplotlib, which the drawing functions use
            except ImportError:
                raise ConvcalcError(
                    "pictures need matplotlib: pip install 'convcalc[plot]'", Where("--plot")
                ) from None
            with matplotlib.rc_context():
                matplotlib.rcdefaults()
                # Text stays text in SVG (searchable, small), and ids are fixed so that the
                # same model gives the same file.
                matplotlib.rcParams.update(
                    {"text.parse_math": False, "svg.fonttype": "none", "svg.hashsalt": "convcalc"}
                )
                yield
    finally:
        log.removeHandler(quiet)


def _figure(width: float, height: float) -> Figure:
    """A figure drawn off screen: a bare `Figure` (no pyplot) renders with Agg for PNG
    and the SVG backend for SVG, whatever backend the environment names, and needs no
    display."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(figure: Figure, path: str, format: str) -> None:
    # No date in an SVG, so that the same model gives the same file.
    metadata: dict[str, Any] = {"Date": None} if format == "svg" else {}
    try:
        # "tight": the constrained layout alone can leave an equal-aspect picture's axis
        # label outside the figure.
        figure.savefig(path, format=format, dpi=_DPI, metadata=metadata, bbox_inches="tight")
    except OSError as error:
        raise ConvcalcError(
            f"cannot write {quote(path)}: {error.strerror or error}", Where("--plot")
        ) from None


def _draw_growth(analysis: Analysis) -> Figure:
    from matplotlib.ticker import FuncFormatter

    rows = analysis.rows
    axes_names = AXIS_NAMES.get(len(analysis.input_shape) - 1, ())
    ndim = len(axes_names)
    # Per axis, per row: the field size and the feature map size (None: there is none).
    fields = [
        [row.receptive_field.size[a] if row.receptive_field else None for row in rows]
        for a in range(ndim)
    ]
    maps = [
        [row.output_shape[1 + a] if len(row.output_shape) == ndim + 1 else None for row in rows]
        for a in range(ndim)
    ]
    step = max(1, math.ceil(len(rows) / _MAX_LABELS))
    shown = range(0, len(rows), step)
    figure = _figure(min(max(6.0, 2.5 + 0.22 * len(shown)), 16.0), 5.5)
    plot: Axes = figure.add_subplot()
    xs = list(range(len(rows)))

    def lines(
        series: list[list[int | None]], what: str, colours: int, style: dict[str, Any]
    ) -> None:
        # One line per set of axes that agree at every row (one in all for square inputs),
        # its colour by its first axis (from `colours` on); a gap where a row has no value.
        groups: dict[tuple[int | None, ...], list[int]] = {}
        for a, values in enumerate(series):
            groups.setdefault(tuple(values), []).append(a)
        for sizes, axes in groups.items():
            names = [axes_names[a] for a in axes]
            name = what
            if len(groups) > 1:
                name += f", {'axes' if len(axes) > 1 else 'axis'} {', '.join(names)}"
            ys = [math.nan if v is None else v for v in sizes]
            gid = f"{what.split()[-1]}-{''.join(names)}"
            plot.plot(xs, ys, label=name, gid=gid, color=f"C{colours + axes[0]}", **style)

    dots = len(rows) <= _MAX_LABELS  # a dot per row, where there is room for one
    lines(fields, "receptive field", 0, {"marker": "o" if dots else "", "markersize": 3})
    lines(maps, "feature map", 3, {"marker": "." if dots else "", "linestyle": "--"})
    for size in sorted(set(analysis.input_shape[1:])):
        plot.axhline(size, color="grey", linestyle=":", linewidth=1)
        plot.annotate(
            f"input {size}", (0, size), xytext=(2, 2), textcoords="offset points",
            fontsize=7, color="grey",
        )  # fmt: skip
    plot.set_yscale("log", base=2)
    # Up to half a power of 2 past the next one: the largest value has a labelled line
    # above it, and room.
    largest = max((v for values in fields + maps for v in values if v is not None), default=1)
    plot.set_ylim(0.8, 2 ** (math.ceil(math.log2(max(largest, *analysis.input_shape[1:]))) + 0.5))
    plot.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    plot.set_ylabel("size (positions, log scale)")
    labels = [_label(row, longest=_LONGEST_TICK) for row in rows]
    plot.set_xticks(list(shown), [labels[i] for i in shown], rotation=90, fontsize=7)
    plot.set_xlim(-0.5, len(rows) - 0.5)
    plot.grid(axis="y", which="major", alpha=0.3)
    figure.legend(loc="outside right upper", fontsize=8)
    title = f"{printable(analysis.name)} · " if analysis.name else ""
    field = analysis.receptive_field
    plot.set_title(
        f"{title}input {format_shape(analysis.input_shape)}: receptive field "
        f"{format_axes(field.size) if field else '— (no spatial axes)'}",
        fontsize=10,
    )
    return figure


def _draw_unit(analysis: Analysis, picture: UnitField) -> Figure:
    from matplotlib.patches import Rectangle

    ndim = len(picture.input_size)
    names = AXIS_NAMES[ndim]
    # Drawn axes: rows and columns; a 1-D input is one row, a 3-D one its H×W plane.
    rows: int | None = None if ndim == 1 else ndim - 2
    cols = ndim - 1

    def axis(index: int | None) -> tuple[int, tuple[int, int], Span | None]:
        if index is None:
            return 1, (0, 0), (0, 0)
        return picture.input_size[index], picture.border[index], picture.spans[index]

    height, (top, bottom), row_span = axis(rows)
    width, (left, right), col_span = axis(cols)
    total_rows, total_cols = height + top + bottom, width + left + right
    if rows is None:  # a strip, wide enough to read, with the legend under it
        figure = _figure(10.0, 2.6)
    else:  # square cells, the longer side 7 inches, the legend to the right
        scale = 7.0 / max(total_cols, total_rows)
        figure = _figure(max(4.0, total_cols * scale) + 2.8, max(2.5, total_rows * scale + 1))
    plot: Axes = figure.add_subplot()

    def box(row_span: Span, col_span: Span, **style: Any) -> Rectangle:
        # Position p is the cell p − 0.5 … p + 0.5, so a unit's centre is (first + last) / 2.
        (r0, r1), (c0, c1) = row_span, col_span
        return Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, **style)

    borders = zip(names, picture.border, strict=True)
    padded = "padding (" + ", ".join(f"{a} {b} + {c}" for a, (b, c) in borders) + ")"
    if any(before or after for before, after in picture.border):
        plot.add_patch(
            box((-top, height - 1 + bottom), (-left, width - 1 + right),
                facecolor="#cfcfcf", edgecolor="none", gid="padding", label=padded)
        )  # fmt: skip
    plot.add_patch(
        box((0, height - 1), (0, width - 1), facecolor="white", edgecolor="black",
            linewidth=1.2, gid="input", label=f"input {format_shape(picture.input_size)}")
    )  # fmt: skip
    row = picture.row
    unit = ",".join(map(str, picture.unit))
    if row_span is not None and col_span is not None:
        extent = "×".join(str(s[1] - s[0] + 1) for s in picture.spans if s is not None)
        ranges = ", ".join(
            f"{a} {_number(s[0])}…{_number(s[1])}"
            for a, s in zip(names, picture.spans, strict=True)
            if s
        )
        plot.add_patch(
            box(row_span, col_span, facecolor="#1f77b4", alpha=0.35, edgecolor="none",
                zorder=2, gid="field", label=f"field {extent}: {ranges}")
        )  # fmt: skip
        # The outline on top of the hatching, so the field's edge stays whole.
        plot.add_patch(
            box(row_span, col_span, facecolor="none", edgecolor="#1f77b4", linewidth=2, zorder=4)
        )
        pieces = picture.outside(rows, cols)
        in_padding = sum((r1 - r0 + 1) * (c1 - c0 + 1) for (r0, r1), (c0, c1) in pieces)
        for number, (piece_rows, piece_cols) in enumerate(pieces):
            plot.add_patch(
                box(piece_rows, piece_cols, facecolor="none", edgecolor="#d62728", hatch="///",
                    linewidth=0, zorder=3, gid=f"field-in-padding-{number}",
                    label=None if number else f"in padding: {in_padding} positions")
            )  # fmt: skip
        centres = [(s[0] + s[1]) / 2 for s in picture.spans if s is not None]
        plot.plot(
            [(col_span[0] + col_span[1]) / 2], [(row_span[0] + row_span[1]) / 2], marker="+",
            markersize=14, markeredgewidth=2, color="#d62728", linestyle="none", zorder=5,
            gid="centre",
            label="centre " + ", ".join(
                f"{a} {_number(c)}" for a, c in zip(names, centres, strict=True)
            ),
        )  # fmt: skip
    else:
        plot.plot([], [], linestyle="none", label="this unit sees no input position")
    if max(total_rows, total_cols) <= _MAX_GRID:
        plot.set_xticks([c - 0.5 for c in range(-left, width + right + 1)], minor=True)
        plot.set_yticks([r - 0.5 for r in range(-top, height + bottom + 1)], minor=True)
        plot.grid(which="minor", color="#999999", linewidth=0.4)
        plot.tick_params(which="minor", length=0)
    plot.set_xlim(-left - 0.5, width + right - 0.5)
    plot.set_ylim(height + bottom - 0.5, -top - 0.5)  # row 0 at the top, as in an image
    if rows is not None:
        plot.set_aspect("equal")
    plot.set_axisbelow(False)
    plot.set_xlabel(f"{names[cols]} (input position)")
    if rows is None:
        plot.set_yticks([])
    else:
        plot.set_ylabel(f"{names[rows]} (input position)")
    title = f"{printable(analysis.name)} · " if analysis.name else ""
    note = ""
    if ndim == 3:
        depth = picture.spans[0]
        seen = f"{_number(depth[0])}…{_number(depth[1])}" if depth else "nothing"
        seen += f" (the input: 0…{picture.input_size[0] - 1})"
        note = f"\nthe H×W plane; on axis D the unit sees {seen}"
    plot.set_title(
        f"{title}field of unit ({unit}) of {_label(row)} ({row.kind}, output "
        f"{format_shape(row.output_shape)}){note}",
        fontsize=10,
    )
    if rows is None:
        figure.legend(loc="outside lower center", ncols=3, fontsize=8)
    else:
        figure.legend(loc="outside right upper", fontsize=8)
    return figure


def write_plot(
    analysis: Analysis, path: str, field_of: str | None = None, layer: str | None = None
) -> None:
    """Draw to `path` (.svg or .png): the field and feature-map growth, or with
    `field_of` ("y,x") the field of that output unit of `layer` (default: the last row
    with a field)."""
    format = _check_path(path)
    if len(analysis.input_shape) < 2:
        raise ConvcalcError(
            "draws the field over the spatial axes, and the input "
            f"{format_shape(analysis.input_shape)} has none",
            Where("--plot"),
        )
    picture = None
    if field_of is not None:
        picture = unit_field(analysis, field_of, layer)
    elif layer is not None:
        raise ConvcalcError("picks the layer of --field-of; give both", Where("--layer"))
    with _matplotlib():
        figure = _draw_growth(analysis) if picture is None else _draw_unit(analysis, picture)
        _save(figure, path, format)
