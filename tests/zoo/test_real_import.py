"""Issue 12's coverage: the real torchvision and timm CNNs of real_models.py, imported
through `convcalc.from_torch` (weights=None, eval), checked against their own modules
(real_checks.py): parameters, the outputs, every row's shape and MACs, the total MACs
against FlopCounterMode, and fields by gradients for a sample. The models convcalc
is expected to refuse must be refused with one clean line.

The `slow` models are those that take longest (EfficientNet-B5 to B7 and V2, the larger
DenseNets, S3D at its smallest input of 3×16×224×224); CI runs them too.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import pytest

from convcalc import analyze, load
from convcalc.analysis.analyze import Analysis
from tests.zoo.real_models import (
    EXCLUDED,
    MODELS,
    REFUSED,
    TIMM,
    TORCHVISION,
    TORCHVISION_MODULES,
    RealModel,
)

pytest.importorskip("torch")

from torch import nn

from tests.zoo.real_checks import (
    CHECKS,
    Check,
    check_fields_by_gradients,
    check_macs,
    check_outputs,
    check_params,
    check_rows,
    import_model,
    refusal,
)
from tests.zoo.twin import extent, linear_twin, measure

BY_ID = {model.id: model for model in MODELS}


def _param(model: RealModel) -> Any:
    marks = [pytest.mark.slow] if model.slow else []
    return pytest.param(model, marks=marks, id=model.id)


IMPORTED = [_param(model) for model in MODELS if model.id not in REFUSED]

#: The fields' sample: squeeze-and-excitation gates, a channel shuffle, ConvNeXt's
#: channels-last blocks, concatenations, HRNet's fusions, Inception blocks; whether the
#: twin may sum the channels (not where a network slices or shuffles them).
FIELDS = {
    "torchvision.efficientnet_b0": True,
    "torchvision.mobilenet_v3_small": True,
    "torchvision.shufflenet_v2_x0_5": False,
    "torchvision.convnext_tiny": True,
    "timm.convnext_atto": True,
    "torchvision.densenet121": True,
    "timm.hrnet_w18_small": True,
    "torchvision.googlenet": True,
}


def _library(request: pytest.FixtureRequest, model: RealModel) -> Any:
    return request.getfixturevalue(model.library)


@pytest.mark.parametrize("model", IMPORTED)
def test_imported_numbers_are_torchs(request: pytest.FixtureRequest, model: RealModel) -> None:
    analysis, module = import_model(model, _library(request, model))
    for check in CHECKS:
        check(analysis, module, model.input_shape)
    if model.id in FIELDS:
        check_fields_by_gradients(analysis, module, thin=FIELDS[model.id])


@pytest.mark.parametrize("model", [_param(BY_ID[name]) for name in REFUSED])
def test_refused_with_one_clean_line(request: pytest.FixtureRequest, model: RealModel) -> None:
    message = refusal(model, _library(request, model))
    assert message is not None, f"{model.id} imports now: move it out of REFUSED"


def test_the_torchvision_list_is_every_cnn(torchvision: Any) -> None:
    listed = set()
    for module in TORCHVISION_MODULES:
        where = functools.reduce(getattr, module.split("."), torchvision)
        listed |= set(torchvision.models.list_models(module=where))
    names = [model.name for model in TORCHVISION]
    assert len(set(names)) == len(names) == 78
    assert set(names) | EXCLUDED.keys() == listed
    assert set(names).isdisjoint(EXCLUDED)


def test_the_timm_list_is_one_model_per_family(timm: Any) -> None:
    names = [model.name for model in TIMM]
    assert len(set(names)) == len(names) == 40
    assert set(names) <= set(timm.list_models())


def test_the_expectations_name_listed_models() -> None:
    assert REFUSED.keys() <= BY_ID.keys()
    assert FIELDS.keys() <= BY_ID.keys() - REFUSED.keys()
    # Issue 12 allows at most 3 of torchvision's models and 4 of timm's to be refused.
    assert sum(BY_ID[name].library == "torchvision" for name in REFUSED) <= 3
    assert sum(BY_ID[name].library == "timm" for name in REFUSED) <= 4


# --- The checks themselves, on bundled models whose numbers are known right -------------

#: Bundled models with the torchvision builder arguments that give the same module.
BUNDLED = {
    "efficientnet_b0": {},
    "densenet121": {},
    "googlenet": {"aux_logits": False, "init_weights": False},
}


def _bundled(torchvision: Any, name: str) -> tuple[Analysis, nn.Module]:
    """The bundled model's analysis at 3×64×64 and torchvision's module, on the meta
    device."""
    import torch

    with torch.device("meta"):
        module = torchvision.models.get_model(name, weights=None, **BUNDLED[name]).eval()
    return analyze(load(name), (3, 64, 64)), module


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_the_checks_pass_on_bundled_models(torchvision: Any, name: str) -> None:
    analysis, module = _bundled(torchvision, name)
    for check in CHECKS:
        check(analysis, module, (3, 64, 64))
    check_fields_by_gradients(analysis, module)


def _wrong_row(analysis: Analysis) -> Analysis:
    """The analysis with the first convolution's output one channel short."""
    k, row = next((k, row) for k, row in enumerate(analysis.rows) if row.kind == "conv")
    shape = (row.output_shape[0] - 1, *row.output_shape[1:])
    rows = (*analysis.rows[:k], row._replace(output_shape=shape), *analysis.rows[k + 1 :])
    return dataclasses.replace(analysis, rows=rows)


def _wrong_totals(**change: int) -> Callable[[Analysis], Analysis]:
    def wrong(analysis: Analysis) -> Analysis:
        totals = {key: getattr(analysis.totals, key) + value for key, value in change.items()}
        return dataclasses.replace(analysis, totals=dataclasses.replace(analysis.totals, **totals))

    return wrong


def _wrong_output(analysis: Analysis) -> Analysis:
    first = analysis.outputs[0]
    return dataclasses.replace(analysis, outputs=(dataclasses.replace(first, shape=(999,)),))


@pytest.mark.parametrize(
    ("check", "wrong"),
    [
        (check_params, _wrong_totals(params=1)),
        (check_macs, _wrong_totals(macs=1)),
        (check_rows, _wrong_row),
        (check_outputs, _wrong_output),
    ],
)
def test_the_checks_fail_on_a_wrong_number(
    torchvision: Any, check: Check, wrong: Callable[[Analysis], Analysis]
) -> None:
    analysis, module = _bundled(torchvision, "googlenet")
    with pytest.raises(AssertionError):
        check(wrong(analysis), module, (3, 64, 64))


class _Gate(nn.Module):
    """A 3×3 convolution gated by a sigmoid of a 1×1 convolution of its global mean,
    taken by `torch.mean` (as timm's gates do) or by an adaptive pooling to 1."""

    def __init__(self, mean: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Conv2d(2, 2, 1)
        self.pool = None if mean else nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Any) -> Any:
        y = self.conv(x)
        pooled = y.mean((2, 3), keepdim=True) if self.pool is None else self.pool(y)
        return y * self.fc(pooled).sigmoid()


@pytest.mark.parametrize("mean", [True, False])
def test_the_twin_holds_a_spatial_mean_as_a_global_pooling(mean: bool) -> None:
    (seen,) = measure(linear_twin(_Gate(mean)), (2, 9, 9), [("", (4, 4))])
    # The unit's own 3×3 window locally, and the whole input through the gate.
    assert extent(seen.local) == [(3, 5), (3, 5)]
    assert seen.global_context
