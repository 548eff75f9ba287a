"""`--explain` shows each layer's arithmetic with the numbers put in."""

from __future__ import annotations

import json

from convcalc.render.explain import explain
from tests.helpers import analyze_yaml


def test_the_stem_of_the_issue(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "layer", "conv", "--input", "3x224x224", "--out-channels", "64", "--kernel-size", "7",
        "--stride", "2", "--padding", "3", "--json", "--explain",
    )  # fmt: skip
    # (224 + 6 − 7) / 2 = 111.5: floored, + 1 = 112. The field of a first layer is its kernel.
    assert json.loads(result.stdout)["explain"] == [
        "H, W: ⌊(224 + 3 + 3 − 7) / 2⌋ + 1 = 112",
        "H, W: field 7 = 1 + (7 − 1)·1, stride 2 = 1·2, padding 3 = 0 + 3·1",
    ]


def test_the_seed_stack() -> None:
    rows = analyze_yaml(
        """
        input: [1, 7, 7]
        layers:
          - conv: {out_channels: 1, kernel_size: 3}
          - relu
          - conv: {out_channels: 1, kernel_size: 3, dilation: 2}
        """
    ).rows
    assert explain(rows[0]) == [
        "H, W: (7 + 0 + 0 − 3) / 1 + 1 = 5",
        "H, W: field 3 = 1 + (3 − 1)·1, stride 1 = 1·1, padding 0 = 0 + 0·1",
    ]
    assert explain(rows[1]) == ["shape and field kept"]
    assert explain(rows[2]) == [
        "H, W: (5 + 0 + 0 − 5) / 1 + 1 = 1; span (3 − 1)·2 + 1 = 5",
        "H, W: field 7 = 3 + (5 − 1)·1, stride 1 = 1·1, padding 0 = 0 + 0·1",
    ]


def test_per_axis_ceil_mode_transposed_and_merges() -> None:
    rows = analyze_yaml(
        """
        input: [1, 6, 9]
        layers:
          - max_pool: {kernel_size: [3, 2], stride: 2, ceil_mode: true}
          - conv_transpose: {out_channels: 1, kernel_size: 2, stride: 2}
          - concat: [[], [relu]]
          - adaptive_avg_pool: {output_size: 1}
          - flatten
        """
    ).rows
    assert explain(rows[0])[:2] == [
        "H: ⌈(6 + 0 + 0 − 3) / 2⌉ + 1 = 3",
        "W: ⌈(9 + 0 + 0 − 2) / 2⌉ + 1 = 5",
    ]
    assert explain(rows[1])[:2] == [
        "H: (3 − 1)·2 − 0 − 0 + 1·(2 − 1) + 0 + 1 = 6",
        "W: (5 − 1)·2 − 0 − 0 + 1·(2 − 1) + 0 + 1 = 10",
    ]
    merge = next(row for row in rows if row.kind == "concat")
    assert explain(merge) == [
        "shape: channels of the branches side by side",
        "field: the union of the branches' fields",
    ]
    assert explain(rows[-2])[-1] == "a global pooling: every unit sees the whole input"
    assert explain(rows[-1]) == ["no spatial axes: every unit sees the whole input"]


def test_explain_in_the_table(cli) -> None:  # type: ignore[no-untyped-def]
    text = cli(
        "net", "-", "--explain", stdin="input: [1, 9]\nlayers: [{max_pool: {kernel_size: 2}}]"
    ).stdout
    assert "Arithmetic:" in text
    assert "L: ⌊(9 + 0 + 0 − 2) / 2⌋ + 1 = 4" in text
