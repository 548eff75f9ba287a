"""Global context (SPEC §6.5): which input positions the units of a node see together.

A global pooling brings the whole input into every unit downstream only if the units it
pools see every input position between them: after a 1×1 convolution of stride 2 they
see every other one, and so does the pooled value. `Coverage.sees_everything(node)`
answers that exactly, per spatial axis, by walking back from the node: the units it
needs of each earlier node (all of them, or a set), through each layer's windows, down
to the input positions they reach. Where a node's every unit is needed, the answer is
kept for the next question, so a network of many gates costs one walk in all.

Then which units have it: a `Reach` says, per spatial axis, which units of a row see the
whole input through a global path (all of a global pooling's, all of a normalisation's
whose statistics cover the input). It passes through a layer to exactly the units whose
window reads one of them (`reach_through`), and through a merge to the union. A row has
global context where its middle units do, as its field is that of the units away from
the border.

An axis longer than `MAX_TRACKED` positions is not tracked position by position: there
any units asked count as all of them, and a layer passes that on where it reads every
unit of its input (a dilated window counts as reading the gaps between its taps).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from convcalc.model.axes import Window
from convcalc.model.network import INPUT, Merge, Node

__all__ = [
    "MAX_TRACKED",
    "Coverage",
    "Positions",
    "Reach",
    "everywhere",
    "in_the_middle",
    "joined",
    "reach_through",
    "widened",
]

#: Longest axis whose positions are tracked one by one.
MAX_TRACKED = 1 << 16

# A set of positions or units on one axis: every one (None), or their indices as the bits
# of an integer.
Positions = int | None


#: Per spatial axis, the units whose gradient reaches the whole input through a global
#: path; None: no unit's does. () on a row with no spatial axes.
Reach = tuple[Positions, ...] | None


def _every(size: int) -> int:
    return (1 << size) - 1


def everywhere(shape: tuple[int, ...]) -> Reach:
    """Every unit of a row of `shape`."""
    return (None,) * (len(shape) - 1)


def reach_through(
    reach: Reach,
    windows: Sequence[Window],
    outputs: Sequence[int],
    sizes: Sequence[int],
    known: dict[tuple[int, int, Positions], Positions],
) -> Reach:
    """The units of a layer (`windows` onto `outputs` units from `sizes`) that read one
    of the units of `reach`. `known` keeps what was worked out, by window and units."""
    if reach is None:
        return None
    found = []
    for window, units, out, size in zip(windows, reach, outputs, sizes, strict=True):
        key = (id(window), out, units)
        if key not in known:
            known[key] = _reading(window, units, out, size)
        if known[key] == 0:
            return None
        found.append(known[key])
    return tuple(found)


def _reading(window: Window, units: Positions, outputs: int, size: int) -> Positions:
    """The output units (of `outputs`) that read one of `units` (of `size`)."""
    if size > MAX_TRACKED or outputs > MAX_TRACKED:  # untracked: any units count as all
        return 0 if units == 0 else None
    within = _every(size) if units is None else units
    found = 0
    for y in range(outputs):
        if any(x >= 0 and within >> x & 1 for x in window.reads(y)):
            found |= 1 << y
    return None if found == _every(outputs) else found


def widened(reach: Reach, sizes: Sequence[int], outputs: Sequence[int]) -> Reach:
    """`reach` on an input that `mul` broadcasts: an axis of 1 serves every unit."""
    if reach is None:
        return None
    return tuple(
        None if size == 1 and out > 1 else units
        for units, size, out in zip(reach, sizes, outputs, strict=True)
    )


def joined(reaches: Sequence[Reach]) -> Reach:
    """The units that reach the whole input through any of a merge's inputs."""
    known = [reach for reach in reaches if reach is not None]
    if not known:
        return None
    union: list[Positions] = [0] * len(known[0])
    for reach in known:
        union = _union(union, reach)
    return tuple(union)


