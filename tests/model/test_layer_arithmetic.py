"""Hand-checked numbers for every leaf kind and padding form (the arithmetic is written
out in each test), including the seed article's examples."""

from __future__ import annotations

from fractions import Fraction

import pytest

from convcalc.errors import ConvcalcError
from convcalc.loader import build_layer
from convcalc.model.layers import Effect


def apply(kind: str, shape: tuple[int, ...], **params: object) -> Effect:
    return build_layer(kind, dict(params)).apply(shape)


# --- conv -------------------------------------------------------------------------


def test_conv_stem_of_the_issue() -> None:
    # (224 + 3 + 3 − 7) / 2 + 1 = 112; params 64·3·7·7 + 64 = 9472;
    # macs = 64·112·112 outputs × 3·7·7 = 802816 × 147 = 118013952.
    effect = apply("conv", (3, 224, 224), out_channels=64, kernel_size=7, stride=2, padding=3)
    assert effect.output_shape == (64, 112, 112)
    assert effect.params == 9472
    assert effect.macs == 118_013_952
    assert effect.findings == ()


def test_seed_stride_two_padded_convolution() -> None:
    # The seed: a 5×5 input, 3×3 kernel, stride 2, padding 1: (5 + 2 − 3) / 2 + 1 = 3.
    effect = apply("conv", (1, 5, 5), out_channels=1, kernel_size=3, stride=2, padding=1)
    assert effect.output_shape == (1, 3, 3)
    assert effect.params == 9 + 1


def test_seed_output_formula_without_padding() -> None:
    # (W − K + 2P) / S + 1 with W = 7, K = 3, P = 0, S = 1: 5.
    assert apply("conv", (1, 7, 7), out_channels=1, kernel_size=3).output_shape == (1, 5, 5)


def test_conv_without_bias_and_with_groups() -> None:
    # 16 filters over 8 / 4 = 2 channels each: 16·2·3·3 = 288 weights, no bias.
    # (10 − 3) + 1 = 8: macs = 16·8·8 × 2·9 = 18432.
    effect = apply("conv", (8, 10, 10), out_channels=16, kernel_size=3, groups=4, bias=False)
    assert effect.params == 288
    assert effect.macs == 18_432


def test_depthwise_conv() -> None:
    # groups = channels = 32: 32·1·3·3 + 32 = 320.
    effect = apply("conv", (32, 8, 8), out_channels=32, kernel_size=3, padding=1, groups=32)
    assert effect.params == 320
    assert effect.macs == 32 * 8 * 8 * 9


def test_conv_per_axis_kernel_and_padding() -> None:
    # H: (10 + 2·1 − 3) + 1 = 10; W: (10 + 2·2 − 5) + 1 = 10. params 4·3·3·5 + 4 = 184.
    effect = apply("conv", (3, 10, 10), out_channels=4, kernel_size=[3, 5], padding=[1, 2])
    assert effect.output_shape == (4, 10, 10)
    assert effect.params == 184


def test_conv_before_after_padding_pairs() -> None:
    # H: 10 + 0 + 1 − 3 + 1 = 9; W: 10 + 2 + 3 − 3 + 1 = 13.
    effect = apply("conv", (1, 10, 10), out_channels=1, kernel_size=3, padding=[[0, 1], [2, 3]])
    assert effect.output_shape == (1, 9, 13)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "output", "before"),
    [
        # out = ceil(224 / 2) = 112; total = max(111·2 + 3 − 224, 0) = 1: (0, 1).
        (224, 3, 2, 112, 0),
        # out = 10; total = 9 + 4 − 10 = 3: (1, 2), the odd pixel after.
        (10, 4, 1, 10, 1),
        # out = ceil(7 / 3) = 3; total = max(2·3 + 1 − 7, 0) = 0.
        (7, 1, 3, 3, 0),
        # out = ceil(5 / 2) = 3; total = 2·2 + 5 − 5 = 4: (2, 2).
        (5, 5, 2, 3, 2),
    ],
)
def test_same_padding_is_tensorflows_rule(
    size: int, kernel: int, stride: int, output: int, before: int
) -> None:
    effect = apply(
        "conv", (1, size), out_channels=1, kernel_size=kernel, stride=stride, padding="same"
    )
    assert effect.output_shape == (1, output)
    assert effect.windows is not None
    assert effect.windows[0].bounds(0)[0] == -before


def test_valid_padding_is_none() -> None:
    assert apply("conv", (1, 9), out_channels=1, kernel_size=3, padding="valid").output_shape == (
        1,
        7,
    )


def test_dilated_conv() -> None:
    # A 3-tap kernel with dilation 2 spans (3 − 1)·2 + 1 = 5: 10 − 5 + 1 = 6.
    effect = apply("conv", (1, 10), out_channels=1, kernel_size=3, dilation=2)
    assert effect.output_shape == (1, 6)
    assert effect.params == 3 + 1  # dilation adds no weights


