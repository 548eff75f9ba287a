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

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from convcalc.analysis import analyze as analysis
from convcalc.errors import ConvcalcError
from convcalc.model.layers import Layer
from convcalc.model.network import Model

if TYPE_CHECKING:
    from convcalc.render.network import NetworkTable

__all__ = ["Analysis", "analyze", "from_dict", "load", "loads"]


class Analysis(analysis.Analysis):
    """What `analyze` returns: the numbers (`rows`, `totals`, `receptive_field`,
    `outputs`, `warnings`), and the table people read, as `convcalc net` prints it:
    `summary()` gives its text, and Jupyter (`_repr_html_`) and Rich (`__rich__`) show it.

    The numbers are the core's `Analysis`, which knows nothing of tables: the methods
    here import the renderer when called, so that imports point one way (analysis, then
    rendering) and `analyze` costs nothing for them.

    The seed's two 3×3 convolutions on a 5×5 input: 3·3 + 1 = 10 params each, 9 MACs
    for each of the first's 3×3 outputs and for the second's one:

    >>> print(analyze(from_dict({"input": [1, 5, 5], "layers": [
    ...     {"conv": {"name": "c1", "out_channels": 1, "kernel_size": 3}},
    ...     {"conv": {"name": "c2", "out_channels": 1, "kernel_size": 3}}]})).summary())
    input 1×5×5 → output 1×1×1
                     Output                       Eff.    Eff.
    Layer  Kind      shape   Params  MACs  Field  stride  padding
    ─────────────────────────────────────────────────────────────
    c1     conv      1×3×3       10    81  3      1       0
    c2     conv      1×1×1       10     9  5      1       0
    ─────────────────────────────────────────────────────────────
    Total  2 layers              20    90
    Params 20 ...
    Receptive field: 5, effective stride 1, effective padding 0
    """

    @classmethod
    def of(cls, found: analysis.Analysis) -> Analysis:
        return cls(
            **{field.name: getattr(found, field.name) for field in dataclasses.fields(found)}
        )

    def table(self, depth: int | Literal["all"] = 2) -> NetworkTable:
        """The table as Rich renders it (`rich.print(result.table(depth="all"))`): rows
        down to `depth` levels of names, as `convcalc net --depth`."""
        from convcalc.render.network import NetworkTable

        return NetworkTable(self, _depth(depth), asker="api")

    def summary(self, depth: int | Literal["all"] = 2, width: int | None = None) -> str:
        """The table's text, as `convcalc net --depth DEPTH` prints it to a pipe: rows down
        to `depth` levels of names (2: ResNet's `layer1.0`; "all": every layer), within
        `width` columns (None: as wide as it needs), then totals, field and warnings."""
        if width is not None and (isinstance(width, bool) or not isinstance(width, int)):
            raise ConvcalcError(f"width: expected a whole number of columns, got {width!r}")
        return self.table(depth).text(width)

    def __rich__(self) -> NetworkTable:
        return self.table()

    def _repr_html_(self) -> str:
        """Jupyter shows an analysis as its table, with every column."""
        return self.table().to_html()


def _depth(depth: object) -> int | None:
    if depth == "all":
        return None
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConvcalcError(
            f'depth: expected a whole number of at least 1, or "all"; got {depth!r}'
        )
    return depth


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
    from convcalc.loader import check_shape

    shape = check_shape(list(input_shape)) if input_shape is not None else None
    if isinstance(model, Layer):
        if shape is None:
            raise ConvcalcError(
                "a single layer needs an input shape: analyze(layer, (3, 224, 224))"
            )
        return Analysis.of(analysis.analyze_layer(model, shape, batch))
    return Analysis.of(analysis.analyze(model, shape, batch))
