"""The analysis of graphs (SPEC §6): merges of named nodes, broadcast products, several
outputs, global context, and warnings in graph form. Every expected number is worked out
by hand in the comment beside it."""

from __future__ import annotations

from fractions import Fraction

import pytest

from convcalc.errors import ConvcalcError
from tests.helpers import analyze_yaml

SE = """
input: [4, 8, 8]
layers:
  - conv: {name: conv, out_channels: 4, kernel_size: 3, padding: 1}
  - mul:
      - []
      - - adaptive_avg_pool: {name: squeeze, output_size: 1}
        - conv: {out_channels: 2, kernel_size: 1}
        - relu
        - conv: {out_channels: 4, kernel_size: 1}
        - sigmoid
  - conv: {name: head, out_channels: 4, kernel_size: 3, padding: 1}
"""


def test_a_gate_keeps_the_local_field_and_brings_global_context() -> None:
    analysis = analyze_yaml(SE)
    rows = {row.qualified_name: row for row in analysis.rows}
    gate = analysis.rows[6]
    assert (gate.kind, gate.output_shape) == ("mul", (4, 8, 8))  # 4×8×8 times 4×1×1
    # The product's local field is the conv's (3, stride 1, padding 1): the gate's path
    # is global, held constant.
    assert gate.receptive_field is not None and gate.receptive_field.size == (3, 3)
    assert gate.global_context and rows["squeeze"].global_context
    assert not rows["conv"].global_context
    # head: 3 + (3 − 1)·1 = 5.
    assert rows["head"].receptive_field is not None
    assert rows["head"].receptive_field.size == (5, 5) and rows["head"].global_context
    assert analysis.global_context_from == "squeeze"
    # The gate's params: 4·2 + 2 and 2·4 + 4; the convs 4·4·9 + 4 each.
    assert analysis.totals.params == 10 + 12 + 2 * 148


def test_a_pooling_that_misses_pixels_brings_no_global_context() -> None:
    # A 1×1 convolution of stride 2 sees every other position: so does its pooled value.
    analysis = analyze_yaml(
        """
        input: [1, 8]
        layers:
          - conv: {name: every_other, out_channels: 1, kernel_size: 1, stride: 2}
          - adaptive_avg_pool: {name: pooled, output_size: 1}
          - mul: {from: [input, pooled]}
        """
    )
    product = analysis.rows[-1]
    assert not product.global_context
    assert product.receptive_field is not None and product.receptive_field.size == (1,)
    assert analysis.global_context_from is None


def test_normalisations_with_statistics_over_positions_are_global() -> None:
    analysis = analyze_yaml(
        """
        input: [4, 8, 8]
        layers:
          - group_norm: {name: g, num_groups: 2}
          - instance_norm: {name: kept, track_running_stats: true, from: input}
          - instance_norm: {name: i, from: input}
          - concat: {from: [g, kept, i]}
        """
    )
    assert [row.global_context for row in analysis.rows] == [True, False, True, True]
    # The normalisations' local fields are pointwise: 1.
    assert all(row.receptive_field.size == (1, 1) for row in analysis.rows)  # type: ignore[union-attr]


def test_several_outputs_each_with_its_field() -> None:
    analysis = analyze_yaml(
        """
        input: [3, 32, 32]
        layers:
          - conv: {name: c1, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
          - conv: {name: c2, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
          - upsample: {name: up, like: c1}
          - add: {name: p1, from: [c1, up]}
        outputs: [p1, c2]
        """
    )
    p1, c2 = analysis.outputs
    # c1: field 3, stride 2, padding 1. c2: 3 + 2·2 = 7, stride 4, padding 1 + 1·2 = 3.
    assert (c2.name, c2.shape) == ("c2", (4, 8, 8))
    assert c2.receptive_field is not None
    assert c2.receptive_field.size == (7, 7)
    assert c2.receptive_field.effective_stride == (Fraction(4), Fraction(4))
    assert c2.receptive_field.effective_padding == (Fraction(3), Fraction(3))
    # up: 8 → 16 by nearest (unit y reads c2's y // 2, stride 2); p1 the union with c1:
    # unit y of up sees c2's unit y // 2: 4·(y // 2) − 3 … + 6; widest over two units.
    assert (p1.name, p1.shape) == ("p1", (4, 16, 16))
    assert analysis.output_shape == (4, 16, 16)
    assert analysis.receptive_field == p1.receptive_field
    assert [row.inputs for row in analysis.rows][2:] == [("c2",), ("c1", "up")]


def test_a_shortcut_forgives_what_its_body_reads_in_graph_form_too() -> None:
    block = """
        input: [4, 8, 8]
        layers:
          - conv: {name: body, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
          - conv: {name: shortcut, from: input, out_channels: 4, kernel_size: 1, stride: 2}
          - add: {from: [body, shortcut]}
        """
    codes = [w.code for w in analyze_yaml(block).warnings]
    assert "uncovered-input" not in codes  # the body reads what the 1×1 skips
    alone = analyze_yaml(
        """
        input: [4, 8, 8]
        layers:
          - conv: {name: shortcut, out_channels: 4, kernel_size: 1, stride: 2}
        """
    )
    warning = next(w for w in alone.warnings if w.code == "uncovered-input")
    assert (warning.path, warning.name) == ("layers[0]", "shortcut")


@pytest.mark.parametrize(
    ("layers", "says"),
    [
        (
            "[conv: {name: a, out_channels: 2, kernel_size: 1}, mul: {from: [input, a]}]",
            "mul needs each dimension equal, or 1 where it is broadcast",
        ),
        (
            "[flatten: {name: f}, mul: {from: [input, f]}]",
            "mul needs inputs with the same number of dimensions",
        ),
        (
            "[max_pool: {name: p, kernel_size: 2}, add: {from: [input, p]}]",
            "add needs every branch to give the same shape; got [4, 8, 8] (input), [4, 4, 4] (p)",
        ),
    ],
)
def test_merges_that_do_not_fit(layers: str, says: str) -> None:
    with pytest.raises(ConvcalcError) as caught:
        analyze_yaml(f"input: [4, 8, 8]\nlayers: {layers}\n")
    assert says in str(caught.value)
