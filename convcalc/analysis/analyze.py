"""Walk a model once, in execution order, and gather everything the renderers show.

Every number in every output format comes from the `Analysis` built here; renderers
only format it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from convcalc.analysis.field import AxisField
from convcalc.errors import ConvcalcError, Where
from convcalc.model.layers import Layer, Shape
from convcalc.model.network import Leaf, Model

__all__ = [
    "BYTES_PER_ELEMENT",
    "Analysis",
    "Diagnostic",
    "ReceptiveField",
    "Row",
    "Totals",
    "analyze",
    "analyze_layer",
]

#: Activations and parameters are counted as float32.
BYTES_PER_ELEMENT = 4


@dataclass(frozen=True)
class ReceptiveField:
    """Per spatial axis: output unit y sees input positions y·S − P … y·S − P + r − 1
    (size r, effective stride S, effective padding P; Araujo et al. 2019)."""

    size: tuple[int, ...]
    effective_stride: tuple[Fraction, ...]
    effective_padding: tuple[Fraction, ...]

    @staticmethod
    def of(fields: tuple[AxisField, ...]) -> ReceptiveField:
        axes = [field.summary() for field in fields]
        return ReceptiveField(
            tuple(a.size for a in axes),
            tuple(a.effective_stride for a in axes),
            tuple(a.effective_padding for a in axes),
        )


@dataclass(frozen=True)
class Row:
    """One leaf layer (or, later, a merge) as it runs on the model's input."""

    path: str
    kind: str
    name: str | None
    input_shape: Shape
    output_shape: Shape
    params: int
    macs: int
    receptive_field: ReceptiveField | None


@dataclass(frozen=True)
class Diagnostic:
    """A warning about a silent mistake, with a stable code."""

    path: str
    code: str
    message: str


@dataclass(frozen=True)
class Totals:
    params: int
    macs: int
    activations: int  # output elements of every row, for one sample
    batch: int

    @property
    def trainable_params(self) -> int:
        return self.params

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        return self.activations * self.batch * BYTES_PER_ELEMENT

    @property
    def param_bytes(self) -> int:
        return self.params * BYTES_PER_ELEMENT


@dataclass(frozen=True)
class Analysis:
    name: str | None
    input_shape: Shape
    output_shape: Shape
    rows: tuple[Row, ...]
    totals: Totals
    receptive_field: ReceptiveField | None
    warnings: tuple[Diagnostic, ...]


def _identity_fields(shape: Shape) -> tuple[AxisField, ...] | None:
    return tuple(AxisField.identity() for _ in shape[1:]) if len(shape) > 1 else None


class _Walk:
    """The state of one pass: the rows and warnings gathered so far."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.warnings: list[Diagnostic] = []
        self.field_cache: dict[tuple[AxisField, ...], ReceptiveField] = {}

    def leaf(
        self, leaf: Leaf, shape: Shape, fields: tuple[AxisField, ...] | None
    ) -> tuple[Shape, tuple[AxisField, ...] | None]:
        path = leaf.where.path
        try:
            effect = leaf.layer.apply(shape)
            if fields is None or effect.windows is None or len(effect.output_shape) < 2:
                fields = None
            else:
                fields = tuple(f.through(w) for f, w in zip(fields, effect.windows, strict=True))
        except ConvcalcError as error:
            raise error.at(leaf.where) from None
        self.warnings.extend(Diagnostic(path, f.code, f.message) for f in effect.findings)
        self.rows.append(
            Row(
                path,
                leaf.layer.kind,
                leaf.name,
                shape,
                effect.output_shape,
                effect.params,
                effect.macs,
                self.summary(fields),
            )
        )
        return effect.output_shape, fields

    def summary(self, fields: tuple[AxisField, ...] | None) -> ReceptiveField | None:
        if fields is None:
            return None
        # Shape-keeping layers pass the same fields on: summarise them once.
        if fields not in self.field_cache:
            self.field_cache[fields] = ReceptiveField.of(fields)
        return self.field_cache[fields]


def analyze(model: Model, input_shape: Shape | None = None, batch: int = 1) -> Analysis:
    """Run `model` on `input_shape` (default: the model's own) arithmetically."""
    shape = input_shape or model.input_shape
    if shape is None:
        raise ConvcalcError(
            "no input shape: give --input (3x224x224) or 'input: [3, 224, 224]' in the model",
            model.where,
        )
    walk = _Walk()
    current, fields = shape, _identity_fields(shape)
    for node in model.layers:
        current, fields = walk.leaf(node, current, fields)
    rows = tuple(walk.rows)
    totals = Totals(
        params=sum(row.params for row in rows),
        macs=sum(row.macs for row in rows),
        activations=sum(math.prod(row.output_shape) for row in rows),
        batch=batch,
    )
    field = next((row.receptive_field for row in reversed(rows) if row.receptive_field), None)
    return Analysis(model.name, shape, current, rows, totals, field, tuple(walk.warnings))


def analyze_layer(layer: Layer, input_shape: Shape, batch: int = 1) -> Analysis:
    """One layer on its own, as `convcalc layer` shows it: its row has the path "layer"."""
    return analyze(Model((Leaf(layer, Where("layer")),), Where()), input_shape, batch)
