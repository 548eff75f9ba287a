"""Walk a model once, in execution order, and gather everything the renderers show.

Every number in every output format comes from the `Analysis` built here; renderers
only format it.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from convcalc.analysis.context import (
    Coverage,
    Positions,
    Reach,
    everywhere,
    in_the_middle,
    joined,
    reach_through,
    widened,
)
from convcalc.analysis.field import AxisField, Field
from convcalc.analysis.gridding import Run
from convcalc.errors import ConvcalcError, Where
from convcalc.model.axes import AXIS_NAMES, Interpolation, Window
from convcalc.model.layers import POINTWISE, Effect, Layer, Shape, SizeRule, format_shape
from convcalc.model.network import INPUT, INPUT_NAME, Merge, Model, Node, Place

__all__ = [
    "BYTES_PER_ELEMENT",
    "Analysis",
    "Diagnostic",
    "Output",
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
    effective_stride: tuple[int | Fraction, ...]  # a Fraction only where not whole
    effective_padding: tuple[int | Fraction, ...]

    @staticmethod
    def of(fields: tuple[AxisField, ...]) -> ReceptiveField:
        axes = [field.summary() for field in fields]
        return ReceptiveField(
            tuple(a.size for a in axes),
            tuple(_whole(a.effective_stride) for a in axes),
            tuple(_whole(a.effective_padding) for a in axes),
        )


def _whole(value: Fraction) -> int | Fraction:
    """A plain int where the value is whole (2, not Fraction(2, 1)): what a notebook
    shows; a Fraction where it is not (1/2, after a transposed convolution)."""
    return value.numerator if value.denominator == 1 else value


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
    # SPEC §6: the dotted name (the path where nothing names the row), the qualified names
    # of what it reads ("input": the model's input), and whether its units also see the
    # whole input through a global path (a global pooling).
    qualified_name: str = ""
    inputs: tuple[str, ...] = ()
    global_context: bool = False


@dataclass(frozen=True)
class Diagnostic:
    """A warning about a silent mistake, with a stable code, at the row of `path` (whose
    qualified name is `name`)."""

    path: str
    code: str
    message: str
    name: str = ""


@dataclass(frozen=True)
class Totals:
    """The whole network's sums: parameters, MACs and activation elements."""

    params: int
    macs: int
    activations: int  # output elements of every row, for one sample
    batch: int
    # Parameters of an imported module that its forward never uses (SPEC §6.6).
    unused_params: int = 0

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
class Output:
    """One output of the network (SPEC §6.6): the qualified name of the node it is,
    its shape, its local field, and whether it also sees the whole input."""

    name: str
    shape: Shape
    receptive_field: ReceptiveField | None
    global_context: bool
    fields: tuple[AxisField, ...] | None = None


@dataclass(frozen=True, repr=False)
class Analysis:
    """Everything `net` reports: one row per layer or merge, totals, the field, warnings,
    and the outputs (the first is `output_shape` and, as far as it has one, the field)."""

    name: str | None
    input_shape: Shape
    output_shape: Shape
    rows: tuple[Row, ...]
    totals: Totals
    receptive_field: ReceptiveField | None
    warnings: tuple[Diagnostic, ...]
    outputs: tuple[Output, ...] = ()
    # The first row whose units also see the whole input through a global path, where
    # that reaches rows with a local field (a gate; not only a classifier's head).
    global_context_from: str | None = None
    # Whether the units of the network's field (the row `receptive_field` is of) see the
    # whole input through a global path too.
    global_context: bool = False

    def __repr__(self) -> str:
        # Short: a notebook shows this, and the rows of a ResNet run to 100,000 characters.
        return (
            f"Analysis(name={self.name!r}, input_shape={self.input_shape}, "
            f"output_shape={self.output_shape}, rows=<{len(self.rows)} rows>, "
            f"params={self.totals.params}, macs={self.totals.macs}, "
            f"receptive_field={self.receptive_field!r}, warnings=<{len(self.warnings)}>)"
        )


Fields = Field | None  # None: no local field (no spatial axes, or only a global path)


