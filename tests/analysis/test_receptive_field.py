"""Hand-checked receptive fields: the seed's examples, the Distill article's rules
(r grows by (k − 1)·S, S multiplies by the stride, P grows by p·S), dilation,
decoders with fractional strides, adaptive pools, and merges."""

from __future__ import annotations

from fractions import Fraction

from convcalc.analysis.analyze import ReceptiveField
from tests.helpers import analyze_yaml


def field(
    size: list[int], stride: list[Fraction | int], padding: list[Fraction | int]
) -> ReceptiveField:
    return ReceptiveField(
        tuple(size), tuple(Fraction(s) for s in stride), tuple(Fraction(p) for p in padding)
    )


def fields(text: str) -> list[ReceptiveField | None]:
    return [row.receptive_field for row in analyze_yaml(text).rows]


def test_seed_three_3x3_convolutions_see_7() -> None:
    # The seed: each 3×3 layer adds k − 1 = 2: 3, 5, 7.
    sizes = [
        f.size if f else None
        for f in fields(
            """
            input: [1, 7, 7]
            layers:
              - conv: {out_channels: 1, kernel_size: 3}
              - conv: {out_channels: 1, kernel_size: 3}
              - conv: {out_channels: 1, kernel_size: 3}
            """
        )
    ]
    assert sizes == [(3, 3), (5, 5), (7, 7)]


def test_strides_multiply_and_padding_accumulates() -> None:
    # Araujo et al. 2019: r = 7 + (3 − 1)·2 = 11, S = 2·2 = 4, P = 3 + 1·2 = 5 after
    # the ResNet stem and pool; then 3×3 stride 1: r = 11 + 2·4 = 19, P = 5 + 1·4 = 9.
    result = fields(
        """
        input: [3, 224, 224]
        layers:
          - conv: {out_channels: 64, kernel_size: 7, stride: 2, padding: 3}
          - max_pool: {kernel_size: 3, stride: 2, padding: 1}
          - conv: {out_channels: 64, kernel_size: 3, padding: 1}
        """
    )
    assert result == [
        field([7, 7], [2, 2], [3, 3]),
        field([11, 11], [4, 4], [5, 5]),
        field([19, 19], [4, 4], [9, 9]),
    ]


def test_dilation_widens_the_kernel() -> None:
    # Kernel 2 with dilations 1, 2, 4, 8: 1 + 1 + 2 + 4 + 8 = 16.
    result = fields(
        """
        input: [1, 100]
        layers:
          - conv: {out_channels: 1, kernel_size: 2, dilation: 1}
          - conv: {out_channels: 1, kernel_size: 2, dilation: 2}
          - conv: {out_channels: 1, kernel_size: 2, dilation: 4}
          - conv: {out_channels: 1, kernel_size: 2, dilation: 8}
        """
    )
    assert result[-1] == field([16], [1], [0])


def test_asymmetric_padding_counts_only_before() -> None:
    # A causal convolution padded [2, 0]: unit y sees y − 2 … y.
    assert fields(
        """
        input: [1, 10]
        layers:
          - conv: {out_channels: 1, kernel_size: 3, padding: [[2, 0]]}
        """
    ) == [field([3], [1], [2])]


def test_transposed_2x2_stride_2_adds_nothing() -> None:
    # After a 2×2 pool, unit u sees 2u, 2u + 1. A 2×2 stride-2 transposed convolution
    # gives outputs 2u and 2u + 1 exactly input u: still 2 pixels, stride 2·½ = 1.
    result = fields(
        """
        input: [1, 16]
        layers:
          - max_pool: {kernel_size: 2}
          - conv_transpose: {out_channels: 1, kernel_size: 2, stride: 2}
        """
    )
    assert result == [field([2], [2], [0]), field([2], [1], [0])]


