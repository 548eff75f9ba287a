"""An ONNX model → a convcalc model document (the plain data of a model file).

Each operator the network's data flows through becomes a layer entry (or a merge) with
PyTorch's parameters, computed from the operator's attributes and its initializers'
shapes; `graph.graph_document` lists them in graph form. On the way every layer is applied to
its input shape with convcalc's own arithmetic, and the parameters its initializers hold
must equal the parameters convcalc counts for it: a node that does not add up is an
error, never a silent approximation, and so is an operator convcalc cannot follow.

Operator semantics follow the ONNX operator specification (onnx.ai/onnx/operators),
quoted where a formula is written.
"""

from __future__ import annotations

import importlib
import math
import os
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from convcalc.errors import ConvcalcError, Where
from convcalc.imports.graph import MERGES, Node, graph_document
from convcalc.imports.onnx_constants import (
    SUBGRAPH_TYPES,
    Attributes,
    Constants,
    Operation,
    integers,
    module_scope,
    node_label,
    operator_name,
    reals,
    shown,
)
from convcalc.model.layers import Shape, format_shape

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto, TensorProto

__all__ = ["MAX_FILE_BYTES", "read_onnx"]

_T = TypeVar("_T")

_INSTALL = "pip install 'convcalc[onnx]'"

#: Bytes of an ONNX file: protobuf's limit on one message (a larger model keeps its
#: weights in external data, which convcalc does not read). The file is read in chunks
#: up to it, so that a device or a pipe named .onnx cannot fill the memory.
MAX_FILE_BYTES = 2**31 - 1


def read_onnx(path: str, input_shape: Shape | None = None) -> dict[str, Any]:
    """The model document of the ONNX model at `path`: `{"name", "input", "layers"}`.

    `input_shape` (channels first, without the batch) replaces the graph input's shape;
    it is needed when that shape has symbolic sizes. Nothing but the file itself is
    read: never external data.
    """
    try:
        import onnx
    except ImportError:
        raise ConvcalcError(
            f"{path}: reading ONNX files needs the onnx package: {_INSTALL}"
        ) from None
    # protobuf ships no type stubs; its DecodeError is all that is needed of it.
    decode_error: type[Exception] = importlib.import_module("google.protobuf.message").DecodeError
    data = _read(path)
    # The protobuf message alone: onnx.load would also follow external data.
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except decode_error:
        raise ConvcalcError(f"{path}: not an ONNX model (the file does not parse)") from None
    except MemoryError:
        raise ConvcalcError(f"{path}: too large to read in the memory there is") from None
    return _Importer(model, path).document(input_shape)


def _read(path: str) -> bytearray:
    """The bytes of the file, at most MAX_FILE_BYTES of them."""
    data = bytearray()
    too_large = ConvcalcError(
        f"{path}: larger than {MAX_FILE_BYTES:,} bytes, the most an ONNX file holds (larger "
        "models keep their weights in external data, which convcalc does not read)"
    )
    try:
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size > MAX_FILE_BYTES:
                raise too_large
            while chunk := file.read(1 << 24):
                data += chunk
                if len(data) > MAX_FILE_BYTES:
                    raise too_large
    except FileNotFoundError:
        raise ConvcalcError(f"{path}: no such file") from None
    except OSError as error:
        raise ConvcalcError(f"{path}: cannot read: {error.strerror}") from None
    except MemoryError:
        raise ConvcalcError(f"{path}: too large to read in the memory there is") from None
    if not data:
        raise ConvcalcError(f"{path}: the file is empty, not an ONNX model")
    return data


def _float(value: float) -> float:
    """A float32 attribute as the shortest decimal that rounds to it (0.01, not
    0.009999999776482582), as a person would write it in a model file."""
    single = struct.pack("<f", value)
    for digits in range(1, 9):
        short = float(f"{value:.{digits}g}")
        if struct.pack("<f", short) == single:
            return short
    return float(f"{value:.9g}")  # nine digits always tell float32 values apart


def _compact(values: Sequence[_T]) -> _T | list[_T]:
    """One number for every axis when they agree, else one per axis."""
    return values[0] if len(set(values)) == 1 else list(values)


def _padding(pairs: Sequence[tuple[int, int]]) -> Any:
    """[before, after] pairs as the shortest padding form of a model file."""
    if all(before == after for before, after in pairs):
        return _compact([before for before, _ in pairs])
    return [[before, after] for before, after in pairs]