def _identity_fields(shape: Shape) -> Fields:
    return Field.identity(len(shape) - 1) if len(shape) > 1 else None


def _shapes(shapes: list[Shape], labels: tuple[str, ...]) -> str:
    return ", ".join(
        f"{format_shape(s)} ({label})" for s, label in zip(shapes, labels, strict=True)
    )


def _merge_shape(merge: Merge, shapes: list[Shape]) -> Shape:
    """The output of a merge: the common shape (add), the channels summed (concat), or
    the shapes broadcast (mul: each dimension equal, or 1 on one side)."""
    first = shapes[0]
    if merge.kind == "add":
        if any(shape != first for shape in shapes):
            raise ConvcalcError(
                f"{merge.block} needs every branch to give the same shape; got "
                + _shapes(shapes, merge.labels)
            )
        return first
    if merge.kind == "mul":
        if any(len(shape) != len(first) for shape in shapes):
            raise ConvcalcError(
                "mul needs inputs with the same number of dimensions; got "
                + _shapes(shapes, merge.labels)
            )
        output = tuple(max(sizes) for sizes in zip(*shapes, strict=True))
        if any(
            size not in (1, out)
            for shape in shapes
            for size, out in zip(shape, output, strict=True)
        ):
            raise ConvcalcError(
                "mul needs each dimension equal, or 1 where it is broadcast (a C×1×1 gate); "
                "got " + _shapes(shapes, merge.labels)
            )
        return output
    if any(len(shape) != len(first) or shape[1:] != first[1:] for shape in shapes):
        raise ConvcalcError(
            f"{merge.block} needs every branch to give the same spatial size; got "
            + _shapes(shapes, merge.labels)
        )
    return (sum(shape[0] for shape in shapes), *first[1:])


#: A spatial axis of size 1 broadcast by `mul`: every unit reads unit 0.
_BROADCAST = Interpolation(Fraction(0), "nearest")


class _Flow(NamedTuple):
    """What flows out of a node: the shape, the local field of every unit per spatial
    axis (None: none), which units also see the whole input through a global path
    (SPEC §6.5), and the current run of layers for gridding."""

    shape: Shape
    fields: Fields
    reach: Reach  # the units that also see the whole input through a global path
    run: Run | None


#: Warnings that say input pixels go unread: another branch that reads them forgives them.
_UNREAD = ("uncovered-input", "dropped-input")


