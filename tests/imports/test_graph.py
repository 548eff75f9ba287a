"""Graphs of nodes → nested model-file blocks (convcalc.imports.graph).

Expected layers are written by hand from the graph's drawing; a property test builds
random nestings of blocks, flattens them into nodes, and must get the same nesting back.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.analysis.analyze import analyze
from convcalc.errors import ConvcalcError
from convcalc.imports.graph import Node, to_layers
from convcalc.loader import build_model
from convcalc.source import Document
from tests.helpers import analyze_yaml


def conv(channels: int, kernel: int = 1) -> dict[str, Any]:
    return {"conv": {"out_channels": channels, "kernel_size": kernel, "padding": kernel // 2}}


def layer(name: str, entry: Any, source: str) -> Node:
    """A node named after the value it writes."""
    return Node(name, entry, (source,), name)


def test_a_chain_is_a_list_with_the_names_of_nodes_that_have_parameters() -> None:
    nodes = [layer("c1", conv(8), "x"), layer("r1", "relu", "c1"), layer("c2", conv(4), "r1")]
    assert to_layers(nodes, "x", "c2") == [
        {"conv": {"name": "c1", "out_channels": 8, "kernel_size": 1, "padding": 0}},
        "relu",
        {"conv": {"name": "c2", "out_channels": 4, "kernel_size": 1, "padding": 0}},
    ]


def test_an_identity_model_and_unnamed_nodes() -> None:
    assert to_layers([], "x", "x") == []
    assert to_layers([Node("", conv(8), ("x",), "y")], "x", "y") == [conv(8)]


def test_a_diamond_is_an_add_and_a_concat_keeps_the_order_of_its_inputs() -> None:
    nodes = [layer("a", "relu", "x"), layer("b", "sigmoid", "x")]
    added = [*nodes, Node("sum", "add", ("a", "b"), "y")]
    assert to_layers(added, "x", "y") == [{"add": [["relu"], ["sigmoid"]]}]
    joined = [*nodes, Node("cat", "concat", ("b", "a", "x"), "y")]
    assert to_layers(joined, "x", "y") == [{"concat": [["sigmoid"], ["relu"], []]}]


@pytest.mark.parametrize("inputs", [("b", "x"), ("x", "b")])
def test_an_identity_shortcut_is_a_residual(inputs: tuple[str, str]) -> None:
    nodes = [
        layer("pre", "relu", "x"),
        layer("a", conv(8, 3), "pre"),
        layer("b", "tanh", "a"),
        Node("block", "add", tuple(p if p != "x" else "pre" for p in inputs), "sum"),
        layer("post", "relu", "sum"),
    ]
    body = [{"conv": {"name": "a", "out_channels": 8, "kernel_size": 3, "padding": 1}}, "tanh"]
    assert to_layers(nodes, "x", "post") == [
        "relu",
        {"residual": {"name": "block", "body": body}},
        "relu",
    ]


def test_a_value_added_to_itself() -> None:
    assert to_layers([Node("", "add", ("x", "x"), "y")], "x", "y") == [{"add": [[], []]}]


def test_inception_blocks_in_a_residual() -> None:
    # x → [1×1 | 1×1 → 3×3 | 3×3 → 5×5] → concat → 1×1 → + x, twice over.
    nodes = []
    value = "x"
    for block in ("i1", "i2"):
        nodes += [
            layer(f"{block}a", conv(4), value),
            layer(f"{block}b1", conv(2), value),
            layer(f"{block}b2", conv(4, 3), f"{block}b1"),
            layer(f"{block}c1", conv(2, 3), value),
            layer(f"{block}c2", conv(4, 5), f"{block}c1"),
            Node(f"{block}cat", "concat", (f"{block}a", f"{block}b2", f"{block}c2"), f"{block}y"),
            layer(f"{block}p", conv(16), f"{block}y"),
            Node(f"{block}add", "add", (value, f"{block}p"), f"{block}out"),
        ]
        value = f"{block}out"
    layers = to_layers(nodes, "x", value)
    expected = """\
    input: [16, 9, 9]
    layers:
      - repeat:
          times: 2
          layers:
            - residual:
                body:
                  - concat:
                      - [conv: {out_channels: 4, kernel_size: 1}]
                      - - conv: {out_channels: 2, kernel_size: 1}
                        - conv: {out_channels: 4, kernel_size: 3, padding: 1}
                      - - conv: {out_channels: 2, kernel_size: 3, padding: 1}
                        - conv: {out_channels: 4, kernel_size: 5, padding: 2}
                  - conv: {out_channels: 16, kernel_size: 1}
    """
    assert [entry["residual"]["name"] for entry in layers] == ["i1add", "i2add"]
    assert _rows(layers, (16, 9, 9)) == _rows_of(analyze_yaml(expected))


def test_a_u_net_long_skip_spans_a_nested_sub_network() -> None:
    # e1 → (skip e1) ‖ (pool → e2 → (skip e2) ‖ (pool → bottom → up) → d2 → up) → d1
    nodes = [
        layer("e1", conv(8, 3), "x"),
        layer("p1", {"max_pool": {"kernel_size": 2}}, "e1"),
        layer("e2", conv(16, 3), "p1"),
        layer("p2", {"max_pool": {"kernel_size": 2}}, "e2"),
        layer("bottom", conv(32, 3), "p2"),
        layer(
            "u2", {"conv_transpose": {"out_channels": 16, "kernel_size": 2, "stride": 2}}, "bottom"
        ),
        Node("cat2", "concat", ("e2", "u2"), "j2"),
        layer("d2", conv(16, 3), "j2"),
        layer("u1", {"conv_transpose": {"out_channels": 8, "kernel_size": 2, "stride": 2}}, "d2"),
        Node("cat1", "concat", ("e1", "u1"), "j1"),
        layer("d1", conv(8, 3), "j1"),
    ]
    layers = to_layers(nodes, "x", "d1")
    assert [next(iter(entry)) for entry in layers] == ["conv", "concat", "conv"]
    skip, down = layers[1]["concat"]
    assert skip == []
    assert [next(iter(entry)) for entry in down] == [
        "max_pool",
        "conv",
        "concat",
        "conv",
        "conv_transpose",
    ]
    assert down[2]["concat"][0] == []
    expected = """\
    layers:
      - conv: {out_channels: 8, kernel_size: 3, padding: 1}
      - concat:
        - []
        - - max_pool: {kernel_size: 2}
          - conv: {out_channels: 16, kernel_size: 3, padding: 1}
          - concat:
            - []
            - - max_pool: {kernel_size: 2}
              - conv: {out_channels: 32, kernel_size: 3, padding: 1}
              - conv_transpose: {out_channels: 16, kernel_size: 2, stride: 2}
          - conv: {out_channels: 16, kernel_size: 3, padding: 1}
          - conv_transpose: {out_channels: 8, kernel_size: 2, stride: 2}
      - conv: {out_channels: 8, kernel_size: 3, padding: 1}
    """
    assert _rows(layers, (3, 32, 32)) == _rows_of(analyze_yaml(expected, (3, 32, 32)))


def test_densenet_concatenations_of_all_earlier_features_nest() -> None:
    # torchvision's DenseNet: each layer reads cat(x, y1, …), and the block ends with
    # cat(x, y1, y2, y3); as written not series-parallel, as cat(cat(x, y1), y2) it is.
    nodes = [layer("y1", conv(4, 3), "x")]
    features = ["x", "y1"]
    for index in (2, 3):
        nodes += [
            Node(f"cat{index - 1}", "concat", tuple(features), f"in{index}"),
            layer(f"y{index}", conv(4, 3), f"in{index}"),
        ]
        features.append(f"y{index}")
    nodes.append(Node("out", "concat", tuple(features), "out"))
    layers = to_layers(nodes, "x", "out")
    dense = {"concat": [[], [{"conv": {"out_channels": 4, "kernel_size": 3, "padding": 1}}]]}
    expected = {"input": [8, 6, 6], "layers": [dense] * 3}
    assert _rows(layers, (8, 6, 6)) == _rows_of(analyze(build_model(Document(expected))))
    assert _rows(layers, (8, 6, 6))[-1][2] == (20, 6, 6)


def test_a_bridge_is_not_series_parallel_and_the_error_names_the_node() -> None:
    # a feeds both merges: x → a → c → add2, x → a → add1 ← b ← x, add1 → add2.
    nodes = [
        layer("a", "relu", "x"),
        layer("b", "tanh", "x"),
        layer("c", "sigmoid", "a"),
        Node("add1", "add", ("a", "b"), "d"),
        Node("add2", "add", ("c", "d"), "e"),
    ]
    with pytest.raises(
        ConvcalcError,
        match=r"node 'a' lies on a branch of 'add2' and on a branch of 'add1'.*not series-parallel",
    ):
        to_layers(nodes, "x", "e")


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            [layer("a", "relu", "x"), Node("m", "add", ("a", "other"), "y")],
            "'other' is neither the input 'x' nor written by any node",
        ),
        (
            [layer("a", "relu", "x"), layer("b", "relu", "x"), layer("y", "relu", "a")],
            "does not depend on 'b'",
        ),
        ([Node("m", "add", ("x", "z"), "y"), layer("z", "relu", "y")], "cycle"),
        ([Node("m", "concat", ("x",), "y")], "'m': concat needs two or more inputs, got 1"),
        (
            [Node("", "relu", ("x", "x"), "y")],
            "the node writing 'y': a layer reads one value, got 2",
        ),
        ([layer("y", "relu", "x"), layer("y", "tanh", "x")], "both write 'y'"),
        ([Node("w", "relu", ("x",), "x")], "writes the input 'x'"),
    ],
)
def test_graphs_it_refuses(nodes: list[Node], message: str) -> None:
    with pytest.raises(ConvcalcError, match=message):
        to_layers(nodes, "x", "y")


def test_a_long_chain_does_not_recurse() -> None:
    nodes = [Node("", "relu", (f"v{i}",), f"v{i + 1}") for i in range(20_000)]
    assert to_layers(nodes, "v0", "v20000") == ["relu"] * 20_000


def _rows(layers: list[Any], shape: tuple[int, ...]) -> list[tuple[Any, ...]]:
    return _rows_of(analyze(build_model(Document({"layers": layers})), shape))


def _rows_of(analysis: Any) -> list[tuple[Any, ...]]:
    return [
        (row.kind, row.input_shape, row.output_shape, row.params, row.receptive_field)
        for row in analysis.rows
    ]


# -- random nestings: blocks → nodes → blocks ------------------------------------------


def _nesting(depth: int) -> st.SearchStrategy[list[Any]]:
    """Layers in the form to_layers writes: named leaves, residuals (a non-empty body
    with an identity shortcut), adds and concats with at most one identity branch."""
    leaf = st.sampled_from(["relu", "conv"])
    if depth == 0:
        return st.lists(leaf, max_size=3)
    inner = _nesting(depth - 1)
    block = st.one_of(
        st.tuples(st.just("residual"), st.lists(inner.filter(bool), min_size=1, max_size=1)),
        st.tuples(st.sampled_from(["add", "concat"]), st.lists(inner, min_size=2, max_size=3)),
    ).filter(_canonical)
    return st.lists(st.one_of(leaf, block), max_size=3)


def _canonical(block: tuple[str, list[Any]]) -> bool:
    """Not an add of two branches of which one is the identity (that is a residual),
    and (so that no concat repeats another's inputs) one identity branch at most."""
    kind, branches = block
    empty = sum(not branch for branch in branches)
    return not (kind == "add" and len(branches) == 2 and empty == 1) and (
        kind != "concat" or empty <= 1
    )


def _build(
    sketch: list[Any], source: str, names: Iterator[int], nodes: list[Node]
) -> tuple[list[Any], str]:
    """The layers a sketch stands for, and the nodes computing them from `source`."""
    layers: list[Any] = []
    value = source
    for item in sketch:
        number = next(names)
        if item == "relu":
            entry: Any = "relu"
        elif item == "conv":
            entry = {"conv": {"name": f"n{number}", "out_channels": 1, "kernel_size": 1}}
        if isinstance(item, str):
            nodes.append(Node(f"n{number}", entry, (value,), f"v{number}"))
            layers.append(entry)
        else:
            kind, branches = item
            built = [_build(branch, value, names, nodes) for branch in branches]
            ends = tuple(end for _, end in built)
            if kind == "residual":
                ((body, end),) = built
                nodes.append(Node(f"m{number}", "add", (end, value), f"v{number}"))
                layers.append({"residual": {"name": f"m{number}", "body": body}})
            else:
                nodes.append(Node(f"m{number}", kind, ends, f"v{number}"))
                layers.append({kind: [branch for branch, _ in built]})
        value = f"v{number}"
    return layers, value


@settings(max_examples=200, deadline=None)
@given(_nesting(3))
def test_random_nestings_come_back_as_they_were(sketch: list[Any]) -> None:
    nodes: list[Node] = []
    layers, output = _build(sketch, "x", itertools.count(), nodes)
    assert to_layers(nodes, "x", output) == layers
