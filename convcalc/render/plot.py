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
import re
import struct
from collections.abc import Iterator, Sequence
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
#: A 1-D field is shown with at least this many positions on either side.
_ZOOM_MARGIN = 3
#: At most this many layer names under the growth picture (WaveNet's 57 blocks fit).
_MAX_LABELS = 60
#: Longest layer name under the growth picture: deep paths keep their two ends.
_LONGEST_TICK = 33
#: Inches between two labels of the layer axis: rotated, a label is one line high.
_LABEL_PITCH = 0.13
#: About how wide a character of the 7-point stage names is, in inches.
_CHARACTER_WIDTH = 0.055


def _label(row: Row, longest: int = 200) -> str:
    """A row as the table names it: its qualified name (the middle left out beyond
    `longest` characters), control characters escaped."""
    return _shortened(printable(row.qualified_name or row.path), longest)


def _shortened(text: str, longest: int) -> str:
    """`text`, or beyond `longest` characters its two ends."""
    if len(text) <= longest:
        return text
    half = (longest - 1) // 2
    return f"{text[:half]}…{text[len(text) - half :]}"


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
        inside = [row for row in analysis.rows if row.qualified_name.startswith(layer + ".")]
        found = inside[-1] if inside else None
    if found is None:
        from convcalc.suggest import did_you_mean, suggest

        meant = suggest(layer, [row.qualified_name for row in analysis.rows])
        hint = (
            did_you_mean(meant)
            if meant
            else "the table's Layer column names them (--depth all shows every layer)"
        )
        raise ConvcalcError(
            f"no layer or block with the name or path {quote(layer)}; {hint}", Where("--layer")
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


def _parts(row: Row) -> list[str]:
    """A row's name split into its levels: layer1.0.conv1 → layer1, 0, conv1."""
    return (row.qualified_name or row.path).split(".")


Run = tuple[int, int, str]  # first and last row of a group of names, and its name


def _runs(rows: Sequence[Row], level: int) -> list[Run]:
    """The rows grouped by the first `level` parts of their names, each group a run of
    consecutive rows (layer1.0 … layer1.2 at level 2). A block's own row after its
    layers (the addition of a residual block, named by the block: features.4.1 after
    features.4.1.block.…) stays in their group."""
    runs: list[Run] = []
    for index, row in enumerate(rows):
        parts = _parts(row)
        name = ".".join(parts[:level])
        closes = len(parts) < level and runs and runs[-1][2].startswith(name + ".")
        if runs and (runs[-1][2] == name or closes):
            runs[-1] = (runs[-1][0], index, runs[-1][2])
        else:
            runs.append((index, index, name))
    return runs


def _stages(rows: Sequence[Row]) -> list[Run]:
    """The network's stages: the groups at the shallowest level of names where none holds
    more than half of the rows (layer1 … layer4 of a ResNet; features.0 … features.8 of
    an EfficientNet, whose `features` holds nearly all). None where each would be one row
    (a plain list of layers)."""
    depth = max(len(_parts(row)) for row in rows)
    for level in range(1, depth + 1):
        runs = _runs(rows, level)
        if 2 * max(last - first + 1 for first, last, _ in runs) <= len(rows):
            return runs if any(last > first for first, last, _ in runs) else []
    return []


def _tick_candidates(rows: Sequence[Row]) -> list[Run]:
    """What the layer axis may label: the groups at the deepest level of names that has
    at most `_MAX_LABELS` of them (layer1.0, layer1.1, … for a ResNet: its blocks), or,
    where even the first level has more (a plain list of layers), every n-th row."""
    depth = max(len(_parts(row)) for row in rows)
    chosen: list[Run] = []
    for level in range(1, depth + 1):
        runs = _runs(rows, level)
        if len(runs) > _MAX_LABELS:
            break
        if len(runs) > len(chosen):  # a deeper level that only lengthens the names: no
            chosen = runs
    if chosen:
        return chosen
    step = math.ceil(len(rows) / _MAX_LABELS)
    return [(i, i, rows[i].qualified_name or rows[i].path) for i in range(0, len(rows), step)]


def _ticks(candidates: list[Run], stages: list[Run], per_row: float) -> list[Run]:
    """The labels that fit, `per_row` inches apart for each row between them: the starts
    of stages of several rows first (layer1.0, not conv1, bn1, relu), then the other
    groups where there is room."""
    gap = _LABEL_PITCH / per_row  # in rows
    starts = {first for first, last, _ in stages if last > first}
    placed: list[Run] = []
    for run in sorted(candidates, key=lambda run: (run[0] not in starts, run[0])):
        if all(abs(run[0] - other[0]) >= gap for other in placed):
            placed.append(run)
    return sorted(placed)


def _reached(sizes: list[int | None]) -> list[float]:
    """The field the network has reached at each row: the largest so far in execution
    order, so that a shortcut (a 1×1 convolution beside a block) does not show as a dip;
    carried over rows of a side branch without a field of its own (the global pooling of
    a squeeze-and-excitation); none (NaN, a gap) before the first field and after the
    last (the head, whose units see the whole input)."""
    known = [i for i, size in enumerate(sizes) if size is not None]
    reached: list[float] = []
    largest = 0
    for index, size in enumerate(sizes):
        largest = max(largest, size or 0)
        inside = bool(known) and known[0] <= index <= known[-1]
        reached.append(float(largest) if inside else math.nan)
    return reached


def _main_maps(rows: Sequence[Row], axis: int, ndim: int) -> list[int | None]:
    """The feature map size on `axis` at each row (None: the row has no spatial axes).
    Rows between the first and the last with a field that have none of their own are a
    side branch through a global pooling (a squeeze-and-excitation), whose 1×1 map would
    dip the line to 1 and back in every block: they show the map of the path they leave
    and come back to, held meanwhile."""
    with_field = [i for i, row in enumerate(rows) if row.receptive_field is not None]
    maps: list[int | None] = []
    for index, row in enumerate(rows):
        aside = (
            row.receptive_field is None
            and bool(with_field)
            and with_field[0] < index < with_field[-1]
        )
        if aside and maps:
            maps.append(maps[-1])
        else:
            maps.append(row.output_shape[1 + axis] if len(row.output_shape) == ndim + 1 else None)
    return maps


def _draw_growth(analysis: Analysis) -> Figure:
    from matplotlib.ticker import FuncFormatter

    rows = analysis.rows
    axes_names = AXIS_NAMES.get(len(analysis.input_shape) - 1, ())
    ndim = len(axes_names)
    # Per axis, per row: the field reached and the feature map size (None: there is none).
    fields = [
        _reached([row.receptive_field.size[a] if row.receptive_field else None for row in rows])
        for a in range(ndim)
    ]
    maps = [_main_maps(rows, a, ndim) for a in range(ndim)]
    stages = _stages(rows)
    candidates = _tick_candidates(rows)
    width = min(max(6.0, 2.5 + max(0.22 * len(candidates), 0.05 * len(rows))), 16.0)
    figure = _figure(width, 5.5)
    plot: Axes = figure.add_subplot()
    xs = list(range(len(rows)))

    def lines(
        series: list[list[Any]], what: str, gid: str, colours: int, style: dict[str, Any]
    ) -> None:
        # One line per set of axes that agree at every row (one in all for square inputs),
        # its colour by its first axis (from `colours` on); a gap where a row has no value.
        groups: dict[tuple[Any, ...], list[int]] = {}
        for a, values in enumerate(series):
            groups.setdefault(tuple(values), []).append(a)
        for sizes, axes in groups.items():
            names = [axes_names[a] for a in axes]
            name = what
            if len(groups) > 1:
                name += f" on {' and '.join(names)}"
            ys = [math.nan if v is None else v for v in sizes]
            plot.plot(
                xs,
                ys,
                label=name,
                gid=f"{gid}-{''.join(names)}",
                color=f"C{colours + axes[0]}",
                **style,
            )

    dots = len(rows) <= _MAX_LABELS  # a dot per row, where there is room for one
    field_style = {"marker": "o" if dots else "", "markersize": 3}
    lines(fields, "receptive field reached", "field", 0, field_style)
    lines(maps, "feature map size", "map", 3, {"marker": "." if dots else "", "linestyle": "--"})
    for size in sorted(set(analysis.input_shape[1:])):
        plot.axhline(size, color="grey", linestyle=":", linewidth=1)
        plot.annotate(
            f"input size {size}", (0, size), xytext=(2, 2), textcoords="offset points",
            fontsize=7, color="grey",
        )  # fmt: skip
    plot.set_yscale("log", base=2)
    # Up to half a power of 2 past the next one: the largest value has a labelled line
    # above it, and room.
    values = [v for series in (fields, maps) for values in series for v in values]
    largest = max((v for v in values if v is not None and not math.isnan(v)), default=1)
    plot.set_ylim(0.8, 2 ** (math.ceil(math.log2(max(largest, *analysis.input_shape[1:]))) + 0.5))
    plot.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    plot.set_ylabel("size (positions, log scale)")
    plot.set_xlim(-0.5, len(rows) - 0.5)
    per_row = (width - 2.5) / len(rows)  # inches; 2.5 for the size axis and the legend
    ticks = _ticks(candidates, stages, per_row)
    plot.set_xticks(
        [first for first, _, _ in ticks],
        [_shortened(printable(name), _LONGEST_TICK) for _, _, name in ticks],
        rotation=90,
        fontsize=7,
    )
    plot.set_xlabel("layers, in the order they run")
    # Stage boundaries: a line where the first differing level of the names changes
    # (layer1 → layer2), and the stage's name above its rows where it fits, on an axis
    # of its own over the picture (inside, it would cross the lines).
    named = []
    for (first, last, name), before in zip(stages, [None, *stages], strict=False):
        if before is not None and (last > first or before[1] > before[0]):
            plot.axvline(first - 0.5, color="grey", linewidth=0.8, alpha=0.6, gid="stage")
        text = _shortened(printable(name), _LONGEST_TICK)
        if last > first and (last - first + 1) * per_row >= len(text) * _CHARACTER_WIDTH:
            named.append(((first + last) / 2, text))
    if named:
        above = plot.secondary_xaxis("top")
        above.set_xticks([x for x, _ in named], [text for _, text in named], fontsize=7)
        above.tick_params(length=0, colors="dimgrey")
    plot.grid(axis="y", which="major", alpha=0.3)
    # At the foot of the figure, the title at its head: a legend beside the axes shares
    # the title's band, and a long title reaches over it.
    figure.legend(loc="outside lower center", ncols=4, fontsize=8)
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
    # The columns shown: all, or for a 1-D field that is small beside its input, the
    # field and as much again around it (a few positions at least).
    shown = (-left, width - 1 + right)
    if rows is None and col_span is not None:
        margin = max(_ZOOM_MARGIN, (col_span[1] - col_span[0] + 1) // 2)
        shown = (max(shown[0], col_span[0] - margin), min(shown[1], col_span[1] + margin))
    zoomed = shown != (-left, width - 1 + right)
    # The legend at the foot: beside the picture it would share the title's band.
    if rows is None:  # a strip, wide enough to read
        figure = _figure(10.0, 2.8)
    else:  # square cells, the longer side 7 inches
        scale = 7.0 / max(total_cols, total_rows)
        figure = _figure(max(5.5, total_cols * scale + 1), max(3.5, total_rows * scale + 2))
    plot: Axes = figure.add_subplot()

    def box(row_span: Span, col_span: Span, **style: Any) -> Rectangle:
        # Position p is the cell p − 0.5 … p + 0.5, so a unit's centre is (first + last) / 2.
        (r0, r1), (c0, c1) = row_span, col_span
        return Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, **style)

    if any(before or after for before, after in picture.border):
        plot.add_patch(
            box((-top, height - 1 + bottom), (-left, width - 1 + right),
                facecolor="#cfcfcf", edgecolor="none", gid="padding",
                label=f"padding: {_padding_words(names, picture.border)}")
        )  # fmt: skip
    plot.add_patch(
        box((0, height - 1), (0, width - 1), facecolor="white", edgecolor="black",
            linewidth=1.2, gid="input",
            label=f"the input, {format_shape(picture.input_size)} positions")
    )  # fmt: skip
    row = picture.row
    unit = ",".join(map(str, picture.unit))
    if row_span is not None and col_span is not None:
        # In words: the drawn axes are rows and columns, or a 1-D input's positions.
        drawn = [("", "position", col_span)]
        if rows is not None:
            drawn = [("rows", "row", row_span), ("columns", "column", col_span)]
        extent = "×".join(f"{s[1] - s[0] + 1:,}" for s in picture.spans if s is not None)
        ranges = ", ".join(
            f"{many} {_position(span[0])} to {_position(span[1])}".lstrip()
            for many, _, span in drawn
        )
        plot.add_patch(
            box(row_span, col_span, facecolor="#1f77b4", alpha=0.35, edgecolor="none",
                zorder=2, gid="field",
                label=f"what the unit sees: {extent} positions, {ranges}")
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
                    label=None if number else f"{in_padding:,} of them in padding")
            )  # fmt: skip
        where = ", ".join(f"{one} {_position((span[0] + span[1]) / 2)}" for _, one, span in drawn)
        plot.plot(
            [(col_span[0] + col_span[1]) / 2], [(row_span[0] + row_span[1]) / 2], marker="+",
            markersize=14, markeredgewidth=2, color="#d62728", linestyle="none", zorder=5,
            gid="centre", label=f"its centre: {where}",
        )  # fmt: skip
    else:
        plot.plot([], [], linestyle="none", label="this unit sees no input position")
    if max(total_rows, shown[1] - shown[0] + 1) <= _MAX_GRID:
        plot.set_xticks([c - 0.5 for c in range(shown[0], shown[1] + 2)], minor=True)
        plot.set_yticks([r - 0.5 for r in range(-top, height + bottom + 1)], minor=True)
        plot.grid(which="minor", color="#999999", linewidth=0.4)
        plot.tick_params(which="minor", length=0)
    plot.set_xlim(shown[0] - 0.5, shown[1] + 0.5)
    plot.set_ylim(height + bottom - 0.5, -top - 0.5)  # row 0 at the top, as in an image
    if rows is not None:
        plot.set_aspect("equal")
    plot.set_axisbelow(False)
    plot.set_xlabel(
        f"{names[cols]} (input position"
        + (f"; shown around the field, the input runs 0 to {width - 1:,})" if zoomed else ")")
    )
    if rows is None:
        plot.set_yticks([])
    else:
        plot.set_ylabel(f"{names[rows]} (input position)")
    title = f"{printable(analysis.name)} · " if analysis.name else ""
    note = ""
    if ndim == 3:
        depth = picture.spans[0]
        seen = f"{_position(depth[0])}…{_position(depth[1])}" if depth else "nothing"
        seen += f" (the input: 0…{picture.input_size[0] - 1})"
        note = f"\nthe H×W plane; on axis D the unit sees {seen}"
    plot.set_title(
        f"{title}field of unit ({unit}) of {_label(row)} ({row.kind}, output "
        f"{format_shape(row.output_shape)}){note}",
        fontsize=10,
    )
    figure.legend(loc="outside lower center", ncols=3 if rows is None else 2, fontsize=8)
    return figure


