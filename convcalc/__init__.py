"""convcalc: shapes, parameters, multiply-accumulates and receptive fields of
convolutional networks, exactly and without a deep learning framework.

    >>> from convcalc import load, analyze
    >>> analyze(load("resnet50")).totals.params
    25557032

The names below are imported when first used (PEP 562), so that the command line, which
imports this package too, starts without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time, `__getattr__` below
    from convcalc.analysis.analyze import ReceptiveField, Row
    from convcalc.api import Analysis, analyze, from_dict, load, loads
    from convcalc.errors import ConvcalcError
    from convcalc.imports.pytorch import from_torch
    from convcalc.model.layers import (
        ELU,
        GELU,
        SELU,
        AdaptiveAvgPool,
        AdaptiveMaxPool,
        AvgPool,
        BatchNorm,
        ChannelShuffle,
        ChannelSlice,
        Conv,
        ConvTranspose,
        Dropout,
        DropPath,
        Flatten,
        GroupNorm,
        Hardsigmoid,
        Hardswish,
        Identity,
        InstanceNorm,
        Layer,
        LayerNorm,
        LeakyReLU,
        Linear,
        LocalResponseNorm,
        MaxPool,
        Mish,
        Pad,
        PixelShuffle,
        PixelUnshuffle,
        PReLU,
        ReLU,
        ReLU6,
        Scale,
        Sigmoid,
        SiLU,
        Softmax,
        Softplus,
        Tanh,
        Unflatten,
        Upsample,
    )
    from convcalc.model.network import Model

__version__ = "0.1.0"

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "AdaptiveAvgPool",
    "AdaptiveMaxPool",
    "Analysis",
    "AvgPool",
    "BatchNorm",
    "ChannelShuffle",
    "ChannelSlice",
    "Conv",
    "ConvTranspose",
    "ConvcalcError",
    "DropPath",
    "Dropout",
    "Flatten",
    "GroupNorm",
    "Hardsigmoid",
    "Hardswish",
    "Identity",
    "InstanceNorm",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "MaxPool",
    "Mish",
    "Model",
    "PReLU",
    "Pad",
    "PixelShuffle",
    "PixelUnshuffle",
    "ReLU",
    "ReLU6",
    "ReceptiveField",
    "Row",
    "Scale",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "Unflatten",
    "Upsample",
    "__version__",
    "analyze",
    "from_dict",
    "from_torch",
    "load",
    "loads",
]

#: The module each public name comes from (the layer kinds: convcalc.model.layers).
_SOURCES = {
    **dict.fromkeys(("Analysis", "analyze", "from_dict", "load", "loads"), "convcalc.api"),
    **dict.fromkeys(("ReceptiveField", "Row"), "convcalc.analysis.analyze"),
    "ConvcalcError": "convcalc.errors",
    "from_torch": "convcalc.imports.pytorch",  # which imports torch only when called
    "Model": "convcalc.model.network",
}


def __dir__() -> list[str]:
    """The public API, for `dir(convcalc)` and completion in notebooks."""
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name, "convcalc.model.layers")
    if name not in __all__:
        raise AttributeError(f"module 'convcalc' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
