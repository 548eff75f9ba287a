"""A PyTorch module's printed form as the KIND of `convcalc layer` (convcalc.imports.printed).

The round trip: a module of every type convcalc follows is built in PyTorch from random
arguments, and its printed form (`repr(module)`, what `print(model)` shows) and the call
as a person writes it (some arguments by position, some by name) are read back. The output
shape and the parameter count must be PyTorch's: its forward pass and `sum(p.numel())`.
Where PyTorch refuses the module or the input, convcalc must refuse it too, and the
reverse. The rest checks the command line and each error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from convcalc.analysis.analyze import analyze_layer
from convcalc.errors import ConvcalcError
from convcalc.imports.printed import looks_printed, read_printed
from convcalc.imports.torch_modules import MODULES
from convcalc.loader import build_layer

Shape = tuple[int, ...]

#: Modules whose dimensionality is in their name: 1, 2 or 3 spatial axes.
_AXES = {name: module.axes for name, module in MODULES.items()}


def convcalc_layer(text: str, shape: Shape) -> tuple[Shape, int]:
    """The output shape and params of the printed module `text`, as `convcalc layer`
    computes them."""
    _, kind, params = read_printed(text, shape)
    row = analyze_layer(build_layer(kind, params), shape).rows[0]
    return row.output_shape, row.params


# ---------------------------------------------------------------------------------------
# Drawing modules: a type, its constructor's arguments, and an input


def family_of(name: str) -> str:
    """Conv for Conv1d, Conv2d and Conv3d."""
    return name[:-2] if name[-2:] in ("1d", "2d", "3d") else name


def _rarely(draw: st.DrawFn) -> bool:
    """True about one time in ten: an invalid choice PyTorch must refuse too."""
    return draw(st.integers(0, 9)) == 9


def _axes(draw: st.DrawFn, n: int, low: int, high: int) -> Any:
    """One number, or a tuple of one per axis."""
    if draw(st.booleans()):
        return draw(st.integers(low, high))
    return tuple(draw(st.integers(low, high)) for _ in range(n))


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def modules(draw: st.DrawFn, name: str) -> tuple[dict[str, Any], Shape]:
    """Constructor arguments for torch.nn.`name` (by name, in PyTorch's order) and an
    input shape without the batch."""
    axes = _AXES[name]
    if axes is None:
        n = draw(st.sampled_from([0, 1, 2, 3] if name not in ("Upsample", "Linear") else [1, 2]))
        n = 0 if name == "Linear" else n
    else:
        n = draw(st.sampled_from(axes))
    channels = draw(st.integers(1, 6))
    sizes = tuple(draw(st.integers(1, 6 if n == 3 else 12)) for _ in range(n))
    shape = (channels, *sizes)
    family = family_of(name)
    a: dict[str, Any] = {}
    if family in ("Conv", "ConvTranspose"):
        groups = draw(st.sampled_from(_divisors(channels)))
        a["in_channels"] = channels + 1 if _rarely(draw) else channels
        a["out_channels"] = groups * draw(st.integers(1, 3))
        a["kernel_size"] = _axes(draw, n, 1, 4)
        a["stride"] = _axes(draw, n, 1, 3)
        if family == "Conv":
            forms = ["int", "axes", "valid", "same"]
            form = draw(st.sampled_from(forms))
            if form == "same" and not _rarely(draw):
                a["stride"] = 1  # PyTorch's "same" is for stride 1 only
            a["padding"] = (
                form if form in ("same", "valid") else _axes(draw, n, 0, 2) if form == "axes" else 1
            )
            a["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        else:
            a["padding"] = _axes(draw, n, 0, 2)
            a["output_padding"] = draw(st.integers(0, 1))
        a["dilation"] = _axes(draw, n, 1, 2)
        a["groups"] = groups
        a["bias"] = draw(st.booleans())
    elif family in ("MaxPool", "AvgPool"):
        kernel = draw(st.integers(1, 4))
        a["kernel_size"] = kernel if draw(st.booleans()) else (kernel,) * n
        a["stride"] = draw(st.one_of(st.none(), st.integers(1, 3)))
        a["padding"] = draw(st.integers(0, kernel // 2 + _rarely(draw)))
        if family == "MaxPool":
            a["dilation"] = draw(st.integers(1, 2))
        else:
            a["count_include_pad"] = draw(st.booleans())
            if n > 1:
                a["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 3)))
        a["ceil_mode"] = draw(st.booleans())
    elif family in ("AdaptiveAvgPool", "AdaptiveMaxPool"):
        # PyTorch's 1-D adaptive pools take no None ("keep this size").
        size = st.integers(1, 4) if n == 1 else st.one_of(st.none(), st.integers(1, 4))
        a["output_size"] = (
            draw(st.integers(1, 4)) if draw(st.booleans()) else tuple(draw(size) for _ in range(n))
        )
    elif family == "Upsample":
        modes = ["nearest", "nearest-exact", {1: "linear", 2: "bilinear"}[n]]
        a["mode"] = draw(st.sampled_from([*modes, "bicubic"] if n == 2 else modes))
        if draw(st.booleans()):
            a["size"] = _axes(draw, n, 1, 16)
        else:
            # Binary fractions, which a float holds exactly: PyTorch's float product and
            # convcalc's exact one then floor alike.
            scale = st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
            a["scale_factor"] = draw(scale) if draw(st.booleans()) else (draw(scale),) * n
            a["recompute_scale_factor"] = draw(st.sampled_from([None, True, False]))
        if a["mode"] not in ("nearest", "nearest-exact") and draw(st.booleans()):
            a["align_corners"] = draw(st.booleans())
    elif family == "Linear":
        a["in_features"] = channels + 1 if _rarely(draw) else channels
        a["out_features"] = draw(st.integers(1, 8))
        a["bias"] = draw(st.booleans())
    elif family == "Flatten":
        if draw(st.booleans()):
            a["start_dim"], a["end_dim"] = 1, draw(st.sampled_from([-1, n + 1]))
    elif family == "BatchNorm":
        a["num_features"] = channels
        a["eps"] = draw(st.sampled_from([1e-5, 1e-3]))
        a["momentum"] = draw(st.sampled_from([0.1, None, 0.3]))
        a["affine"] = draw(st.booleans())
        a["track_running_stats"] = draw(st.booleans())
    elif family == "InstanceNorm":
        # PyTorch reads num_features only for affine weights or running statistics.
        a["num_features"] = channels + 1 if _rarely(draw) else channels
        a["eps"] = draw(st.sampled_from([1e-5, 1e-3]))
        a["momentum"] = draw(st.sampled_from([0.1, None]))
        a["affine"] = draw(st.booleans())
        a["track_running_stats"] = draw(st.booleans())
    elif family == "LayerNorm":
        a["normalized_shape"] = channels + 1 if _rarely(draw) else channels
        a["eps"] = draw(st.sampled_from([1e-5, 1e-6]))
        a["elementwise_affine"] = draw(st.booleans())
        a["bias"] = draw(st.booleans())
    elif family == "LocalResponseNorm":
        a["size"] = draw(st.integers(1, 5))
        a["alpha"] = draw(st.sampled_from([1e-4, 0.5]))
    elif family in ("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad"):
        # Sides up to 3 on inputs from 1: reflect (below the size) and circular (at most
        # the size) are refused now and then, by both.
        # Zeros or a constant may pad only the last axes (fewer pairs).
        pairs = n if family not in ("ZeroPad", "ConstantPad") else draw(st.integers(1, n))
        a["padding"] = (
            draw(st.integers(0, 3))
            if draw(st.booleans())
            else tuple(draw(st.integers(0, 3)) for _ in range(2 * pairs))
        )
        if family == "ConstantPad":
            a["value"] = draw(st.sampled_from([0.0, 1.5, -2.0]))
    elif family == "PixelShuffle":
        a["upscale_factor"] = draw(st.integers(1, 3))
    elif family == "PixelUnshuffle":
        a["downscale_factor"] = draw(st.integers(1, 3))
    elif family == "ChannelShuffle":
        a["groups"] = draw(
            st.integers(1, 4) if _rarely(draw) else st.sampled_from(_divisors(channels))
        )
    elif family == "PReLU":
        a["num_parameters"] = draw(st.sampled_from([1, channels, channels + 1]))
        a["init"] = draw(st.sampled_from([0.25, 0.1]))
    elif family == "ELU":
        a["alpha"] = draw(st.sampled_from([1.0, 0.5]))
        a["inplace"] = draw(st.booleans())
    elif family == "Softplus":
        a["beta"] = draw(st.sampled_from([1.0, 2.0]))
        a["threshold"] = draw(st.sampled_from([20.0, 10.0]))
    elif family == "GroupNorm":
        a["num_groups"] = draw(st.sampled_from(_divisors(channels)))
        a["num_channels"] = channels
        a["eps"] = draw(st.sampled_from([1e-5, 1e-3]))
        a["affine"] = draw(st.booleans())
    elif family in ("ReLU", "ReLU6", "SiLU", "Hardswish", "Hardsigmoid", "Mish", "SELU"):
        a["inplace"] = draw(st.booleans())
    elif family == "LeakyReLU":
        a["negative_slope"] = draw(st.sampled_from([0.01, 0.2]))
        a["inplace"] = draw(st.booleans())
    elif family == "GELU":
        a["approximate"] = draw(st.sampled_from(["none", "tanh"]))
    elif family == "Softmax":
        rank = n + 2
        # dim=None is the channels except for 3 dimensions (PyTorch's implicit choice).
        a["dim"] = draw(st.sampled_from([1, 1 - rank] if rank == 3 else [1, 1 - rank, None]))
    elif family == "Dropout":
        a["p"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
        a["inplace"] = draw(st.booleans())
    elif family not in ("Sigmoid", "Tanh", "Identity"):
        raise AssertionError(f"no arguments drawn for {name}")
    return a, shape


def written(draw: st.DrawFn, name: str, arguments: dict[str, Any]) -> str:
    """The call as a person may write it: the first few arguments by position (in
    PyTorch's order), the rest by name, in any order."""
    order = [parameter for parameter, _ in MODULES[name].parameters]
    given = [parameter for parameter in order if parameter in arguments]
    count = 0
    while count < len(given) and given[count] == order[count]:
        count += 1
    positional = draw(st.integers(0, count))
    keywords = draw(st.permutations(given[positional:]))
    parts = [repr(arguments[p]) for p in given[:positional]]
    parts += [f"{p}={arguments[p]!r}" for p in keywords]
    return f"{name}({', '.join(parts)})"


def run_torch(name: str, arguments: dict[str, Any], shape: Shape) -> tuple[str, Shape, int]:
    """PyTorch's printed form, output shape (without the batch) and parameter count."""
    import torch

    module = getattr(torch.nn, name)(**arguments).eval()
    with torch.no_grad():
        y = module(torch.zeros(2, *shape))
    if y.numel() == 0:
        raise RuntimeError("empty output")
    return repr(module), tuple(y.shape[1:]), sum(p.numel() for p in module.parameters())


def agrees(text: str, name: str, arguments: dict[str, Any], shape: Shape) -> str | None:
    """Check convcalc's reading of `text` against torch.nn.`name`(**arguments); the
    module's printed form, if PyTorch takes the module and the input."""
    try:
        printed, output, params = run_torch(name, arguments, shape)
    except (RuntimeError, ValueError, NotImplementedError) as error:
        note(f"PyTorch refuses {name}({arguments}): {error}")
        with pytest.raises(ConvcalcError):
            convcalc_layer(text, shape)
        return None
    assert convcalc_layer(text, shape) == (output, params), text
    return printed


#: What PyTorch's printed form leaves out (the modules' extra_repr, torch 2.13).
NOT_PRINTED = {
    "AvgPool": ("ceil_mode", "count_include_pad", "divisor_override"),
    "Upsample": ("align_corners", "recompute_scale_factor"),
}


@pytest.mark.parametrize("name", sorted(MODULES))
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_every_module_round_trips_through_its_printed_form(name: str, data: st.DataObject) -> None:
    pytest.importorskip("torch")
    arguments, shape = data.draw(modules(name))
    text = written(data.draw, name, arguments)
    note(f"{text} on {shape}")
    printed = agrees(text, name, arguments, shape)
    if printed is None:
        return
    note(f"printed: {printed}")
    assert looks_printed(printed) and looks_printed(text)
    left_out = NOT_PRINTED.get(family_of(name), ())
    shown = {key: value for key, value in arguments.items() if key not in left_out}
    for form in (printed, f"(layer): {printed}"):
        agrees(form, name, shown, shape)


# ---------------------------------------------------------------------------------------
# Forms PyTorch takes and convcalc refuses, with the reason


@pytest.mark.parametrize(
    ("text", "shape", "message"),
    [
        ("BatchNorm2d(4, bias=False)", "4x8x8",
         "BatchNorm2d: affine=True with bias=False learns a scale but no shift"),
        ("GroupNorm(2, 4, bias=False)", "4x8x8", "GroupNorm: affine=True with bias=False"),
        ("MaxPool2d(2, return_indices=True)", "4x8x8",
         "MaxPool2d: return_indices=True gives a pair"),
        ("Flatten(2)", "4x8x8", "Flatten: flattening dimensions 2 to 3 of an input with 4"),
        ("Flatten(0)", "4x8x8", "Flatten: flattening dimensions 0 to 3"),
        ("Softmax(dim=2)", "4x8x8", "Softmax: softmax over dimension 2 of an input with 4"),
        ("Softmax()", "4x8", "Softmax: dim=None picks dimension 0 (the batch)"),
        ("Upsample(scale_factor=2, mode=area)", "4x8x8", "Upsample.mode: expected one of"),
        ("ZeroPad2d((-1, 2, 0, 0))", "4x8x8", "ZeroPad2d.padding: negative padding crops"),
        ("ZeroPad2d((1, 2, 3))", "4x8x8", "ZeroPad2d.padding: expected one number, or 2 or 4"),
        ("ReflectionPad2d((1, 2))", "4x8x8", "ReflectionPad2d.padding: expected one number, "
         "or 4 (before and after each spatial axis"),
        ("LayerNorm(8)", "4x8x8", "LayerNorm: takes an input [N], but the input [4, 8, 8]"),
        ("LayerNorm((4, 8))", "32", "LayerNorm.normalized_shape: normalized_shape is [4, 8]"),
        ("InstanceNorm2d(4, affine=True, bias=False)", "4x8x8",
         "InstanceNorm2d: affine=True with bias=False"),
    ],
)  # fmt: skip
def test_what_convcalc_cannot_express_is_an_error(cli, text: str, shape: str, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("layer", text, "--input", shape)
    assert result.code == 2
    assert result.stderr.startswith("error: " + message), result.stderr


# ---------------------------------------------------------------------------------------
# The command line


CONV = "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)"


def test_the_printed_stem_of_resnet(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("layer", CONV, "--input", "3x224x224", "--json")
    assert result.code == 0, result.stderr
    row = json.loads(result.stdout)
    # PyTorch: the output of torchvision's ResNet stem; 64·3·7·7 weights and no bias.
    assert row["kind"] == "conv"
    assert row["output_shape"] == [64, 112, 112]
    assert row["params"] == 64 * 3 * 7 * 7
    assert row["macs"] == 64 * 112 * 112 * 3 * 7 * 7
    assert row["receptive_field"]["size"] == [7, 7]
    same = ["layer", "conv", "--input", "3x224x224", "--out-channels", "64", "--kernel-size",
            "7", "--stride", "2", "--padding", "3", "--no-bias", "--json"]  # fmt: skip
    assert cli(*same).stdout == result.stdout


@pytest.mark.parametrize(
    "text",
    [
        f"(conv1): {CONV}",
        f"nn.{CONV}",
        f"torch.nn.{CONV}",
        "Conv2d(3, 64, 7, 2, 3, 1, 1, False)",
        "Conv2d(in_channels=3, out_channels=64, kernel_size=7, stride=2, padding=3, bias=False)",
        "Conv2d(3, 64, kernel_size=[7, 7], stride=[2, 2], padding=[3, 3], bias=False, "
        "padding_mode=zeros)",
    ],
)
def test_the_same_module_written_every_way(cli, text: str) -> None:  # type: ignore[no-untyped-def]
    expected = cli("layer", CONV, "--input", "3x224x224", "--json").stdout
    assert cli("layer", text, "--input", "3x224x224", "--json").stdout == expected


def test_flags_given_too_override_the_printed_values(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("layer", CONV, "--input", "3x224x224", "--stride", "1", "--bias", "--json")
    row = json.loads(result.stdout)
    assert row["output_shape"] == [64, 224, 224]
    assert row["params"] == 64 * 3 * 7 * 7 + 64
    # A flag the kind does not take is named, as without a printed form.
    wrong = cli("layer", CONV, "--input", "3x224x224", "--num-groups", "2")
    assert wrong.stderr.startswith("error: --num-groups: unknown parameter 'num_groups' for conv")
    # And a flag that breaks the layer is named as the place.
    broken = cli("layer", CONV, "--input", "3x224x224", "--in-channels", "4")
    assert broken.stderr.startswith("error: layer: in_channels is 4, but the input has 3")


def test_bare_names_and_the_table(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("layer", "ReLU", "--input", "8x4x4")
    assert result.code == 0
    assert "relu" in result.stdout and "8×4×4" in result.stdout
    # torch.nn.Identity takes any arguments and ignores them (its documentation's example).
    identity = cli("layer", "Identity(54, unused_argument1=0.1)", "--input", "8x4x4", "--json")
    assert json.loads(identity.stdout)["kind"] == "identity"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("LSTM(3, 4)", "error: LSTM: convcalc does not follow this PyTorch module; it follows "
         "AdaptiveAvgPool1d"),
        ("Conv2d(3, 4, 3, foo=1)", "error: Conv2d.foo: unknown argument 'foo' for Conv2d; it "
         "takes: in_channels, out_channels, kernel_size"),
        ("Conv2d(3, 4, kernel_size=__import__('os').system('true'))",
         "error: Conv2d.kernel_size: expected a literal (a number, a string, a tuple), got "
         "\"__import__('os').system('true')\": the printed form is read, never run"),
        ("Conv2d(3, 4, 3, **extra)", "error: Conv2d: **arguments cannot be read"),
        ("Conv2d(3, 4)", "error: Conv2d: needs kernel_size"),
        ("Conv2d(3, 4, 3, kernel_size=3)", "error: Conv2d.kernel_size: got two values for "
         "'kernel_size'"),
        ("Conv2d(3, 4, 3, 1, 0, 1, 1, True, 'zeros', None, None, 9)",
         "error: Conv2d: takes at most 11 positional arguments, got 12"),
        ("Conv2d(3, 4, k)", "error: Conv2d.kernel_size: expected a positive integer"),
        ("Conv2d(3, 4, 3, stride=0)", "error: Conv2d.stride: expected a positive integer"),
        ("Conv1d(3, 4, 3)", "error: Conv1d: takes an input [C, L], but the input [3, 8, 8] "
         "has 2 spatial axes"),
        ("Conv2d(4, 8, 3)", "error: Conv2d: in_channels is 4, but the input [3, 8, 8] has 3 "
         "channels"),
        ("Conv2d(3, 8, 3, stride=2, padding=same)", "error: Conv2d: padding='same' needs "
         "stride 1 in PyTorch, got stride=2"),
        ("Conv2d(3, 8, 9)", "error: layer: the output would be empty on axis H"),
        ("ConvTranspose2d(3, 4, 3, padding_mode=reflect)", "error: ConvTranspose2d: PyTorch's "
         "transposed convolutions take only padding_mode='zeros'"),
        ("Linear(in_features=3, out_features=4)", "error: layer: linear needs a flat input"),
        ("Conv2d(3, 4, 3", "error: KIND: expected a PyTorch module as print(model) shows it"),
        ("Conv2d(3, 4, 3)[0]", "error: KIND: expected a PyTorch module as print(model) shows it"),
        ("Conv2d(" + "(" * 300 + ")" * 300 + ")", "error: KIND: expected a PyTorch module"),
        ("ReLU(\x00)", "error: KIND: expected a PyTorch module"),
        ("Conv2d(3, 4, " + "1" * 3000 + ")", "error: a module's printed form is at most 2,000"),
        ("convolution", "error: KIND: unknown layer kind 'convolution'; did you mean 'conv'?\n"),
    ],
)  # fmt: skip
def test_bad_printed_forms_are_one_error_line(cli, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("layer", text, "--input", "3x8x8")
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