def test_transposed_3x3_stride_2_adds() -> None:
    # Output 2m reads inputs m − 1 and m (taps 2 and 0), which see 2m − 2 … 2m + 1:
    # 4 pixels, centred at 2m − ½; output 2m + 1 reads input m alone: 2 pixels. The
    # largest, 4, is reported with the padding of unit 0: 0·1 − (−2) = 2.
    result = fields(
        """
        input: [1, 16]
        layers:
          - max_pool: {kernel_size: 2}
          - conv_transpose: {out_channels: 1, kernel_size: 3, stride: 2}
        """
    )
    assert result[-1] == field([4], [1], [2])


def test_transposed_alone_has_a_fractional_stride() -> None:
    # k3 s2 p1: output y reads the inputs i with 2i = y + 1 − j, j = 0, 1, 2: even y
    # reads i = y / 2 alone, odd y reads (y − 1) / 2 and (y + 1) / 2. Largest: 2 at y = 1,
    # first position 0, so P = 1·½ − 0 = ½.
    assert fields(
        """
        input: [1, 8]
        layers:
          - conv_transpose: {out_channels: 1, kernel_size: 3, stride: 2, padding: 1}
        """
    ) == [field([2], [Fraction(1, 2)], [Fraction(1, 2)])]


def test_transposed_kernel_shorter_than_stride() -> None:
    # k1 s3: output 3i reads input i; the others read nothing. Largest field: 1.
    assert fields(
        """
        input: [1, 8]
        layers:
          - conv_transpose: {out_channels: 1, kernel_size: 1, stride: 3}
        """
    ) == [field([1], [Fraction(1, 3)], [0])]


def test_nearest_and_bilinear_upsampling() -> None:
    # nearest ×2: y reads floor(y / 2): one pixel, stride ½.
    # bilinear ×2: source x = (y + ½)/2 − ½; y = 0 reads floor(−¼) = −1 and 0: 2 pixels,
    # P = 0·½ − (−1) = 1.
    assert fields(
        """
        input: [1, 8, 8]
        layers:
          - upsample: {scale_factor: 2}
        """
    ) == [field([1, 1], [Fraction(1, 2)] * 2, [0, 0])]
    assert fields(
        """
        input: [1, 8, 8]
        layers:
          - upsample: {scale_factor: 2, mode: bilinear}
        """
    ) == [field([2, 2], [Fraction(1, 2)] * 2, [1, 1])]


def test_adaptive_pool_that_divides_is_a_fixed_pool() -> None:
    # 8 → 2: kernel = stride = 4.
    assert fields(
        """
        input: [1, 8]
        layers:
          - adaptive_avg_pool: {output_size: 2}
        """
    ) == [field([4], [4], [0])]


def test_adaptive_pool_that_does_not_divide() -> None:
    # 7 → 3: PyTorch's bins are [0, 3), [2, 5), [4, 7): 3 pixels each, starting at
    # floor(i·7/3): the stride is 7/3 exactly.
    assert fields(
        """
        input: [1, 7]
        layers:
          - adaptive_avg_pool: {output_size: 3}
        """
    ) == [field([3], [Fraction(7, 3)], [0])]


def test_rows_without_spatial_axes_have_no_field() -> None:
    analysis = analyze_yaml(
        """
        input: [3, 32, 32]
        layers:
          - conv: {out_channels: 8, kernel_size: 3}
          - adaptive_avg_pool: {output_size: 1}
          - flatten
          - linear: {out_features: 10}
        """
    )
    assert [row.receptive_field is None for row in analysis.rows] == [False, True, True, True]
    # The network's field is that of its last row that has one.
    assert analysis.receptive_field == field([3, 3], [1, 1], [0, 0])


def test_residual_field_is_the_union() -> None:
    # Body: two 3×3 convolutions (r = 5, P = 2); shortcut: identity (r = 1, P = 0).
    # Union: from −2 to +2 around y: 5, P = 2.
    analysis = analyze_yaml(
        """
        input: [4, 16, 16]
        layers:
          - residual:
              body:
                - conv: {out_channels: 4, kernel_size: 3, padding: 1}
                - conv: {out_channels: 4, kernel_size: 3, padding: 1}
        """
    )
    assert analysis.rows[-1].kind == "add"
    assert analysis.receptive_field == field([5, 5], [1, 1], [2, 2])
    assert analysis.warnings == ()


