"""A graph of nodes → the `layers` of a model file, as nested series-parallel blocks.

An importer describes a network as nodes, each reading named values and writing one: a
layer reads one value, a merge (`add`, `concat`) two or more. Model files nest blocks
instead: a chain is a list, and a fork whose branches meet again is an `add` (a
`residual` when one branch is the identity) or a `concat`. `to_layers` finds that
nesting. Where two values meet, the branches start at the nearest value every path to
the merge passes through (its immediate dominator); walking back from the output along
dominators visits every node once exactly when the graph is series-parallel, so a node
met twice is the proof that it is not, and names the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convcalc.errors import ConvcalcError

__all__ = ["MERGES", "Node", "to_layers"]

#: The entries of merge nodes.
MERGES = ("add", "concat")


@dataclass(frozen=True)
class Node:
    """One operation of a graph.

    `entry` is a model-file layer entry (`"relu"`, `{"conv": {...}}`), or `"add"` /
    `"concat"` for a merge; a layer reads one value, a merge two or more (for `concat`
    in the order its branches are joined).
    """

    name: str  # the node's name in its source graph, for errors and row names
    entry: Any  # a model-file layer entry ("relu", {"conv": {...}}), or "add"/"concat"
    inputs: tuple[str, ...]  # the values it reads (a merge reads two or more; a layer one)
    output: str  # the value it writes


def _describe(node: Node) -> str:
    return repr(node.name) if node.name else f"the node writing {node.output!r}"


def _names(nodes: Sequence[Node], most: int = 5) -> str:
    shown = ", ".join(_describe(node) for node in nodes[:most])
    return shown + (f" and {len(nodes) - most} more" if len(nodes) > most else "")


def to_layers(nodes: Sequence[Node], source: str, output: str) -> list[Any]:
    """The `layers` of a model file computing value `output` from value `source`."""
    _check(nodes, source)
    nodes = _join_concats(nodes)
    producer = {node.output: node for node in nodes}
    order = _order(producer, source, output)
    if len(order) < len(nodes):
        needed = {node.output for node in order}
        dead = [node for node in nodes if node.output not in needed]
        raise ConvcalcError(
            f"the output {output!r} does not depend on {_names(dead)}: convcalc follows "
            "a graph with one output"
        )
    return _Nesting(producer, source, order).series(source, output, None)


def _check(nodes: Sequence[Node], source: str) -> None:
    """Every node reads as many values as its entry needs, and no value is written
    twice."""
    producer: dict[str, Node] = {}
    for node in nodes:
        merge = isinstance(node.entry, str) and node.entry in MERGES
        if merge and len(node.inputs) < 2:
            raise ConvcalcError(
                f"node {_describe(node)}: {node.entry} needs two or more inputs, "
                f"got {len(node.inputs)}"
            )
        if not merge and len(node.inputs) != 1:
            raise ConvcalcError(
                f"node {_describe(node)}: a layer reads one value, got {len(node.inputs)} "
                f"({', '.join(map(repr, node.inputs))})"
            )
        if node.output == source:
            raise ConvcalcError(f"node {_describe(node)} writes the input {source!r}")
        if node.output in producer:
            other = producer[node.output]
            raise ConvcalcError(
                f"nodes {_describe(other)} and {_describe(node)} both write {node.output!r}"
            )
        producer[node.output] = node


def _join_concats(nodes: Sequence[Node]) -> list[Node]:
    """Concatenations that repeat another's inputs first read its output instead.

    DenseNet concatenates all earlier features at every layer: cat(x, y1, y2) beside
    the cat(x, y1) that y2 was computed from. Read as written, that graph is not
    series-parallel; since concatenation is associative, cat(cat(x, y1), y2) is the
    same value, and it is.
    """
    by_inputs = {node.inputs: node.output for node in nodes if node.entry == "concat"}
    joined = []
    for node in nodes:
        if node.entry == "concat":
            for end in range(len(node.inputs) - 1, 1, -1):
                prefix = by_inputs.get(node.inputs[:end])
                if prefix is not None:
                    node = Node(node.name, node.entry, (prefix, *node.inputs[end:]), node.output)
                    break
        joined.append(node)
    return joined


def _order(producer: dict[str, Node], source: str, output: str) -> list[Node]:
    """The nodes `output` depends on, each after the nodes it reads from."""
    done: set[str] = {source}
    visiting: set[str] = set()
    order: list[Node] = []
    # Depth first without recursion (a chain may be thousands of nodes long):
    # (value, its inputs already pushed?).
    stack = [(output, False)]
    while stack:
        value, expanded = stack.pop()
        if expanded:
            visiting.discard(value)
            done.add(value)
            order.append(producer[value])
            continue
        if value in done:
            continue
        if value in visiting:
            raise ConvcalcError(f"the graph has a cycle through node {_describe(producer[value])}")
        node = producer.get(value)
        if node is None:
            raise ConvcalcError(
                f"{value!r} is neither the input {source!r} nor written by any node: "
                "convcalc follows a graph with one input"
            )
        visiting.add(value)
        stack.append((value, True))
        stack.extend((name, False) for name in reversed(node.inputs) if name not in done)
    return order


class _Nesting:
    """The walk from the output back to the input, along immediate dominators."""

    def __init__(self, producer: dict[str, Node], source: str, order: list[Node]) -> None:
        self.producer = producer
        self.rank = {source: 0} | {node.output: index + 1 for index, node in enumerate(order)}
        self.dominator: dict[str, str] = {}
        for node in order:
            fork = node.inputs[0]
            for other in node.inputs[1:]:
                fork = self._common(fork, other)
            self.dominator[node.output] = fork
        # Each node's merge (None: the main chain), to name both when one is met twice.
        self.claimed: dict[str, Node | None] = {}

    def _common(self, first: str, second: str) -> str:
        """The nearest value that dominates both (Cooper, Harvey & Kennedy, *A Simple,
        Fast Dominance Algorithm*, 2001: walk up from the later one until they meet)."""
        while first != second:
            while self.rank[first] > self.rank[second]:
                first = self.dominator[first]
            while self.rank[second] > self.rank[first]:
                second = self.dominator[second]
        return first

    def _claim(self, node: Node, merge: Node | None) -> None:
        if node.output in self.claimed:
            places = [
                f"a branch of {_describe(m)}" if m is not None else "the main chain"
                for m in (self.claimed[node.output], merge)
            ]
            raise ConvcalcError(
                f"node {_describe(node)} lies on {places[0]} and on {places[1]}: "
                "convcalc's blocks nest forks inside branches, and this graph is not "
                "series-parallel"
            )
        self.claimed[node.output] = merge

    def series(self, start: str, end: str, merge: Node | None) -> list[Any]:
        """The layers from value `start` to value `end` (which `start` dominates)."""
        layers: list[Any] = []
        value = end
        while value != start:
            node = self.producer[value]
            self._claim(node, merge)
            fork = self.dominator[value]
            if node.entry in MERGES:
                branches = [self.series(fork, name, node) for name in node.inputs]
                layers.append(_merge_entry(node, branches))
            else:
                layers.append(_named(node))
            value = fork
        layers.reverse()
        return layers


def _merge_entry(node: Node, branches: list[list[Any]]) -> Any:
    empty = [branch for branch in branches if not branch]
    if node.entry == "add" and len(branches) == 2 and len(empty) == 1:
        (body,) = (branch for branch in branches if branch)
        block: dict[str, Any] = {"name": node.name} if node.name else {}
        return {"residual": block | {"body": body}}
    return {node.entry: branches}


def _named(node: Node) -> Any:
    """The node's entry, with the node's name where it has parameters to show."""
    entry = node.entry
    if not node.name or not isinstance(entry, dict) or len(entry) != 1:
        return entry
    ((kind, params),) = entry.items()
    if params is None:
        params = {}
    if not isinstance(params, dict) or "name" in params:
        return entry
    return {kind: {"name": node.name} | params}
