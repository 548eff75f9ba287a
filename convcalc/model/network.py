"""A whole network: leaves (layers with a place) and the blocks that arrange them.

`sequential` is grouping only and is inlined when the model is loaded; `residual` is an
`add` of its body and its shortcut. What is left are three node types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from convcalc.errors import Where
from convcalc.model.layers import Layer, Shape

__all__ = ["Leaf", "Merge", "Model", "Node", "Place", "Repeat"]


# A model file gives a place and a leaf per layer: as named tuples they cost a fifth of a
# frozen dataclass to make (100,000-layer models, issue 5), and are as immutable.
class Place(NamedTuple):
    """Where a node stands in its model: its path at once, and its file and line from
    `locate` only when a message needs them (finding lines can cost more than the rest)."""

    path: str
    locate: Callable[[], Where] | None = None

    @property
    def where(self) -> Where:
        return self.locate() if self.locate is not None else Where(self.path)


class Leaf(NamedTuple):
    """One layer at its place in the model, with the user's name for it if any."""

    layer: Layer
    place: Place
    name: str | None = None

    @property
    def where(self) -> Where:
        return self.place.where


@dataclass(frozen=True)
class Repeat:
    """The same layers `times` times over."""

    times: int
    layers: tuple[Node, ...]
    place: Place
    name: str | None = None

    @property
    def where(self) -> Where:
        return self.place.where


@dataclass(frozen=True)
class Merge:
    """Branches run on the same input, then summed (`add`) or concatenated along the
    channels (`concat`). An empty branch is the identity."""

    kind: Literal["add", "concat"]
    branches: tuple[tuple[Node, ...], ...]
    block: str  # as the model file says it: residual, add or concat
    labels: tuple[str, ...]  # how messages name each branch: "body", "shortcut", "0", …
    place: Place
    name: str | None = None

    @property
    def where(self) -> Where:
        return self.place.where


Node = Leaf | Repeat | Merge


@dataclass(frozen=True)
class Model:
    """A network: its top-level nodes, where it came from, its name and declared input."""

    layers: tuple[Node, ...]
    where: Where
    name: str | None = None
    input_shape: Shape | None = None
