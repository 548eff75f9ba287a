"""The Python API: the command line's answers, from a notebook or a script.

A model comes from a file or a bundled model's name (`load`), from YAML or JSON text
(`loads`), or from plain data shaped like a model file (`from_dict`); a layer is made
directly from its class, with PyTorch's parameter names (`Conv`, `MaxPool`, …).
`analyze` gives the same numbers as `convcalc net` and `convcalc layer`:

>>> from convcalc import Conv, analyze
>>> result = analyze(Conv(out_channels=64, kernel_size=7, stride=2, padding=3), (3, 224, 224))
>>> result.output_shape, result.totals.params, result.totals.macs
((64, 112, 112), 9472, 118013952)
>>> result.receptive_field.size
(7, 7)

The seed's 5×5 input through two 3×3 convolutions: 3×3, then one unit that sees all
5×5 pixels:

>>> from convcalc import from_dict
>>> conv = {"conv": {"out_channels": 1, "kernel_size": 3}}
>>> result = analyze(from_dict({"input": [1, 5, 5], "layers": [conv, conv]}))
>>> [row.output_shape for row in result.rows], result.receptive_field.size
([(1, 3, 3), (1, 1, 1)], (5, 5))

Bad input raises `ConvcalcError` (a `ValueError`), whose message says where and what was
expected:

>>> Conv(out_channels=0, kernel_size=3)
Traceback (most recent call last):
...
convcalc.errors.ConvcalcError: out_channels: expected a positive integer, got 0
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from convcalc.analysis.analyze import Analysis, analyze_layer
from convcalc.analysis.analyze import analyze as _analyze
from convcalc.model.layers import Layer
from convcalc.model.network import Model

__all__ = ["analyze", "from_dict", "load", "loads"]


def load(source: str | os.PathLike[str]) -> Model:
    """A model from a file (YAML or JSON), "-" for standard input, or a bundled model's
    name ("resnet50"; `convcalc models` lists them).

    >>> load("resnet18").name
    'resnet18'
    """
    from convcalc.opening import open_model

    return open_model(os.fspath(source))


def loads(text: str, name: str | None = None) -> Model:
    """A model from the text of a model file; `name` is the file name messages give.

    >>> model = loads("input: [3, 32, 32]\\nlayers:\\n  - conv: {out_channels: 8, kernel_size: 3}")
    >>> analyze(model).output_shape
    (8, 30, 30)
    """
    from convcalc.loader import build_model
    from convcalc.source import parse

    return build_model(parse(text, name))


def from_dict(data: dict[str, Any]) -> Model:
    """A model from plain data shaped like a model file (SPEC §2): `{"input": [...],
    "layers": [...]}`."""
    from convcalc.loader import build_model
    from convcalc.source import Document

    return build_model(Document(data))


def analyze(
    model: Model | Layer, input_shape: Sequence[int] | None = None, batch: int = 1
) -> Analysis:
    """Every row's shapes, params, MACs and receptive field, the totals and the warnings.

    `model` is a model (its own input shape, unless `input_shape` is given) or a single
    layer (then `input_shape` is needed). `input_shape` is channels first, without the
    batch: (3, 224, 224). `batch` scales only the memory figures.
    """
    from convcalc.errors import ConvcalcError
    from convcalc.loader import check_shape

    shape = check_shape(list(input_shape)) if input_shape is not None else None
    if isinstance(model, Layer):
        if shape is None:
            raise ConvcalcError(
                "a single layer needs an input shape: analyze(layer, (3, 224, 224))"
            )
        return analyze_layer(model, shape, batch)
    return _analyze(model, shape, batch)
