"""The graph additions to the model format (SPEC §6): qualified names, definitions with
arguments and expressions, `from`, `outputs`, and their errors. Expected names and
numbers are worked out by hand from the SPEC's rules."""

from __future__ import annotations

import textwrap

import pytest

from convcalc.errors import ConvcalcError
from convcalc.expressions import evaluate
from convcalc.loader import build_model
from convcalc.model.network import INPUT, Model
from convcalc.source import parse
from tests.helpers import analyze_yaml


def load(text: str) -> Model:
    return build_model(parse(textwrap.dedent(text), "model.yaml"))


def names(text: str) -> list[str]:
    return [node.qualified_name for node in load(text).nodes]


def error_of(text: str) -> str:
    with pytest.raises(ConvcalcError) as caught:
        load(text)
    return str(caught.value)


# --- Qualified names (SPEC §6.1)


def test_rows_are_named_by_their_blocks_and_positions() -> None:
    assert names(
        """
        layers:
          - conv: {name: conv1, out_channels: 4, kernel_size: 3}
          - relu
          - sequential:
              name: features
              layers:
                - conv: {out_channels: 4, kernel_size: 3}
                - relu: {name: act}
                - sequential: [relu, relu]
                - repeat: {times: 2, layers: [relu]}
        """
    ) == [
        "conv1",
        "layers[1]",  # no named ancestor, no name: its path
        "features.0",
        "features.act",
        "features.2",  # an unnamed list continues the numbering, as nn.Sequential would
        "features.3",
        "features.4",  # so do an unnamed repeat's copies
        "features.5",
    ]


def test_a_named_repeat_numbers_its_copies() -> None:
    assert names(
        """
        layers:
          - repeat: {name: layer1, times: 3, layers: [relu]}
          - repeat:
              name: blocks
              times: 2
              layers: [conv: {name: c, out_channels: 1, kernel_size: 1}, relu]
        """
    ) == [
        "layer1.0",
        "layer1.1",
        "layer1.2",
        "blocks.0.c",
        "blocks.0.1",
        "blocks.1.c",
        "blocks.1.1",
    ]


def test_unnamed_blocks_add_no_level_for_named_layers() -> None:
    assert names(
        """
        layers:
          - sequential:
              name: layer1
              layers:
                - residual:
                    body: [conv: {name: conv1, out_channels: 2, kernel_size: 1}, relu]
                    shortcut: [conv: {out_channels: 2, kernel_size: 1}]
                - concat: [[relu], []]
        """
    ) == [
        "layer1.conv1",
        "layer1.0.body.1",
        "layer1.0.shortcut.0",
        "layer1.0",  # the residual's merge
        "layer1.1.0.0",
        "layer1.1",
    ]


def test_a_generated_name_gives_way_to_a_given_one() -> None:
    # The old ResNet files named a residual `layer2.0` beside a repeat `layer2`.
    found = names(
        """
        layers:
          - residual: {name: layer2.0, body: [relu]}
          - repeat: {name: layer2, times: 1, layers: [{residual: {body: [relu]}}]}
        """
    )
    assert found[:2] == ["layer2.0.body.0", "layer2.0"]
    assert found[2:] == [
        "layers[1].repeat[0].layers[0].body.0",
        "layers[1].repeat[0].layers[0]",
    ]


def test_a_name_given_twice_is_an_error_naming_both_places() -> None:
    message = error_of(
        """
        layers:
          - relu: {name: a}
          - relu: {name: a}
        """
    )
    assert message.startswith("model.yaml:4: layers[1].relu: the name 'a' is given twice")
    assert "here and at model.yaml:3" in message


# --- Definitions (SPEC §6.2)

