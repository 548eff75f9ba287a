"""Model files: what is accepted, and errors that name file, line, path and expectation."""

from __future__ import annotations

import textwrap

import pytest

from convcalc.errors import ConvcalcError
from convcalc.loader import build_model
from convcalc.model.layers import Layer
from convcalc.model.network import INPUT, Merge
from convcalc.source import parse


def load(text: str):  # type: ignore[no-untyped-def]
    return build_model(parse(textwrap.dedent(text).lstrip("\n"), "model.yaml"))


def error_of(text: str) -> str:
    with pytest.raises(ConvcalcError) as caught:
        load(text)
    return str(caught.value)


def test_the_issue_example_message() -> None:
    text = (
        "input: [3, 32, 32]\nlayers:\n"
        + "  - relu\n" * 9
        + ("  - conv: {out_channels: 4, kernel_size: 3, stride: 0}\n")
    )
    assert error_of(text) == (
        "model.yaml:12: layers[9].conv.stride: expected a positive integer, or a list of "
        "them (one per axis), got 0"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "layers:\n  - conv: {out_channels: true, kernel_size: 3}\n",
            "model.yaml:2: layers[0].conv.out_channels: expected a positive integer, got true",
        ),
        (
            "layers:\n  - conv: {out_channels: 4, kernel_size: 3.0}\n",
            "model.yaml:2: layers[0].conv.kernel_size: expected a positive integer, or a "
            "list of them (one per axis), got 3.0",
        ),
        (
            "layers:\n  - conv: {out_channels: 4}\n",
            "model.yaml:2: layers[0].conv: conv needs kernel_size",
        ),
        (
            "layers:\n  - relu\n  - convolution: {out_channels: 4}\n",
            "model.yaml:3: layers[1]: unknown layer kind 'convolution'; did you mean 'conv'?",
        ),
        (
            "layers:\n  - max_pool: {kernel_size: 2, groups: 2}\n",
            "model.yaml:2: layers[0].max_pool.groups: unknown parameter 'groups' for max_pool; "
            "known: ceil_mode, dilation, kernel_size, padding, stride",
        ),
        (
            "layers:\n  - conv: {out_channels: 4, kernel_size: 3, padding: sam}\n",
            "model.yaml:2: layers[0].conv.padding: expected a non-negative integer",
        ),
        (
            "layers:\n  - conv: {out_channels: 4, kernel_size: 3, padding: [[1, 2, 3]]}\n",
            "model.yaml:2: layers[0].conv.padding: expected a non-negative integer",
        ),
        (
            "input: [3, 0, 224]\nlayers: [relu]\n",
            "model.yaml:1: input: expected a shape",
        ),
        ("layers: relu\n", "model.yaml:1: layers: expected a list of layers"),
        ("input: [3, 8]\n", "model.yaml:1: missing 'layers'"),
        ("layers: [relu]\nlayer: []\n", "model.yaml:2: layer: unknown key 'layer'"),
        (
            "layers:\n  - {conv: {out_channels: 4, kernel_size: 3}, relu: {}}\n",
            "model.yaml:2: layers[0]: expected a layer: a kind (relu) or a mapping with one key",
        ),
        ("layers:\n  - relu: 3\n", "model.yaml:2: layers[0].relu: expected the parameters"),
        (
            "layers:\n  - repeat: {times: 0, layers: [relu]}\n",
            "model.yaml:2: layers[0].repeat.times: expected a positive integer, got 0",
        ),
        (
            "layers:\n  - repeat: {layers: [relu]}\n",
            "model.yaml:2: layers[0].repeat: repeat needs times",
        ),
        (
            "layers:\n  - residual: {body: [relu], short: []}\n",
            "model.yaml:2: layers[0].residual.short: unknown key 'short' in residual",
        ),
        (
            "layers:\n  - concat: [[relu]]\n",
            "model.yaml:2: layers[0].concat: expected concat to be a list of at least two",
        ),
        (
            "layers:\n  - relu\n  - relu\n  - relu: {inplace: yes please}\n",
            "model.yaml:4: layers[2].relu.inplace: expected true or false",
        ),
        (
            "layers:\n  - conv: {out_channels: 4, kernel_size: 3, kernel_size: 5}\n",
            "model.yaml:2: layers[0].conv: duplicate key 'kernel_size'",
        ),
        (
            "layers:\n  - conv: !!python/object/apply:os.system [ls]\n",
            "model.yaml:2: layers[0].conv: the tag tag:yaml.org,2002:python/object/apply:os.system",
        ),
        ("layers: [relu\n", "model.yaml:2: invalid YAML"),
        ("- relu\n", "model.yaml:1: expected a mapping"),
    ],
)
def test_errors_say_where_and_what(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


def test_json_is_yaml_and_keeps_lines() -> None:
    text = (
        '{\n  "input": [3, 8, 8],\n  "layers": [\n'
        '    {"conv": {"out_channels": 4, "kernel_size": -1}}\n  ]\n}\n'
    )
    assert error_of(text).startswith("model.yaml:4: layers[0].conv.kernel_size:")


def test_blocks_become_nodes() -> None:
    model = load(
        """
        input: [3, 8, 8]
        layers:
          - sequential: [relu, {sequential: [relu]}]
          - repeat: {times: 3, layers: [relu]}
          - residual: {body: [relu]}
          - concat: [[relu], []]
        """
    )
    # sequential is grouping only: its layers take its place, their paths keep it; a
    # repeat is its copies; a block's branches come before its merge.
    assert [node.place.path for node in model.nodes] == [
        "layers[0].sequential[0]",
        "layers[0].sequential[1].sequential[0]",
        "layers[1].repeat[0].layers[0]",
        "layers[1].repeat[1].layers[0]",
        "layers[1].repeat[2].layers[0]",
        "layers[2].residual.body[0]",
        "layers[2]",
        "layers[3].concat[0][0]",
        "layers[3]",
    ]
    # Each reads the node before it; the residual's body and shortcut read its input.
    assert [node.inputs for node in model.nodes] == [
        (INPUT,), (0,), (1,), (2,), (3,), (4,), (5, 4), (6,), (7, 6),
    ]  # fmt: skip
    residual = model.nodes[6].op
    assert isinstance(residual, Merge)
    assert (residual.kind, residual.labels) == ("add", ("body", "shortcut"))
    assert model.outputs == (8,)


def test_aliases_and_merge_keys() -> None:
    model = load(
        """
        x-conv: &conv {kernel_size: 3, padding: 1, bias: false}
        layers:
          - conv: {<<: *conv, out_channels: 8}
          - conv: {<<: *conv, out_channels: 16, padding: 0}
        """
    )
    first, second = (node.op for node in model.nodes)
    assert isinstance(first, Layer) and isinstance(second, Layer)
    assert first.padding == 1  # type: ignore[attr-defined]
    assert second.padding == 0  # type: ignore[attr-defined]  # the mapping's own key wins


def test_names_are_kept() -> None:
    (node,) = load("layers:\n  - conv: {name: stem, out_channels: 4, kernel_size: 3}\n").nodes
    assert (node.name, node.qualified_name) == ("stem", "stem")
