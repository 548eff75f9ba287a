"""A whole network: leaves (layers with a place) and the blocks that arrange them.

`sequential` is grouping only and is inlined when the model is loaded; `residual` is an
`add` of its body and its shortcut. What is left are three node types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from convcalc.errors import Where
from convcalc.model.layers import Layer, Shape

__all__ = ["Leaf", "Merge", "Model", "Node", "Repeat"]


@dataclass(frozen=True)
class Leaf:
    """One layer at its place in the model, with the user's name for it if any."""

    layer: Layer
    where: Where
    name: str | None = None


@dataclass(frozen=True)
class Repeat:
    """The same layers `times` times over."""

    times: int
    layers: tuple[Node, ...]
    where: Where
    name: str | None = None


@dataclass(frozen=True)
class Merge:
    """Branches run on the same input, then summed (`add`) or concatenated along the
    channels (`concat`). An empty branch is the identity."""

    kind: Literal["add", "concat"]
    branches: tuple[tuple[Node, ...], ...]
    block: str  # as the model file says it: residual, add or concat
    labels: tuple[str, ...]  # how messages name each branch: "body", "shortcut", "0", …
    where: Where
    name: str | None = None


Node = Leaf | Repeat | Merge


@dataclass(frozen=True)
class Model:
    layers: tuple[Node, ...]
    where: Where
    name: str | None = None
    input_shape: Shape | None = None