BOTTLENECK = """
input: [64, 8, 8]
define:
  bottleneck:
    args: {planes: null, stride: 1, downsample: []}
    layers:
      - residual:
          body:
            - conv: {name: conv1, out_channels: $planes, kernel_size: 1, bias: false}
            - batch_norm: {name: bn1}
            - relu: {name: relu}
            - conv:
                {name: conv2, out_channels: $planes, kernel_size: 3, stride: $stride, padding: 1,
                 bias: false}
            - batch_norm: {name: bn2}
            - relu
            - conv: {name: conv3, out_channels: "${planes * 4}", kernel_size: 1, bias: false}
            - batch_norm: {name: bn3}
          shortcut: $downsample
      - relu
layers:
  - bottleneck:
      name: layer1.0
      planes: 64
      downsample:
        - conv: {name: downsample.0, out_channels: 256, kernel_size: 1, bias: false}
        - batch_norm: {name: downsample.1}
  - bottleneck: {name: layer1.1, planes: 64}
"""


def test_the_specs_bottleneck() -> None:
    analysis = analyze_yaml(BOTTLENECK)
    rows = {row.qualified_name: row for row in analysis.rows}
    assert list(rows)[:12] == [
        "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.bn2",
        "layer1.0.0.body.5", "layer1.0.conv3", "layer1.0.bn3", "layer1.0.downsample.0",
        "layer1.0.downsample.1", "layer1.0.0", "layer1.0.1",
    ]  # fmt: skip
    # conv3 has planes · 4 = 256 outputs: 64·256 weights; torchvision's count for a
    # Bottleneck(256 → 64): 1·1·256·64 + 2·64 + 3·3·64·64 + 2·64 + 64·256 + 2·256 = 70,400.
    assert rows["layer1.0.conv3"].output_shape == (256, 8, 8)
    assert rows["layer1.0.conv3"].params == 64 * 256
    second = sum(row.params for name, row in rows.items() if name.startswith("layer1.1."))
    assert second == 70_400
    assert rows["layer1.0.0"].inputs == ("layer1.0.bn3", "layer1.0.downsample.1")
    assert rows["layer1.1.0"].inputs == ("layer1.1.bn3", "layer1.0.1")  # identity shortcut


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("planes * 4", 256),
        ("max(1, planes // 16) + -s % 3", 5),  # 4 + (−2 mod 3 = 1)
        ("min(planes, 10, 3 * s)", 6),
        ("(planes - 1) // 2", 31),
        ("-(-7 // 2)", 4),  # rounds towards −∞, as Python does: ceil(7 / 2)
    ],
)
def test_expressions(text: str, expected: int) -> None:
    assert evaluate(text, {"planes": 64, "s": 2}.__getitem__) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2 ** 3", "unexpected '*'"),
        ("1 / 2", "cannot read '/ 2'"),
        ("__import__('os')", "cannot read"),
        ("1 // 0", "division by zero"),
        ("9223372036854775807 + 1", "past 2^63 − 1"),
        ("(" * 101 + "1" + ")" * 101, "more than 100 levels"),
        ("1" * 1001, "at most 1,000"),
        ("planes +", "expected more, got the end"),
    ],
)
def test_expressions_are_parsed_never_run(text: str, says: str) -> None:
    with pytest.raises(ConvcalcError) as caught:
        evaluate(text, {"planes": 64}.__getitem__)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "define: {b: {args: {w: null}, layers: [relu]}}\nlayers: [b]\n",
            "model.yaml:3: layers[0].b: b needs w",
        ),
        (
            "define: {b: {layers: [relu]}}\nlayers: [b: {w: 1}]\n",
            "model.yaml:3: layers[0].b.w: unknown argument 'w' for b; known: from, name",
        ),
        (
            "define: {a: {layers: [b]}, b: {layers: [a]}}\nlayers: [a]\n",
            "the definition uses itself: a → b → a",
        ),
        ("define: {relu: {layers: []}}\nlayers: []\n", "'relu' is a built-in kind"),
        (
            "define: {b: {args: {w: null}, layers: [conv: {out_channels: '${w - 4}', "
            "kernel_size: 1}]}}\nlayers: [b: {name: x, w: 4}]\n",
            "model.yaml:2: x.0: define.b.layers[0].conv.out_channels: expected a positive "
            "integer, got 0",
        ),
        (
            "define: {b: {layers: [conv: {out_channels: $w, kernel_size: 1}]}}\nlayers: [b]\n",
            "no argument 'w'",
        ),
        (
            "define: {b: {args: {w: [1]}, layers: [conv: {out_channels: '${w}', "
            "kernel_size: 1}]}}\nlayers: [b]\n",
            "${…} takes whole numbers; the argument 'w' is [1]",
        ),
    ],
)
def test_definition_errors_name_the_place(text: str, says: str) -> None:
    assert says in error_of("input: [1, 4]\n" + text)