class _Walk:
    """One pass down the model's nodes, in execution order (the `torch.fx` Interpreter
    pattern): the flow out of every node, the rows and the warnings."""

    def __init__(self, model: Model, input_shape: Shape) -> None:
        self.model = model
        self.input_shape = input_shape
        self.rows: list[Row] = []
        self.warnings: list[Diagnostic] = []
        self.warned_at: list[int] = []  # the node of each warning
        self.unread = 0  # how many of them say that input pixels go unread
        # Summaries by the identity of the fields they summarise (kept alive here).
        self.field_cache: dict[int, tuple[Field, ReceptiveField]] = {}
        # What each layer does to each shape it meets: networks repeat both a lot. Keyed by
        # the layer's identity: the loader shares equal layers, and a layer's hash would
        # hash all its parameters at every row. The model keeps its layers alive.
        # With each effect: whether every window is pointwise (the field passes unchanged).
        self.effects: dict[tuple[int, Shape], tuple[Effect, bool]] = {}
        self.exceeded = False  # field-exceeds-input is said once, where it first happens
        self.gridded: set[str] = set()  # runs already warned about, by their last layer
        self.index_of: dict[str, int] = {}  # row index by path, for gridding warnings
        self.flows: list[_Flow] = []
        # Per node, its windows (None: a merge, or every unit reads the whole input) and
        # output shape, for `coverage`, made at the first global pooling.
        self.windows: list[tuple[Window, ...] | None] = []
        self.shapes: list[Shape] = []
        self.coverage: Coverage | None = None
        # Which units read a span of units, by window and span (networks repeat both).
        self.reach_known: dict[tuple[int, int, Positions], Positions] = {}
        ndim = len(input_shape) - 1
        self.start = _Flow(
            input_shape, _identity_fields(input_shape), None, Run.start(ndim) if ndim else None
        )

    def run(self) -> list[_Flow]:
        """The flow out of every node."""
        flows = self.flows
        nodes = self.model.nodes
        start = self.start
        for index, node in enumerate(nodes):
            if type(node.op) is Merge:
                flow = self.merge(index, node, [start if i < 0 else flows[i] for i in node.inputs])
            else:
                read = node.inputs[0]
                flow = self.leaf(index, node, start if read < 0 else flows[read])
            flows.append(flow)
        return flows

    def _flow(self, index: int) -> _Flow:
        return self.start if index == INPUT else self.flows[index]

    def leaf(self, index: int, node: Node, flow: _Flow) -> _Flow:
        layer = node.op
        assert not isinstance(layer, Merge)
        path = node.place.path
        try:
            if node.like is not None:  # upsample: {like: …}, to that node's spatial size
                like = self._flow(node.like)
                layer = dataclasses.replace(layer, size=like.shape[1:])  # type: ignore[call-arg]
            key = (id(layer), flow.shape)
            known = self.effects.get(key) if node.like is None else None
            if known is None:
                effect = layer.apply(flow.shape)
                windows = effect.windows
                pointwise = windows is not None and all(w == POINTWISE for w in windows)
                known = (effect, pointwise)
                if node.like is None:
                    self.effects[key] = known
            effect, pointwise = known
            if flow.fields is None or effect.windows is None or len(effect.output_shape) < 2:
                fields = None
            elif pointwise:
                fields = flow.fields  # the same object, so its summary is reused
            else:
                fields = flow.fields.through(effect.windows, effect.output_shape[1:])
        except ConvcalcError as error:
            raise error.at(node.where) from None
        if effect.findings:
            for finding in effect.findings:
                self.warn(index, path, finding.code, finding.message)
        run = flow.run
        if run is not None and not pointwise:  # a pointwise layer leaves the run as it is
            if effect.windows is None or len(effect.output_shape) < 2:
                self.close(run)
                run = None
            else:
                run, ended = run.through(effect.windows, path)
                if ended is not None:
                    self.close(ended)
        # A layer whose every unit reads its whole input (a global pooling, statistics
        # over every position) brings in global context to all its units, if the units
        # it reads see every input position between them; it passes on to the units
        # that read a unit that has it.
        output = effect.output_shape
        if effect.windows is None or layer.global_statistics():
            if flow.reach is not None or (len(self.input_shape) > 1 and self.sees_everything(node)):
                reach = everywhere(output)
            else:
                reach = None
        else:
            reach = reach_through(
                flow.reach, effect.windows, output[1:], flow.shape[1:], self.reach_known
            )
        self.windows.append(effect.windows)
        self.shapes.append(output)
        self.add_row(node, layer.kind, flow, effect, fields, in_the_middle(reach, output))
        return _Flow(output, fields, reach, run)

    def sees_everything(self, node: Node) -> bool:
        """Whether the units `node` reads see every input position between them."""
        if self.coverage is None:
            self.coverage = Coverage(self.model.nodes, self.windows, self.shapes, self.input_shape)
        return self.coverage.sees_everything(node.inputs[0])

    def merge(self, index: int, node: Node, flows: list[_Flow]) -> _Flow:
        merge = node.op
        assert isinstance(merge, Merge)
        self.forgive_unread(index, node)
        try:
            effect = Effect(_merge_shape(merge, [flow.shape for flow in flows]))
        except ConvcalcError as error:
            raise error.at(node.where) from None
        output = effect.output_shape
        for flow in flows:
            if flow.run is not None:
                self.close(flow.run)
        merged = self.union(node, output, flows)
        reach = joined([widened(flow.reach, flow.shape[1:], output[1:]) for flow in flows])
        self.windows.append(None)
        self.shapes.append(output)
        # A block's merge row reports the block's input; a merge in graph form its first.
        entry = flows[0] if node.entry is None else self._flow(node.entry)
        self.add_row(node, merge.kind, entry, effect, merged, in_the_middle(reach, output))
        return _Flow(output, merged, reach, Run.start(len(output) - 1) if len(output) > 1 else None)

    def forgive_unread(self, index: int, node: Node) -> None:
        """Pixels one branch never reads are not lost if another branch reads them (a
        ResNet shortcut's 1×1 stride-2 convolution beside its body): such a warning
        stands only where every branch into the merge has one of its kind.

        A branch is what lies on the paths from one input of the merge back to where
        they meet the other inputs' paths. Found only while such warnings stand.
        """
        if not self.unread:
            return
        pending = [i for i, w in enumerate(self.warnings) if w.code in _UNREAD]
        branches = _branches(self.model.nodes, node.inputs)
        forgiven: set[int] = set()
        for code in _UNREAD:
            found = [
                {
                    i
                    for i in pending
                    if self.warnings[i].code == code and self.warned_at[i] in branch
                }
                for branch in branches
            ]
            if not all(found):
                forgiven.update(*found)
        if forgiven:
            self.unread -= len(forgiven)
            keep = [i for i in range(len(self.warnings)) if i not in forgiven]
            self.warnings = [self.warnings[i] for i in keep]
            self.warned_at = [self.warned_at[i] for i in keep]

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
            self.index_of.get(last, -1),
            last,
            "gridding",
            f"the dilated layers {run.dilated[0][0]} … {last} (dilations {dilations}) leave "
            f"holes in the field on axis {', '.join(names[a] for a in holes)}: units read "
            "only a lattice of the input (gridding, Wang et al. 2018); use dilations "
            "without a common factor above 1, such as 1, 2, 5, or a dense layer first",
        )

    def union(self, node: Node, output: Shape, flows: list[_Flow]) -> Fields:
        """The union of the local fields of what a merge reads (SPEC §3, §6.5), warning
        where they do not align. A spatial axis that `mul` broadcasts from size 1 is
        read at unit 0 by every unit."""
        merge = node.op
        assert isinstance(merge, Merge)
        if len(output) < 2:
            return None
        known: list[Field] = []
        labels: list[str] = []
        for flow, label in zip(flows, merge.labels, strict=True):
            fields = flow.fields
            if fields is None:
                continue  # no local field: only a global path, or nothing spatial
            if flow.shape[1:] != output[1:]:  # broadcast by mul
                windows = [
                    POINTWISE if size == out else _BROADCAST
                    for size, out in zip(flow.shape[1:], output[1:], strict=True)
                ]
                fields = fields.through(windows, output[1:])
            known.append(fields)
            labels.append(label)
        if not known:
            return None
        if all(fields == known[0] for fields in known[1:]):
            return known[0]  # one field (a 1×1 convolution beside its input): itself
        simple = self.simple_union(node, known, labels)
        if simple is not None:
            return simple
        merged = Field.merge(known, output[1:])
        path = node.place.path
        axes = list(zip(*(branch.axes for branch in known), strict=True))  # per axis, by branch
        for axis, union, per_branch in zip(AXIS_NAMES[len(axes)], merged.axes, axes, strict=True):
            strides = {f.effective_stride for f in per_branch}
            if len(strides) > 1:
                listed = ", ".join(
                    f"{f.effective_stride} ({label})"
                    for f, label in zip(per_branch, labels, strict=True)
                )
                self.warn(
                    -1,
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
                    for f, label in zip(per_branch, labels, strict=True)
                    if (found := f.mean_edges(union.period)) is not None
                }
                centres = {label: (first + last) / 2 for label, (first, last) in edges.items()}
                # Causal branches (WaveNet's dilated body beside its identity) end at the
                # same position by design: sharing an edge is aligned too.
                shared_edge = any(len({e[side] for e in edges.values()}) == 1 for side in (0, 1))
                if len(set(centres.values())) > 1 and not shared_edge:
                    listed = ", ".join(f"{c} ({label})" for label, c in centres.items())
                    self.warn(
                        -1,
                        path,
                        "unaligned-branches",
                        f"the branches of this {merge.block} are centred on different input "
                        f"positions on axis {axis} (mean centres {listed}) and share no edge; "
                        "padding or cropping differs between them",
                    )
        return merged

    def simple_union(self, node: Node, known: list[Field], labels: list[str]) -> Field | None:
        """The union of the common case, in integers: every branch a chain of integer
        strides (one box, period 1, seeing something) at the same effective stride. None
        where that is not the case (the general union below then also warns)."""
        axes = []
        centred: list[int] = []  # the axes on which the branches' centres differ
        for axis in range(len(known[0].axes)):
            fields = [branch.axes[axis] for branch in known]
            shift = fields[0].shift
            if any(
                len(branch.terms) > 1
                or f.period > 1
                or f.shift != shift
                or f.firsts[0] > f.lasts[0]
                for branch, f in zip(known, fields, strict=True)
            ):
                return None
            firsts = [f.firsts[0] for f in fields]
            lasts = [f.lasts[0] for f in fields]
            # Causal branches (WaveNet's dilated body beside its identity) end at the same
            # position by design: sharing an edge is aligned too.
            shared_edge = len(set(firsts)) == 1 or len(set(lasts)) == 1
            if not shared_edge and len({f + t for f, t in zip(firsts, lasts, strict=True)}) > 1:
                centred.append(axis)
            axes.append(AxisField(shift, (min(firsts),), (max(lasts),)))
        if centred:
            return None  # the general path says where
        term = tuple(axes)
        return Field((term,), term)

    def warn(self, index: int, path: str, code: str, message: str) -> None:
        self.warnings.append(Diagnostic(path, code, message))
        self.warned_at.append(index)
        self.unread += code in _UNREAD

    def add_row(
        self,
        node: Node,
        kind: str,
        flow: _Flow,
        effect: Effect,
        fields: Fields,
        global_context: bool,
    ) -> None:
        path = node.place.path
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
                    len(self.rows),
                    path,
                    "field-exceeds-input",
                    f"from here on the receptive field is larger than the input "
                    f"({'; '.join(over)}): every unit's field reaches into the padding, and "
                    "at the border mostly padding; a larger input keeps the field inside",
                )
        self.index_of[path] = len(self.rows)
        self.rows.append(
            Row(
                path,
                kind,
                node.name,
                flow.shape,
                effect.output_shape,
                effect.params,
                effect.macs,
                field,
                self.summary(flow.fields),
                effect.rules,
                fields.axes if fields is not None else None,
                node.qualified_name,
                tuple(self.name_of(i) for i in node.inputs),
                global_context,
            )
        )

    def name_of(self, index: int) -> str:
        return INPUT_NAME if index == INPUT else self.model.nodes[index].qualified_name

    def summary(self, fields: Fields) -> ReceptiveField | None:
        if fields is None:
            return None
        # Shape-keeping layers pass the same fields on: summarise them once.
        cached = self.field_cache.get(id(fields))
        if cached is None:
            cached = self.field_cache[id(fields)] = (fields, ReceptiveField.of(fields.axes))
        return cached[1]


