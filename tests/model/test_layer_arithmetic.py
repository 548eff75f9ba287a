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
        "hardsigmoid",
        "mish",
        "elu",
        "selu",
        "softplus",
        "drop_path",
    ],
)
def test_pointwise_layers_keep_the_shape(kind: str) -> None:
    effect = apply(kind, (8, 5, 5))
    assert (effect.output_shape, effect.params, effect.macs) == ((8, 5, 5), 0, 0)


def test_scale_factor_is_exact() -> None:
    layer = build_layer("upsample", {"scale_factor": 0.1})
    assert layer.scale_factor == Fraction(1, 10)  # type: ignore[attr-defined]


# --- issue 11's kinds: rearranging channels and positions, padding, norms ---------


def _refused(kind: str, shape: tuple[int, ...], message: str, **params: object) -> None:
    with pytest.raises(ConvcalcError) as error:
        apply(kind, shape, **params)
    assert error.value.message.startswith(message), error.value.message


def test_pixel_shuffle_trades_channels_for_positions() -> None:
    # C·r² × H × W → C × rH × rW: 8 = 2·2² channels on 5×7 give 2 × 10 × 14. ESPCN's last
    # layer: 3·3² = 27 channels, r = 3, on 17×17 give an RGB image of 51×51.
    effect = apply("pixel_shuffle", (8, 5, 7), upscale_factor=2)
    assert (effect.output_shape, effect.params, effect.macs) == ((2, 10, 14), 0, 0)
    assert apply("pixel_shuffle", (27, 17, 17), upscale_factor=3).output_shape == (3, 51, 51)
    assert apply("pixel_shuffle", (5, 4, 4), upscale_factor=1).output_shape == (5, 4, 4)


def test_pixel_unshuffle_trades_positions_for_channels() -> None:
    # C × rH × rW → C·r² × H × W: 3 × 8 × 6 with r = 2 gives 12 × 4 × 3.
    effect = apply("pixel_unshuffle", (3, 8, 6), downscale_factor=2)
    assert (effect.output_shape, effect.params) == ((12, 4, 3), 0)


@pytest.mark.parametrize(
    ("kind", "shape", "params", "message"),
    [
        # 6 channels are no multiple of 2² = 4 (PyTorch: "not divisible by the square").
        ("pixel_shuffle", (6, 4, 4), {"upscale_factor": 2},
         "upscale_factor² (2² = 4) must divide the channels (6)"),
        ("pixel_unshuffle", (3, 8, 5), {"downscale_factor": 2},
         "downscale_factor (2) must divide the input's size on axis W (5)"),
        # PyTorch's rearrange the last two dimensions only.
        ("pixel_shuffle", (8, 16), {"upscale_factor": 2}, "pixel_shuffle works on 2 spatial axes"),
        ("pixel_unshuffle", (2, 4, 8, 8), {"downscale_factor": 2},
         "pixel_unshuffle works on 2 spatial axes, an input [C, H, W]"),
        ("pixel_shuffle", (8,), {"upscale_factor": 2}, "pixel_shuffle works on 2 spatial axes"),
    ],
)  # fmt: skip
def test_pixel_shuffle_refusals(
    kind: str, shape: tuple[int, ...], params: dict[str, object], message: str
) -> None:
    _refused(kind, shape, message, **params)


def test_pad_adds_to_each_side() -> None:
    # 8 + 1 + 1 = 10 on both axes; pairs: H 8 + 0 + 2 = 10, W 8 + 1 + 3 = 12.
    assert apply("pad", (3, 8, 8), padding=1).output_shape == (3, 10, 10)
    assert apply("pad", (3, 8, 8), padding=[[0, 2], [1, 3]]).output_shape == (3, 10, 12)
    # One number per axis on [C, D, H, W]: 4 + 2, 5 + 0, 6 + 4.
    effect = apply("pad", (2, 4, 5, 6), padding=[1, 0, 2], mode="replicate")
    assert (effect.output_shape, effect.params) == ((2, 6, 5, 10), 0)
    assert apply("pad", (2, 9), padding="valid").output_shape == (2, 9)
    assert apply("pad", (2, 9), padding=2, value=-1.5).output_shape == (2, 13)


def test_pad_modes_keep_pytorchs_limits() -> None:
    # reflect: each side below the size (3 < 4); circular: at most the size (4 ≤ 4);
    # replicate: any (10 on a single position).
    assert apply("pad", (1, 4), padding=3, mode="reflect").output_shape == (1, 10)
    assert apply("pad", (1, 4), padding=[[4, 0]], mode="circular").output_shape == (1, 8)
    assert apply("pad", (1, 1), padding=10, mode="replicate").output_shape == (1, 21)
    _refused("pad", (1, 4), "reflect padding (4) must be smaller than the input (4)",
             padding=[[0, 4]], mode="reflect")  # fmt: skip
    _refused("pad", (1, 4), "circular padding (5) may not exceed the input (4)",
             padding=5, mode="circular")  # fmt: skip


