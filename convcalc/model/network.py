"""A whole network: a graph of nodes in execution order.

Each node is a layer or a merge, reads the outputs of earlier nodes (or the model's
input) and has a place in its model file and a qualified name. The blocks of a model
file (`sequential`, `repeat`, `residual`, `add`, `concat`, `mul`, definitions) are
sugar: the loader lowers them to this graph once, and nothing downstream sees them
(the `torch.fx` pattern: one ordered list of nodes, each knowing its inputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from convcalc.errors import Where
from convcalc.model.layers import Layer, Shape

__all__ = ["INPUT", "INPUT_NAME", "Merge", "Model", "Node", "Place"]

#: What a node reads when it reads the model's input rather than an earlier node.
INPUT = -1

#: The name of that input, in `from` and in the `inputs` of rows.
INPUT_NAME = "input"


# A model file gives a place and a node per layer: as named tuples they cost a fifth of a
# frozen dataclass to make (100,000-layer models, issue 5), and are as immutable.
class Place(NamedTuple):
    """Where a node stands: its path at once, and its file and line from `locate` only
    when a message needs them (finding lines can cost more than the rest)."""

    path: str
    locate: Callable[[], Where] | None = None

    @property
    def where(self) -> Where:
        return self.locate() if self.locate is not None else Where(self.path)


@dataclass(frozen=True)
class Merge:
    """Element-wise sum (`add`) or product (`mul`, which broadcasts), or concatenation
    along the channels (`concat`) of what a node reads."""

    kind: Literal["add", "concat", "mul"]
    block: str  # as the model file says it: residual, add, concat or mul
    labels: tuple[str, ...]  # how messages name each input: "body", "shortcut", "0", …


class Node(NamedTuple):
    """One layer or merge of the graph.

    `inputs` are the indices of the nodes it reads (`INPUT`: the model's input), in
    order; `like` is the node whose spatial size an `upsample` takes; `entry`, for the
    merge of a block (residual, or add and concat of branches), the block's input, whose
    shape its row reports. `name` is the user's own name for it; `qualified_name` the
    dotted name of SPEC §6.1, or its path when nothing names it.
    """

    op: Layer | Merge
    inputs: tuple[int, ...]
    place: Place
    name: str | None
    qualified_name: str
    like: int | None = None
    entry: int | None = None

    @property
    def where(self) -> Where:
        """The node's place for a message: file and line, and its qualified name."""
        found = self.place.where
        return Where(self.qualified_name, found.file, found.line)


@dataclass(frozen=True)
class Model:
    """A network: its nodes in execution order, its outputs (node indices, in order),
    where it came from, its name and declared input; and what an importer left out (SPEC
    §6.6): the parameters of modules the forward never used, by module, and the nodes
    whose results no output reads."""

    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    where: Where
    name: str | None = None
    input_shape: Shape | None = None
    unused_params: tuple[tuple[str, int], ...] = ()
    dropped: tuple[str, ...] = ()