def _branches(nodes: Sequence[Node], inputs: tuple[int, ...]) -> list[set[int]]:
    """For each input of a merge, the nodes on its paths back to where they meet the
    paths of every other input (not those shared by all): a walk back in execution
    order from the inputs, which stops at nodes that every input reaches."""
    everyone = (1 << len(inputs)) - 1
    reach: dict[int, int] = {}
    for bit, read in enumerate(inputs):
        reach[read] = reach.get(read, 0) | 1 << bit
    branches: list[set[int]] = [set() for _ in inputs]
    waiting = [-read for read in reach]
    heapq.heapify(waiting)
    seen = set(reach)
    while waiting:
        index = -heapq.heappop(waiting)  # the latest first: all its readers are done
        mask = reach[index]
        if mask == everyone or index == INPUT:
            continue
        for bit in range(len(inputs)):
            if mask >> bit & 1:
                branches[bit].add(index)
        for read in nodes[index].inputs:
            reach[read] = reach.get(read, 0) | mask
            if read not in seen:
                seen.add(read)
                heapq.heappush(waiting, -read)
    return branches


def analyze(model: Model, input_shape: Shape | None = None, batch: int = 1) -> Analysis:
    """Run `model` on `input_shape` (default: the model's own) arithmetically."""
    shape = input_shape or model.input_shape
    if shape is None:
        raise ConvcalcError(
            "no input shape: give --input (3x224x224) or 'input: [3, 224, 224]' in the model",
            model.where,
        )
    walk = _Walk(model, shape)
    flows = walk.run()
    for output in model.outputs:
        run = (walk.start if output == INPUT else flows[output]).run
        if run is not None:
            walk.close(run)
    rows = tuple(walk.rows)
    totals = Totals(
        params=sum(row.params for row in rows),
        macs=sum(row.macs for row in rows),
        activations=sum(math.prod(row.output_shape) for row in rows),
        batch=batch,
        unused_params=sum(count for _, count in model.unused_params),
    )
    outputs = tuple(
        Output(
            walk.name_of(index),
            flow.shape,
            walk.summary(flow.fields),
            in_the_middle(flow.reach, flow.shape),
            flow.fields.axes if flow.fields is not None else None,
        )
        for index in model.outputs
        for flow in ((walk.start if index == INPUT else flows[index]),)
    )
    # The network's field is that of the last row before its first output that has one
    # (for ResNet-50 at 224×224, the output of its last block; SPEC §3, §6.6).
    first = _ancestors(model.nodes, model.outputs[0])
    last = next((rows[i] for i in reversed(first) if rows[i].receptive_field), None)
    field = last.receptive_field if last is not None else None
    names = {row.path: row.qualified_name for row in rows}
    warnings = (
        *(dataclasses.replace(w, name=names.get(w.path, w.path)) for w in walk.warnings),
        *_import_warnings(model),
    )
    # Worth saying where global context reaches rows that keep a local field (gates,
    # ASPP), not only a classifier's head after its global pooling.
    gated = any(row.global_context and row.receptive_field is not None for row in rows)
    first_global = next((row.qualified_name for row in rows if row.global_context), None)
    if not gated:
        first_global = None
    return Analysis(
        model.name,
        shape,
        outputs[0].shape,
        rows,
        totals,
        field,
        warnings,
        outputs,
        first_global,
        last is not None and last.global_context,
    )