@pytest.mark.parametrize(
    ("shape", "params", "message"),
    [
        ((3, 8, 8), {"padding": "same"}, 'padding "same" needs a kernel and a stride'),
        # F.pad: 'Padding mode "reflect" doesn't take in value argument'.
        ((3, 8, 8), {"padding": 1, "mode": "reflect", "value": 2},
         "value (2) applies to constant padding only"),
        ((3, 8, 8), {"padding": [1, 1, 1]}, "padding has 3 values, but the input has 2"),
        ((64,), {"padding": 1}, "pad needs spatial axes"),
    ],
)  # fmt: skip
def test_pad_refusals(shape: tuple[int, ...], params: dict[str, object], message: str) -> None:
    _refused("pad", shape, message, **params)


@pytest.mark.parametrize(
    ("params", "channels"),
    [
        ({}, 8),  # x[:, 0:] keeps all 8
        ({"start": 2, "end": 5}, 3),  # channels 2, 3, 4
        ({"start": -3}, 3),  # the last three: 5, 6, 7
        ({"end": -1}, 7),  # all but the last
        ({"start": -100, "end": 100}, 8),  # clamped to 0:8, as Python does
        ({"start": 4, "end": None}, 4),  # torch.chunk(x, 2, dim=1)[1]
    ],
)
def test_channel_slice_follows_pythons_rules(params: dict[str, object], channels: int) -> None:
    effect = apply("channel_slice", (8, 5, 5), **params)
    assert (effect.output_shape, effect.params) == ((channels, 5, 5), 0)


def test_channel_slice_of_a_flat_input_and_empty_slices() -> None:
    assert apply("channel_slice", (10,), start=4).output_shape == (6,)
    # 8:8 and 5:2 keep nothing (PyTorch gives a tensor of 0 channels).
    _refused("channel_slice", (8, 4), "the slice 10: of 8 channels is empty (Python's slice "
             "rules make it 8:8); keep at least one channel", start=10)  # fmt: skip
    _refused("channel_slice", (8, 4), "the slice 5:2 of 8 channels is empty", start=5, end=2)
    _refused("channel_slice", (8, 4), "the slice -1:-3 of 8", start=-1, end=-3)


def test_channel_shuffle() -> None:
    # Reshape 6 = 3 × 2, transpose, flatten: the shape is kept, nothing is learned.
    effect = apply("channel_shuffle", (6, 4, 4), groups=3)
    assert (effect.output_shape, effect.params) == ((6, 4, 4), 0)
    _refused("channel_shuffle", (6, 4, 4), "groups (4) must divide the channels (6)", groups=4)
    _refused("channel_shuffle", (6,), "channel_shuffle needs spatial axes", groups=2)


def test_layer_norm_counts_a_scale_and_a_shift_per_channel() -> None:
    # ConvNeXt-T's stem norm: LayerNorm2d(96), 96 weights + 96 biases.
    assert apply("layer_norm", (96, 56, 56)).params == 192
    assert apply("layer_norm", (96, 56, 56), bias=False).params == 96
    assert apply("layer_norm", (96, 56, 56), elementwise_affine=False).params == 0
    # On a flat input, torch.nn.LayerNorm(768): 2·768.
    assert apply("layer_norm", (768,)).params == 1536


def test_instance_norm() -> None:
    # PyTorch's default is affine=False: no parameters; affine: 2·C.
    assert apply("instance_norm", (64, 32, 32)).params == 0
    assert apply("instance_norm", (64, 32, 32), affine=True).params == 128
    assert apply("instance_norm", (3, 1, 1), track_running_stats=True).output_shape == (3, 1, 1)
    # PyTorch: "Expected more than 1 spatial element when training" (in eval mode too,
    # unless it keeps running statistics).
    _refused("instance_norm", (3, 1, 1), "instance_norm normalises each channel over its "
             "spatial positions, and the input [3, 1, 1] has one")  # fmt: skip
    _refused("instance_norm", (3, 1), "instance_norm normalises each channel")
    _refused("instance_norm", (64,), "instance_norm needs spatial axes")


def test_local_response_norm_scale_and_prelu() -> None:
    # AlexNet's LocalResponseNorm(5): no parameters.
    assert apply("local_response_norm", (96, 55, 55), size=5).params == 0
    _refused("local_response_norm", (96,), "local_response_norm needs spatial axes", size=5)
    # Layer scale: one factor per channel (ConvNeXt's gamma of 96).
    assert apply("scale", (96, 56, 56)).params == 96
    assert apply("scale", (10,)).params == 10
    # PReLU: one shared slope, or one per channel.
    assert apply("prelu", (8, 4, 4)).params == 1
    assert apply("prelu", (8, 4, 4), num_parameters=8).params == 8
    _refused("prelu", (8, 4, 4), "num_parameters (3) must be 1 or the channels (8)",
             num_parameters=3)  # fmt: skip