# --- from and outputs (SPEC §6.3)


def test_from_reads_any_earlier_node_and_input_is_the_blocks_own() -> None:
    model = load(
        """
        layers:
          - relu: {name: a}
          - relu: {name: b}
          - add: {from: [a, b], name: s}
          - sequential:
              name: blk
              layers:
                - relu: {name: a}
                - relu: {from: input}
                - concat: {from: [a, blk.1]}
        """
    )
    reads = {node.qualified_name: node.inputs for node in model.nodes}
    assert reads == {
        "a": (INPUT,),
        "b": (0,),
        "s": (0, 1),
        "blk.a": (2,),
        "blk.1": (2,),  # the block's input is s
        "blk.2": (3, 4),  # `a` inside blk is blk.a; a qualified name finds blk.1
    }


def test_outputs_and_dead_nodes() -> None:
    model = load(
        """
        layers:
          - relu: {name: a}
          - relu: {name: b}
          - relu: {name: c, from: a}
        outputs: [b, c]
        """
    )
    assert model.outputs == (1, 2)
    message = error_of(
        """
        layers:
          - relu: {name: a}
          - relu: {name: b}
          - relu: {name: c, from: a}
        """
    )
    assert message.startswith("model.yaml:4: b: no output depends on b")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("layers: [relu: {from: nope}]\n", "no earlier layer or block is named 'nope'"),
        ("layers: [relu: {name: input}]\n", "'input' names a block's input"),
        ("layers: [relu: {name: a}]\noutputs: [b]\n", "no earlier layer or block is named 'b'"),
        ("layers: [relu: {name: a}]\noutputs: []\n", "expected outputs: a list"),
        ("layers: [relu: {name: a}, add: {from: [a]}]\n", "at least 2 earlier layers"),
        ("layers: [relu: {name: a}, relu: {from: b}, relu: {name: b}]\n", "named 'b'"),
        ("layers: [upsample: {like: input, size: 3}]\n", "give no size or scale_factor"),
    ],
)
def test_graph_errors(text: str, says: str) -> None:
    assert says in error_of("input: [1, 4]\n" + text)


def test_a_named_residual_is_a_scope_and_arguments_build_names() -> None:
    assert names(
        """
        input: [8, 16, 16]
        define:
          level:
            args: {k: null}
            layers:
              - conv: {name: "inner_blocks.${k}.0", out_channels: 4, kernel_size: 1}
              - conv: {name: layer_blocks.$k.0, out_channels: 4, kernel_size: 3, padding: 1}
        layers:
          - sequential: {name: fpn, layers: [level: {k: 0}, level: {k: "${1 + 2}"}]}
          - residual:
              name: features.3
              from: input
              body: [conv: {name: conv, out_channels: 8, kernel_size: 3, padding: 1}, relu]
          - concat: {from: [fpn.1.layer_blocks.3.0, features.3]}
        """
    ) == [
        "fpn.0.inner_blocks.0.0",
        "fpn.0.layer_blocks.0.0",
        "fpn.1.inner_blocks.3.0",
        "fpn.1.layer_blocks.3.0",
        "features.3.conv",  # MobileNetV2's InvertedResidual: `x + self.conv(x)`
        "features.3.body.1",
        "features.3",
        "layers[2]",
    ]


def test_a_value_in_a_name_is_a_number_or_a_string() -> None:
    message = error_of(
        """
        define: {b: {args: {k: [1]}, layers: [relu: {name: "a.$k"}]}}
        layers: [b]
        """
    )
    assert "'$k' in a string stands for a number or a string, got [1]" in message
