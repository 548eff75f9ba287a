"""Property tests against PyTorch: random stacks of 1 to 6 leaf layers on 1, 2 and 3
spatial axes, built as real torch.nn modules.

- Every row's output shape and the parameter total must be PyTorch's exactly.
- Where convcalc rejects a stack, PyTorch must fail on it too (and the reverse), so a
  wrong rejection cannot hide behind a skipped example.
- Receptive fields must be those measured by gradients on a positive-weight twin of the
  network (see torch_build): size, effective stride and effective padding, compared on
  the output units that do not touch the border.

PyTorch is the only source of expected values; nothing convcalc computes is compared
with itself. The stacks are drawn layer by layer, each layer's parameters chosen for the
shape PyTorch gives at that point, with a few deliberately invalid choices.
"""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("hypothesis")

import torch
from hypothesis import HealthCheck, event, given, note, reject, settings
from hypothesis import strategies as st

from convcalc.analysis.analyze import Analysis, analyze
from convcalc.errors import ConvcalcError
from convcalc.loader import build_model
from convcalc.source import parse

from .torch_build import (
    ACTIVATIONS,
    ExactRun,
    Measured,
    NoTwin,
    TorchRejects,
    dilated,
    kind_params,
    measure_fields,
    period_bound,
    run_exact,
    run_one,
)

#: Spatial sizes of the input: for shapes, and (larger, for interior units) for fields.
SHAPE_SIZES = {1: (8, 40), 2: (8, 32), 3: (4, 12)}
FIELD_SIZES = {1: (12, 96), 2: (10, 32), 3: (6, 12)}
#: Elements per sample a stack may reach; a layer that would exceed it ends the stack.
SHAPE_BUDGET = 60_000
FIELD_BUDGET = {1: 3_000, 2: 40_000, 3: 40_000}
#: Output units probed per axis in the field tests.
PROBES = {1: 48, 2: 20, 3: 10}

LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}

SETTINGS = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}


# ---------------------------------------------------------------------------------------
# Drawing stacks


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _rarely(draw: st.DrawFn) -> bool:
    """True about one time in twelve: a deliberately invalid or unusual choice."""
    return draw(st.integers(0, 11)) == 11


def _axes(draw: st.DrawFn, ndim: int, values: st.SearchStrategy[int]) -> tuple[int, ...]:
    """One value per axis: often the same on every axis."""
    if draw(st.booleans()):
        return (draw(values),) * ndim
    return tuple(draw(values) for _ in range(ndim))


