"""PyTorch's layer modules (torch.nn) → convcalc layers.

Both PyTorch importers meet a module as the name of its type and its constructor's
arguments: `printed` reads them from the text `print(model)` shows, `pytorch` from a live
module's attributes. `MODULES` gives each type its parameters in PyTorch's order with
PyTorch's defaults (torch 2.13 signatures), `bind` fits written arguments to them, and
`translate` turns the arguments, checked against the input shape the module gets, into a
convcalc layer: its kind and its parameters as a model file writes them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convcalc.errors import ConvcalcError, Where
from convcalc.model.layers import Shape, format_shape
from convcalc.model.params import describe, scale_factors

__all__ = ["MODULES", "REQUIRED", "Module", "bind", "translate"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a parameter that must be given.
REQUIRED: Any = _Required()

Parameters = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Module:
    """A torch.nn module type: its parameters, the spatial axes of the input it takes
    (None: any), and how its arguments become a convcalc layer."""

    name: str
    parameters: Parameters  # positional or keyword, in PyTorch's order, with defaults
    keyword_only: Parameters
    axes: tuple[int, ...] | None
    translate: Callable[[dict[str, Any], Shape], tuple[str, dict[str, Any]]]
    ignores_arguments: bool = False  # torch.nn.Identity takes any, and uses none

    def names(self) -> list[str]:
        return [name for name, _ in (*self.parameters, *self.keyword_only)]


def _fail(message: str, parameter: str = "") -> ConvcalcError:
    return ConvcalcError(message, Where(parameter))


def _ints(value: Any) -> tuple[int, ...] | None:
    """The integers of a number or a tuple of numbers, or None if it is anything else."""
    values = tuple(value) if isinstance(value, tuple | list) else (value,)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return values
    return None


def _channels(name: str, value: Any, shape: Shape) -> None:
    """An in_channels-like argument must be the input's channels (or features)."""
    if value != shape[0] or isinstance(value, bool):
        raise _fail(
            f"{name} is {describe(value)}, but the input {format_shape(shape)} has "
            f"{shape[0]} {'features' if len(shape) == 1 else 'channels'}"
        )


def _refuse_indices(arguments: dict[str, Any]) -> None:
    if arguments.get("return_indices"):
        raise _fail(
            "return_indices=True gives a pair (output, indices); convcalc follows one tensor"
        )


def _pick(arguments: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: arguments[name] for name in names}