def test_concat_union_of_different_kernels() -> None:
    # Branch 0: 1×1 (y … y); branch 1: 5×5 padded 2 (y − 2 … y + 2); union: 5.
    analysis = analyze_yaml(
        """
        input: [4, 16, 16]
        layers:
          - concat:
            - [{conv: {out_channels: 2, kernel_size: 1}}]
            - [{conv: {out_channels: 2, kernel_size: 5, padding: 2}}]
        """
    )
    assert analysis.output_shape == (4, 16, 16)
    assert analysis.receptive_field == field([5, 5], [1, 1], [2, 2])


def test_off_centre_branches_warn() -> None:
    # Branch 0 is a 5-tap convolution padded [3, 1]: it sees y − 3 … y + 1, centred at
    # y − 1, while the identity sees y: no shared centre, no shared edge.
    analysis = analyze_yaml(
        """
        input: [1, 16]
        layers:
          - add:
            - [{conv: {out_channels: 1, kernel_size: 5, padding: [[3, 1]]}}]
            - []
        """
    )
    assert analysis.receptive_field == field([5], [1], [3])
    assert [w.code for w in analysis.warnings] == ["unaligned-branches"]
    assert analysis.warnings[0].path == "layers[0]"


def test_causal_branches_share_an_edge() -> None:
    # A causal body (y − 2 … y) beside its identity (y): both end at y, as WaveNet's do.
    analysis = analyze_yaml(
        """
        input: [1, 16]
        layers:
          - residual:
              body: [{conv: {out_channels: 1, kernel_size: 3, padding: [[2, 0]]}}]
        """
    )
    assert analysis.receptive_field == field([3], [1], [2])
    assert analysis.warnings == ()


def test_branches_with_different_strides_warn() -> None:
    # Branch 0: k5 s1 on 8 → 4 (sees y … y + 4); branch 1: k2 s2 → 4 (sees 2y, 2y + 1).
    # Over the 4 real units the union is y … y + 4 (2y + 1 ≤ y + 4 for y ≤ 3): 5.
    analysis = analyze_yaml(
        """
        input: [1, 8]
        layers:
          - add:
            - [{conv: {out_channels: 1, kernel_size: 5}}]
            - [{conv: {out_channels: 1, kernel_size: 2, stride: 2}}]
        """
    )
    assert analysis.receptive_field is not None
    assert analysis.receptive_field.size == (5,)
    assert "effective strides 1 (0), 2 (1)" in analysis.warnings[0].message


def test_pool_then_transposed_skip_is_aligned_on_average() -> None:
    # A U-Net level: the decoder's units 2u and 2u + 1 both see 2u … 2u + 1 (centre
    # 2u + ½) while the skip sees 2u and 2u + 1: off by ∓½, zero on average.
    analysis = analyze_yaml(
        """
        input: [1, 16]
        layers:
          - concat:
            - []
            - - max_pool: {kernel_size: 2}
              - conv_transpose: {out_channels: 1, kernel_size: 2, stride: 2}
        """
    )
    assert analysis.warnings == ()
    assert analysis.receptive_field == field([2], [1], [0])


def test_transposed_units_seen_out_of_order() -> None:
    # k4 s3 d2: output o reads the inputs i with 3i = o − 2j, j = 0 … 3. Unit 5 reads
    # i = 1; unit 6 reads i = 0 and 2; unit 7 reads i = 1. A 2-tap convolution on top:
    # unit 5 sees {1} ∪ {0, 2} = 0 … 2, though unit 5's own first (1) is after unit 6's (0).
    result = fields(
        """
        input: [1, 16]
        layers:
          - conv_transpose: {out_channels: 1, kernel_size: 4, stride: 3, dilation: 2}
          - conv: {out_channels: 1, kernel_size: 2}
        """
    )
    assert result[-1] is not None and result[-1].size == (3,)


