"""A whole network: leaves (layers with a place) and the blocks that arrange them."""

from __future__ import annotations

from dataclasses import dataclass

from convcalc.errors import Where
from convcalc.model.layers import Layer, Shape

__all__ = ["Leaf", "Model", "Node"]


@dataclass(frozen=True)
class Leaf:
    """One layer at its place in the model, with the user's name for it if any."""

    layer: Layer
    where: Where
    name: str | None = None


Node = Leaf


@dataclass(frozen=True)
class Model:
    layers: tuple[Node, ...]
    where: Where
    name: str | None = None
    input_shape: Shape | None = None
