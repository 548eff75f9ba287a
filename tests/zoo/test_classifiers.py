"""The bundled EfficientNet-B0, RegNetY-400MF, DenseNet-121, GoogLeNet and Inception v3
against torchvision's published figures and its own modules (see twin.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from convcalc.analysis.analyze import Analysis, analyze
from convcalc.opening import open_model

pytest.importorskip("torch")

from torch import nn

from tests.zoo.twin import check_fields, check_module, linear_twin, sample, units


@dataclass(frozen=True)
class Published:
    """torchvision's figures for a model's ImageNet weights (`num_params` and `_ops` in
    the weights' metadata, torchvision/models/*.py), and the builder's arguments that
    give the module those weights load into."""

    params: int
    gflops: str  # `_ops` as torchvision's table prints it; it counts multiply-accumulates
    ops: float
    builder: dict[str, Any] = field(default_factory=dict)
    # Inception v3's auxiliary classifier runs only in training: its shapes and fields
    # are measured with the root module in training mode (twin.py's `_with_auxiliary`).
    auxiliary: bool = False


# init_weights=False skips a slow random initialisation that nothing here reads.
PUBLISHED = {
    "efficientnet_b0": Published(5_288_548, "0.39", 0.386),
    "regnet_y_400mf": Published(4_344_144, "0.40", 0.402),
    "densenet121": Published(7_978_856, "2.83", 2.834),
    # The published weights load into googlenet(aux_logits=True), which then drops its
    # auxiliary classifiers aux1 and aux2 (torchvision/models/googlenet.py).
    "googlenet": Published(6_624_904, "1.50", 1.498, {"aux_logits": False, "init_weights": False}),
    "inception_v3": Published(27_161_264, "5.71", 5.713, {"init_weights": False}, auxiliary=True),
}

#: Inception v3's auxiliary classifier by hand: the 1×1 conv (5×5 positions × 768 × 128),
#: the 5×5 conv (1 position × 128·5·5 × 768) and the linear layer (768 × 1000).
#: torchvision's `_ops` counts the network as it runs at inference, without it.
AUXILIARY_MACS = {"inception_v3": 25 * 768 * 128 + 128 * 25 * 768 + 768 * 1000}

#: Rows whose fields are measured besides an even sample: the first rows a
#: squeeze-and-excitation gate (a global path) reaches, and the auxiliary classifier.
PROBED = {
    "efficientnet_b0": ["features.1.0.block.2.0", "features.2.1"],
    "regnet_y_400mf": [
        "trunk_output.block1.block1-0.f.c.0",
        "trunk_output.block1.block1-0.activation",
    ],
    "inception_v3": ["AuxLogits.conv0.conv", "AuxLogits.conv1.conv"],
}

#: How many rows named after a module the fields are measured on, evenly spread, besides
#: those above.
SAMPLE = 6

#: The input the fields are measured at: smaller than the models' own, for speed (a field
#: does not depend on the input's size; where it meets the border does, and is compared
#: there too), except for Inception v3, whose auxiliary classifier needs 299×299.
FIELD_INPUT = {"inception_v3": (3, 299, 299)}


@pytest.fixture(scope="module", params=sorted(PUBLISHED))
def model(request: pytest.FixtureRequest, torchvision: Any) -> tuple[str, Analysis, nn.Module]:
    """A bundled model's name, its analysis, and torchvision's module, built once and
    moved to the meta device (RegNet's builder computes its widths with tensors, which
    it could not read back there)."""
    name: str = request.param
    module = getattr(torchvision.models, name)(**PUBLISHED[name].builder).to("meta")
    return name, analyze(open_model(name)), module


def test_params_and_macs_are_published(model: tuple[str, Analysis, nn.Module]) -> None:
    name, analysis, module = model
    published = PUBLISHED[name]
    assert analysis.totals.params == published.params
    assert sum(p.numel() for p in module.parameters()) == published.params
    auxiliary = sum(
        row.macs for row in analysis.rows if row.qualified_name.startswith("AuxLogits.")
    )
    assert auxiliary == AUXILIARY_MACS.get(name, 0)
    inference = analysis.totals.macs - auxiliary
    assert f"{inference / 1e9:.2f}" == published.gflops
    assert round(inference / 1e9, 3) == published.ops


def test_every_module_call_is_a_row_of_its_shape_and_macs(
    model: tuple[str, Analysis, nn.Module],
) -> None:
    name, analysis, module = model
    check_module(analysis, module, analysis.input_shape, auxiliary=PUBLISHED[name].auxiliary)


def test_fields_are_what_gradients_show(model: tuple[str, Analysis, nn.Module]) -> None:
    name, _, module = model
    analysis = analyze(open_model(name, FIELD_INPUT.get(name, (3, 128, 128))))
    modules = dict(module.named_modules())
    named = [row.qualified_name for row in analysis.rows if row.qualified_name in modules]
    probed = PROBED.get(name, [])
    assert set(probed) <= set(named)
    shapes = {row.qualified_name: row.output_shape for row in analysis.rows}
    rows = dict.fromkeys([*sample(named, SAMPLE), *probed])
    probes = [(row, unit) for row in rows for unit in units(shapes[row])]
    twin = linear_twin(module, thin=True, auxiliary=PUBLISHED[name].auxiliary)
    check_fields(analysis, twin, probes)
