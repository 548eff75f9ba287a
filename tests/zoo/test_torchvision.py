"""The bundled models against torchvision's own definitions (see twin.py)."""

from __future__ import annotations

from typing import Any

import pytest

from convcalc.analysis.analyze import analyze
from convcalc.loader import open_model

pytest.importorskip("torch")

from tests.zoo.twin import check_fields, check_params_and_shapes, linear_twin, module_shapes

#: Bundled model → torchvision builder, and whether every row with parameters carries
#: torchvision's name for its module.
TORCHVISION = {"alexnet": "alexnet"}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_params_and_every_named_rows_shape(torchvision: Any, name: str) -> None:
    analysis = analyze(open_model(name))
    module = getattr(torchvision.models, TORCHVISION[name])()
    compared = check_params_and_shapes(analysis, module, analysis.input_shape)
    assert compared >= sum(1 for row in analysis.rows if row.params)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_fields_are_what_gradients_show(torchvision: Any, name: str) -> None:
    analysis = analyze(open_model(name))
    module = getattr(torchvision.models, TORCHVISION[name])()
    twin = linear_twin(module)
    shapes = module_shapes(module, analysis.input_shape)
    # Every row named after a module, up to the last with a field, at a few units each.
    names = [row.qualified_name for row in analysis.rows
             if row.fields is not None and row.qualified_name in shapes]  # fmt: skip
    assert check_fields(analysis, twin, names)
