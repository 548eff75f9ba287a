"""Walk a model once, in execution order, and gather everything the renderers show.

Every number in every output format comes from the `Analysis` built here; renderers
only format it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from convcalc.analysis.field import AxisField, Field
from convcalc.analysis.gridding import Run
from convcalc.errors import ConvcalcError, Where
from convcalc.model.axes import AXIS_NAMES
from convcalc.model.layers import POINTWISE, Effect, Layer, Shape, SizeRule, format_shape
from convcalc.model.network import Leaf, Merge, Model, Node, Place, Repeat

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


# Rows and flows are made once per layer: as named tuples they cost a fifth of a frozen
# dataclass to make (100,000-layer models, issue 5), and are as immutable.
class Row(NamedTuple):
    """One leaf layer, or the merge of a block, as it runs on the model's input."""

    path: str
    kind: str
    name: str | None
    input_shape: Shape
    output_shape: Shape
    params: int
    macs: int
    receptive_field: ReceptiveField | None
    # For --explain: the field of the row's input, and how each axis's size follows.
    input_field: ReceptiveField | None = None
    rules: tuple[SizeRule, ...] = ()
    # For pictures and tests: per spatial axis, the exact first … last input position the
    # units at each index see (`Field.axes`; the summary above keeps only the largest).
    fields: tuple[AxisField, ...] | None = None


@dataclass(frozen=True)
class Diagnostic:
    """A warning about a silent mistake, with a stable code."""

    path: str
    code: str
    message: str


@dataclass(frozen=True)
class Totals:
    """The whole network's sums: parameters, MACs and activation elements."""

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
    """Everything `net` reports: one row per layer or merge, totals, the field, warnings."""

    name: str | None
    input_shape: Shape
    output_shape: Shape
    rows: tuple[Row, ...]
    totals: Totals
    receptive_field: ReceptiveField | None
    warnings: tuple[Diagnostic, ...]


Fields = Field | None  # None: the units see the whole input


def _identity_fields(shape: Shape) -> Fields:
    return Field.identity(len(shape) - 1) if len(shape) > 1 else None


def _shapes(shapes: list[Shape], labels: tuple[str, ...]) -> str:
    return ", ".join(
        f"{format_shape(s)} ({label})" for s, label in zip(shapes, labels, strict=True)
    )


def _merge_shape(merge: Merge, shapes: list[Shape]) -> Shape:
    """The output of a merge: the common shape (add), or the channels summed (concat)."""
    first = shapes[0]
    if merge.kind == "add":
        if any(shape != first for shape in shapes):
            raise ConvcalcError(
                f"{merge.block} needs every branch to give the same shape; got "
                + _shapes(shapes, merge.labels)
            )
        return first
    if any(len(shape) != len(first) or shape[1:] != first[1:] for shape in shapes):
        raise ConvcalcError(
            f"{merge.block} needs every branch to give the same spatial size; got "
            + _shapes(shapes, merge.labels)
        )
    return (sum(shape[0] for shape in shapes), *first[1:])


class _Flow(NamedTuple):
    """What flows from layer to layer: the shape, the field of every unit per spatial
    axis (None: the whole input), and the current run of layers for gridding."""

    shape: Shape
    fields: Fields
    run: Run | None