def _conv(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    _channels("in_channels", arguments["in_channels"], shape)
    params = _pick(
        arguments, "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"
    )
    strides = _ints(arguments["stride"])
    if arguments["padding"] == "same" and strides is not None and set(strides) != {1}:
        # torch.nn.Conv2d: "padding='same' is not supported for strided convolutions";
        # at stride 1 PyTorch's "same" and convcalc's (TensorFlow's) pad alike.
        raise _fail(
            f"padding='same' needs stride 1 in PyTorch, got stride={describe(arguments['stride'])}"
        )
    return "conv", params | {"padding_mode": arguments["padding_mode"]}


def _conv_transpose(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    _channels("in_channels", arguments["in_channels"], shape)
    if arguments["padding_mode"] != "zeros":
        raise _fail(
            "PyTorch's transposed convolutions take only padding_mode='zeros', got "
            f"{describe(arguments['padding_mode'])}"
        )
    names = ("out_channels", "kernel_size", "stride", "padding", "output_padding", "groups")
    return "conv_transpose", _pick(arguments, *names, "bias", "dilation")


def _max_pool(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    _refuse_indices(arguments)
    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
    return "max_pool", _pick(arguments, *names)


def _avg_pool(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    # divisor_override changes what is averaged, not the shapes: nothing for convcalc.
    names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
    return "avg_pool", _pick(arguments, *names)


def _adaptive(kind: str) -> Callable[[dict[str, Any], Shape], tuple[str, dict[str, Any]]]:
    def translate(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
        _refuse_indices(arguments)
        size = arguments["output_size"]
        # None on its own keeps every axis (torch.nn.AdaptiveAvgPool2d(None)).
        return kind, {"output_size": [None] * (len(shape) - 1) if size is None else size}

    return translate


def _upsample(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    params = _pick(arguments, "size", "scale_factor", "mode", "align_corners")
    scale = arguments["scale_factor"]
    if arguments["recompute_scale_factor"] and scale is not None:
        # PyTorch then maps indices by input/output size, as if that size had been
        # given (torch.nn.functional.interpolate); the size is convcalc's floor(in·scale).
        try:
            checked = scale_factors(scale)
        except ConvcalcError as error:
            raise error.at(Where("scale_factor")) from None
        scales = checked if isinstance(checked, tuple) else (checked,) * (len(shape) - 1)
        if len(scales) == len(shape) - 1:
            params["size"] = [math.floor(n * s) for n, s in zip(shape[1:], scales, strict=True)]
            params["scale_factor"] = None
    return "upsample", params


def _linear(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    if len(shape) == 1:  # otherwise convcalc's linear says it needs a flat input
        _channels("in_features", arguments["in_features"], shape)
    return "linear", _pick(arguments, "out_features", "bias")


def _axis(name: str, value: Any, rank: int) -> int:
    """A dimension argument of a tensor with `rank` dimensions (the batch first), as a
    non-negative index."""
    if not isinstance(value, int) or isinstance(value, bool) or not -rank <= value < rank:
        raise _fail(
            f"expected a dimension from {-rank} to {rank - 1} of the input (batch first, "
            f"{rank} dimensions), got {describe(value)}",
            name,
        )
    return value % rank


def _flatten(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    rank = len(shape) + 1
    start = _axis("start_dim", arguments["start_dim"], rank)
    end = _axis("end_dim", arguments["end_dim"], rank)
    if (start, end) != (1, rank - 1):
        raise _fail(
            f"flattening dimensions {start} to {end} of an input with {rank} (batch first) is "
            "not convcalc's flatten, which joins every dimension after the batch (start_dim=1, "
            "end_dim=-1)"
        )
    return "flatten", {}


def _affine(arguments: dict[str, Any]) -> dict[str, Any]:
    if arguments["affine"] is True and arguments["bias"] is False:
        raise _fail(
            "affine=True with bias=False learns a scale but no shift (C parameters); convcalc's "
            "normalisations learn both (affine=True) or neither (affine=False)"
        )
    return _pick(arguments, "affine", "eps")


def _batch_norm(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    # track_running_stats adds buffers, not parameters.
    _channels("num_features", arguments["num_features"], shape)
    return "batch_norm", _affine(arguments) | {"momentum": arguments["momentum"]}


def _group_norm(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    _channels("num_channels", arguments["num_channels"], shape)
    return "group_norm", {"num_groups": arguments["num_groups"]} | _affine(arguments)


def _softmax(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    rank = len(shape) + 1
    dim = arguments["dim"]
    if dim is None:
        # PyTorch's implicit choice (torch.nn.functional._get_softmax_dim).
        dim = 0 if rank in (0, 1, 3) else 1
        if dim != 1:
            raise _fail(
                f"dim=None picks dimension 0 (the batch) for an input with {rank} dimensions; "
                "convcalc's softmax is over the channels: give dim=1"
            )
    if _axis("dim", dim, rank) != 1:
        raise _fail(
            f"softmax over dimension {dim} of an input with {rank} (batch first): convcalc's "
            "softmax is over the channels (dim=1)"
        )
    return "softmax", {}


def _instance_norm(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    # PyTorch reads num_features only for the affine weights or the running statistics.
    if arguments["affine"] or arguments["track_running_stats"]:
        _channels("num_features", arguments["num_features"], shape)
    names = ("momentum", "track_running_stats")
    return "instance_norm", _affine(arguments) | _pick(arguments, *names)


def _layer_norm(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
    # torch.nn.LayerNorm normalises the last dimensions: convcalc's layer_norm on a flat
    # input [N] is LayerNorm(N). (Over the channels of [C, H, W], ConvNeXt's LayerNorm2d,
    # is no torch.nn module.)
    if _ints(arguments["normalized_shape"]) != shape:
        raise _fail(
            f"normalized_shape is {describe(arguments['normalized_shape'])}, but convcalc "
            f"follows LayerNorm over the features of a flat input, here {shape[0]}",
            "normalized_shape",
        )
    return "layer_norm", _pick(arguments, "elementwise_affine", "bias", "eps")


def _pad(mode: str) -> Callable[[dict[str, Any], Shape], tuple[str, dict[str, Any]]]:
    def translate(arguments: dict[str, Any], shape: Shape) -> tuple[str, dict[str, Any]]:
        padding, axes = arguments["padding"], len(shape) - 1
        sides = _ints(padding)
        if sides and min(sides) < 0:
            raise _fail(
                f"negative padding crops the input; convcalc's pad only adds, got "
                f"{describe(padding)}",
                "padding",
            )
        if isinstance(padding, tuple | list):
            # torch.nn.functional.pad's order: (before, after) of the last axis first. With
            # zeros or a constant it may pad only the last axes; more would pad channels.
            lengths = range(2, 2 * axes + 1, 2) if mode == "constant" else (2 * axes,)
            if len(padding) not in lengths:
                raise _fail(
                    f"expected one number, or {' or '.join(map(str, lengths))} (before and after "
                    f"each spatial axis, the last axis first), got {describe(padding)}",
                    "padding",
                )
            pairs = [list(padding[2 * axis : 2 * axis + 2]) for axis in range(len(padding) // 2)]
            padding = [*[[0, 0]] * (axes - len(pairs)), *reversed(pairs)]
        value = {"value": arguments["value"]} if "value" in arguments else {}
        return "pad", {"padding": padding, "mode": mode} | value

    return translate


def _same_kind(
    kind: str, *names: str
) -> Callable[[dict[str, Any], Shape], tuple[str, dict[str, Any]]]:
    return lambda arguments, shape: (kind, _pick(arguments, *names))


_CONV = (
    ("in_channels", REQUIRED),
    ("out_channels", REQUIRED),
    ("kernel_size", REQUIRED),
    ("stride", 1),
    ("padding", 0),
    ("dilation", 1),
    ("groups", 1),
    ("bias", True),
    ("padding_mode", "zeros"),
    ("device", None),
    ("dtype", None),
)
_CONV_TRANSPOSE = (
    ("in_channels", REQUIRED),
    ("out_channels", REQUIRED),
    ("kernel_size", REQUIRED),
    ("stride", 1),
    ("padding", 0),
    ("output_padding", 0),
    ("groups", 1),
    ("bias", True),
    ("dilation", 1),
    ("padding_mode", "zeros"),
    ("device", None),
    ("dtype", None),
)
_MAX_POOL = (
    ("kernel_size", REQUIRED),
    ("stride", None),
    ("padding", 0),
    ("dilation", 1),
    ("return_indices", False),
    ("ceil_mode", False),
)
_AVG_POOL_1D = (
    ("kernel_size", REQUIRED),
    ("stride", None),
    ("padding", 0),
    ("ceil_mode", False),
    ("count_include_pad", True),
)
_AVG_POOL = (*_AVG_POOL_1D, ("divisor_override", None))
_BATCH_NORM = (
    ("num_features", REQUIRED),
    ("eps", 1e-5),
    ("momentum", 0.1),
    ("affine", True),
    ("track_running_stats", True),
    ("device", None),
    ("dtype", None),
)
_GROUP_NORM = (
    ("num_groups", REQUIRED),
    ("num_channels", REQUIRED),
    ("eps", 1e-5),
    ("affine", True),
    ("device", None),
    ("dtype", None),
)
_INSTANCE_NORM = (
    ("num_features", REQUIRED),
    ("eps", 1e-5),
    ("momentum", 0.1),
    ("affine", False),
    ("track_running_stats", False),
    ("device", None),
    ("dtype", None),
)
_PADDING = (("padding", REQUIRED),)
_INPLACE = (("inplace", False),)
_DROPOUT = (("p", 0.5), *_INPLACE)


def _family(
    name: str,
    parameters: Parameters,
    translate: Callable[[dict[str, Any], Shape], tuple[str, dict[str, Any]]],
    keyword_only: Parameters = (),
) -> list[Module]:
    """The 1d, 2d and 3d modules of a family; BatchNorm1d also takes a flat input."""
    return [
        Module(
            f"{name}{n}d",
            _AVG_POOL_1D if (name, n) == ("AvgPool", 1) else parameters,
            keyword_only,
            (0, 1) if (name, n) == ("BatchNorm", 1) else (n,),
            translate,
        )
        for n in (1, 2, 3)
    ]


#: The torch.nn module types convcalc follows, by name.
MODULES: dict[str, Module] = {
    module.name: module
    for module in (
        *_family("Conv", _CONV, _conv),
        *_family("ConvTranspose", _CONV_TRANSPOSE, _conv_transpose),
        *_family("MaxPool", _MAX_POOL, _max_pool),
        *_family("AvgPool", _AVG_POOL, _avg_pool),
        *_family("AdaptiveAvgPool", (("output_size", REQUIRED),), _adaptive("adaptive_avg_pool")),
        *_family(
            "AdaptiveMaxPool",
            (("output_size", REQUIRED), ("return_indices", False)),
            _adaptive("adaptive_max_pool"),
        ),
        *_family("BatchNorm", _BATCH_NORM, _batch_norm, (("bias", True),)),
        *_family("Dropout", _DROPOUT, _same_kind("dropout", "p", "inplace")),
        *_family("InstanceNorm", _INSTANCE_NORM, _instance_norm, (("bias", True),)),
        *_family("ZeroPad", _PADDING, _pad("constant")),
        *_family("ConstantPad", (*_PADDING, ("value", REQUIRED)), _pad("constant")),
        *_family("ReflectionPad", _PADDING, _pad("reflect")),
        *_family("ReplicationPad", _PADDING, _pad("replicate")),
        *_family("CircularPad", _PADDING, _pad("circular")),
        Module(
            "PixelShuffle",
            (("upscale_factor", REQUIRED),),
            (),
            (2,),
            _same_kind("pixel_shuffle", "upscale_factor"),
        ),
        Module(
            "PixelUnshuffle",
            (("downscale_factor", REQUIRED),),
            (),
            (2,),
            _same_kind("pixel_unshuffle", "downscale_factor"),
        ),
        Module(
            "ChannelShuffle",
            (("groups", REQUIRED),),
            (),
            None,
            _same_kind("channel_shuffle", "groups"),
        ),
        Module(
            "LayerNorm",
            (
                ("normalized_shape", REQUIRED),
                ("eps", 1e-5),
                ("elementwise_affine", True),
                ("bias", True),
                ("device", None),
                ("dtype", None),
            ),
            (),
            (0,),
            _layer_norm,
        ),
        Module(
            "LocalResponseNorm",
            (("size", REQUIRED), ("alpha", 1e-4), ("beta", 0.75), ("k", 1.0)),
            (),
            None,
            _same_kind("local_response_norm", "size", "alpha", "beta", "k"),
        ),
        Module(
            "PReLU",
            (("num_parameters", 1), ("init", 0.25), ("device", None), ("dtype", None)),
            (),
            None,
            _same_kind("prelu", "num_parameters", "init"),
        ),
        Module(
            "Upsample",
            (
                ("size", None),
                ("scale_factor", None),
                ("mode", "nearest"),
                ("align_corners", None),
                ("recompute_scale_factor", None),
            ),
            (),
            None,
            _upsample,
        ),
        Module(
            "Linear",
            (
                ("in_features", REQUIRED),
                ("out_features", REQUIRED),
                ("bias", True),
                ("device", None),
                ("dtype", None),
            ),
            (),
            None,
            _linear,
        ),
        Module("Flatten", (("start_dim", 1), ("end_dim", -1)), (), None, _flatten),
        Module("GroupNorm", _GROUP_NORM, (("bias", True),), None, _group_norm),
        Module("ReLU", _INPLACE, (), None, _same_kind("relu", "inplace")),
        Module("ReLU6", _INPLACE, (), None, _same_kind("relu6", "inplace")),
        Module(
            "LeakyReLU",
            (("negative_slope", 0.01), *_INPLACE),
            (),
            None,
            _same_kind("leaky_relu", "negative_slope", "inplace"),
        ),
        Module("GELU", (("approximate", "none"),), (), None, _same_kind("gelu", "approximate")),
        Module("SiLU", _INPLACE, (), None, _same_kind("silu", "inplace")),
        Module("Sigmoid", (), (), None, _same_kind("sigmoid")),
        Module("Tanh", (), (), None, _same_kind("tanh")),
        Module("Hardswish", _INPLACE, (), None, _same_kind("hardswish", "inplace")),
        Module("Softmax", (("dim", None),), (), None, _softmax),
        Module("Hardsigmoid", _INPLACE, (), None, _same_kind("hardsigmoid", "inplace")),
        Module("Mish", _INPLACE, (), None, _same_kind("mish", "inplace")),
        Module("ELU", (("alpha", 1.0), *_INPLACE), (), None, _same_kind("elu", "alpha", "inplace")),
        Module("SELU", _INPLACE, (), None, _same_kind("selu", "inplace")),
        Module(
            "Softplus",
            (("beta", 1.0), ("threshold", 20.0)),
            (),
            None,
            _same_kind("softplus", "beta", "threshold"),
        ),
        Module("Dropout", _DROPOUT, (), None, _same_kind("dropout", "p", "inplace")),
        Module("Identity", (), (), None, _same_kind("identity"), ignores_arguments=True),
    )
}


def bind(
    module: Module,
    positional: Sequence[Any],
    keywords: Mapping[str, Any],
    parameters: Parameters | None = None,
) -> dict[str, Any]:
    """Every parameter's value from arguments written as PyTorch takes them, defaults
    filled in (`parameters`: the positional ones, if not the module's own, as for a
    function that takes them in another order)."""
    order = module.parameters if parameters is None else parameters
    if module.ignores_arguments:
        return {}
    if len(positional) > len(order):
        raise _fail(f"takes at most {len(order)} positional arguments, got {len(positional)}")
    given = dict(zip((name for name, _ in order), positional, strict=False))
    names = [*(name for name, _ in order), *module.names()]
    for name, value in keywords.items():
        if name not in names:
            known = ", ".join(dict.fromkeys(names)) or "none"
            raise _fail(f"unknown argument {name!r} for {module.name}; it takes: {known}", name)
        if name in given:
            raise _fail(f"got two values for {name!r}", name)
        given[name] = value
    defaults = dict((*module.parameters, *module.keyword_only, *order))
    missing = [
        name for name, default in defaults.items() if default is REQUIRED and name not in given
    ]
    if missing:
        raise _fail(f"needs {' and '.join(missing)}")
    return defaults | given


_AXES_FORMS = {0: "[N]", 1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}


def translate(
    module: Module, arguments: dict[str, Any], shape: Shape
) -> tuple[str, dict[str, Any]]:
    """The convcalc layer (kind, parameters) for a module with these (bound) arguments
    that gets an input of `shape` (channels first, without the batch). Parameters equal
    to convcalc's defaults are left out; per-axis tuples become one number when they
    agree. An error's place is the argument at fault, if one is."""
    from convcalc.loader import parameters

    axes = len(shape) - 1
    if module.axes is not None and axes not in module.axes:
        forms = " or ".join(_AXES_FORMS[n] for n in module.axes)
        raise _fail(
            f"takes an input {forms}, but the input {format_shape(shape)} has "
            f"{axes} spatial ax{'is' if axes == 1 else 'es'}"
        )
    kind, params = module.translate(arguments, shape)
    fields = parameters(kind)
    plain = {}
    for name, value in params.items():
        value = _plain(value, axes)
        default = fields[name].default
        if default is dataclasses.MISSING or type(value) is not type(default) or value != default:
            plain[name] = value
    return kind, plain


def _plain(value: Any, axes: int) -> Any:
    """A PyTorch value as a model file writes it: lists for tuples, and one number for
    a tuple with the same number on every axis."""
    if isinstance(value, tuple | list):
        items = [_plain(item, axes) for item in value]
        numbers = all(isinstance(i, int | float) and not isinstance(i, bool) for i in items)
        if numbers and len(items) == axes and len(set(items)) == 1:
            return items[0]
        return items
    return value
