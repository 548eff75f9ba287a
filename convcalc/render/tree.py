"""The blocks of a network, from its rows' qualified names: the module tree that people
know from PyTorch, as a view of the rows.

SPEC §6.1 names every row as PyTorch names its module (`layer1.0.conv2`), so the dotted
prefixes of the names are the blocks (`layer1`, `layer1.0`), and the tree needs nothing
but the names:

- A row named by its path (no name, no named ancestor) is a top-level leaf: its dots
  are not a module's.
- A row named as a block is (a named residual's sum, EfficientNet's `features.2.1`)
  belongs to that block. A merge with a positional name (ResNet's `layer1.0.0`) is in
  its block like any layer.
- A block stands where its first row runs, with all its rows under it in execution
  order: one whose rows interleave with another's (an FPN's `inner_blocks` and
  `layer_blocks`) is shown once, not once per run.

A block's params and MACs are the sums of its rows, so that the top level adds up to the
totals; its output (shape, field) is its last row's in execution order. No other number
is made here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from convcalc.analysis.analyze import Row
from convcalc.render.columns import row_name

__all__ = ["Block", "Line", "build", "find", "lines"]


class Block:
    """A named block: the rows and blocks directly under it (`items`, in the order they
    first run) and the sums over every row beneath it. Built once by `build`."""

    __slots__ = ("_parent", "_part", "by_part", "items", "layers", "level", "macs", "output",
                 "params")  # fmt: skip

    def __init__(self, parent: Block | None, part: str) -> None:
        self._parent = parent
        self._part = part
        self.by_part: dict[str, Block] = {}  # the blocks directly under it, by name part
        self.level: int = 0 if parent is None else parent.level + 1
        self.items: list[Block | Row] = []
        self.params = 0
        self.macs = 0
        self.layers = 0  # rows beneath, at any depth
        self.output: Row | None = None  # the last row beneath, in execution order

    @property
    def name(self) -> str:
        """The qualified name, made when asked: a block 2,000 levels deep would otherwise
        cost its depth squared in names nobody shows."""
        parts = []
        block: Block | None = self
        while block is not None and block._parent is not None:
            parts.append(block._part)
            block = block._parent
        return ".".join(reversed(parts))

    @property
    def levels(self) -> int:
        """How many levels of names lie beneath: a row directly under this block is one
        level down, one in its deepest block that many more."""
        deepest, stack = self.level, [self]
        while stack:
            for item in stack.pop().items:
                if isinstance(item, Block):
                    stack.append(item)
                    deepest = max(deepest, item.level)
        return deepest + 1 - self.level


def _parts(row: Row) -> list[str]:
    name = row_name(row)
    return [name] if name == row.path else name.split(".")


def build(rows: Sequence[Row]) -> Block:
    """The tree of `rows`: the root block (no name, level 0) holds the top level."""
    root = Block(None, "")
    named = [_parts(row) for row in rows]
    # Every proper prefix of a name is a block; known before any row is placed, so that
    # a row named as a block goes into it wherever it runs.
    for parts in named:
        block = root
        for part in parts[:-1]:
            block = block.by_part.get(part) or block.by_part.setdefault(part, Block(block, part))
    placed: set[int] = set()
    for row, parts in zip(rows, named, strict=True):
        chain = [root]
        for part in parts[:-1]:
            chain.append(chain[-1].by_part[part])
        own = chain[-1].by_part.get(parts[-1])
        if own is not None:
            chain.append(own)
        for parent, child in itertools.pairwise(chain):
            if id(child) not in placed:
                placed.add(id(child))
                parent.items.append(child)
        chain[-1].items.append(row)
        for block in chain:
            block.params += row.params
            block.macs += row.macs
            block.layers += 1
            block.output = row
    return root


class Line(NamedTuple):
    """One line of the tree as shown to `depth`: its guides (`│ ├─`), and the row or
    block; `opened` when a block's items follow it."""

    guides: str
    item: Block | Row
    opened: bool

    @property
    def name(self) -> str:
        return self.item.name if isinstance(self.item, Block) else row_name(self.item)


def lines(root: Block, depth: int | None) -> Iterator[Line]:
    """The tree down to `depth` levels (None: every level), blocks at the last level
    shown closed, with guides as `tree` draws them. Iterative: blocks nest thousands
    deep."""
    # Each frame: the items of a block, the next one to show, and the guides of its items.
    frames: list[tuple[list[Block | Row], int, str]] = [(root.items, 0, "")]
    while frames:
        items, index, prefix = frames.pop()
        if index == len(items):
            continue
        frames.append((items, index + 1, prefix))
        item, last = items[index], index == len(items) - 1
        top = len(frames) == 1
        opened = isinstance(item, Block) and (depth is None or len(frames) < depth)
        yield Line("" if top else prefix + ("└─" if last else "├─"), item, opened)
        if opened:
            assert isinstance(item, Block)
            frames.append((item.items, 0, "" if top else prefix + ("  " if last else "│ ")))


def find(rows: Sequence[Row], name: str) -> Row | None:
    """The row a name selects: the row of that qualified name or path, or for a block
    (`layer3.2`) its output, the block's last row."""
    # Qualified names and paths are each unique (SPEC §6.1); an unnamed row's is its path.
    found = next((row for row in rows if name in (row.qualified_name, row.path)), None)
    if found is not None:
        return found
    block: Block | None = build(rows)
    for part in name.split("."):
        block = block.by_part.get(part) if block is not None else None
    return block.output if block is not None else None