def test_conv_1d_and_3d() -> None:
    # 1-D: (100 − 5) // 3 + 1 = 32; params 4·2·5 + 4 = 44; macs 4·32 × 2·5 = 1280.
    one = apply("conv", (2, 100), out_channels=4, kernel_size=5, stride=3)
    assert (one.output_shape, one.params, one.macs) == ((4, 32), 44, 1280)
    # 3-D: padding 1 keeps 8×16×16; params 2·3·27 + 2 = 164; macs 2·8·16·16 × 3·27.
    three = apply("conv", (3, 8, 16, 16), out_channels=2, kernel_size=3, padding=1)
    assert (three.output_shape, three.params, three.macs) == ((2, 8, 16, 16), 164, 331_776)


def test_conv_dropped_input_counts_pixels() -> None:
    # (224 + 0 − 3) / 2 = 110.5: the window starting at 220 ends at 222; position 223 is
    # never read, on each axis.
    effect = apply("conv", (3, 224, 224), out_channels=8, kernel_size=3, stride=2)
    assert effect.output_shape == (8, 111, 111)
    assert [f.code for f in effect.findings] == ["dropped-input", "dropped-input"]
    assert "the last 1 input position of axis H (of 224)" in effect.findings[0].message
    assert "pad 1 more after" in effect.findings[0].message


def test_dropped_input_ignores_unread_padding() -> None:
    # (224 + 3 + 3 − 7) / 2 = 111.5: only right padding is left over, no real pixel.
    effect = apply("conv", (3, 224, 224), out_channels=8, kernel_size=7, stride=2, padding=3)
    assert effect.findings == ()


def test_dropped_input_of_several_pixels() -> None:
    # (10 − 3) / 4 = 1.75: windows start at 0 and 4 and end at 6; 7, 8, 9 are dropped.
    effect = apply("conv", (1, 10), out_channels=1, kernel_size=3, stride=4)
    assert effect.output_shape == (1, 2)
    assert "the last 3 input positions of axis L (of 10) are never read" in (
        effect.findings[0].message
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kernel_size": 7}, "the output would be empty on axis H"),
        ({"kernel_size": 3, "groups": 2}, "groups (2) must divide in_channels (3)"),
        ({"kernel_size": 3, "in_channels": 4}, "in_channels is 4, but the input has 3"),
        ({"kernel_size": [3, 3, 3]}, "kernel_size has 3 values, but the input has 2"),
        ({"kernel_size": 3, "padding": [1, 1, 1]}, "padding has 3 values"),
    ],
)
def test_conv_impossible_geometry(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConvcalcError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply("conv", (3, 5, 5), out_channels=4, **params)


def test_conv_needs_spatial_axes() -> None:
    with pytest.raises(ConvcalcError, match="conv needs spatial axes"):
        apply("conv", (512,), out_channels=4, kernel_size=1)


# --- conv_transpose ---------------------------------------------------------------


def test_conv_transpose_doubles() -> None:
    # (16 − 1)·2 − 1 − 1 + 3 + 1 = 32; params 8·4·9 + 4 = 292;
    # macs = input elements 8·16·16 × 4·9 = 73728.
    effect = apply(
        "conv_transpose",
        (8, 16, 16),
        out_channels=4,
        kernel_size=3,
        stride=2,
        padding=1,
        output_padding=1,
    )
    assert effect.output_shape == (4, 32, 32)
    assert effect.params == 292
    assert effect.macs == 73_728


def test_conv_transpose_groups_dilation_and_pairs() -> None:
    # params 8·(4 / 2)·3 + 4 = 52; (5 − 1)·1 − 1 − 0 + 2·2 + 0 + 1 = 8.
    effect = apply(
        "conv_transpose",
        (8, 5),
        out_channels=4,
        kernel_size=3,
        dilation=2,
        groups=2,
        padding=[[1, 0]],
    )
    assert effect.output_shape == (4, 8)
    assert effect.params == 52


def test_conv_transpose_refuses_large_output_padding() -> None:
    with pytest.raises(ConvcalcError, match="output_padding"):
        apply("conv_transpose", (1, 8), out_channels=1, kernel_size=3, stride=2, output_padding=2)


# --- pools ------------------------------------------------------------------------


def test_max_pool_of_resnet() -> None:
    # (112 + 1 + 1 − 3) // 2 + 1 = 56; no parameters, no macs.
    effect = apply("max_pool", (64, 112, 112), kernel_size=3, stride=2, padding=1)
    assert (effect.output_shape, effect.params, effect.macs) == ((64, 56, 56), 0, 0)
    assert effect.findings == ()


def test_pool_stride_defaults_to_kernel() -> None:
    # 7 // 2 = 3 windows; the 7th pixel is dropped.
    effect = apply("max_pool", (1, 7), kernel_size=2)
    assert effect.output_shape == (1, 3)
    assert [f.code for f in effect.findings] == ["dropped-input"]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "output"),
    [
        (6, 3, 2, 0, 3),  # ceil((6 − 3) / 2) + 1 = 3
        (6, 2, 2, 1, 4),  # ceil((6 + 2 − 2) / 2) + 1 = 4; the last window starts at 6 < 7
        (5, 2, 2, 1, 3),  # ceil(5 / 2) + 1 = 4, but window 4 would start at 6 ≥ 5 + 1: 3
        (7, 2, 2, 0, 4),  # ceil(5 / 2) + 1 = 4: the last window reads only pixel 6
    ],
)
def test_ceil_mode(size: int, kernel: int, stride: int, padding: int, output: int) -> None:
    effect = apply(
        "max_pool", (1, size), kernel_size=kernel, stride=stride, padding=padding, ceil_mode=True
    )
    assert effect.output_shape == (1, output)
    assert effect.findings == ()


