"""Each warning fires on a case made for it, and stays quiet on its near miss."""

from __future__ import annotations

import pytest

from tests.helpers import analyze_yaml


def codes(text: str) -> list[tuple[str, str]]:
    return [(w.path, w.code) for w in analyze_yaml(text).warnings]


def test_dropped_input() -> None:
    # (9 − 2) / 2 = 3.5: the 9th pixel is never read.
    assert codes("input: [1, 9]\nlayers: [{max_pool: {kernel_size: 2}}]") == [
        ("layers[0]", "dropped-input")
    ]
    assert codes("input: [1, 8]\nlayers: [{max_pool: {kernel_size: 2}}]") == []


def test_uncovered_input_stride_over_kernel() -> None:
    # 1×1 stride 2 on 9 reads 0, 2, 4, 6, 8: the 4 odd pixels fall between windows.
    text = "input: [1, 9]\nlayers: [{conv: {out_channels: 1, kernel_size: 1, stride: 2}}]"
    assert codes(text) == [("layers[0]", "uncovered-input")]
    assert analyze_yaml(text).warnings[0].message.startswith("4 input positions of 9")


def test_uncovered_input_dilation_and_stride_sharing_a_factor() -> None:
    # k3 d2 s2 reads only even positions.
    text = (
        "input: [1, 9]\nlayers: [{conv: {out_channels: 1, kernel_size: 3, dilation: 2, stride: 2}}]"
    )
    assert codes(text) == [("layers[0]", "uncovered-input")]


def test_a_sibling_branch_that_reads_everything_forgives() -> None:
    # A ResNet downsampling block: the 1×1 stride-2 shortcut skips pixels (and the last
    # one), the 3×3 stride-2 body reads them all.
    text = """
    input: [4, 32, 32]
    layers:
      - residual:
          body: [{conv: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1}}]
          shortcut: [{conv: {out_channels: 8, kernel_size: 1, stride: 2}}]
    """
    assert codes(text) == []


def test_checkerboard() -> None:
    text = "input: [1, 8]\nlayers: [{conv_transpose: {out_channels: 1, kernel_size: 3, stride: 2}}]"
    assert codes(text) == [("layers[0]", "checkerboard")]
    assert "use kernel 4" in analyze_yaml(text).warnings[0].message
    # A kernel that is a multiple of the stride gives every output the same taps.
    even = "input: [1, 8]\nlayers: [{conv_transpose: {out_channels: 1, kernel_size: 4, stride: 2}}]"
    assert codes(even) == []


def test_gridding_of_a_dilated_run_sharing_a_factor() -> None:
    text = """
    input: [1, 128]
    layers:
      - conv: {out_channels: 1, kernel_size: 3, dilation: 2, padding: 2}
      - relu
      - conv: {out_channels: 1, kernel_size: 3, dilation: 4, padding: 4}
      - conv: {out_channels: 1, kernel_size: 3, dilation: 8, padding: 8}
      - conv: {out_channels: 1, kernel_size: 3, padding: 1}
    """
    assert codes(text) == [("layers[3]", "gridding")]


@pytest.mark.parametrize(
    "dilations",
    [
        [1, 2, 5, 9],  # hybrid dilated convolution (Wang et al. 2018): no common factor
        [1, 2, 4, 8],  # WaveNet: the dense first layer fills every hole
    ],
)
def test_no_gridding_where_the_field_is_dense(dilations: list[int]) -> None:
    layers = "".join(
        f"  - conv: {{out_channels: 1, kernel_size: 3, dilation: {d}, padding: {d}}}\n"
        for d in dilations
    )
    assert codes(f"input: [1, 128]\nlayers:\n{layers}") == []


def test_field_exceeds_input_once() -> None:
    # Fields 5, 9, 13 on an 8-pixel input: said once, where it first happens.
    text = """
    input: [1, 8]
    layers:
      - conv: {out_channels: 1, kernel_size: 5, padding: 2}
      - conv: {out_channels: 1, kernel_size: 5, padding: 2}
      - conv: {out_channels: 1, kernel_size: 5, padding: 2}
    """
    assert codes(text) == [("layers[1]", "field-exceeds-input")]


def test_asymmetric_padding_of_same_with_an_even_kernel() -> None:
    text = "input: [1, 8]\nlayers: [{conv: {out_channels: 1, kernel_size: 4, padding: same}}]"
    assert codes(text) == [("layers[0]", "asymmetric-padding")]
    odd = "input: [1, 8]\nlayers: [{conv: {out_channels: 1, kernel_size: 3, padding: same}}]"
    assert codes(odd) == []


def test_unaligned_branches() -> None:
    text = """
    input: [1, 16]
    layers:
      - add:
        - [{conv: {out_channels: 1, kernel_size: 5, padding: [[3, 1]]}}]
        - []
    """
    assert codes(text) == [("layers[0]", "unaligned-branches")]
