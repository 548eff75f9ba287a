"""A network's table fitted to a width: which columns stay, how wide each one is, and
names shortened from the left. A number, a shape or a field is never cut.

When the table is wider than the terminal, it gives way in this order:

1. the Layer column shortens names from the left, at a dot where it can
   (`…0.downsample.0`: the end of a name says what the layer is, and its block is on
   the line above), down to `NAME_FLOOR` characters;
2. whole columns drop, the least needed first (`GIVE_WAY`), and the table says which;
3. names shorten further, down to `NAME_MIN`;
4. past that (a terminal narrower than about 50 columns) the table runs wider than the
   terminal, which wraps its lines: cut numbers would be worse.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len

from convcalc.render.columns import Column

__all__ = ["GIVE_WAY", "GUTTER", "NAME_FLOOR", "NAME_MIN", "Fit", "fit", "shorten"]

#: Spaces between two columns.
GUTTER = 2

#: Columns that drop, in this order, when the table does not fit: the effective padding
#: (needed only to place a field exactly; JSON has it), the kind (the names of most
#: models say it: conv1, bn1), then the effective stride.
GIVE_WAY = (Column.EFFECTIVE_PADDING, Column.KIND, Column.EFFECTIVE_STRIDE)

#: The Layer column shortens to this width before a column drops…
NAME_FLOOR = 20
#: …and to this width, once every column that may drop has, before the table overflows.
NAME_MIN = 12


@dataclass(frozen=True)
class Fit:
    """The columns shown, in order, with their widths; those left out; and the width
    from which every column is shown."""

    widths: dict[Column, int]
    dropped: tuple[Column, ...]
    full_width: int

    @property
    def width(self) -> int:
        return sum(self.widths.values()) + GUTTER * (len(self.widths) - 1)


def fit(natural: dict[Column, int], width: int | None) -> Fit:
    """Column widths for a table whose widest cells (and titles) are `natural`, within
    `width` (None: no limit)."""
    name = natural[Column.LAYER]

    def rest(columns: list[Column]) -> int:
        """The width of every column but the names, with the gutters."""
        return sum(natural[c] for c in columns if c is not Column.LAYER) + GUTTER * (
            len(columns) - 1
        )

    columns = list(natural)
    full_width = rest(columns) + min(name, NAME_FLOOR)
    if width is not None:
        for column in GIVE_WAY:
            if width - rest(columns) >= min(name, NAME_FLOOR):
                break
            columns.remove(column)
        name = min(name, max(width - rest(columns), min(name, NAME_MIN)))
    widths = {c: name if c is Column.LAYER else natural[c] for c in columns}
    dropped = tuple(c for c in GIVE_WAY if c not in widths)
    return Fit(widths, dropped, full_width)


def shorten(guides: str, name: str, width: int) -> tuple[str, str]:
    """`guides` and `name` within `width` cells: the name loses its start, at a dot if
    one leaves enough (`…0.conv2`), else characters; guides deeper than half the width
    lose theirs too (blocks thousands deep)."""
    if cell_len(guides) + cell_len(name) <= width:
        return guides, name
    if cell_len(guides) > width // 2:
        guides = "…" + _tail(guides, width // 2 - 1)
    room = width - cell_len(guides) - 1  # the rest, after "…"
    dots = (name[i + 1 :] for i, char in enumerate(name) if char == ".")
    tail = next((part for part in dots if cell_len(part) <= room), None)
    return guides, "…" + (tail if tail is not None else _tail(name, room))


def _tail(text: str, width: int) -> str:
    """The end of `text` that fits `width` cells (a wide character takes two)."""
    used, kept = 0, len(text)
    while kept > 0 and used + cell_len(text[kept - 1]) <= width:
        used += cell_len(text[kept - 1])
        kept -= 1
    return text[kept:]