def _padding_words(names: tuple[str, ...], border: tuple[tuple[int, int], ...]) -> str:
    """The padding drawn, in words: "3 positions on each side", "5,116 positions before,
    0 after", or per axis where the axes differ ("H 3 positions on each side; W …")."""

    def sides(before: int, after: int) -> str:
        if before == after:
            return f"{_positions(before)} on each side"
        return f"{_positions(before)} before, {after:,} after"

    if len(set(border)) == 1:
        return sides(*border[0])
    return "; ".join(f"{axis} {sides(*sizes)}" for axis, sizes in zip(names, border, strict=True))


def _positions(count: int) -> str:
    return f"{count:,} position{'' if count == 1 else 's'}"


def _position(value: float) -> str:
    """A position as the pictures print it: 2,884, with a true minus sign (−3), and a
    half where a centre falls between two positions (1.5)."""
    text = f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
    return text.replace("-", "−")


def _described(path: str, format: str) -> str:
    """What was written, as the file itself says: "PNG, 1842×842 pixels" from the PNG's
    header, "SVG, 742×404 pt" from the SVG's root element (the tight bounding box makes
    the size the figure's only once it is written)."""
    with open(path, "rb") as file:
        head = file.read(1024)
    if format == "png":
        width, height = struct.unpack(">II", head[16:24])  # IHDR, after the signature
        return f"PNG, {width}×{height} pixels"
    found = re.search(rb'<svg[^>]* width="([0-9.]+)pt" height="([0-9.]+)pt"', head)
    if found is None:  # not as matplotlib writes it: say no size rather than a wrong one
        return "SVG"
    return f"SVG, {float(found[1]):.0f}×{float(found[2]):.0f} pt"


def write_plot(
    analysis: Analysis, path: str, field_of: str | None = None, layer: str | None = None
) -> str:
    """Draw to `path` (.svg or .png): the field and feature-map growth, or with
    `field_of` ("y,x") the field of that output unit of `layer` (default: the last row
    with a field). Returns what was written: its format and size ("PNG, 1842×842
    pixels")."""
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
    return _described(path, format)
