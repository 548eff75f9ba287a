"""An importer's graph of nodes → a model document in graph form (SPEC §6.3).

An importer describes a network as nodes, each reading values and writing one: a layer
reads one value, a merge (`add`, `concat`, `mul`) one or more. The document lists them in
the order given (the order they ran), each named by its own qualified name, with `from`
where it does not read the node just before it, and `outputs` where the model does not
end at its last node. Nodes no output depends on (a branch whose result is thrown away)
are dropped and listed, so that the model can warn about them (`dropped`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convcalc.errors import ConvcalcError
from convcalc.model.network import INPUT_NAME

__all__ = ["MERGES", "Node", "graph_document"]

#: The entries of merge nodes.
MERGES = ("add", "concat", "mul")


@dataclass(frozen=True)
class Node:
    """One operation of a graph.

    `entry` is a model-file layer entry (`"relu"`, `{"conv": {...}}`), or `"add"`,
    `"concat"` or `"mul"` for a merge (reading its inputs in order).
    """

    name: str  # the row's qualified name (made unique here if it is not)
    entry: Any
    inputs: tuple[str, ...]  # the values it reads (a merge one or more; a layer one)
    output: str  # the value it writes
    like: str | None = None  # an upsampling's: the value whose size it takes (SPEC §6.4)


def _describe(node: Node) -> str:
    return repr(node.name) if node.name else f"the node writing {node.output!r}"


def graph_document(
    nodes: Sequence[Node], source: str, outputs: Sequence[str], output_names: Sequence[str] = ()
) -> dict[str, Any]:
    """The `layers` (and `outputs`, `dropped`) of a model document computing the values
    `outputs` from the value `source`. `output_names`, if given, names each output (a
    dict's keys); an output's node takes that name."""
    _check(nodes, source)
    if not outputs:
        raise ConvcalcError("the network has no output")
    live = _live(nodes, source, outputs)
    kept = [node for node, alive in zip(nodes, live, strict=True) if alive]
    dropped = [node.name for node, alive in zip(nodes, live, strict=True) if not alive]
    renamed = dict(zip(outputs, output_names, strict=False))
    names = _unique_names(kept, renamed)
    names[source] = INPUT_NAME
    layers: list[Any] = []
    previous = source
    for node in kept:
        reads = [names[value] for value in node.inputs]
        params: dict[str, Any] = {"name": names[node.output]}
        if node.like is not None:
            params["like"] = names[node.like]
        if node.entry in MERGES:
            params["from"] = reads
            layers.append({node.entry: params})
        else:
            if node.inputs != (previous,):
                params["from"] = reads[0]
            layers.append(_with(node.entry, params))
        previous = node.output
    document: dict[str, Any] = {"layers": layers}
    if list(outputs) != [previous]:
        document["outputs"] = [names[value] for value in outputs]
    if dropped:
        document["dropped"] = dropped
    return document


def _check(nodes: Sequence[Node], source: str) -> None:
    """Every node reads as many values as its entry needs, reads only values written
    before it, and no value is written twice."""
    written = {source}
    for node in nodes:
        merge = node.entry in MERGES
        least = 1 if node.entry == "concat" else 2  # the concatenation of one tensor is it
        if merge and len(node.inputs) < least:
            raise ConvcalcError(
                f"node {_describe(node)}: {node.entry} reads {len(node.inputs)} values, "
                f"expected {least} or more"
            )
        if not merge and len(node.inputs) != 1:
            raise ConvcalcError(
                f"node {_describe(node)}: a layer reads one value, got {len(node.inputs)} "
                f"({', '.join(map(repr, node.inputs))})"
            )
        for value in (*node.inputs, *((node.like,) if node.like is not None else ())):
            if value not in written:
                raise ConvcalcError(
                    f"node {_describe(node)} reads {value!r}, which is neither the input nor "
                    "written by an earlier node"
                )
        if node.output in written:
            raise ConvcalcError(f"node {_describe(node)} writes {node.output!r} a second time")
        written.add(node.output)


def _live(nodes: Sequence[Node], source: str, outputs: Sequence[str]) -> list[bool]:
    """Which nodes an output depends on (walking back from the last node)."""
    needed = set(outputs)
    if source in needed and len(needed) == 1:
        raise ConvcalcError("the network returns its input unchanged")
    live = [False] * len(nodes)
    for index in range(len(nodes) - 1, -1, -1):
        node = nodes[index]
        if node.output in needed:
            live[index] = True
            needed.update(node.inputs)
            if node.like is not None:
                needed.add(node.like)
    return live


def _unique_names(nodes: Sequence[Node], renamed: dict[str, str]) -> dict[str, str]:
    """Each node's output value → its qualified name: its own, or an output's given name
    where no node has it, made unique (a second `relu` is `relu_1`, as torch.fx names
    repeated calls)."""
    own = {node.name for node in nodes}
    taken = {INPUT_NAME}
    names: dict[str, str] = {}
    for node in nodes:
        name = node.name or node.output
        given = renamed.get(node.output)
        if given and given not in own:  # or it would take another node's name
            name = given
        unique, count = name, 0
        while unique in taken:
            count += 1
            unique = f"{name}_{count}"
        taken.add(unique)
        names[node.output] = unique
    return names


def _with(entry: Any, params: dict[str, Any]) -> Any:
    """A layer entry with `params` (its name, what it reads) added."""
    if isinstance(entry, str):
        return {entry: params}
    ((kind, own),) = entry.items()
    return {kind: params | (own or {})}