def test_max_pool_dilation() -> None:
    # span (2 − 1)·3 + 1 = 4: (10 − 4) // 1 + 1 = 7.
    assert apply("max_pool", (1, 10), kernel_size=2, stride=1, dilation=3).output_shape == (1, 7)


def test_pool_padding_over_half_the_kernel_is_refused() -> None:
    with pytest.raises(ConvcalcError, match="more than half the kernel"):
        apply("max_pool", (1, 8), kernel_size=2, padding=2)
    with pytest.raises(ConvcalcError, match="more than half the kernel"):
        apply("avg_pool", (1, 8), kernel_size=3, padding=2)


def test_avg_pool_1d_and_3d() -> None:
    assert apply("avg_pool", (4, 10), kernel_size=2).output_shape == (4, 5)
    assert apply("avg_pool", (2, 4, 8, 8), kernel_size=[1, 2, 2]).output_shape == (2, 4, 4, 4)


def test_adaptive_pools() -> None:
    assert apply("adaptive_avg_pool", (512, 7, 7), output_size=1).output_shape == (512, 1, 1)
    assert apply("adaptive_max_pool", (8, 13, 13), output_size=6).output_shape == (8, 6, 6)
    # null keeps that axis (as in PyTorch).
    assert apply("adaptive_avg_pool", (2, 5, 9), output_size=[None, 3]).output_shape == (2, 5, 3)


def test_global_pooling_has_no_windows() -> None:
    assert apply("adaptive_avg_pool", (512, 7, 7), output_size=1).windows is None


# --- upsample ---------------------------------------------------------------------


def test_upsample_by_scale_and_by_size() -> None:
    assert apply("upsample", (3, 4, 4), scale_factor=2).output_shape == (3, 8, 8)
    # floor(5 · 1.5) = 7, as PyTorch floors.
    assert apply("upsample", (3, 5), scale_factor=1.5).output_shape == (3, 7)
    assert apply("upsample", (3, 5, 6), size=[7, 9], mode="bilinear").output_shape == (3, 7, 9)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "exactly one of scale_factor and size"),
        ({"scale_factor": 2, "size": 8}, "exactly one of scale_factor and size"),
        ({"scale_factor": 2, "mode": "trilinear"}, "mode trilinear works on 3 spatial axes"),
        ({"scale_factor": 2, "align_corners": True}, "align_corners applies only"),
    ],
)
def test_upsample_refusals(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConvcalcError, match=message):
        apply("upsample", (3, 4, 4), **params)


# --- flat layers, norms, pointwise ------------------------------------------------


def test_linear_and_flatten() -> None:
    # 512·1000 weights + 1000 biases; 512·1000 macs.
    effect = apply("linear", (512,), out_features=1000)
    assert (effect.output_shape, effect.params, effect.macs) == ((1000,), 513_000, 512_000)
    assert apply("linear", (512,), out_features=10, bias=False).params == 5120
    assert apply("flatten", (64, 7, 7)).output_shape == (3136,)


def test_linear_needs_a_flat_input() -> None:
    with pytest.raises(ConvcalcError, match="linear needs a flat input"):
        apply("linear", (64, 7, 7), out_features=10)
    with pytest.raises(ConvcalcError, match="in_features is 100, but the input has 512"):
        apply("linear", (512,), out_features=10, in_features=100)


def test_norms_count_scale_and_shift() -> None:
    # 2 per channel; running statistics are buffers, not parameters.
    assert apply("batch_norm", (64, 56, 56)).params == 128
    assert apply("batch_norm", (100,)).params == 200
    assert apply("batch_norm", (64, 8, 8), affine=False).params == 0
    assert apply("group_norm", (64, 8, 8), num_groups=32).params == 128
    with pytest.raises(ConvcalcError, match=r"num_groups \(3\) must divide the channels \(64\)"):
        apply("group_norm", (64, 8, 8), num_groups=3)


@pytest.mark.parametrize(
    "kind",
    [
        "relu",
        "relu6",
        "leaky_relu",
        "gelu",
        "silu",
        "sigmoid",
        "tanh",
        "hardswish",
        "softmax",
        "dropout",
        "identity",
    ],
)
def test_pointwise_layers_keep_the_shape(kind: str) -> None:
    effect = apply(kind, (8, 5, 5))
    assert (effect.output_shape, effect.params, effect.macs) == ((8, 5, 5), 0, 0)


def test_scale_factor_is_exact() -> None:
    layer = build_layer("upsample", {"scale_factor": 0.1})
    assert layer.scale_factor == Fraction(1, 10)  # type: ignore[attr-defined]
