"""The bundled models against torchvision's own definitions (see twin.py).

For each model, torchvision's module built on the meta device (no memory, no weights):

- its `sum(p.numel())` is torchvision's published count and convcalc's params;
- every call of a module that has no submodules is a row of that name (`layer1.0.conv1`,
  and `layer1.0.relu_1` for the second call of a block's one `relu`), so every row with
  parameters is; each named row has the module's output shape and, for convolutions and
  linear layers, the multiply-accumulates torch ran; at the model's input and an odd one;
- the fields of a sample of rows (the first, a few between, the last with a field), at
  a few units each, are what gradients show on a thin linear twin, on inputs large
  enough for the whole field of a unit to fit.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import pytest

from convcalc.analysis.analyze import Row, analyze
from convcalc.loader import open_model
from tests.test_zoo import PUBLISHED

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from tests.zoo.twin import (  # noqa: E402
    call_of,
    check_params_and_shapes,
    linear_twin,
    module_macs,
    module_shapes,
    seen_by_each,
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
    module = build(name)
    analysis = analyze(open_model(name), TORCHVISION[name].odd if odd else None)
    shape = analysis.input_shape
    check_params_and_shapes(analysis, module, shape)
    rows = {row.qualified_name: row for row in analysis.rows}
    # Every call of a leaf module (one without submodules: a layer) has its row.
    leaves = {n for n, sub in module.named_modules() if n and not list(sub.children())}
    calls = {call for call in module_shapes(module, shape) if call_of(module, call)[0] in leaves}
    assert sorted(calls - rows.keys()) == []
    macs = module_macs(module, shape)
    assert {call: rows[call].macs for call in macs} == macs
    assert analysis.totals.macs == sum(macs.values())


def sample(rows: list[Row], count: int = 8) -> list[Row]:
    """The first row, the last, and evenly spaced ones between."""
    picked = sorted({(len(rows) - 1) * k // (count - 1) for k in range(count)})
    return [rows[k] for k in picked]


def probed(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The first unit, the last, and two neighbours in the middle, whose whole fields
    the field inputs hold (and whose distance is the effective stride)."""
    first, middle, last = units(shape)
    beside = tuple(min(y + 1, size - 1) for y, size in zip(middle, shape[1:], strict=True))
    return [first, middle, beside, last]


@pytest.mark.parametrize(
    ("name", "shape"),
    [(name, shape) for name in sorted(TORCHVISION) for shape in (None, *TORCHVISION[name].fields)],
)
def test_fields_are_what_gradients_show(
    build: Any, name: str, shape: tuple[int, ...] | None
) -> None:
    analysis = analyze(open_model(name), shape)
    size = analysis.input_shape[1:]
    module = build(name)
    calls = module_shapes(module, analysis.input_shape)
    twin = linear_twin(module, thin=True)
    rows = [row for row in analysis.rows if row.fields is not None and row.qualified_name in calls]
    picked = sample(rows)
    probes = {row.qualified_name: probed(row.output_shape) for row in picked}
    measured = seen_by_each(twin, analysis.input_shape, probes)
    whole = set()  # (row, axis) where a unit's whole field lay inside the input
    for row in picked:
        assert row.fields is not None
        for unit, spans in zip(
            probes[row.qualified_name], measured[row.qualified_name], strict=True
        ):
            for axis, (field, y, span) in enumerate(zip(row.fields, unit, spans, strict=True)):
                where = (row.qualified_name, unit, axis)
                if compare(span, field.seen(y), size[axis], where):
                    whole.add((row.qualified_name, axis))
    if shape is not None:  # the inputs chosen to hold the last row's middle fields
        long = max(range(len(size)), key=lambda axis: size[axis])
        assert (rows[-1].qualified_name, long) in whole


def compare(
    span: tuple[int, int] | None, seen: tuple[int, int] | None, size: int, where: object
) -> bool:
    """A span measured by gradients against convcalc's field of the same unit on one
    axis of `size` positions; whether the field lies inside, where they must be equal."""
    assert seen is not None and span is not None, where
    if seen[0] >= 0 and seen[1] < size:
        assert span == seen, where
        return True
    # Cut by the border. Past the last position a layer reads (floor division drops the
    # rest), the gradient stops where a window reaches past real units, while convcalc's
    # field, as Araujo et al.'s, runs on: only the first position is exact there.
    assert span[0] == max(seen[0], 0), where
    assert span[1] <= min(seen[1], size - 1), where
    return False