def _import_warnings(model: Model) -> list[Diagnostic]:
    """What an importer left out, said (SPEC §6.6)."""
    found = []
    if model.unused_params:
        modules = ", ".join(f"{name} ({count:,})" for name, count in model.unused_params[:5])
        more = len(model.unused_params) - 5
        total = sum(count for _, count in model.unused_params)
        found.append(
            Diagnostic(
                "",
                "unused-parameters",
                f"the forward never uses the parameters of {modules}"
                + (f" and {more:,} more modules" if more > 0 else "")
                + f": {total:,} parameters, counted in unused_params, not in params",
            )
        )
    if model.dropped:
        names = ", ".join(model.dropped[:5])
        more = len(model.dropped) - 5
        found.append(
            Diagnostic(
                "",
                "dead-branches",
                f"the forward computes {names}"
                + (f" and {more:,} more" if more > 0 else "")
                + " without any output reading the result: left out",
            )
        )
    return found


def _ancestors(nodes: Sequence[Node], output: int) -> list[int]:
    """The nodes `output` depends on, itself included, in execution order."""
    if output == INPUT:
        return []
    live = [False] * (output + 1)
    live[output] = True
    for index in range(output, -1, -1):
        if live[index]:
            for read in nodes[index].inputs:
                if read != INPUT:
                    live[read] = True
    return [index for index, alive in enumerate(live) if alive]


def analyze_layer(layer: Layer, input_shape: Shape, batch: int = 1) -> Analysis:
    """One layer on its own, as `convcalc layer` shows it: its row has the path "layer"."""
    node = Node(layer, (INPUT,), Place("layer"), None, "layer")
    return analyze(Model((node,), (0,), Where()), input_shape, batch)
