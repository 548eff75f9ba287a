"""An importer's graph of nodes → a model document in graph form (convcalc.imports.graph).

Expected documents are written by hand from the graph's drawing; a property test builds
random graphs, and the model made from their document must run them as drawn: every
node's row reads the rows it was drawn reading.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.analysis.analyze import analyze
from convcalc.errors import ConvcalcError
from convcalc.imports.graph import Node, graph_document
from convcalc.loader import build_model
from convcalc.source import Document


def conv(channels: int, kernel: int = 1) -> dict[str, Any]:
    return {"conv": {"out_channels": channels, "kernel_size": kernel, "padding": kernel // 2}}


def layer(name: str, entry: Any, source: str) -> Node:
    """A node named after the value it writes."""
    return Node(name, entry, (source,), name)


def test_a_chain_names_every_node_and_reads_the_one_before_without_from() -> None:
    nodes = [layer("c1", conv(8), "x"), layer("r1", "relu", "c1"), layer("c2", conv(4), "r1")]
    assert graph_document(nodes, "x", ["c2"]) == {
        "layers": [
            {"conv": {"name": "c1", "out_channels": 8, "kernel_size": 1, "padding": 0}},
            {"relu": {"name": "r1"}},
            {"conv": {"name": "c2", "out_channels": 4, "kernel_size": 1, "padding": 0}},
        ]
    }


def test_branches_say_what_they_read_and_merges_list_it_in_order() -> None:
    nodes = [
        layer("a", "relu", "x"),
        layer("b", "sigmoid", "x"),
        Node("cat", "concat", ("b", "a", "x"), "y"),
    ]
    assert graph_document(nodes, "x", ["y"])["layers"] == [
        {"relu": {"name": "a"}},
        {"sigmoid": {"name": "b", "from": "input"}},
        {"concat": {"name": "cat", "from": ["b", "a", "input"]}},
    ]


def test_several_outputs_and_their_given_names() -> None:
    nodes = [layer("a", "relu", "x"), layer("b", "sigmoid", "a"), layer("c", "tanh", "a")]
    document = graph_document(nodes, "x", ["b", "c"], ["out", "aux"])
    assert document["outputs"] == ["out", "aux"]
    assert [next(iter(entry.values()))["name"] for entry in document["layers"]] == [
        "a",
        "out",
        "aux",
    ]
    # A given name another node already has stays the node's own.
    assert graph_document(nodes, "x", ["b", "c"], ["a", "c"])["outputs"] == ["b", "c"]
    # One output that is the last node needs no list.
    assert "outputs" not in graph_document(nodes[:2], "x", ["b"])


def test_nodes_no_output_reads_are_dropped_and_listed() -> None:
    nodes = [layer("a", "relu", "x"), layer("aux", "sigmoid", "a"), layer("b", "tanh", "a")]
    document = graph_document(nodes, "x", ["b"])
    assert document["dropped"] == ["aux"]
    assert document["layers"] == [{"relu": {"name": "a"}}, {"tanh": {"name": "b"}}]


def test_names_are_made_unique_as_torch_fx_names_repeated_calls() -> None:
    nodes = [Node("relu", "relu", ("x",), "v1"), Node("relu", "relu", ("v1",), "v2")]
    names = [e["relu"]["name"] for e in graph_document(nodes, "x", ["v2"])["layers"]]
    assert names == ["relu", "relu_1"]
    # `input` is what `from` calls the model's input.
    assert graph_document([Node("input", "relu", ("x",), "v")], "x", ["v"])["layers"] == [
        {"relu": {"name": "input_1"}}
    ]


@pytest.mark.parametrize(
    ("nodes", "outputs", "message"),
    [
        ([Node("a", "relu", ("x", "x"), "a")], ["a"], "a layer reads one value, got 2"),
        ([Node("s", "add", ("x",), "s")], ["s"], "add reads 1 values, expected 2"),
        ([Node("a", "relu", ("nowhere",), "a")], ["a"], "reads 'nowhere', which is neither"),
        ([layer("a", "relu", "x"), layer("a", "relu", "x")], ["a"], "writes 'a' a second time"),
        ([layer("a", "relu", "x")], ["x"], "returns its input unchanged"),
        ([layer("a", "relu", "x")], [], "has no output"),
    ],
)
def test_malformed_graphs_are_refused_with_the_node(
    nodes: list[Node], outputs: list[str], message: str
) -> None:
    with pytest.raises(ConvcalcError, match=message):
        graph_document(nodes, "x", outputs)


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[Node], list[str]]:
    """A random graph of relus and adds/concats/muls over earlier values."""
    values = ["x"]
    plain = ["x"]  # the values of the input's shape: what add and mul read (no concat before)
    nodes = []
    for index in range(draw(st.integers(1, 12))):
        name = f"n{index}"
        kind = draw(st.sampled_from(["relu", "add", "concat", "mul"]))
        if kind == "relu":
            reads: tuple[str, ...] = (draw(st.sampled_from(values)),)
        else:
            least = 1 if kind == "concat" else 2
            choices = values if kind == "concat" else plain
            reads = tuple(draw(st.lists(st.sampled_from(choices), min_size=least, max_size=3)))
        nodes.append(Node(name, kind, reads, name))
        values.append(name)
        if kind != "concat" and all(value in plain for value in reads):
            plain.append(name)
    outputs = draw(st.lists(st.sampled_from(values[1:]), min_size=1, max_size=3, unique=True))
    return nodes, outputs


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_the_model_reads_what_each_node_was_drawn_reading(
    graph: tuple[list[Node], list[str]],
) -> None:
    nodes, outputs = graph
    document = graph_document(nodes, "x", outputs)
    model = build_model(Document({"input": [2, 4, 4], **document}))
    rows = {row.qualified_name: row for row in analyze(model).rows}
    kept = [node for node in nodes if node.name not in document.get("dropped", [])]
    assert list(rows) == [node.name for node in kept]
    for node in kept:
        assert rows[node.name].inputs == tuple(
            "input" if value == "x" else value for value in node.inputs
        )
    assert [output.name for output in analyze(model).outputs] == outputs