def _written(draw: st.DrawFn, values: tuple[Any, ...]) -> Any:
    """As a model file gives it: one number for every axis, or a list."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return list(values)


def _padding(
    draw: st.DrawFn, limits: tuple[int, ...], forms: list[str], ceil_mode: bool = False
) -> Any:
    """A padding in one of SPEC §2's forms, each side at most its axis's limit (rarely one
    more). With ceil_mode, [before, after] pairs keep after <= before (PyTorch has no
    asymmetric pool padding to compare with otherwise)."""

    def side(limit: int) -> int:
        return limit + 1 if _rarely(draw) else draw(st.integers(0, limit))

    form = draw(st.sampled_from(forms))
    if form in ("same", "valid", "none"):
        return form
    if form == "int":
        return side(min(limits))
    if form == "axes":
        return [side(limit) for limit in limits]
    pairs = []
    for limit in limits:
        before = side(limit)
        after = draw(st.integers(0, before)) if ceil_mode else side(limit)
        pairs.append([before, after])
    return pairs


def _put(params: dict[str, Any], name: str, value: Any, default: Any, draw: st.DrawFn) -> None:
    """Give a parameter, or leave it to its default when that is its value (sometimes)."""
    if value != default or draw(st.booleans()):
        params[name] = value


def _conv(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> dict[str, Any]:
    channels, ndim = shape[0], len(shape) - 1
    groups = (
        draw(st.integers(1, 4)) if _rarely(draw) else draw(st.sampled_from(_divisors(channels)))
    )
    out = (
        draw(st.integers(1, 6))
        if _rarely(draw)
        else groups * draw(st.integers(1, max(1, 6 // groups)))
    )
    kernel = _axes(draw, ndim, st.integers(1, 3 if ndim == 3 else 5))
    stride = _axes(draw, ndim, st.sampled_from([1, 1, 2, 2, 3]))
    dilation = _axes(draw, ndim, st.sampled_from([1, 1, 1, 2, 3]))
    padding = _padding(draw, (3,) * ndim, ["int", "axes", "pairs", "same", "valid", "none"])
    params: dict[str, Any] = {"out_channels": out, "kernel_size": _written(draw, kernel)}
    _put(params, "stride", _written(draw, stride), 1, draw)
    _put(params, "dilation", _written(draw, dilation), 1, draw)
    if padding != "none":
        params["padding"] = padding
    _put(params, "groups", groups, 1, draw)
    _put(params, "bias", draw(st.booleans()), True, draw)
    native = (
        padding == "none"
        or isinstance(padding, int)
        or (isinstance(padding, list) and all(isinstance(p, int) for p in padding))
        or (padding == "same" and set(stride) == {1})
    )
    if not field and native and draw(st.booleans()):
        params["padding_mode"] = draw(
            st.sampled_from(["zeros", "reflect", "replicate", "circular"])
        )
    return {"conv": params}


def _conv_transpose(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> dict[str, Any]:
    channels, ndim = shape[0], len(shape) - 1
    groups = (
        draw(st.integers(1, 4)) if _rarely(draw) else draw(st.sampled_from(_divisors(channels)))
    )
    out = groups * draw(st.integers(1, max(1, 6 // groups)))
    kernel = _axes(draw, ndim, st.integers(1, 3 if ndim == 3 else 4))
    stride = _axes(draw, ndim, st.sampled_from([1, 2, 2, 3]))
    dilation = _axes(draw, ndim, st.sampled_from([1, 1, 2]))
    extra = tuple(
        max(s, d) if _rarely(draw) else draw(st.integers(0, max(s, d) - 1))
        for s, d in zip(stride, dilation, strict=True)
    )
    forms = ["int", "axes", "pairs", "none", "int", "pairs"]
    padding = (
        "same"
        if _rarely(draw)
        else "valid"
        if _rarely(draw)
        else _padding(draw, (2,) * ndim, forms)
    )
    params: dict[str, Any] = {"out_channels": out, "kernel_size": _written(draw, kernel)}
    _put(params, "stride", _written(draw, stride), 1, draw)
    if padding != "none":
        params["padding"] = padding
    _put(params, "output_padding", _written(draw, extra), 0, draw)
    _put(params, "dilation", _written(draw, dilation), 1, draw)
    _put(params, "groups", groups, 1, draw)
    _put(params, "bias", draw(st.booleans()), True, draw)
    return {"conv_transpose": params}


def _pool(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> dict[str, Any]:
    ndim = len(shape) - 1
    kind = draw(st.sampled_from(["max_pool", "avg_pool"]))
    kernel = _axes(draw, ndim, st.integers(1, 4))
    stride = _axes(draw, ndim, st.sampled_from([1, 2, 2, 3])) if draw(st.booleans()) else None
    dilation = _axes(draw, ndim, st.sampled_from([1, 1, 2])) if kind == "max_pool" else (1,) * ndim
    ceil_mode = draw(st.booleans())
    # Half the kernel: PyTorch's limit on pool padding. For max pooling draw up to half
    # the dilated kernel, where SPEC's "windows of padding only" rule would stop.
    limits = tuple(dilated(k, d) // 2 for k, d in zip(kernel, dilation, strict=True))
    padding = _padding(draw, limits, ["int", "axes", "pairs", "same", "valid", "none"], ceil_mode)
    params: dict[str, Any] = {"kernel_size": _written(draw, kernel)}
    if stride is not None:
        params["stride"] = _written(draw, stride)
    if padding != "none":
        params["padding"] = padding
    if kind == "max_pool":
        _put(params, "dilation", _written(draw, dilation), 1, draw)
    _put(params, "ceil_mode", ceil_mode, False, draw)
    if kind == "avg_pool" and draw(st.booleans()):
        params["count_include_pad"] = draw(st.booleans())
    return {kind: params}


def _adaptive(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> dict[str, Any]:
    ndim = len(shape) - 1
    kind = draw(st.sampled_from(["adaptive_avg_pool", "adaptive_max_pool"]))
    sizes = st.integers(1, 7)
    if draw(st.booleans()):
        size: Any = draw(sizes)
    else:
        size = [draw(st.none() | sizes) for _ in range(ndim)]
    return {kind: {"output_size": size}}


def _upsample(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> dict[str, Any]:
    ndim = len(shape) - 1
    modes = ["nearest", "nearest-exact", LINEAR_MODES[ndim], LINEAR_MODES[ndim]]
    mode = draw(st.sampled_from(modes))
    if not field and _rarely(draw):
        mode = draw(st.sampled_from(["linear", "bilinear", "trilinear"]))
    params: dict[str, Any] = {}
    if field:
        # Powers of two only (and 3 for nearest): PyTorch's float index arithmetic is
        # exact there.
        scales = [0.5, 2, 4] + ([3] if mode == "nearest" else [])
        params["scale_factor"] = _written(draw, _axes(draw, ndim, st.sampled_from(scales)))
    elif draw(st.booleans()):
        scales = [1, 2, 3, 0.5, 1.5, 2.5]
        params["scale_factor"] = _written(draw, _axes(draw, ndim, st.sampled_from(scales)))
    else:
        params["size"] = _written(draw, _axes(draw, ndim, st.integers(1, 40)))
    _put(params, "mode", mode, "nearest", draw)
    if mode not in ("nearest", "nearest-exact") or (not field and _rarely(draw)):
        choices = [None, False] if field else [None, False, True]
        corners = draw(st.sampled_from(choices))
        if corners is not None:
            params["align_corners"] = corners
    return {"upsample": params}


def _norm(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> Any:
    channels = shape[0]
    params: dict[str, Any] = {}
    kinds = ["batch_norm", "group_norm", "layer_norm", "instance_norm", "local_response_norm"]
    kind = draw(st.sampled_from(kinds))
    if kind == "group_norm":
        divisors = _divisors(channels)
        params["num_groups"] = draw(
            st.integers(1, 4) if _rarely(draw) else st.sampled_from(divisors)
        )
    if kind == "local_response_norm":
        params["size"] = draw(st.integers(1, 5))
    if kind == "layer_norm":
        for name in ("elementwise_affine", "bias"):
            if draw(st.booleans()):
                params[name] = draw(st.booleans())
    elif kind != "local_response_norm" and draw(st.booleans()):
        params["affine"] = draw(st.booleans())
    if kind == "instance_norm" and draw(st.booleans()):
        # With running statistics PyTorch takes a single position, which it otherwise
        # refuses.
        params["track_running_stats"] = draw(st.booleans())
    return {kind: params} if params or draw(st.booleans()) else kind


def _learned(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> Any:
    """A learned factor per channel, or a PReLU with one slope or one per channel
    (rarely neither: refused by both)."""
    if draw(st.booleans()):
        return "scale"
    channels = shape[0]
    count = channels + 1 if _rarely(draw) else draw(st.sampled_from([1, channels]))
    params: dict[str, Any] = {}
    _put(params, "num_parameters", count, 1, draw)
    return {"prelu": params} if params else "prelu"


def _pad(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> dict[str, Any]:
    ndim = len(shape) - 1
    # Sides up to 3 on inputs that shrink down the stack: reflect (below the size) and
    # circular (at most the size) are refused now and then, by both.
    params: dict[str, Any] = {"padding": _padding(draw, (3,) * ndim, ["int", "axes", "pairs"])}
    mode = draw(st.sampled_from(["constant", "constant", "reflect", "replicate", "circular"]))
    _put(params, "mode", mode, "constant", draw)
    if (mode == "constant" and draw(st.booleans())) or _rarely(draw):
        params["value"] = draw(st.sampled_from([0.0, 1.5, -2]))  # not 0: constant only
    return {"pad": params}


def _channel_shuffle(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> dict[str, Any]:
    channels = shape[0]
    groups = draw(st.integers(1, 4) if _rarely(draw) else st.sampled_from(_divisors(channels)))
    return {"channel_shuffle": {"groups": groups}}


def _channel_slice(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> Any:
    """Python's slice rules: indices from past either end, negative ones, empty slices."""
    channels = shape[0]
    index = st.integers(-channels - 1, channels + 1)
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["start"] = draw(index)
    if draw(st.booleans()):
        params["end"] = draw(st.none() | index)
    return {"channel_slice": params} if params else "channel_slice"