def _same(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    """auto_pad SAME_UPPER / SAME_LOWER on one axis (ONNX Conv, MaxPool): output =
    ceil(input / stride), total padding (output − 1)·stride + (kernel − 1)·dilation + 1 −
    input (none if negative), the odd pixel after (UPPER) or before (LOWER)."""
    output = -(-size // stride)
    total = max((output - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


@dataclass(frozen=True)
class _Op:
    """A node being translated: where it is, its attributes, and its data inputs."""

    index: int
    node: NodeProto
    attrs: Attributes
    reads: tuple[str, ...]  # the computed values it reads, as the file names them
    value: str  # the first of them, after the nodes that pass it on unchanged
    shape: Shape  # that value's shape, channels first, without the batch

    @property
    def label(self) -> str:
        return node_label(self.node, self.index)


@dataclass(frozen=True)
class _Layer:
    """A node's translation: a layer entry, the initializers that are its parameters,
    the value it writes (a later node's, when that one is folded into it), and what
    names its row in its module where the node's own name does not."""

    entry: Any
    params: tuple[str, ...] = ()
    output: str | None = None
    label: str = ""


@dataclass(frozen=True)
class _Row:
    """A row as it is found: the node it comes from, and what `graph.Node` needs but
    its name, which is known once every row of its module is."""

    node: str  # the ONNX node's name
    label: str  # what names it within its module ("": the node's own part of its name)
    entry: Any
    inputs: tuple[str, ...]
    output: str
    params: int  # the parameters its initializers hold


#: Elementwise operators that are a convcalc kind as they are.
_SAME_KIND = {
    "Relu": "relu",
    "Tanh": "tanh",
    "HardSwish": "hardswish",
    "Identity": "identity",
}


class _Importer:
    def __init__(self, model: ModelProto, file: str) -> None:
        self.file = file
        if not model.HasField("graph"):
            raise self.fail(None, "the file holds no graph: not an ONNX model")
        self.graph = model.graph
        self.opset = self.default_opset(model)
        self.initializers: dict[str, TensorProto] = {}
        for tensor in self.graph.initializer:
            name = self.text(tensor.name, "the name of an initializer")
            if name in self.initializers:
                raise self.fail(None, f"two initializers are named {shown(name)}")
            self.initializers[name] = tensor
        self.operations = [
            Operation(index, node, tuple(node.input), tuple(node.output))
            for index, node in enumerate(self.graph.node)
        ]
        self.producers: dict[str, Operation] = {}
        self.consumers: dict[str, list[NodeProto]] = {}
        self.check_nodes()
        self.outputs = [
            self.text(value.name, "the name of a graph output") for value in self.graph.output
        ]
        self.data: set[str] = set()  # the values computed from the network's input
        self.constants = Constants(self.initializers, self.producers, self.data, self.opset)
        self.shapes: dict[str, Shape] = {}
        self.folded: set[int] = set()  # nodes translated with the node before them
        # A Pad's output → its [before, after] pairs per spatial axis and its mode,
        # for the Conv or pool that takes them as its own padding.
        self.pads: dict[str, tuple[tuple[tuple[int, int], ...], str]] = {}
        # A value that is another one unchanged (a folded Pad's output, x·1, a Transpose
        # to channels last) → that one.
        self.skip_to: dict[str, str] = {}
        # Values in channels-last layout (after a Transpose such as ConvNeXt's permute);
        # their shapes are kept channels first, as convcalc's layers see them.
        self.last: set[str] = set()
        self.batch: int | None = None
        self.rows: list[_Row] = []

    # -- errors and values ----------------------------------------------------------

    def fail(self, op: _Op | None, message: str) -> ConvcalcError:
        return ConvcalcError(message, Where(op.label if op else "", self.file))

    def text(self, value: str | bytes, what: str, where: str = "") -> str:
        """A name of the file: protobuf hands over as bytes what is not UTF-8 text."""
        if isinstance(value, bytes):
            raise ConvcalcError(
                f"{what} is not UTF-8 text: {shown(value)}", Where(where, self.file)
            )
        return value

    def default_opset(self, model: ModelProto) -> int:
        """The opset of the default domain, which says what each operator means."""
        from onnx import __version__, defs

        versions: list[int] = [
            entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")
        ]
        if not versions:
            raise self.fail(
                None, "imports no opset of the default domain (ai.onnx), as every ONNX model does"
            )
        newest = defs.onnx_opset_version()
        if not 1 <= versions[0] <= newest:
            raise self.fail(
                None,
                f"imports opset {versions[0]} of the default domain; onnx {__version__} "
                f"knows opsets 1 to {newest}",
            )
        return versions[0]

    def check_nodes(self) -> None:
        """Every name is text, every value is written once and before it is read (so
        the nodes are in order and form no cycle), and no node holds a subgraph."""
        written = set(self.initializers)
        for value in self.graph.input:
            written.add(self.text(value.name, "the name of a graph input"))
        everywhere = {name for operation in self.operations for name in operation.outputs}
        for operation in self.operations:
            index, node, inputs, outputs = (
                operation.index,
                operation.node,
                operation.inputs,
                operation.outputs,
            )
            for text, what in (
                (node.name, "its name"),
                (node.op_type, "its operator"),
                (node.domain, "its domain"),
                *((name, "the name of a value it reads or writes") for name in inputs + outputs),
                *((attribute.name, "the name of an attribute") for attribute in node.attribute),
            ):
                self.text(text, what, f"node #{index}")
            problem = self.misfit(operation, written, everywhere)
            if problem:
                raise ConvcalcError(problem, Where(node_label(node, index), self.file))
            for name in inputs:
                self.consumers.setdefault(name, []).append(node)
            for name in outputs:
                if name:
                    written.add(name)
                    self.producers[name] = operation

    @staticmethod
    def misfit(operation: Operation, written: set[str], everywhere: set[str]) -> str:
        """What is wrong with a node where it stands, or nothing."""
        for attribute in operation.node.attribute:
            if attribute.type in SUBGRAPH_TYPES or attribute.HasField("g") or attribute.graphs:
                return (
                    f"holds a subgraph (attribute {shown(attribute.name)}); convcalc reads no "
                    "subgraphs (Loop, If, Scan and their kin)"
                )
        for name in operation.inputs:
            if name and name not in written:
                if name in everywhere:
                    return (
                        f"reads {shown(name)} before any node writes it: the nodes are out "
                        "of order, or form a cycle"
                    )
                return f"reads {shown(name)}, which no initializer, graph input or node gives"
        if not operation.outputs or not operation.outputs[0]:
            return "has no output"
        for name in operation.outputs:
            if name in written:
                return (
                    f"writes {shown(name)}, which an initializer, the graph input or another "
                    "node already gives"
                )
        return ""

    def required(self, op: _Op, position: int, what: str) -> Any:
        """The constant at input `position`, which the node needs."""
        inputs = op.node.input
        if position >= len(inputs) or not inputs[position]:
            raise self.fail(op, f"has no {what} (input {position})")
        return self.constants.value(inputs[position], f"its {what}")

    def optional(self, op: _Op, position: int, what: str) -> Any:
        """The constant at input `position`, or None where it is left out (or empty)."""
        inputs = op.node.input
        if position >= len(inputs) or not inputs[position]:
            return None
        value = self.constants.value(inputs[position], f"its {what}")
        return None if value.size == 0 else value

    def scales(self, op: _Op, position: int) -> list[float] | None:
        given = self.optional(op, position, "scales")
        return None if given is None else reals(given, "its scales")

    def dims(self, op: _Op, position: int, what: str) -> tuple[int, ...]:
        """The shape of a parameter input, from the file alone where it is written there."""
        inputs = op.node.input
        if position >= len(inputs) or not inputs[position]:
            raise self.fail(op, f"has no {what}")
        return self.constants.shape(inputs[position], f"its {what}")

    def numel(self, name: str) -> int:
        return math.prod(self.constants.shape(name, "its parameter"))

    # -- the walk -------------------------------------------------------------------

    def document(self, input_shape: Shape | None) -> dict[str, Any]:
        if not self.operations:
            raise self.fail(None, "the graph has no nodes")
        source, shape = self.input(input_shape)
        if not self.outputs:
            raise self.fail(None, "the graph has no outputs")
        self.shapes[source] = shape
        self.data.add(source)
        for operation in self.operations:
            # A Shape's output is a constant to convcalc, which knows every shape.
            if operation.node.op_type != "Shape" and any(
                name in self.data for name in operation.inputs
            ):
                self.data.update(name for name in operation.outputs if name)
        for operation in self.operations:
            index, node = operation.index, operation.node
            reads = [name for name in operation.inputs if name in self.data]
            if index in self.folded or not reads:
                continue  # folded into another node, or computes constants
            try:
                self.follow(index, node, reads)
            except ConvcalcError as error:
                raise error.at(Where(node_label(node, index), self.file)) from None
        outputs = []
        for output in self.outputs:
            value = self.skip_to.get(output, output)
            if value not in self.shapes:
                raise self.fail(
                    None,
                    f"the output {shown(output)} does not depend on the input {shown(source)}",
                )
            if output in self.last:
                raise self.fail(
                    None, f"the output {shown(output)} is channels last; convcalc's are first"
                )
            outputs.append(value)
        # Names the exporter made up (TorchScript numbers its values) name no output.
        names = [] if len(outputs) == 1 else [o if not o.isdigit() else "" for o in self.outputs]
        nodes, held = self.named_rows()
        try:
            graph = graph_document(nodes, source, outputs, names)
        except ConvcalcError as error:
            raise error.at(Where("", self.file)) from None
        unused: dict[str, int] = {}
        for name in graph.get("dropped", []):
            if held.get(name):
                unused[name] = held[name]
        extra = {"unused_params": unused} if unused else {}
        return {"name": Path(self.file).stem, "input": list(shape), **graph, **extra}

    def named_rows(self) -> tuple[list[Node], dict[str, int]]:
        """The rows as graph nodes, each named by the module it runs in (SPEC §6.1), and
        the parameters each name holds.

        A row is named by its module's qualified name where it is the one row of that
        module (`layer1.0.conv1`); a merge, or a row beside others in its module, by the
        module and its own part (`layer1.0.add`, `se.sigmoid`). A node whose name is not
        the exporter's keeps it."""
        scopes = [module_scope(row.node) for row in self.rows]
        # Modules with modules inside them (an SE block, timm's BatchNormAct2d): their
        # name is their output's, which their own rows do not write.
        containers: set[str] = set()
        for operation in self.operations:
            scope = module_scope(operation.node.name)
            parts = scope[0].split(".") if scope else []
            containers.update(".".join(parts[:end]) for end in range(1, len(parts)))
        layers = Counter(
            scope[0]
            for scope, row in zip(scopes, self.rows, strict=True)
            if scope and row.entry not in MERGES
        )
        nodes = []
        held: dict[str, int] = {}
        for scope, row in zip(scopes, self.rows, strict=True):
            if scope is None:
                name = row.node
            else:
                path, own = scope
                # `Add_1`: the exporter counts the repeats of an operator in a module.
                operator, _, count = own.partition("_")
                part = row.label or _OWN_PARTS.get(operator, operator.lower())
                if count.isdigit():
                    part += f"_{count}"
                if (
                    path
                    and row.entry not in MERGES
                    and layers[path] == 1
                    and path not in containers
                ):
                    name = path
                else:
                    name = f"{path}.{part}" if path else part
            nodes.append(Node(name, row.entry, row.inputs, row.output))
            held[name] = held.get(name, 0) + row.params
        return nodes, held

    def follow(self, index: int, node: NodeProto, reads: list[str]) -> None:
        """Translate one node that reads the network's values."""
        value = self.skip_to.get(reads[0], reads[0])
        op = _Op(index, node, Attributes(node), tuple(reads), value, self.shapes[value])
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(op, f"convcalc cannot follow operators of domain {shown(node.domain)}")
        handler = _HANDLERS.get(node.op_type)
        if handler is None:
            raise self.fail(
                op,
                f"convcalc cannot follow the operator {operator_name(node.op_type)}"
                + _HINTS.get(node.op_type, "")
                + "; it follows "
                + ", ".join(sorted(_HANDLERS)),
            )
        if node.op_type != "Split":
            self.check_outputs(op)
        if node.op_type not in _SEVERAL_INPUTS:
            if len(reads) > 1:
                raise self.fail(
                    op,
                    f"reads {len(reads)} computed values ({', '.join(map(shown, reads))}) where "
                    "convcalc follows one, its first input (the others must be constants)",
                )
            if node.input[0] != reads[0]:
                position = list(node.input).index(reads[0])
                raise self.fail(
                    op,
                    f"reads the computed value {shown(reads[0])} as its input {position}; "
                    "convcalc follows a node's first input (the others must be constants)",
                )
        last = [name in self.last for name in reads]
        if any(last) and (not all(last) or node.op_type not in _CHANNELS_LAST):
            raise self.fail(
                op,
                f"reads {shown(reads[last.index(True)])}, which is channels last (after a "
                "Transpose); convcalc follows LayerNormalization, MatMul, elementwise "
                "operators and a Transpose back to channels first there"
                + ("" if all(last) else ", and never a mix of channels first and last"),
            )
        translated = handler(self, op)
        if translated is not None:
            self.add_layer(op, translated)
        if all(last) and node.op_type != "Transpose":
            # What reads channels last writes channels last.
            written = [translated.output] if translated and translated.output else []
            self.last.update(name for name in [*node.output, *written] if name)

    def transparent(self, op: _Op) -> None:
        """The node passes its value on unchanged, for convcalc: no row."""
        self.skip_to[op.node.output[0]] = op.value

    def input(self, override: Shape | None) -> tuple[str, Shape]:
        """The network's input (the graph input that is not an initializer) and its
        shape without the batch."""
        inputs = [value for value in self.graph.input if value.name not in self.initializers]
        if len(inputs) != 1:
            names = ", ".join(shown(value.name) for value in inputs) or "none"
            raise self.fail(
                None,
                f"the graph has {len(inputs)} inputs ({names}); convcalc follows a network "
                "with one (and weights as initializers)",
            )
        (value,) = inputs
        name = shown(value.name)
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            self.batch = dims[0].dim_value
        if override is not None:
            if dims and len(dims) != len(override) + 1:
                raise ConvcalcError(
                    f"the input {name} of {self.file} has {len(dims) - 1} axes after "
                    f"the batch; --input {format_shape(override)} has {len(override)}",
                    Where("--input"),
                )
            return value.name, override
        if len(dims) < 2:
            raise self.fail(
                None, f"the input {name} has no shape [N, C, …] in the file; give --input CxHxW"
            )
        shape = []
        for axis, dim in enumerate(dims[1:], start=1):
            if not dim.HasField("dim_value") or dim.dim_value < 1:
                size = (
                    shown(self.text(dim.dim_param, f"the size of axis {axis} of the input"))
                    if dim.dim_param
                    else "unknown"
                )
                raise self.fail(
                    None,
                    f"the input {name} has a symbolic size on axis {axis} ({size}); "
                    "give --input CxHxW",
                )
            shape.append(dim.dim_value)
        return value.name, tuple(shape)

    def check_outputs(self, op: _Op) -> None:
        """Only a node's first output is followed; the others must go unused (as a
        Dropout's mask or a training BatchNorm's statistics do)."""
        for position, name in enumerate(op.node.output[1:], start=1):
            if name and (name in self.consumers or name in self.outputs):
                raise self.fail(
                    op,
                    f"its output {position} ({shown(name)}) is used, but convcalc follows only "
                    "its first output",
                )

    def only_consumer(self, name: str) -> NodeProto | None:
        """The one node that reads `name`, if exactly one does and it is no graph output."""
        readers = self.consumers.get(name, [])
        return readers[0] if len(readers) == 1 and name not in self.outputs else None

    def merge(self, op: _Op) -> None:
        """Add, Sum, Concat or Mul of computed values: a merge row. Mul broadcasts (an SE
        gate C×1×1 times a C×H×W map); the others take equal shapes but for the
        concatenated channels."""
        node = op.node
        values = [self.skip_to.get(name, name) for name in op.reads]
        shapes = [self.shapes[value] for value in values]
        described = ", ".join(map(format_shape, shapes))
        if node.op_type == "Concat":
            axis = op.attrs.integer("axis", 1)
            rank = len(op.shape) + 1
            if axis % rank != 1:
                raise self.fail(
                    op,
                    f"concatenates on axis {axis}; convcalc concatenates channels (axis 1)",
                )
            if any(len(s) != len(shapes[0]) or s[1:] != shapes[0][1:] for s in shapes):
                raise self.fail(op, f"inputs differ in spatial size: {described}")
            result: Shape = (sum(s[0] for s in shapes), *shapes[0][1:])
            entry = "concat"
        elif node.op_type == "Mul":
            if any(len(s) != len(shapes[0]) for s in shapes) or any(
                len(set(sizes) - {1}) > 1 for sizes in zip(*shapes, strict=True)
            ):
                raise self.fail(
                    op, f"multiplies inputs of shapes that do not broadcast ({described})"
                )
            result, entry = tuple(map(max, zip(*shapes, strict=True))), "mul"
        else:
            if any(s != shapes[0] for s in shapes):
                raise self.fail(
                    op, f"adds inputs of different shapes ({described}); convcalc adds equal shapes"
                )
            result, entry = shapes[0], "add"
        if len(values) == 1:  # Sum of one value
            self.skip_to[node.output[0]] = values[0]
            return
        self.shapes[node.output[0]] = result
        self.rows.append(_Row(node.name, "", entry, tuple(values), node.output[0], 0))

    def add_layer(self, op: _Op, layer: _Layer, source: str | None = None) -> None:
        """Apply the layer to its input (the node's, or `source`) with convcalc's
        arithmetic, check its parameters against the initializers, and record it."""
        from convcalc.loader import build_layer

        source = source or op.value
        kind, given = (
            (layer.entry, {}) if isinstance(layer.entry, str) else next(iter(layer.entry.items()))
        )
        try:
            effect = build_layer(kind, dict(given)).apply(self.shapes[source])
        except ConvcalcError as error:
            where = error.where.path if error.where and error.where.path != kind else ""
            message = f"{kind}.{where}: {error.message}" if where else error.message
            raise self.fail(op, message) from None
        held = sum(self.numel(name) for name in layer.params)
        if held != effect.params:
            raise self.fail(
                op,
                f"its initializers hold {held:,} parameters, but {kind} as convcalc reads "
                f"it has {effect.params:,}; convcalc does not follow this node exactly",
            )
        output = layer.output or op.node.output[0]
        self.shapes[output] = effect.output_shape
        self.rows.append(_Row(op.node.name, layer.label, layer.entry, (source,), output, held))

    # -- arithmetic: merges, constants, patterns ----------------------------------------

    def constant_input(self, op: _Op) -> tuple[str, tuple[int, ...]]:
        """The one input of a two-input node that is no computed value, and its shape."""
        others = [name for name in op.node.input if name not in op.reads]
        if len(op.node.input) != 2 or len(others) != 1 or not others[0]:
            raise self.fail(op, f"has {len(op.node.input)} inputs; ONNX gives it two")
        return others[0], self.constants.shape(others[0], "its constant input")

    def number(self, name: str) -> float | None:
        """A constant of one element, as a float; None for any other."""
        if math.prod(self.constants.shape(name, "its constant input")) != 1:
            return None
        value = self.constants.value(name, "its constant input")
        return float(value.reshape(-1)[0])

    def add(self, op: _Op) -> _Layer | None:
        """Computed values added (a merge), or a number added to one (shape-preserving and
        without parameters: no row, as the PyTorch importer does)."""
        if len(op.reads) > 1 or op.node.op_type == "Sum":
            self.merge(op)
            return None
        _, dims = self.constant_input(op)
        if math.prod(dims) != 1:
            raise self.fail(
                op,
                f"adds a constant of shape {list(dims)}; convcalc follows an Add of computed "
                "values, of a number, or of a bias right after MatMul",
            )
        self.transparent(op)
        return None

    def subtract(self, op: _Op) -> _Layer | None:
        """A number taken from a computed value: no row, as a number added."""
        if len(op.reads) > 1 or op.node.input[0] != op.reads[0]:
            raise self.fail(op, "subtracts a computed value; convcalc follows x − a number")
        return self.add(op)

    def concat(self, op: _Op) -> _Layer | None:
        if len(op.reads) != len(op.node.input):
            raise self.fail(
                op, "concatenates a constant with computed values; convcalc concatenates these"
            )
        self.merge(op)
        return None

    def mul(self, op: _Op) -> _Layer | None:
        """x·y of computed values is a `mul` merge (an SE gate); x times a number passes
        x on (no row); x times one factor per channel (layer scale) is `scale`."""
        if len(op.reads) > 1:
            self.merge(op)
            return None
        name, dims = self.constant_input(op)
        if math.prod(dims) == 1:
            self.transparent(op)
            return None
        # The factor's axes line up with the value's from the last (numpy's broadcasting):
        # a per-channel one has C on the channel axis and 1 on every other.
        channels = len(op.shape) if op.reads[0] in self.last else 1
        rank = len(op.shape) + 1
        axis = len(dims) - (rank - channels)
        if axis >= 0 and dims[axis] == op.shape[0] and math.prod(dims) == op.shape[0]:
            return _Layer("scale", (name,))
        raise self.fail(
            op,
            f"multiplies {format_shape(op.shape)} by a constant of shape {list(dims)}; convcalc "
            "follows a product of computed values, by a number, or by one factor per channel",
        )

    def div(self, op: _Op) -> _Layer | None:
        """x / a number: GELU where the exporter writes it out (x/√2 → Erf → +1 → ·x →
        ·½), else x passed on (no row)."""
        if len(op.reads) > 1 or op.node.input[0] != op.reads[0]:
            raise self.fail(op, "divides by a computed value; convcalc follows x / a number")
        name, _ = self.constant_input(op)
        divisor = self.number(name)
        if divisor is None:
            raise self.fail(
                op, "divides by a constant of several values; convcalc follows x / a number"
            )
        if math.isclose(divisor, math.sqrt(2), rel_tol=1e-6):
            gelu = self.erf_gelu(op)
            if gelu is not None:
                return gelu
        self.transparent(op)
        return None

    def erf_gelu(self, op: _Op) -> _Layer | None:
        """GELU as PyTorch's exporter writes it before opset 20: x·½·(1 + erf(x/√2))."""
        x = op.node.input[0]
        chain = [op.node]
        for op_type, other in (("Erf", None), ("Add", 1.0), ("Mul", x), ("Mul", 0.5)):
            reader = self.only_consumer(chain[-1].output[0])
            if reader is None or reader.op_type != op_type:
                return None
            rest = [name for name in reader.input if name != chain[-1].output[0]]
            if other is None:
                if rest:
                    return None
            elif len(rest) != 1 or (
                rest[0] != other if isinstance(other, str) else self.number(rest[0]) != other
            ):
                return None
            chain.append(reader)
        for folded in chain[1:]:
            self.folded.add(self.producers[folded.output[0]].index)
        return _Layer("gelu", output=chain[-1].output[0])

    def reduce(self, op: _Op) -> _Layer | None:
        """A mean (or max) over every spatial axis is a global pooling; without keepdims,
        then a flatten."""
        rank = len(op.shape) + 1
        if self.opset >= 18:
            given = self.optional(op, 1, "axes")
            axes = None if given is None else integers(given, "its axes")
        else:
            axes = op.attrs.integers("axes", None)
        spatial = list(range(2, rank))
        chosen = sorted({a % rank for a in axes if -rank <= a < rank}) if axes else None
        if not spatial or chosen != spatial or len(set(axes or [])) != len(spatial):
            raise self.fail(
                op,
                f"reduces axes {axes if axes else 'all'} of {format_shape(op.shape)} (without "
                "the batch); convcalc follows a reduction over every spatial axis, a global pool",
            )
        kind = "adaptive_avg_pool" if op.node.op_type == "ReduceMean" else "adaptive_max_pool"
        pool = {kind: {"output_size": 1}}
        if op.attrs.integer("keepdims", 1):
            return _Layer(pool)
        pooled = f"{op.node.output[0]} (pooled)"  # a value of convcalc's, not the file's
        self.add_layer(op, _Layer(pool, output=pooled))
        self.add_layer(op, _Layer("flatten", label="flatten"), source=pooled)
        return None

    # -- channels: slices, splits, shuffles, channels last ------------------------------

    def split(self, op: _Op) -> None:
        """A Split of the channels: one `channel_slice` row per output used."""
        rank = len(op.shape) + 1
        axis = op.attrs.integer("axis", 0)
        if not -rank <= axis < rank or axis % rank != 1:
            raise self.fail(op, f"splits axis {axis}; convcalc splits the channels (axis 1)")
        channels, count = op.shape[0], len(op.node.output)
        if self.opset >= 13:
            given = self.optional(op, 1, "split")
            sizes = None if given is None else integers(given, "its split")
        else:
            sizes = op.attrs.integers("split", None)
        if sizes is None:
            # Equal parts, the last smaller where they do not divide (ONNX Split 18).
            part = -(-channels // count)
            sizes = [min(part, channels - part * k) for k in range(count)]
        if len(sizes) != count or sum(sizes) != channels or min(sizes) < 1:
            raise self.fail(op, f"splits {channels} channels into {sizes} for {count} outputs")
        start = 0
        for output, size in zip(op.node.output, sizes, strict=True):
            if output and (output in self.consumers or output in self.outputs):
                entry = {"channel_slice": {"start": start, "end": start + size}}
                self.add_layer(op, _Layer(entry, output=output))
            start += size

    def slice(self, op: _Op) -> _Layer | None:
        """x[:, a:b] (with every other axis whole) is a `channel_slice`; a Slice that
        keeps everything passes x on."""
        rank = len(op.shape) + 1
        full = (self.batch or _BATCH, *op.shape)
        starts = integers(self.required(op, 1, "starts"), "its starts")
        ends = integers(self.required(op, 2, "ends"), "its ends")
        given = self.optional(op, 3, "axes")
        axes = list(range(len(starts))) if given is None else integers(given, "its axes")
        given = self.optional(op, 4, "steps")
        steps = [1] * len(starts) if given is None else integers(given, "its steps")
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise self.fail(op, "its starts, ends, axes and steps differ in length")
        kept: tuple[int, int | None] | None = None
        for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
            if not -rank <= axis < rank:
                raise self.fail(op, f"axis {axis} is out of range for rank {rank}")
            size = full[axis % rank]
            first, stop, _ = slice(start, end).indices(size)
            if step == 1 and axis % rank == 1:
                kept = (start, None if end >= size else end)
            elif step != 1 or first != 0 or stop != size:
                raise self.fail(
                    op,
                    f"slices axis {axis} ({start}:{end}:{step}); convcalc follows a slice of "
                    "the channels (axis 1) with step 1",
                )
        if kept is None:
            self.transparent(op)
            return None
        params: dict[str, Any] = {} if kept[0] == 0 else {"start": kept[0]}
        if kept[1] is not None:
            params["end"] = kept[1]
        return _Layer({"channel_slice": params})

    def transpose(self, op: _Op) -> None:
        """To channels last and back (ConvNeXt's permute around its LayerNorm and Linear
        layers): no row; what lies between reads channels last."""
        rank = len(op.shape) + 1
        perm = op.attrs.integers("perm", list(range(rank))[::-1])
        output = op.node.output[0]
        back = [0, rank - 1, *range(1, rank - 1)]
        if op.reads[0] in self.last and perm == back:
            self.transparent(op)
        elif op.reads[0] not in self.last and perm == [0, *range(2, rank), 1]:
            self.transparent(op)
            self.last.add(output)
        elif perm == list(range(rank)):
            self.transparent(op)
        else:
            raise self.fail(
                op,
                f"permutes axes {perm}; convcalc follows a Transpose to channels last and back, "
                "and one between two Reshapes that shuffle channels",
            )

    def layer_norm(self, op: _Op) -> _Layer:
        """LayerNormalization over the channels: at each position of a channels-last
        value (ConvNeXt), or over the features of a flat one."""
        rank = len(op.shape) + 1
        axis = op.attrs.integer("axis", -1)
        channels = rank - 1 if op.reads[0] in self.last else 1
        if not -rank <= axis < rank or axis % rank != channels or rank - channels != 1:
            raise self.fail(
                op,
                f"normalises axes {axis} on of {format_shape(op.shape)} (channels first); "
                "convcalc's layer_norm is over the channels at each position",
            )
        params: dict[str, Any] = {}
        bias = len(op.node.input) > 2 and bool(op.node.input[2])
        if not bias:
            params["bias"] = False
        eps = _float(op.attrs.real("epsilon", 1e-5))
        if eps != 1e-5:
            params["eps"] = eps
        weights = tuple(name for name in op.node.input[1:3] if name)
        return _Layer({"layer_norm": params} if params else "layer_norm", weights)

    def hard_sigmoid(self, op: _Op) -> _Layer:
        alpha, beta = op.attrs.real("alpha", 0.2), op.attrs.real("beta", 0.5)
        # PyTorch's hardsigmoid, relu6(x + 3)/6, is max(0, min(1, x/6 + ½)).
        if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and beta == 0.5):
            raise self.fail(
                op,
                f"has alpha {alpha:g} and beta {beta:g}; convcalc's hardsigmoid is PyTorch's "
                "(alpha 1/6, beta 0.5)",
            )
        return _Layer("hardsigmoid")

    # -- operators ------------------------------------------------------------------

    def axes(self, op: _Op, name: str, default: int, minimum: int) -> list[int]:
        """An attribute with one value per spatial axis."""
        ndim = len(op.shape) - 1
        if ndim < 1:
            raise self.fail(op, f"reads {format_shape(op.shape)}, which has no spatial axes")
        values = op.attrs.integers(name, [default] * ndim, minimum)
        if len(values) != ndim:
            raise self.fail(
                op, f"{name} has {len(values)} values for an input with {ndim} spatial axes"
            )
        return values

    def explicit_pads(self, op: _Op) -> list[tuple[int, int]]:
        """ONNX `pads`: all the begins, then all the ends."""
        ndim = len(op.shape) - 1
        pads = op.attrs.integers("pads", [0] * 2 * ndim, 0)
        if len(pads) != 2 * ndim:
            raise self.fail(
                op, f"pads has {len(pads)} values; {2 * ndim} expected (begins, then ends)"
            )
        return list(zip(pads[:ndim], pads[ndim:], strict=True))

    def sliding_padding(
        self, op: _Op, kernels: list[int], strides: list[int], dilations: list[int]
    ) -> tuple[Any, str]:
        """The padding of a Conv or pool, with a Pad folded into it, and the Pad's mode."""
        auto = op.attrs.text("auto_pad", "NOTSET")
        folded, mode = self.pads.get(op.node.input[0], (None, "constant"))
        sizes = list(op.shape[1:])
        if folded is not None:
            sizes = [
                size + before + after for size, (before, after) in zip(sizes, folded, strict=True)
            ]
        if auto == "SAME_UPPER" and folded is None:
            pairs: Any = None  # convcalc's "same" is SAME_UPPER, at any input size
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            lower = auto == "SAME_LOWER"
            pairs = list(map(_same, sizes, kernels, strides, dilations, [lower] * len(sizes)))
        elif auto == "VALID":
            pairs = [(0, 0)] * len(sizes)
        elif auto == "NOTSET":
            pairs = self.explicit_pads(op)
        else:
            raise self.fail(op, f"unknown auto_pad {shown(auto)}")
        if pairs is None:
            return "same", mode
        if folded is not None:
            if mode != "constant" and any(map(any, pairs)):
                raise self.fail(op, f"has padding of its own beside a {mode} Pad before it")
            pairs = [(b + fb, a + fa) for (b, a), (fb, fa) in zip(pairs, folded, strict=True)]
        return _padding(pairs), mode

    def conv(self, op: _Op) -> _Layer:
        weight = self.dims(op, 1, "weight")
        if len(weight) != len(op.shape) + 1:
            raise self.fail(
                op,
                f"its weight has shape {format_shape(weight)}, which does not fit an input "
                f"{format_shape(op.shape)} (with the batch: rank {len(op.shape) + 1})",
            )
        kernels = self.axes(op, "kernel_shape", 1, 1) if "kernel_shape" in op.attrs else weight[2:]
        strides = self.axes(op, "strides", 1, 1)
        dilations = self.axes(op, "dilations", 1, 1)
        padding, mode = self.sliding_padding(op, list(kernels), strides, dilations)
        params: dict[str, Any] = {"out_channels": weight[0], "kernel_size": _compact(kernels)}
        groups = op.attrs.integer("group", 1, 1)
        bias = len(op.node.input) > 2 and bool(op.node.input[2])
        for name, value, default in (
            ("stride", _compact(strides), 1),
            ("padding", padding, 0),
            ("dilation", _compact(dilations), 1),
            ("groups", groups, 1),
            ("bias", bias, True),
            ("padding_mode", _PAD_MODES[mode], "zeros"),
        ):
            if value != default:
                params[name] = value
        return _Layer({"conv": params}, tuple(i for i in op.node.input[1:] if i))

    def conv_transpose(self, op: _Op) -> _Layer:
        weight = self.dims(op, 1, "weight")
        ndim = len(op.shape) - 1
        if len(weight) != ndim + 2:
            raise self.fail(
                op, f"its weight has shape {format_shape(weight)} for {ndim} spatial axes"
            )
        groups = op.attrs.integer("group", 1, 1)
        kernels = self.axes(op, "kernel_shape", 1, 1) if "kernel_shape" in op.attrs else weight[2:]
        strides = self.axes(op, "strides", 1, 1)
        dilations = self.axes(op, "dilations", 1, 1)
        extras = self.axes(op, "output_padding", 0, 0)
        auto = op.attrs.text("auto_pad", "NOTSET")
        wanted = op.attrs.integers("output_shape", None, 0)
        if wanted is None and auto in ("SAME_UPPER", "SAME_LOWER"):
            wanted = [size * stride for size, stride in zip(op.shape[1:], strides, strict=True)]
        if wanted is not None:
            # ONNX ConvTranspose: total_padding = stride·(input − 1) + output_padding +
            # ((kernel − 1)·dilation + 1) − output_shape; SAME_UPPER puts the odd pixel
            # at the end, otherwise it goes at the start.
            if len(wanted) not in (ndim, ndim + 2):
                raise self.fail(op, f"output_shape {wanted} does not fit {ndim} spatial axes")
            wanted = wanted[-ndim:]
            pairs = []
            for size, kernel, stride, dilation, extra, out in zip(
                op.shape[1:], kernels, strides, dilations, extras, wanted, strict=True
            ):
                total = stride * (size - 1) + extra + (kernel - 1) * dilation + 1 - out
                if total < 0:
                    raise self.fail(
                        op,
                        f"output size {out} needs {-total} more than the transposed "
                        "convolution gives; convcalc takes that as output_padding only",
                    )
                small, large = total // 2, total - total // 2
                pairs.append((small, large) if auto == "SAME_UPPER" else (large, small))
        elif auto == "VALID":
            pairs = [(0, 0)] * ndim
        else:
            pairs = self.explicit_pads(op)
        params: dict[str, Any] = {
            "out_channels": weight[1] * groups,
            "kernel_size": _compact(kernels),
        }
        bias = len(op.node.input) > 2 and bool(op.node.input[2])
        for name, value, default in (
            ("stride", _compact(strides), 1),
            ("padding", _padding(pairs), 0),
            ("output_padding", _compact(extras), 0),
            ("dilation", _compact(dilations), 1),
            ("groups", groups, 1),
            ("bias", bias, True),
        ):
            if value != default:
                params[name] = value
        return _Layer({"conv_transpose": params}, tuple(i for i in op.node.input[1:] if i))

    def pool(self, op: _Op) -> _Layer:
        if "kernel_shape" not in op.attrs:
            raise self.fail(op, "has no kernel_shape")
        kernels = self.axes(op, "kernel_shape", 1, 1)
        strides = self.axes(op, "strides", 1, 1)  # ONNX's default stride is 1, not the kernel
        dilations = self.axes(op, "dilations", 1, 1)
        padding, _ = self.sliding_padding(op, kernels, strides, dilations)
        params: dict[str, Any] = {"kernel_size": _compact(kernels)}
        if strides != kernels:
            params["stride"] = _compact(strides)
        if padding != 0:
            params["padding"] = padding
        if op.node.op_type == "MaxPool":
            kind = "max_pool"
            if set(dilations) != {1}:
                params["dilation"] = _compact(dilations)
        else:
            kind = "avg_pool"
            if set(dilations) != {1}:
                raise self.fail(op, "has dilations; convcalc's avg_pool has none (as PyTorch's)")
            include = bool(op.attrs.integer("count_include_pad", 0))
            if op.node.input[0] in self.pads:
                # A Pad's zeros are values to the pool: counted, whatever the attribute says.
                own = op.attrs.text("auto_pad", "NOTSET").startswith("SAME") or any(
                    op.attrs.integers("pads", [])
                )
                if own and not include:
                    raise self.fail(
                        op,
                        "would count a Pad's zeros but not its own padding "
                        "(count_include_pad 0), which no avg_pool does",
                    )
                include = True
            if padding != 0 and not include:
                params["count_include_pad"] = False
        if op.attrs.integer("ceil_mode", 0):
            params["ceil_mode"] = True
        return _Layer({kind: params})

    def global_pool(self, op: _Op) -> _Layer:
        kind = (
            "adaptive_avg_pool" if op.node.op_type == "GlobalAveragePool" else "adaptive_max_pool"
        )
        return _Layer({kind: {"output_size": 1}})

    def pad(self, op: _Op) -> _Layer | None:
        """A Pad of zeros (or of a mode a Conv's padding_mode has) folds into the one Conv
        or pool that reads it, as PyTorch writes that padding; any other Pad of the
        spatial axes is a `pad` row."""
        mode = op.attrs.text("mode", "constant")
        rank = len(op.shape) + 1
        if self.opset < 11:
            pads = op.attrs.integers("pads", [])
            fill = op.attrs.real("value", 0.0)
        else:
            pads = integers(self.required(op, 1, "pads"), "its pads")
            filled = self.optional(op, 2, "constant value")
            fill = 0.0 if filled is None else reals(filled, "its constant value")[0]
            given = self.optional(op, 3, "axes")
            if given is not None:
                axes = integers(given, "its axes")
                if len(pads) != 2 * len(axes) or not all(-rank <= a < rank for a in axes):
                    raise self.fail(
                        op, f"pads {pads} and axes {axes} do not fit an input of rank {rank}"
                    )
                full = [0] * 2 * rank
                for position, axis in enumerate(a % rank for a in axes):
                    full[axis] = pads[position]
                    full[rank + axis] = pads[len(axes) + position]
                pads = full
        if len(pads) != 2 * rank:
            raise self.fail(op, f"pads has {len(pads)} values for an input of rank {rank}")
        begins, ends = pads[:rank], pads[rank:]
        if mode not in _PAD_MODES or any(p < 0 for p in pads) or any(begins[:2] + ends[:2]):
            raise self.fail(
                op,
                "convcalc follows a Pad of the spatial axes by non-negative amounts, in mode "
                f"constant, reflect, edge or wrap; here mode {shown(mode)}, pads {pads}",
            )
        pairs = tuple(zip(begins[2:], ends[2:], strict=True))
        reader = self.only_consumer(op.node.output[0])
        takers = ("Conv",) if mode != "constant" else ("Conv", "MaxPool", "AveragePool")
        if (
            fill != 0
            or reader is None
            or reader.op_type not in takers
            or reader.input[0] != op.node.output[0]
        ):
            params: dict[str, Any] = {"padding": _padding(pairs)}
            if mode != "constant":
                params["mode"] = _PAD_LAYER_MODES[mode]
            if fill != 0:
                params["value"] = _float(fill)
            return _Layer({"pad": params})
        self.pads[op.node.output[0]] = (pairs, mode)
        self.skip_to[op.node.output[0]] = op.value
        return None

    def gemm(self, op: _Op) -> _Layer:
        if op.attrs.integer("transA", 0):
            raise self.fail(op, "transposes its input (transA); convcalc's linear does not")
        weight = self.dims(op, 1, "weight")
        if len(weight) != 2:
            raise self.fail(op, f"its weight has shape {format_shape(weight)}, not 2-D")
        out = weight[0] if op.attrs.integer("transB", 0) else weight[1]
        bias = len(op.node.input) > 2 and bool(op.node.input[2])
        params: dict[str, Any] = {"out_features": out} | ({} if bias else {"bias": False})
        return _Layer({"linear": params}, tuple(i for i in op.node.input[1:] if i))

    def matmul(self, op: _Op) -> _Layer:
        """x·W with W constant is a linear layer; an Add of a constant right after it
        (how exporters write a bias) is its bias."""
        weight = self.dims(op, 1, "weight")
        if len(weight) != 2:
            raise self.fail(op, f"its weight has shape {format_shape(weight)}, not 2-D")
        params: tuple[str, ...] = (op.node.input[1],)
        # On channels last (ConvNeXt's Linear between permutes) it is a 1×1 convolution.
        entry: dict[str, Any] = (
            {"conv": {"out_channels": weight[1], "kernel_size": 1}}
            if op.reads[0] in self.last
            else {"linear": {"out_features": weight[1]}}
        )
        output = op.node.output[0]
        adder = self.only_consumer(output)
        others = [] if adder is None else [name for name in adder.input if name != output]
        if adder is not None and adder.op_type == "Add" and len(others) == 1:
            (bias,) = others
            if bias not in self.data:
                index = self.producers[adder.output[0]].index
                self.folded.add(index)
                return _Layer(entry, (*params, bias), adder.output[0])
        ((kind, own),) = entry.items()
        return _Layer({kind: own | {"bias": False}}, params)

    def batch_norm(self, op: _Op) -> _Layer:
        # Scale and shift are parameters; the running mean and variance are buffers.
        eps = _float(op.attrs.real("epsilon", 1e-5))
        entry: Any = "batch_norm" if eps == 1e-5 else {"batch_norm": {"eps": eps}}
        return _Layer(entry, tuple(i for i in op.node.input[1:3] if i))

    def flatten(self, op: _Op) -> _Layer:
        axis = op.attrs.integer("axis", 1)
        if axis % (len(op.shape) + 1) != 1 and len(op.shape) > 1:
            raise self.fail(
                op, f"flattens from axis {axis}; convcalc's flatten keeps the batch alone (axis 1)"
            )
        return _Layer("flatten")

    def reshape(self, op: _Op) -> _Layer | None:
        target = integers(self.required(op, 1, "shape"), "its shape")
        size = math.prod(op.shape)
        batches = {0, -1, self.batch or _BATCH} if op.attrs.integer("allowzero", 0) == 0 else {-1}
        flat = (
            len(target) == 2
            and target[1] in (-1, size)
            and target[0] in batches
            and (target[0] != -1 or target[1] == size)
        )
        if flat:
            return _Layer("flatten")
        shuffle = self.shuffle(op, target)
        if shuffle is not None:
            return shuffle
        if self.reshaped(op, op.node, target) == [self.batch or _BATCH, *op.shape]:
            self.transparent(op)
            return None
        raise self.fail(
            op,
            f"reshapes {format_shape(op.shape)} (without the batch) to {target}; convcalc "
            "follows a Reshape that flattens to [N, -1], one that keeps the shape, and the "
            "Reshape–Transpose–Reshape of a channel shuffle",
        )

    def reshaped(self, op: _Op, node: NodeProto, target: list[int]) -> list[int] | None:
        """The shape, batch first, a Reshape of `op`'s value to `target` gives (ONNX: 0
        copies the input's size unless allowzero, −1 is what is left), or None."""
        full = [self.batch or _BATCH, *op.shape]
        copy = Attributes(node).integer("allowzero", 0) == 0
        shape = [
            full[a] if size == 0 and copy and a < len(full) else size
            for a, size in enumerate(target)
        ]
        if shape.count(-1) > 1 or any(size < -1 for size in shape):
            return None
        if -1 in shape:
            known = math.prod(size for size in shape if size != -1)
            if known == 0 or math.prod(full) % known:
                return None
            shape[shape.index(-1)] = math.prod(full) // known
        return shape if math.prod(shape) == math.prod(full) else None

    def shuffle(self, op: _Op, target: list[int]) -> _Layer | None:
        """Reshape to [N, g, C/g, …], Transpose of axes 1 and 2, Reshape back: ShuffleNet's
        channel shuffle, one row."""
        rank = len(op.shape) + 1
        split = self.reshaped(op, op.node, target)
        swap = self.only_consumer(op.node.output[0])
        if (
            split is None
            or len(split) != rank + 1
            or split[3:] != list(op.shape[1:])
            or swap is None
            or swap.op_type != "Transpose"
            or Attributes(swap).integers("perm", None) != [0, 2, 1, *range(3, rank + 1)]
        ):
            return None
        back = self.only_consumer(swap.output[0])
        if back is None or back.op_type != "Reshape" or len(back.input) < 2:
            return None
        again = integers(self.constants.value(back.input[1], "its shape"), "its shape")
        if self.reshaped(op, back, again) != [self.batch or _BATCH, *op.shape]:
            return None
        for node in (swap, back):
            self.folded.add(self.producers[node.output[0]].index)
        return _Layer({"channel_shuffle": {"groups": split[1]}}, output=back.output[0])

    def shape(self, op: _Op) -> None:
        """The shape of a computed value, as exporters compute a flattening Reshape's
        target (`x.view(x.size(0), -1)`); a symbolic batch stands as `_BATCH`."""
        import numpy

        full = [self.batch or _BATCH, *op.shape]
        if op.reads[0] in self.last:
            full = [full[0], *full[2:], full[1]]
        start, end = op.attrs.integer("start", 0), op.attrs.integer("end", len(full))
        self.constants.keep(op.node.output[0], numpy.array(full[start:end], numpy.int64))

    def resize(self, op: _Op) -> _Layer:
        sizes = list(op.shape[1:])
        rank = len(op.shape) + 1
        attrs = op.attrs
        if not sizes:
            raise self.fail(op, f"reads {format_shape(op.shape)}, which has no spatial axes")
        scales: list[float] | None = None
        wanted: list[int] | None = None
        if op.node.op_type == "Upsample":
            # Upsample (opsets 7 to 9) repeats pixels: Resize's asymmetric floor.
            mode, coordinates, rounding = attrs.text("mode", "nearest"), "asymmetric", "floor"
            scales = attrs.reals("scales") if self.opset < 9 else self.scales(op, 1)
        else:
            mode = attrs.text("mode", "nearest")
            coordinates = attrs.text("coordinate_transformation_mode", "half_pixel")
            rounding = attrs.text("nearest_mode", "round_prefer_floor")
            if attrs.text("keep_aspect_ratio_policy", "stretch") != "stretch":
                raise self.fail(op, "keeps the aspect ratio; convcalc follows stretch only")
            scales = self.scales(op, 1 if self.opset < 11 else 2)
            if self.opset >= 11:
                given = self.optional(op, 3, "sizes")
                wanted = None if given is None else integers(given, "its sizes")
        values: Sequence[float] | None = wanted if wanted is not None else scales
        if values is None:
            raise self.fail(op, "gives neither scales nor sizes")
        full: list[Any] = [1] * rank
        axes = attrs.integers("axes", range(rank))
        if len(axes) != len(values) or not all(-rank <= axis < rank for axis in axes):
            raise self.fail(
                op, f"has {len(values)} scales or sizes for axes {axes} of an input of rank {rank}"
            )
        axes = [axis % rank for axis in axes]
        for axis, value in zip(axes, values, strict=True):
            full[axis] = value
        params: dict[str, Any] = {}
        if wanted is not None:
            full[0] = 1  # the batch, whatever it is
            if full[1] != op.shape[0]:
                raise self.fail(op, f"resizes the channels to {full[1]}; convcalc resizes space")
            outs: list[int] = full[2:]
            params["size"] = _compact(outs)
            whole = all(out % size == 0 for out, size in zip(outs, sizes, strict=True))
        else:
            if full[0] != 1 or full[1] != 1:
                raise self.fail(
                    op, f"scales the batch or channels ({full[:2]}); convcalc scales space"
                )
            factors: list[float | int] = [_float(v) for v in full[2:]]
            factors = [int(f) if float(f).is_integer() else f for f in factors]
            params["scale_factor"] = _compact(factors)
            whole = all(Fraction(str(f)).denominator == 1 for f in factors)
        half = coordinates in ("half_pixel", "pytorch_half_pixel")
        if mode == "nearest":
            # Which input position output y reads: asymmetric floor is floor(y / scale),
            # convcalc's nearest; half_pixel round_prefer_ceil is floor((y + ½) / scale),
            # its nearest-exact. half_pixel round_prefer_floor reads floor(y / scale) too
            # when the scale is whole (no ties then), so it is nearest there.
            if (coordinates, rounding) == ("asymmetric", "floor") or (
                half and rounding == "round_prefer_floor" and whole
            ):
                chosen = "nearest"
            elif half and rounding == "round_prefer_ceil":
                chosen = "nearest-exact"
            else:
                raise self.fail(
                    op,
                    f"nearest with coordinate_transformation_mode {coordinates} and "
                    f"nearest_mode {rounding}"
                    + ("" if whole else " at a fractional scale")
                    + " reads positions neither of convcalc's nearest modes does (nearest: "
                    "asymmetric floor; nearest-exact: half_pixel round_prefer_ceil)",
                )
        elif mode in ("linear", "cubic"):
            if coordinates == "align_corners":
                params["align_corners"] = True
            elif not half:
                raise self.fail(
                    op,
                    f"{mode} with coordinate_transformation_mode {coordinates}; convcalc "
                    "follows half_pixel, pytorch_half_pixel and align_corners",
                )
            names = {1: "linear", 2: "bilinear", 3: "trilinear"}
            chosen = "bicubic" if mode == "cubic" else names.get(len(sizes), "linear")
        else:
            raise self.fail(op, f"unknown mode {shown(mode)}")
        if chosen != "nearest":
            params["mode"] = chosen
        return _Layer({"upsample": params})

    def leaky_relu(self, op: _Op) -> _Layer:
        slope = _float(op.attrs.real("alpha", 0.01))
        return _Layer("leaky_relu" if slope == 0.01 else {"leaky_relu": {"negative_slope": slope}})

    def sigmoid(self, op: _Op) -> _Layer:
        """x·sigmoid(x) (how exporters write SiLU) is silu; a sigmoid alone is sigmoid."""
        gate = op.node.output[0]
        reader = self.only_consumer(gate)
        if (
            reader is not None
            and reader.op_type == "Mul"
            and sorted(reader.input) == sorted([gate, op.node.input[0]])
        ):
            index = self.producers[reader.output[0]].index
            self.folded.add(index)
            return _Layer("silu", output=reader.output[0])
        return _Layer("sigmoid")

    def clip(self, op: _Op) -> _Layer:
        low: float | None
        high: float | None
        if self.opset < 11:
            low, high = (
                op.attrs.real(end, 0) if end in op.attrs else None for end in ("min", "max")
            )
        else:
            bounds = (self.optional(op, 1, "min"), self.optional(op, 2, "max"))
            low, high = (None if b is None else reals(b, "its bound")[0] for b in bounds)
        if low == 0 and high == 6:
            return _Layer("relu6")
        if low == 0 and high is None:
            return _Layer("relu")
        raise self.fail(
            op, f"clips to [{low}, {high}]; convcalc follows Clip as relu6 (0, 6) or relu (0, none)"
        )

    def softmax(self, op: _Op) -> _Layer:
        axis = op.attrs.integer("axis", 1 if self.opset < 13 else -1)
        if axis % (len(op.shape) + 1) != 1:
            raise self.fail(
                op, f"takes the softmax over axis {axis}; convcalc's is over the channels (axis 1)"
            )
        return _Layer("softmax")

    def gelu(self, op: _Op) -> _Layer:
        approximate = op.attrs.text("approximate", "none")
        if approximate not in ("none", "tanh"):
            raise self.fail(op, f"approximates {shown(approximate)}; ONNX knows none and tanh")
        return _Layer("gelu" if approximate == "none" else {"gelu": {"approximate": approximate}})

    def dropout(self, op: _Op) -> _Layer:
        if self.opset < 12:
            ratio = op.attrs.real("ratio", 0.5)
        else:
            given = self.optional(op, 1, "ratio")
            ratio = 0.5 if given is None else reals(given, "its ratio")[0]
        p = _float(ratio)
        return _Layer("dropout" if p == 0.5 else {"dropout": {"p": p}})

    def same_kind(self, op: _Op) -> _Layer:
        return _Layer(_SAME_KIND[op.node.op_type])


#: A node's own part of its row's name where it is not the module's (`layer1.0.add`):
#: the name of the PyTorch function that the operator comes from, where they differ.
_OWN_PARTS = {
    "BatchNormalization": "batch_norm",
    "Concat": "cat",
    "LayerNormalization": "layer_norm",
    "ReduceMean": "mean",
    "ReduceMax": "amax",
    "GlobalAveragePool": "adaptive_avg_pool",
    "GlobalMaxPool": "adaptive_max_pool",
}

#: What to say about operators people often meet.
_HINTS = {
    "Erf": " (GELU written out is followed as PyTorch's exporter writes it: x/√2, Erf, +1, ·x, ·½)",
}

#: What a symbolic batch size is in the shapes convcalc computes for `Shape`: a number
#: no real batch has, so that a Reshape can tell it apart.
_BATCH = 2**62 + 1

#: ONNX Pad modes → convcalc's padding_mode of a Conv.
_PAD_MODES = {"constant": "zeros", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}

#: ONNX Pad modes → the mode of convcalc's pad layer.
_PAD_LAYER_MODES = {
    "constant": "constant",
    "reflect": "reflect",
    "edge": "replicate",
    "wrap": "circular",
}

#: Operators that read several computed values (the others read one, their first input).
_SEVERAL_INPUTS = {"Add", "Sum", "Concat", "Mul", "Sub", "Div"}

#: Operators that read channels-last values (what lies between ConvNeXt's permutes).
_CHANNELS_LAST = {
    "Transpose",
    "LayerNormalization",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "Gelu",
    "Sigmoid",
    "Tanh",
    "HardSwish",
    "HardSigmoid",
    "LeakyRelu",
    "Clip",
    "Dropout",
    "Identity",
    "Shape",
}

_Handler = Callable[[_Importer, _Op], "_Layer | None"]

_HANDLERS: dict[str, _Handler] = {
    "Conv": _Importer.conv,
    "ConvTranspose": _Importer.conv_transpose,
    "MaxPool": _Importer.pool,
    "AveragePool": _Importer.pool,
    "GlobalAveragePool": _Importer.global_pool,
    "GlobalMaxPool": _Importer.global_pool,
    "Pad": _Importer.pad,
    "Gemm": _Importer.gemm,
    "MatMul": _Importer.matmul,
    "BatchNormalization": _Importer.batch_norm,
    "Flatten": _Importer.flatten,
    "Reshape": _Importer.reshape,
    "Shape": _Importer.shape,
    "Resize": _Importer.resize,
    "Upsample": _Importer.resize,
    "LeakyRelu": _Importer.leaky_relu,
    "Sigmoid": _Importer.sigmoid,
    "Clip": _Importer.clip,
    "Softmax": _Importer.softmax,
    "Gelu": _Importer.gelu,
    "Dropout": _Importer.dropout,
    "Add": _Importer.add,
    "Sum": _Importer.add,
    "Sub": _Importer.subtract,
    "Mul": _Importer.mul,
    "Div": _Importer.div,
    "Concat": _Importer.concat,
    "ReduceMean": _Importer.reduce,
    "ReduceMax": _Importer.reduce,
    "Split": _Importer.split,
    "Slice": _Importer.slice,
    "Transpose": _Importer.transpose,
    "LayerNormalization": _Importer.layer_norm,
    "HardSigmoid": _Importer.hard_sigmoid,
    **{op_type: _Importer.same_kind for op_type in _SAME_KIND},
}