def in_the_middle(reach: Reach, shape: tuple[int, ...]) -> bool:
    """Whether the middle unit of a row of `shape` reaches the whole input: a row's
    global context is its units' away from the border, as its field is."""
    if reach is None:
        return False
    return all(
        units is None or units >> (size // 2) & 1
        for units, size in zip(reach, shape[1:], strict=True)
    )


def _read(window: Window, needed: Positions, outputs: int, size: int) -> Positions:
    """The input positions (of `size`) that the `needed` output units (of `outputs`) read."""
    if size > MAX_TRACKED or outputs > MAX_TRACKED:
        return 0 if needed == 0 else _read_everything(window, outputs, size)
    found = 0
    units = range(outputs) if needed is None else (y for y in range(outputs) if needed >> y & 1)
    for y in units:
        for x in window.reads(y):
            if 0 <= x < size:
                found |= 1 << x
    return None if found == _every(size) else found


def _read_everything(window: Window, outputs: int, size: int) -> Positions:
    """On an untracked axis, any units asked count as all of them: every position where
    the layer reads every input unit (its first and last windows reach the ends, and
    the windows leave no gap), else none."""
    first, last = window.bounds(0), window.bounds(outputs - 1)
    moves, units = window.slope_ratio()
    gapless = moves <= units * len(window.reads(0))
    if first is None or last is None or not gapless:
        return 0
    return None if first[0] <= 0 and last[1] >= size - 1 else 0


class Coverage:
    """Answers, for the nodes of one walk, whether their units see every input position.

    `windows[i]` are the windows of node i (None for a merge, or where every unit reads
    its whole input), `shapes[i]` its output shape; `input_shape` the model's input.
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        windows: Sequence[tuple[Window, ...] | None],
        shapes: Sequence[tuple[int, ...]],
        input_shape: tuple[int, ...],
    ) -> None:
        self.nodes = nodes
        self.windows = windows
        self.shapes = shapes
        self.input_shape = input_shape
        # What every unit of a node reaches of the input, per axis, once known.
        self.known: dict[int, tuple[Positions, ...]] = {}

    def sees_everything(self, index: int) -> bool:
        """Whether the units of node `index` together see every input position."""
        reached = self.reached_by_every_unit(index)
        return all(positions is None for positions in reached)

    def shape(self, index: int) -> tuple[int, ...]:
        return self.input_shape if index == INPUT else self.shapes[index]

    def reached_by_every_unit(self, index: int) -> tuple[Positions, ...]:
        ndim = len(self.input_shape) - 1
        if index == INPUT:
            return (None,) * ndim
        known = self.known.get(index)
        if known is not None:
            return known
        # Walk back, latest first (every reader of a node comes after it), with the units
        # each node is asked for, gathered from all its readers.
        needed: dict[int, list[Positions]] = {index: [None] * (len(self.shape(index)) - 1)}
        waiting = [-index]
        reached: list[Positions] = [0] * ndim
        while waiting:
            current = -heapq.heappop(waiting)
            asked = needed.pop(current)
            if any(a == 0 for a in asked):
                continue  # no unit on some axis: nothing asked
            if all(a is None for a in asked) and current in self.known:
                reached = _union(reached, self.known[current])
                continue
            for read, positions in self.asks(current, self.nodes[current], asked):
                if read == INPUT:
                    reached = _union(reached, positions)
                elif read in needed:
                    needed[read] = _union(needed[read], positions)
                else:
                    needed[read] = positions
                    heapq.heappush(waiting, -read)
        answer = self.known[index] = tuple(reached)
        return answer

    def asks(
        self, index: int, node: Node, asked: list[Positions]
    ) -> list[tuple[int, list[Positions]]]:
        """The units node `index` reads of each of its inputs, for its `asked` units."""
        output = self.shape(index)[1:]
        if not output or (self.windows[index] is None and not isinstance(node.op, Merge)):
            # Every unit reads its whole input (a global pooling, flatten, linear): all
            # of every input is asked for.
            return [(read, [None] * (len(self.shape(read)) - 1)) for read in node.inputs]
        if isinstance(node.op, Merge):
            found = []
            for read in node.inputs:
                sizes = self.shape(read)[1:]
                # mul broadcasts an axis of size 1: its one unit serves every output unit.
                positions = [
                    1 if size == 1 and out > 1 else a
                    for a, size, out in zip(asked, sizes, output, strict=True)
                ]
                found.append((read, positions))
            return found
        (read,) = node.inputs
        sizes = self.shape(read)[1:]
        windows = self.windows[index]
        assert windows is not None
        return [
            (
                read,
                [
                    _read(w, a, out, size)
                    for w, a, out, size in zip(windows, asked, output, sizes, strict=True)
                ],
            )
        ]


def _union(a: Sequence[Positions], b: Sequence[Positions]) -> list[Positions]:
    return [None if x is None or y is None else x | y for x, y in zip(a, b, strict=True)]