def _factor(draw: st.DrawFn, fits: list[int]) -> int:
    """A factor from 1 to 3 that fits (those above 1 more often), rarely any."""
    if _rarely(draw):
        return draw(st.integers(1, 3))
    return draw(st.sampled_from([*fits, *fits[1:], *fits[1:]]))


def _rearrange(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> Any:
    """A channel slice, or on [C, H, W] (all PyTorch's pixel shuffles take) a pixel
    shuffle or unshuffle."""
    channels, sizes = shape[0], shape[1:]
    kind = draw(st.sampled_from(["channel_slice", "pixel_shuffle", "pixel_unshuffle"]))
    if kind == "channel_slice" or len(sizes) != 2:
        return _channel_slice(draw, shape, field)
    if kind == "pixel_shuffle":
        fits = [r for r in (1, 2, 3) if channels % (r * r) == 0]
        return {kind: {"upscale_factor": _factor(draw, fits)}}
    fits = [r for r in (1, 2, 3) if all(size % r == 0 for size in sizes)]
    return {kind: {"downscale_factor": _factor(draw, fits)}}


def _activation(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> Any:
    kind = draw(st.sampled_from(sorted(ACTIVATIONS)))
    extra = {
        "leaky_relu": {"negative_slope": 0.2},
        "dropout": {"p": 0.25},
        "gelu": {"approximate": "tanh"},
        "elu": {"alpha": 0.5},
        "softplus": {"beta": 2, "threshold": 10},
        "drop_path": {"drop_prob": 0.1},
    }
    if kind in extra and draw(st.booleans()):
        return {kind: extra[kind]}
    return kind


def _linear(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> Any:
    params: dict[str, Any] = {"out_features": draw(st.integers(1, 10))}
    _put(params, "bias", draw(st.booleans()), True, draw)
    return {"linear": params}


SPATIAL = [_conv] * 4 + [_conv_transpose] * 2 + [_pool] * 3 + [_adaptive, _upsample, _upsample]
SPATIAL += [_norm, _activation, _learned, _pad, _channel_shuffle]
FLAT = [_linear, _linear, _norm, _activation, _learned, _channel_slice]


def _layer(draw: st.DrawFn, shape: tuple[int, ...], field: bool) -> Any:
    """A layer for an input of `shape`. For fields, no channel slice and no pixel
    shuffle: `stacks` draws those where they are sound (see `_separates`)."""
    if len(shape) == 1:
        if draw(st.integers(0, 5)) == 5:
            return "flatten"
        return draw(st.sampled_from(FLAT))(draw, shape, field)
    if draw(st.integers(0, 15)) == 15:
        return "flatten"
    return draw(st.sampled_from(SPATIAL if field else [*SPATIAL, _rearrange, _rearrange]))(
        draw, shape, field
    )


def _separates(spec: Any, separated: bool) -> bool:
    """Whether, after this layer, the channels at one position see different positions
    of the input: a pixel unshuffle puts each of r² positions in its own channels, and
    every layer but a convolution over all channels (groups 1) keeps them apart. A field
    is over all the channels of a position (SPEC §3): after that, a channel slice or a
    pixel shuffle would pick some of the channels, which see less than the field says.
    """
    kind, params = kind_params(spec)
    if kind == "pixel_unshuffle":
        return True
    mixes = kind in ("conv", "conv_transpose") and params.get("groups", 1) == 1
    return separated and not mixes


@st.composite
def stacks(
    draw: st.DrawFn,
    ndims: tuple[int, ...],
    field: bool,
    lead: Any = None,
    channels_from: st.SearchStrategy[int] | None = None,
) -> dict[str, Any]:
    """A model document: an input and 1 to 6 leaf layers. Each layer is drawn for the
    shape PyTorch gives before it; a layer PyTorch rejects ends the stack. `lead`, if
    given, draws the first layer; `channels_from`, the input's channels (1 to 6)."""
    ndim = draw(st.sampled_from(ndims))
    low, high = (FIELD_SIZES if field else SHAPE_SIZES)[ndim]
    budget = FIELD_BUDGET[ndim] if field else SHAPE_BUDGET
    channels = draw(st.integers(1, 6) if channels_from is None else channels_from)
    sizes = _axes(draw, ndim, st.integers(low, high))
    layers: list[Any] = []
    x = torch.zeros(2, channels, *sizes)
    separated = False  # see _separates
    for index in range(draw(st.integers(1, 6))):
        shape = tuple(x.shape[1:])
        if lead is not None and index == 0:
            spec = lead(draw, shape, field)
        elif field and len(shape) > 1 and draw(st.integers(0, 5)) == 0:
            spec = _rearrange(draw, shape, field)
            if separated and kind_params(spec)[0] != "pixel_unshuffle":
                break
        else:
            spec = _layer(draw, shape, field)
        separated = _separates(spec, separated)
        try:
            y, _ = run_one(spec, x)
        except TorchRejects:
            layers.append(spec)
            break
        except NoTwin:
            reject()
        if y[0].numel() > budget:
            break
        layers.append(spec)
        x = y
    return {"input": [channels, *sizes], "layers": layers or ["relu"]}


# ---------------------------------------------------------------------------------------
# Checks


def compare_with_torch(document: dict[str, Any]) -> tuple[Analysis, ExactRun] | None:
    """Shapes and parameters against PyTorch; None when both reject the stack."""
    note(json.dumps(document))
    try:
        exact: ExactRun | None = run_exact(document)
        refusal = None
    except TorchRejects as error:
        exact, refusal = None, str(error)
    try:
        analysis = analyze(build_model(parse(json.dumps(document), "model.json")))
    except ConvcalcError as error:
        assert refusal is not None, f"convcalc rejects a network PyTorch runs: {error}"
        event("rejected by both")
        return None
    assert exact is not None, f"convcalc accepts a network PyTorch rejects: {refusal}"
    event(f"accepted, {len(document['layers'])} layers")
    for kind in sorted({kind_params(spec)[0] for spec in document["layers"]}):
        event(f"accepted with {kind}")
    assert len(analysis.rows) == len(document["layers"])
    for index, (row, shape) in enumerate(zip(analysis.rows, exact.shapes, strict=True)):
        assert row.output_shape == shape, (
            f"layer {index} ({row.kind}): convcalc {row.output_shape}, torch {shape}"
        )
    assert analysis.output_shape == exact.shapes[-1]
    assert analysis.totals.params == exact.params, (
        f"params: convcalc {analysis.totals.params}, torch {exact.params}"
    )
    # SPEC §3: no field once flat, or from an adaptive pool to 1 on every axis on.
    pooled_globally = False
    for index, (spec, shape) in enumerate(zip(document["layers"], exact.shapes, strict=True)):
        kind, _ = kind_params(spec)
        if kind.startswith("adaptive") and all(size == 1 for size in shape[1:]):
            pooled_globally = True
        field = analysis.rows[index].receptive_field
        expected_none = len(shape) == 1 or pooled_globally
        assert (field is None) == expected_none, f"layer {index} ({kind}): field {field}"
    with_field = [row.receptive_field for row in analysis.rows if row.receptive_field]
    assert analysis.receptive_field == (with_field[-1] if with_field else None)
    return analysis, exact


def check_axis(
    measured: list[Measured], size: int, stride: Fraction, padding: Fraction, period: int
) -> None:
    """One axis of a field against what the probed units see (SPEC §3): unit y sees
    y·S − P … y·S − P + r − 1, r the largest over the units away from the border and P
    that of a unit with that size. `period` is a multiple of the field's period."""
    inside = [m for m in measured if not m.border and m.first is not None]
    if not inside:
        event("field: no probed unit away from the border")
        return
    seen = {m.unit: m for m in inside}
    described = ", ".join(f"{m.unit}: {m.first}..{m.last}" for m in inside)
    note(f"units away from the border (unit: first..last): {described}")
    note(f"convcalc: size {size}, stride {stride}, padding {padding}; period divides {period}")
    for m in inside:
        assert m.span <= size, f"unit {m.unit} sees {m.span} positions, more than the field {size}"
        later = seen.get(m.unit + period)
        if later is not None:
            assert later.first - m.first == period * stride, f"units {m.unit} and {later.unit}"
            assert later.last - m.last == period * stride, f"units {m.unit} and {later.unit}"
    run = longest = 1
    units = sorted(seen)
    for a, b in itertools.pairwise(units):
        run = run + 1 if b == a + 1 else 1
        longest = max(longest, run)
    if longest < period:
        event("field: fewer units away from the border than a period")
        return
    event("field: a whole period compared" + (" (fractional stride)" if period > 1 else ""))
    assert max(m.span for m in inside) == size
    assert any(m.span == size and m.first == m.unit * stride - padding for m in inside), (
        "no unit of the largest size starts at y·S − P"
    )
    if period == 1:
        for m in inside:
            assert (m.first, m.span) == (m.unit * stride - padding, size), f"unit {m.unit}"


def check_fields(
    document: dict[str, Any], analysis: Analysis, exact: ExactRun, every_row: bool
) -> None:
    rows = [i for i, row in enumerate(analysis.rows) if row.receptive_field is not None]
    if not rows:
        event("field: none")
        return
    input_shape = tuple(document["input"])
    probes = PROBES[len(input_shape) - 1]
    for index in rows if every_row else rows[-1:]:
        field = analysis.rows[index].receptive_field
        assert field is not None
        layers, shapes = document["layers"][: index + 1], exact.shapes[: index + 1]
        note(f"field of layer {index}")
        measured = measure_fields(layers, input_shape, shapes, probes)
        periods = period_bound(layers, input_shape, shapes)
        for axis, units in enumerate(measured):
            check_axis(
                units,
                field.size[axis],
                field.effective_stride[axis],
                field.effective_padding[axis],
                periods[axis],
            )


# ---------------------------------------------------------------------------------------
# Properties


@settings(max_examples=300, **SETTINGS)
@given(stacks(ndims=(1, 2, 3), field=False))
def test_shapes_and_params_match_torch(document: dict[str, Any]) -> None:
    compare_with_torch(document)


@settings(max_examples=200, **SETTINGS)
@given(stacks(ndims=(1,), field=True))
def test_receptive_fields_match_gradients_1d(document: dict[str, Any]) -> None:
    compared = compare_with_torch(document)
    if compared is not None:
        check_fields(document, *compared, every_row=True)


@settings(max_examples=120, **SETTINGS)
@given(stacks(ndims=(2, 3), field=True))
def test_receptive_fields_match_gradients_2d_3d(document: dict[str, Any]) -> None:
    compared = compare_with_torch(document)
    if compared is not None:
        check_fields(document, *compared, every_row=False)


@settings(max_examples=150, **SETTINGS)
@given(stacks(ndims=(1,), field=True, lead=_conv_transpose))
def test_receptive_fields_after_a_transposed_convolution_1d(document: dict[str, Any]) -> None:
    """What follows a transposed convolution reads units whose fields vary, overlap
    out of order or are empty (a kernel shorter than the stride, dilation)."""
    compared = compare_with_torch(document)
    if compared is not None:
        check_fields(document, *compared, every_row=True)


@settings(max_examples=100, **SETTINGS)
@given(stacks(ndims=(2,), field=True, lead=_rearrange, channels_from=st.sampled_from([3, 4, 8, 9])))
def test_receptive_fields_through_pixel_shuffles_2d(document: dict[str, Any]) -> None:
    """A pixel shuffle reads position y // r (stride 1/r, like nearest upsampling); a
    pixel unshuffle puts r × r positions in the channels of one (a window r wide at
    stride r). The input's channels are often a multiple of 2² or 3²."""
    compared = compare_with_torch(document)
    if compared is not None:
        check_fields(document, *compared, every_row=True)
