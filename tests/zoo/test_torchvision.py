"""The bundled models against torchvision's own definitions (see twin.py).

For each model, torchvision's module built on the meta device (no memory, no weights):

- its `sum(p.numel())` is torchvision's published count and convcalc's params;
- every call of a module that has no submodules is a row of that name (`layer1.0.conv1`,
  and `layer1.0.relu_1` for the second call of a block's one `relu`), so every row with
  parameters is; each named row has the module's output shape and, for convolutions and
  linear layers, the multiply-accumulates torch ran; at the model's input and an odd one;
- the fields and global context of a sample of rows (the first, a few between, the last
  with a field, and the classifier, which reads a summary of the whole input), at a few
  units each, are what gradients show on a thin linear twin, on inputs large enough for
  the whole field of a unit to fit.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import pytest

from convcalc.analysis.analyze import analyze
from convcalc.opening import open_model
from tests.test_zoo import PUBLISHED

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from tests.zoo.twin import (  # noqa: E402
    call_of,
    check_fields,
    check_module,
    linear_twin,
    sample,
    units,
)


class Case(NamedTuple):
    """A bundled model's torchvision builder (under torchvision.models), an odd input
    for shapes, and the inputs its fields are measured on besides its own."""

    builder: str
    odd: tuple[int, ...]
    fields: tuple[tuple[int, ...], ...]


# The field inputs are strips whose long axis holds the whole field of a middle unit of
# the last row with one (the test checks it): 1536 pixels for ResNet-152's 1451, 120
# frames for R3D-18's 109. Every kernel and pool of these networks is a box, so what a
# unit sees is one span per axis, each independent of the sizes of the other axes: a
# strip measures its long axis for a fraction of a square's work. AlexNet's and VGG's
# make the adaptive pool after the features an even 2×2 one (418, 448) or an uneven one.
TORCHVISION = {
    "alexnet": Case("alexnet", (3, 100, 131), ((3, 418, 64), (3, 64, 512))),
    "vgg16": Case("vgg16", (3, 97, 130), ((3, 448, 64), (3, 64, 512))),
    "vgg16_bn": Case("vgg16_bn", (3, 64, 96), ((3, 512, 64), (3, 64, 448))),
    "resnet18": Case("resnet18", (3, 97, 130), ((3, 512, 64), (3, 64, 512))),
    "resnet34": Case("resnet34", (3, 161, 99), ((3, 1024, 64), (3, 64, 1024))),
    "resnet50": Case("resnet50", (3, 161, 99), ((3, 640, 64), (3, 64, 640))),
    "resnet101": Case("resnet101", (3, 97, 130), ((3, 1088, 64), (3, 64, 1088))),
    "resnet152": Case("resnet152", (3, 161, 99), ((3, 1536, 64), (3, 64, 1536))),
    "mobilenet_v2": Case("mobilenet_v2", (3, 113, 75), ((3, 640, 64), (3, 64, 640))),
    "r3d_18": Case(
        "video.r3d_18",
        (3, 5, 37, 50),
        ((3, 120, 16, 16), (3, 8, 240, 32), (3, 8, 32, 240)),
    ),
}


@pytest.fixture
def build(torchvision: Any) -> Any:
    """name → torchvision's module for the bundled model, on the meta device."""

    def module(name: str) -> nn.Module:
        builder = functools.reduce(
            getattr, TORCHVISION[name].builder.split("."), torchvision.models
        )
        with torch.device("meta"):
            built = builder()
        assert isinstance(built, nn.Module)
        return built

    return module


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_params_are_torchvisions_published_count(build: Any, name: str) -> None:
    params = sum(p.numel() for p in build(name).parameters())
    assert params == PUBLISHED[name][0] == analyze(open_model(name)).totals.params


@pytest.mark.parametrize("name", sorted(TORCHVISION))
@pytest.mark.parametrize("odd", [False, True])
def test_every_module_call_is_a_row_of_its_shape_and_macs(build: Any, name: str, odd: bool) -> None:
    analysis = analyze(open_model(name), TORCHVISION[name].odd if odd else None)
    check_module(analysis, build(name), analysis.input_shape)


@pytest.mark.parametrize(
    ("name", "shape"),
    [(name, shape) for name in sorted(TORCHVISION) for shape in (None, *TORCHVISION[name].fields)],
)
def test_fields_are_what_gradients_show(
    build: Any, name: str, shape: tuple[int, ...] | None
) -> None:
    analysis = analyze(open_model(name), shape)
    module = build(name)
    modules = dict(module.named_modules())
    # A sample of the rows named after a module's call (the first, the last with a field,
    # evenly spaced ones between, and the very last), at a few units each.
    named = [row for row in analysis.rows if call_of(module, row.qualified_name)[0] in modules]
    rows = [row for row in named if row.fields is not None]
    picked = dict.fromkeys([row.qualified_name for row in [*sample(rows, 8), named[-1]]])
    shapes = {row.qualified_name: row.output_shape for row in named}
    probes = [(row, unit) for row in picked for unit in units(shapes[row])]
    whole = check_fields(analysis, linear_twin(module, thin=True), probes)
    if shape is not None:  # the inputs chosen to hold the last row's middle fields
        size = analysis.input_shape[1:]
        long = max(range(len(size)), key=lambda axis: size[axis])
        assert (rows[-1].qualified_name, long) in whole