def test_dilated_taps_skip_units_that_see_nothing() -> None:
    # k1 s2: even outputs see input o/2, odd ones nothing. A 2-tap convolution with
    # dilation 3 reads units y and y + 3, one even and one odd: it sees one position.
    result = fields(
        """
        input: [1, 16]
        layers:
          - conv_transpose: {out_channels: 1, kernel_size: 1, stride: 2}
          - conv: {out_channels: 1, kernel_size: 2, dilation: 3}
        """
    )
    assert result[-1] == field([1], [Fraction(1, 2)], [0])


def test_a_pad_layer_is_padding_moved_out_of_the_convolution() -> None:
    # pad [[2, 1]]: unit y reads y − 2 (a window of one, P = 2). A 3-tap convolution on
    # top sees y − 2 … y, as a convolution padded [[2, 1]] does.
    result = fields(
        """
        input: [1, 10]
        layers:
          - pad: {padding: [[2, 1]]}
          - conv: {out_channels: 1, kernel_size: 3}
        """
    )
    assert result == [field([1], [1], [2]), field([3], [1], [2])]


def test_pad_after_a_stride_grows_the_padding_by_p_times_s() -> None:
    # k3 s2 sees 2y … 2y + 2; reflect padding 1 moves unit y to read unit y − 1 of it:
    # 2y − 2 … 2y, P = 0 + 1·2 = 2. Which values fill the padding does not matter: a
    # field counts the positions a unit reaches, padding included.
    result = fields(
        """
        input: [1, 16, 16]
        layers:
          - conv: {out_channels: 1, kernel_size: 3, stride: 2}
          - pad: {padding: [1, 0], mode: reflect}
        """
    )
    assert result[-1] == field([3, 3], [2, 2], [2, 0])


def test_pixel_unshuffle_is_a_window_r_wide_at_stride_r() -> None:
    # r = 2: unit y holds 2y and 2y + 1 (in four channels): 2, S 2, P 0. After a 3×3
    # convolution padded 1 (y − 1 … y + 1): 2y − 1 … 2y + 2, 4 positions, P = 1.
    result = fields(
        """
        input: [1, 8, 8]
        layers:
          - conv: {out_channels: 1, kernel_size: 3, padding: 1}
          - pixel_unshuffle: {downscale_factor: 2}
        """
    )
    assert result == [field([3, 3], [1, 1], [1, 1]), field([4, 4], [2, 2], [1, 1])]
    assert fields(
        """
        input: [1, 8, 8]
        layers:
          - pixel_unshuffle: {downscale_factor: 2}
        """
    ) == [field([2, 2], [2, 2], [0, 0])]


def test_pixel_shuffle_is_nearest_upsampling_by_r() -> None:
    # After a 3×3 convolution padded 1 (y − 1 … y + 1), pixel_shuffle 2 makes unit y read
    # y // 2: y // 2 − 1 … y // 2 + 1, 3 positions, S ½, P = 0·½ − (−1) = 1. A 3×3
    # convolution on top: unit 2m reads shuffle units 2m − 1 … 2m + 1, that is m − 1 and
    # m, which see m − 2 … m + 1; unit 2m + 1 reads m and m + 1: m − 1 … m + 2. 4 each;
    # P = 0 − (−2) = 2.
    result = fields(
        """
        input: [4, 8, 8]
        layers:
          - conv: {out_channels: 4, kernel_size: 3, padding: 1}
          - pixel_shuffle: {upscale_factor: 2}
          - conv: {out_channels: 1, kernel_size: 3, padding: 1}
        """
    )
    half = Fraction(1, 2)
    assert result[1:] == [field([3, 3], [half, half], [1, 1]), field([4, 4], [half, half], [2, 2])]


def test_pixel_unshuffle_undoes_pixel_shuffle() -> None:
    # Unshuffle unit y reads shuffle units 2y and 2y + 1, which both read unit y of the
    # convolution: the field is the convolution's again (unshuffle ∘ shuffle = identity).
    result = fields(
        """
        input: [4, 8, 8]
        layers:
          - conv: {out_channels: 4, kernel_size: 3, padding: 1}
          - pixel_shuffle: {upscale_factor: 2}
          - pixel_unshuffle: {downscale_factor: 2}
        """
    )
    assert result[-1] == result[0] == field([3, 3], [1, 1], [1, 1])