class _Walk:
    """One pass over the model: the rows and warnings gathered so far.

    Rows are named by their place in the model file; inside a `repeat` the iteration
    is added to the block's path (`layers[2].repeat[1].layers[0]`). `rename` maps the
    file path prefix of the current repeat iteration to that row path prefix.
    """

    def __init__(self, input_shape: Shape) -> None:
        self.input_shape = input_shape
        self.rows: list[Row] = []
        self.warnings: list[Diagnostic] = []
        # Summaries by the identity of the fields they summarise (kept alive here).
        self.field_cache: dict[int, tuple[Field, ReceptiveField]] = {}
        self.rename = ("", "")
        # What each layer does to each shape it meets: networks repeat both a lot. Keyed by
        # the layer's identity: the loader shares equal layers, and a layer's hash would
        # hash all its parameters at every row. The model keeps its layers alive.
        # With each effect: whether every window is pointwise (the field passes unchanged).
        self.effects: dict[tuple[int, Shape], tuple[Effect, bool]] = {}
        self.exceeded = False  # field-exceeds-input is said once, where it first happens
        self.gridded: set[str] = set()  # runs already warned about, by their last layer

    def start(self) -> _Flow:
        shape = self.input_shape
        ndim = len(shape) - 1
        return _Flow(shape, _identity_fields(shape), Run.start(ndim) if ndim else None)

    def path(self, place: Place) -> str:
        """The row path of a node: its path in the file, with repeat iterations."""
        old, new = self.rename
        return new + place.path[len(old) :]

    def where(self, place: Place) -> Where:
        """The node's place for a message: file and line, and its row path."""
        found = place.where
        return Where(self.path(place), found.file, found.line)

    def nodes(self, nodes: tuple[Node, ...], flow: _Flow) -> _Flow:
        for node in nodes:
            if isinstance(node, Leaf):
                flow = self.leaf(node, flow)
            elif isinstance(node, Repeat):
                flow = self.repeat(node, flow)
            else:
                flow = self.merge(node, flow)
        return flow

    def leaf(self, leaf: Leaf, flow: _Flow) -> _Flow:
        path = self.path(leaf.place)
        try:
            key = (id(leaf.layer), flow.shape)
            known = self.effects.get(key)
            if known is None:
                effect = leaf.layer.apply(flow.shape)
                windows = effect.windows
                pointwise = windows is not None and all(w is POINTWISE for w in windows)
                known = self.effects[key] = (effect, pointwise)
            effect, pointwise = known
            if flow.fields is None or effect.windows is None or len(effect.output_shape) < 2:
                fields = None
            elif pointwise:
                fields = flow.fields  # the same object, so its summary is reused
            else:
                fields = flow.fields.through(effect.windows, effect.output_shape[1:])
        except ConvcalcError as error:
            raise error.at(self.where(leaf.place)) from None
        if effect.findings:
            self.warnings.extend(Diagnostic(path, f.code, f.message) for f in effect.findings)
        run = flow.run
        if run is not None and not pointwise:  # a pointwise layer leaves the run as it is
            if effect.windows is None or len(effect.output_shape) < 2:
                self.close(run)
                run = None
            else:
                run, ended = run.through(effect.windows, path)
                if ended is not None:
                    self.close(ended)
        self.add_row(path, leaf.layer.kind, leaf.name, flow, effect, fields)
        return _Flow(effect.output_shape, fields, run)

    def repeat(self, repeat: Repeat, flow: _Flow) -> _Flow:
        outer = self.rename
        block = self.path(repeat.place)
        for iteration in range(repeat.times):
            self.rename = (f"{repeat.place.path}.repeat", f"{block}.repeat[{iteration}]")
            rows = len(self.rows)
            flow = self.nodes(repeat.layers, flow)
            if len(self.rows) == rows:
                break  # nothing inside (only empty lists): every other time is the same nothing
        self.rename = outer
        return flow

    def merge(self, merge: Merge, flow: _Flow) -> _Flow:
        outputs = []
        warned = []  # the warnings each branch added
        for branch in merge.branches:
            first = len(self.warnings)
            outputs.append(self.nodes(branch, flow))
            warned.append(range(first, len(self.warnings)))
        self.forgive_uncovered(warned)
        path = self.path(merge.place)
        try:
            effect = Effect(_merge_shape(merge, [out.shape for out in outputs]))
        except ConvcalcError as error:
            raise error.at(self.where(merge.place)) from None
        output = effect.output_shape
        for out in outputs:
            if out.run is not None:
                self.close(out.run)
        merged = self.union(merge, path, output, [out.fields for out in outputs])
        self.add_row(path, merge.kind, merge.name, flow, effect, merged)
        return _Flow(output, merged, Run.start(len(output) - 1) if len(output) > 1 else None)

    def forgive_uncovered(self, warned: list[range]) -> None:
        """Pixels one branch never reads are not lost if another branch reads them (a
        ResNet shortcut's 1×1 stride-2 convolution beside its body): such a warning
        stands only where every branch of the merge has one of its kind."""
        forgiven: set[int] = set()
        for code in ("uncovered-input", "dropped-input"):
            found = [{i for i in added if self.warnings[i].code == code} for added in warned]
            if not all(found):
                forgiven.update(*found)
        self.warnings = [w for i, w in enumerate(self.warnings) if i not in forgiven]

    def close(self, run: Run) -> None:
        """A run of layers at one resolution has ended: warn if its dilated layers left
        holes in the field."""
        holes = run.holes()
        if len(run.dilated) < 2 or not holes:
            return
        last = run.dilated[-1][0]
        if last in self.gridded:
            return
        self.gridded.add(last)
        names = AXIS_NAMES[len(run.offsets)]
        dilations = ", ".join("×".join(map(str, sorted(set(d)))) for _, d in run.dilated)
        self.warn(
            last,
            "gridding",
            f"the dilated layers {run.dilated[0][0]} … {last} (dilations {dilations}) leave "
            f"holes in the field on axis {', '.join(names[a] for a in holes)}: units read "
            "only a lattice of the input (gridding, Wang et al. 2018); use dilations "
            "without a common factor above 1, such as 1, 2, 5, or a dense layer first",
        )

    def union(self, merge: Merge, path: str, output: Shape, branches: list[Fields]) -> Fields:
        """The union of the branches' fields (SPEC §3), warning where they do not align."""
        known = [fields for fields in branches if fields is not None]
        if len(known) < len(branches) or len(output) < 2:
            return None
        merged = Field.merge(known, output[1:])
        axes = list(zip(*(fields.axes for fields in known), strict=True))  # per axis, by branch
        for axis, union, fields in zip(AXIS_NAMES[len(axes)], merged.axes, axes, strict=True):
            strides = {f.effective_stride for f in fields}
            if len(strides) > 1:
                listed = ", ".join(
                    f"{f.effective_stride} ({label})"
                    for f, label in zip(fields, merge.labels, strict=True)
                )
                self.warn(
                    path,
                    "unaligned-branches",
                    f"the branches of this {merge.block} step through the input at different "
                    f"rates on axis {axis}: effective strides {listed}; their units do not "
                    "see corresponding places",
                )
            else:
                # A branch whose units see nothing (empty units of a transposed
                # convolution, read at a stride) adds nothing to place.
                edges = {
                    label: found
                    for f, label in zip(fields, merge.labels, strict=True)
                    if (found := f.mean_edges(union.period)) is not None
                }
                centres = {label: (first + last) / 2 for label, (first, last) in edges.items()}
                # Causal branches (WaveNet's dilated body beside its identity) end at the
                # same position by design: sharing an edge is aligned too.
                shared_edge = any(len({e[side] for e in edges.values()}) == 1 for side in (0, 1))
                if len(set(centres.values())) > 1 and not shared_edge:
                    listed = ", ".join(f"{c} ({label})" for label, c in centres.items())
                    self.warn(
                        path,
                        "unaligned-branches",
                        f"the branches of this {merge.block} are centred on different input "
                        f"positions on axis {axis} (mean centres {listed}) and share no edge; "
                        "padding or cropping differs between them",
                    )
        return merged

    def warn(self, path: str, code: str, message: str) -> None:
        self.warnings.append(Diagnostic(path, code, message))

    def add_row(
        self, path: str, kind: str, name: str | None, flow: _Flow, effect: Effect, fields: Fields
    ) -> None:
        field = self.summary(fields)
        if field is not None and not self.exceeded:
            axes = AXIS_NAMES[len(field.size)]
            over = [
                f"{size} > {limit} on axis {axis}"
                for axis, size, limit in zip(axes, field.size, self.input_shape[1:], strict=True)
                if size > limit
            ]
            if over:
                self.exceeded = True
                self.warn(
                    path,
                    "field-exceeds-input",
                    f"from here on the receptive field is larger than the input "
                    f"({'; '.join(over)}): every unit's field reaches into the padding, and "
                    "at the border mostly padding; a larger input keeps the field inside",
                )
        self.rows.append(
            Row(
                path,
                kind,
                name,
                flow.shape,
                effect.output_shape,
                effect.params,
                effect.macs,
                field,
                self.summary(flow.fields),
                effect.rules,
                fields.axes if fields is not None else None,
            )
        )

    def summary(self, fields: Fields) -> ReceptiveField | None:
        if fields is None:
            return None
        # Shape-keeping layers pass the same fields on: summarise them once.
        cached = self.field_cache.get(id(fields))
        if cached is None:
            cached = self.field_cache[id(fields)] = (fields, ReceptiveField.of(fields.axes))
        return cached[1]


def analyze(model: Model, input_shape: Shape | None = None, batch: int = 1) -> Analysis:
    """Run `model` on `input_shape` (default: the model's own) arithmetically."""
    shape = input_shape or model.input_shape
    if shape is None:
        raise ConvcalcError(
            "no input shape: give --input (3x224x224) or 'input: [3, 224, 224]' in the model",
            model.where,
        )
    walk = _Walk(shape)
    end = walk.nodes(model.layers, walk.start())
    if end.run is not None:
        walk.close(end.run)
    rows = tuple(walk.rows)
    totals = Totals(
        params=sum(row.params for row in rows),
        macs=sum(row.macs for row in rows),
        activations=sum(math.prod(row.output_shape) for row in rows),
        batch=batch,
    )
    field = next((row.receptive_field for row in reversed(rows) if row.receptive_field), None)
    return Analysis(model.name, shape, end.shape, rows, totals, field, tuple(walk.warnings))


def analyze_layer(layer: Layer, input_shape: Shape, batch: int = 1) -> Analysis:
    """One layer on its own, as `convcalc layer` shows it: its row has the path "layer"."""
    return analyze(Model((Leaf(layer, Place("layer")),), Where()), input_shape, batch)
