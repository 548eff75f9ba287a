"""The constant inputs of ONNX nodes (Reshape targets, Pad amounts, Resize scales, Clip
bounds), read from initializers and `Constant` nodes or computed through the chains of
small operators exporters write for them (`Shape → Gather → Unsqueeze → Concat`), and a
node's attributes, read by type.

An ONNX file is input like any other, so everything here is bounded and checked before
it is used:

- No external data is ever read: a tensor stored outside the file is an error (its
  shape, which the file holds, is enough for a weight).
- A tensor's values are decoded by convcalc, after its data type, dimensions and byte
  count are checked, never by a routine that would trust them.
- Only the operators exporters use on shapes and pads are computed (`OPERATORS`), each
  after the size of its output is known to be within MAX_CONSTANT_ELEMENTS, and all of
  them together within MAX_CONSTANT_WORK elements and MAX_CONSTANT_STEPS nodes. Integer
  arithmetic is exact (an overflow of its type is an error) and floating-point
  arithmetic may not overflow or divide by zero. `Loop`, `If`, `Scan` and every other
  operator are refused.
- A chain of any length is walked with a loop, never a recursion.

Operator semantics follow the ONNX operator specification (onnx.ai/onnx/operators).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from convcalc.errors import ConvcalcError

# numpy comes with onnx; where neither is installed, this module still loads, and
# read_onnx says what to install before anything here runs.
with contextlib.suppress(ImportError):
    import numpy as np

if TYPE_CHECKING:
    from onnx import AttributeProto, NodeProto, TensorProto

__all__ = [
    "MAX_CONSTANT_ELEMENTS",
    "MAX_CONSTANT_STEPS",
    "MAX_CONSTANT_WORK",
    "MAX_RANK",
    "OPERATORS",
    "Attributes",
    "Constants",
    "Operation",
    "integers",
    "module_scope",
    "node_label",
    "operator_name",
    "reals",
    "shown",
]

#: Elements of one constant. Shapes, pads and scales have two or so per axis; this
#: leaves room for any table an exporter computes them from, and keeps a value under
#: 8 MiB (as int64).
MAX_CONSTANT_ELEMENTS = 1 << 20

#: Elements made in all while reading one file (initializers decoded and outputs
#: computed): with MAX_CONSTANT_ELEMENTS, it keeps the memory and time constants take
#: to some 128 MiB and a fraction of a second, whatever the file asks for.
MAX_CONSTANT_WORK = 1 << 24

#: Nodes computed while reading one file, each once. The size of a file bounds them as it
#: bounds everything else done with its nodes; this bounds the computing alone, to as
#: many nodes as the layers a model may have (loader.MAX_LAYERS): some ten seconds.
MAX_CONSTANT_STEPS = 1_000_000

#: Axes of a constant: numpy's arrays have at most 64, and no shape computation needs
#: more than a network's rank (five or so).
MAX_RANK = 32

#: Characters of a name from the file shown in a message: enough to recognise it, short
#: enough to keep the message one line people can read.
SHOWN_NAME = 80

#: An operator's name as ONNX spells them, shown as it is.
_OPERATOR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


def shown(name: str | bytes) -> str:
    """A name from the file for a message: quoted, control characters escaped (as
    `repr` does: bytes that are no text as b'…'), and the middle of a long one left
    out."""
    if isinstance(name, bytes):
        return repr(name if len(name) <= SHOWN_NAME else name[:SHOWN_NAME] + b"...")
    if len(name) > SHOWN_NAME:
        name = f"{name[: SHOWN_NAME // 2]}…{name[-SHOWN_NAME // 2 :]}"
    return repr(name)


def operator_name(op_type: str) -> str:
    """An operator's name for a message: as it is when it is one ONNX could have."""
    return op_type if _OPERATOR_NAME.fullmatch(op_type) else shown(op_type)


def node_label(node: NodeProto, index: int) -> str:
    """A node as messages name it: `node 'Conv_3' (Conv)`, or `node #3 (Conv)` when it
    has no name; with the module it runs in where its name tells it (`node
    '/layer1/layer1.0/Add' (Add, in module layer1.0)`)."""
    name = shown(node.name) if node.name else f"#{index}"
    scope = module_scope(node.name)
    module = f", in module {shown(scope[0])}" if scope and scope[0] else ""
    return f"node {name} ({operator_name(node.op_type)}{module})"


def module_scope(name: str) -> tuple[str, str] | None:
    """The qualified name of the module a node runs in, and the node's own part, from
    the name PyTorch's exporter gives it: `/layer1/layer1.0/conv1/Conv` is
    (`layer1.0.conv1`, `Conv`); None for a name not written so.

    The exporter writes one part per module, each the module's name in its parent, where
    a child of a container is written with the container's part before it
    (`/features/features.1/features.1.0/block/block.0/block.0.0`): a part that extends the
    one before it by a dot replaces it, any other part goes one level down. Attribute
    names hold no dot, so the two cannot be confused."""
    if not name.startswith("/"):
        return None
    *parts, own = name[1:].split("/")
    path = base = last = ""
    for part in filter(None, parts):
        if not (last and part.startswith(last + ".")):
            base = path
        path = f"{base}.{part}" if base else part
        last = part
    return path, own


@dataclass(frozen=True, slots=True)
class Operation:
    """A node of the graph, its index, and the names it reads and writes, taken out of
    protobuf once (each reading of a protobuf field makes new objects, which on a long
    chain takes longer than all the rest)."""

    index: int
    node: NodeProto
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


# -- attributes -----------------------------------------------------------------------

# AttributeProto.type (onnx.proto), and what each is called in messages.
_FLOAT, _INT, _STRING, _TENSOR, _FLOATS, _INTS = 1, 2, 3, 4, 6, 7
_ATTRIBUTE_TYPES = {
    0: "of no type",
    1: "a number",
    2: "an integer",
    3: "a string",
    4: "a tensor",
    5: "a graph",
    6: "a list of numbers",
    7: "a list of integers",
    8: "a list of strings",
    9: "a list of tensors",
    10: "a list of graphs",
    11: "a sparse tensor",
    12: "a list of sparse tensors",
    13: "a type",
    14: "a list of types",
}

#: AttributeProto.type of the attributes that hold graphs (GRAPH, GRAPHS).
SUBGRAPH_TYPES = (5, 10)


class Attributes:
    """A node's attributes, each read as the type it must have; a wrong type, a value
    out of range or text that is not UTF-8 is an error naming the attribute."""

    def __init__(self, node: NodeProto) -> None:
        self.given: dict[str, AttributeProto] = {}
        for attribute in node.attribute:
            if attribute.name in self.given:
                raise ConvcalcError(f"has two attributes named {shown(attribute.name)}")
            self.given[attribute.name] = attribute

    def __contains__(self, name: str) -> bool:
        return name in self.given

    def _typed(self, name: str, wanted: int) -> AttributeProto | None:
        attribute = self.given.get(name)
        if attribute is not None and attribute.type != wanted:
            kind = _ATTRIBUTE_TYPES.get(attribute.type, f"of unknown type {attribute.type}")
            raise ConvcalcError(
                f"attribute {name} is {kind}, not {_ATTRIBUTE_TYPES[wanted]} as ONNX defines it"
            )
        return attribute

    def integer(self, name: str, default: int | None, minimum: int | None = None) -> int:
        """An integer attribute; None as the default: it must be given."""
        attribute = self._typed(name, _INT)
        if attribute is not None:
            value = int(attribute.i)  # an int64 field (typed so where onnx has no types)
        elif default is not None:
            value = default
        else:
            raise ConvcalcError(f"has no attribute {name}, which it needs")
        _at_least(name, [value], minimum)
        return value

    @overload
    def integers(
        self, name: str, default: Sequence[int], minimum: int | None = None
    ) -> list[int]: ...

    @overload
    def integers(
        self, name: str, default: None, minimum: int | None = None
    ) -> list[int] | None: ...

    def integers(
        self, name: str, default: Sequence[int] | None, minimum: int | None = None
    ) -> list[int] | None:
        """A list of integers; None as the default: None when it is not given."""
        attribute = self._typed(name, _INTS)
        values = None if attribute is None else list(attribute.ints)
        if values is None:
            return None if default is None else list(default)
        _at_least(name, values, minimum)
        return values

    def real(self, name: str, default: float) -> float:
        attribute = self._typed(name, _FLOAT)
        value = default if attribute is None else attribute.f
        if not math.isfinite(value):
            raise ConvcalcError(f"attribute {name} is {value}, not a finite number")
        return value

    def reals(self, name: str) -> list[float] | None:
        attribute = self._typed(name, _FLOATS)
        if attribute is None:
            return None
        values = list(attribute.floats)
        if not all(map(math.isfinite, values)):
            raise ConvcalcError(f"attribute {name} holds {values}, not all finite numbers")
        return values

    def text(self, name: str, default: str) -> str:
        attribute = self._typed(name, _STRING)
        if attribute is None:
            return default
        try:
            return str(attribute.s.decode())  # typed so where onnx has no types
        except UnicodeDecodeError:
            raise ConvcalcError(
                f"attribute {name} is not UTF-8 text: {shown(attribute.s)}"
            ) from None

    def tensor(self, name: str) -> TensorProto | None:
        attribute = self._typed(name, _TENSOR)
        return None if attribute is None else attribute.t


def _at_least(name: str, values: list[int], minimum: int | None) -> None:
    if minimum is not None and any(value < minimum for value in values):
        wanted = "positive" if minimum == 1 else f"at least {minimum}"
        raise ConvcalcError(f"attribute {name} is {_one(values)}; it must be {wanted}")


def _one(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


# -- tensors --------------------------------------------------------------------------

#: The data types a constant may have (TensorProto.DataType): their numpy type, and the
#: field that holds their values when they are not raw bytes (onnx.proto).
_DATA_TYPES: dict[int, tuple[str, str]] = {
    1: ("float32", "float_data"),
    2: ("uint8", "int32_data"),
    3: ("int8", "int32_data"),
    4: ("uint16", "int32_data"),
    5: ("int16", "int32_data"),
    6: ("int32", "int32_data"),
    7: ("int64", "int64_data"),
    9: ("bool", "int32_data"),
    10: ("float16", "int32_data"),  # the bits, as uint16
    11: ("float64", "double_data"),
    12: ("uint32", "uint64_data"),
    13: ("uint64", "uint64_data"),
}

#: The numpy type of each field of values (onnx.proto; int32_data holds the smaller
#: types too, so it is read wide and checked).
_FIELD_TYPES = {
    "float_data": "float32",
    "double_data": "float64",
    "int32_data": "int64",
    "int64_data": "int64",
    "uint64_data": "uint64",
}


def _type_name(code: int) -> str:
    if code in _DATA_TYPES:
        return _DATA_TYPES[code][0]
    from onnx import TensorProto

    try:
        return f"{TensorProto.DataType.Name(code).lower()} ({code})"
    except ValueError:
        return f"unknown ({code})"


def _room(shape: Sequence[int], what: str) -> None:
    """Refuse to make a value of `shape` past the bounds on one constant."""
    if len(shape) > MAX_RANK:
        raise ConvcalcError(f"{what} would have {len(shape)} axes, more than {MAX_RANK}")
    if any(size < 0 for size in shape):
        raise ConvcalcError(f"{what} would have a negative size, in shape {list(shape)}")
    count = math.prod(shape)
    if count > MAX_CONSTANT_ELEMENTS:
        raise ConvcalcError(
            f"{what} would have {count:,} elements; convcalc computes constants of at most "
            f"{MAX_CONSTANT_ELEMENTS:,}"
        )


def decode(tensor: TensorProto, what: str) -> Any:
    """The values of a tensor of the file, as a numpy array, after its data type, shape
    and byte count are checked; a tensor in external data is refused."""
    if tensor.data_location == 1 or tensor.external_data:  # 1: EXTERNAL
        where = next((e.value for e in tensor.external_data if e.key == "location"), "")
        place = f" ({shown(where)})" if where else ""
        raise ConvcalcError(
            f"{what} is stored in external data{place}; convcalc reads no external data"
        )
    if tensor.HasField("segment"):
        raise ConvcalcError(f"{what} is stored in segments, which convcalc does not read")
    if tensor.data_type not in _DATA_TYPES:
        raise ConvcalcError(
            f"{what} has data type {_type_name(tensor.data_type)}; convcalc computes with "
            f"{', '.join(name for name, _ in _DATA_TYPES.values())}"
        )
    shape = tuple(tensor.dims)
    _room(shape, what)
    name, field = _DATA_TYPES[tensor.data_type]
    dtype = np.dtype(name)
    count = math.prod(shape)
    if tensor.HasField("raw_data"):
        raw = tensor.raw_data
        if len(raw) != count * dtype.itemsize:
            raise ConvcalcError(
                f"{what} has {len(raw):,} bytes of data; shape {list(shape)} of {name} "
                f"takes {count * dtype.itemsize:,}"
            )
        if name == "bool":  # any byte but 0 is true, as a C bool
            values = np.frombuffer(raw, np.uint8) != 0
        else:
            values = np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype)
    else:
        given = getattr(tensor, field)
        if len(given) != count:
            raise ConvcalcError(
                f"{what} holds {len(given):,} values; shape {list(shape)} takes {count:,}"
            )
        stored = np.array(given, _FIELD_TYPES[field])
        if name == "float16":
            values = _fitted(stored, np.dtype("uint16"), what).view(dtype)
        elif name == "bool":
            values = stored != 0
        else:
            values = _fitted(stored, dtype, what)
    return values.reshape(shape)


def _fitted(values: Any, dtype: Any, what: str) -> Any:
    """Whole numbers as `dtype`, which must hold every one of them."""
    if values.dtype.kind in "iuO" and values.size and dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = int(values.min()), int(values.max())
        if low < info.min or high > info.max:
            raise ConvcalcError(
                f"{what} holds {low if low < info.min else high}, out of range for {dtype}"
            )
    return values.astype(dtype)


# -- reading constants as the numbers a node needs ------------------------------------


def integers(value: Any, what: str) -> list[int]:
    """A constant that must be whole numbers (a shape, pads, axes), as Python ints."""
    if value.dtype.kind not in "iu":
        raise ConvcalcError(f"{what} has data type {value.dtype}, not an integer type")
    return [int(v) for v in value.reshape(-1).tolist()]


def reals(value: Any, what: str) -> list[float]:
    """A constant that must be finite floating-point numbers (scales, bounds, a ratio),
    as floats."""
    if value.dtype.kind != "f":
        raise ConvcalcError(f"{what} has data type {value.dtype}, not a floating-point type")
    numbers = [float(v) for v in value.reshape(-1).tolist()]
    if not all(map(math.isfinite, numbers)):
        raise ConvcalcError(f"{what} holds {_one(numbers)}, not all finite numbers")
    return numbers


# -- computing constants --------------------------------------------------------------


class Constants:
    """The constant values of one graph, computed when asked for and kept.

    `producers` maps each value to the node that writes it;
    `computed` holds the values computed from the network's input, never constants.
    """

    def __init__(
        self,
        initializers: dict[str, TensorProto],
        producers: dict[str, Operation],
        computed: set[str],
        opset: int,
    ) -> None:
        self.initializers = initializers
        self.producers = producers
        self.computed = computed
        self.opset = opset
        self.values: dict[str, Any] = {}
        self.work = 0  # elements made, against MAX_CONSTANT_WORK
        self.steps = 0  # nodes computed, against MAX_CONSTANT_STEPS

    def value(self, name: str, what: str) -> Any:
        """The value of `name`, which a node reads as `what` ("its shape"), as a numpy
        array; an error says which input could not be had, and why."""
        if name not in self.values:
            try:
                self._compute(name)
            except ConvcalcError as error:
                raise ConvcalcError(f"{what} {shown(name)}: {error.message}") from None
        return self.values[name]

    def keep(self, name: str, value: Any) -> None:
        """Keep a constant, counting its elements against MAX_CONSTANT_WORK."""
        self.work += value.size
        if self.work > MAX_CONSTANT_WORK:
            raise ConvcalcError(
                f"the constants of this file take more than {MAX_CONSTANT_WORK:,} elements "
                "in all; convcalc computes no more for one file"
            )
        self.values[name] = value

    def _compute(self, name: str) -> None:
        # Depth first without recursion: a chain may be as long as the file.
        stack = [name]
        expanded: set[str] = set()
        with np.errstate(all="raise"):  # no silent inf or nan: FloatingPointError
            while stack:
                wanted = stack[-1]
                if wanted in self.values:
                    stack.pop()
                elif wanted in self.initializers:
                    subject = "it" if wanted == name else shown(wanted)
                    self.keep(wanted, decode(self.initializers[wanted], subject))
                    stack.pop()
                elif wanted in self.computed or wanted not in self.producers:
                    subject = "it" if wanted == name else shown(wanted)
                    raise ConvcalcError(
                        f"{subject} is computed from the network's input, where a constant "
                        "is needed"
                        if wanted in self.computed
                        else f"{subject} is given by no initializer or node"
                    )
                else:
                    operation = self.producers[wanted]
                    index, node = operation.index, operation.node
                    missing = [
                        i for i in dict.fromkeys(operation.inputs) if i and i not in self.values
                    ]
                    if missing and wanted in expanded:
                        raise ConvcalcError(
                            f"{node_label(node, index)} reads its own output, through "
                            f"{shown(missing[0])}"
                        )
                    expanded.add(wanted)
                    if missing:
                        stack.extend(missing)
                        continue
                    self._run(operation)
                    if wanted not in self.values:
                        raise ConvcalcError(
                            f"{node_label(node, index)} gives no output {shown(wanted)}"
                        )
                    stack.pop()

    def _run(self, operation: Operation) -> None:
        """Run one node on its constant inputs, within the bounds."""
        index, node = operation.index, operation.node
        self.steps += 1
        if self.steps > MAX_CONSTANT_STEPS:
            raise ConvcalcError(
                f"computing the constants of this file takes more than {MAX_CONSTANT_STEPS:,} nodes"
            )
        run = OPERATORS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        try:
            if run is None:
                raise ConvcalcError(
                    f"convcalc computes constants with {', '.join(sorted(OPERATORS))} only"
                )
            inputs = [self.values[name] if name else None for name in operation.inputs]
            outputs = run(_Node(node, self.opset), inputs)
        except FloatingPointError as error:
            raise ConvcalcError(
                f"{node_label(node, index)}: the arithmetic fails: {error}"
            ) from None
        except ConvcalcError as error:
            raise ConvcalcError(f"{node_label(node, index)}: {error.message}") from None
        for output, value in zip(operation.outputs, outputs, strict=False):
            if output:
                # numpy gives scalars, not arrays of rank 0, for some of them (np.take).
                self.keep(output, np.asarray(value))

    def shape(self, name: str, what: str) -> tuple[int, ...]:
        """The shape of a constant (a weight), from the file alone where it is written
        there (an initializer or a `Constant`, through `Identity` and `Transpose` nodes,
        as exporters write a Linear's weight), else computed."""
        source = name
        perms: list[list[int]] = []  # the Transposes on the way, last first
        while source not in self.initializers and source in self.producers:
            operation = self.producers[source]
            if operation.node.op_type not in ("Identity", "Transpose") or not operation.inputs:
                break
            if operation.node.op_type == "Transpose":
                perm = Attributes(operation.node).integers("perm", None)
                if perm is None:
                    break
                perms.append(perm)
            source = operation.inputs[0]
        tensor = self.initializers.get(source)
        if tensor is None and source in self.producers:
            index, node = self.producers[source].index, self.producers[source].node
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                try:
                    tensor = Attributes(node).tensor("value")
                except ConvcalcError as error:
                    raise ConvcalcError(
                        f"{what} {shown(name)}: {node_label(node, index)}: {error.message}"
                    ) from None
        if tensor is None:
            return tuple(self.value(name, what).shape)
        if any(size < 0 for size in tensor.dims):
            raise ConvcalcError(
                f"{what} {shown(name)} has shape {list(tensor.dims)}, with a negative size"
            )
        dims = tuple(tensor.dims)
        for perm in reversed(perms):
            if sorted(perm) != list(range(len(dims))):
                raise ConvcalcError(
                    f"{what} {shown(name)}: perm {perm} is no permutation of {len(dims)} axes"
                )
            dims = tuple(dims[axis] for axis in perm)
        return dims


# -- the operators --------------------------------------------------------------------


class _Node:
    """What an operator sees of its node: its attributes and the opset."""

    def __init__(self, node: NodeProto, opset: int) -> None:
        self.op_type = node.op_type
        self.attributes = Attributes(node)
        self.opset = opset


_Run = Callable[[_Node, list[Any]], list[Any]]

#: The operators computed on constants, by name.
OPERATORS: dict[str, _Run] = {}


def _operator(*names: str) -> Callable[[_Run], _Run]:
    def register(run: _Run) -> _Run:
        OPERATORS.update(dict.fromkeys(names, run))
        return run

    return register


def _given(inputs: list[Any], position: int, what: str) -> Any:
    if position >= len(inputs) or inputs[position] is None:
        raise ConvcalcError(f"has no {what} (input {position})")
    return inputs[position]


def _optional(inputs: list[Any], position: int) -> Any:
    return inputs[position] if position < len(inputs) else None


def _axis(axis: int, rank: int) -> int:
    """An axis in [−rank, rank − 1] as one in [0, rank − 1]."""
    if not -rank <= axis < rank:
        raise ConvcalcError(f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def _axes(axes: Sequence[int], rank: int) -> list[int]:
    normalized = [_axis(axis, rank) for axis in axes]
    if len(set(normalized)) != len(normalized):
        raise ConvcalcError(f"axes {list(axes)} repeat an axis")
    return normalized


def _alike(arrays: Sequence[Any], kinds: str = "iufb") -> None:
    """Inputs of one data type (as ONNX requires), of one of `kinds`."""
    types = {array.dtype for array in arrays}
    if len(types) != 1:
        named = ", ".join(sorted(map(str, types)))
        raise ConvcalcError(f"its inputs have different data types ({named})")
    (dtype,) = types
    if dtype.kind not in kinds:
        raise ConvcalcError(f"does not compute on data type {dtype}")


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape inputs broadcast to (numpy's rules, which are ONNX's), within bounds."""
    _room(max(shapes, key=len), "its output")
    try:
        shape: tuple[int, ...] = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ConvcalcError(
            f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast"
        ) from None
    _room(shape, "its output")
    return shape


def _exact(dtype: Any, result: Any) -> Any:
    """An integer result computed with Python's integers, which must fit `dtype`."""
    return _fitted(np.asarray(result, dtype=object), dtype, "the result")


@_operator("Constant")
def _constant(node: _Node, inputs: list[Any]) -> list[Any]:
    attributes = node.attributes
    forms = [
        name
        for name in (
            "value",
            "value_float",
            "value_floats",
            "value_int",
            "value_ints",
            "value_string",
            "value_strings",
            "sparse_value",
        )
        if name in attributes
    ]
    if len(forms) != 1:
        raise ConvcalcError(f"has {len(forms)} values ({', '.join(forms)}); a Constant has one")
    (form,) = forms
    if form == "value":
        tensor = attributes.tensor(form)
        assert tensor is not None
        return [decode(tensor, "its value")]
    if form == "value_float":
        return [np.array(attributes.real(form, 0.0), np.float32)]
    if form == "value_int":
        return [np.array(attributes.integer(form, 0), np.int64)]
    if form in ("value_floats", "value_ints"):
        values = attributes.reals(form) if form == "value_floats" else attributes.integers(form, [])
        assert values is not None
        _room([len(values)], "its value")
        return [np.array(values, np.float32 if form == "value_floats" else np.int64)]
    raise ConvcalcError(f"holds a {form.removeprefix('value_')}, which convcalc does not compute")


@_operator("ConstantOfShape")
def _constant_of_shape(node: _Node, inputs: list[Any]) -> list[Any]:
    shape = integers(_given(inputs, 0, "shape"), "its shape")
    _room(shape, "its output")
    tensor = node.attributes.tensor("value")
    fill = np.zeros(1, np.float32) if tensor is None else decode(tensor, "its value")
    if fill.size != 1:
        raise ConvcalcError(f"its value has {fill.size} elements, not one")
    return [np.full(shape, fill.reshape(-1)[0], fill.dtype)]


@_operator("Identity")
def _identity(node: _Node, inputs: list[Any]) -> list[Any]:
    return [_given(inputs, 0, "input")]


@_operator("Shape")
def _shape(node: _Node, inputs: list[Any]) -> list[Any]:
    shape = _given(inputs, 0, "input").shape
    start = node.attributes.integer("start", 0)
    end = node.attributes.integer("end", len(shape))
    return [np.array(shape[start:end], np.int64)]  # ONNX clamps start and end as Python


@_operator("Size")
def _size(node: _Node, inputs: list[Any]) -> list[Any]:
    return [np.array(_given(inputs, 0, "input").size, np.int64)]


@_operator("Gather")
def _gather(node: _Node, inputs: list[Any]) -> list[Any]:
    data, indices = _given(inputs, 0, "data"), _given(inputs, 1, "indices")
    _alike([indices], "iu")
    if data.ndim == 0:
        raise ConvcalcError("gathers from a scalar")
    axis = _axis(node.attributes.integer("axis", 0), data.ndim)
    size = data.shape[axis]
    if indices.size and not (-size <= int(indices.min()) and int(indices.max()) < size):
        raise ConvcalcError(f"an index is out of range for an axis of {size}")
    _room((*data.shape[:axis], *indices.shape, *data.shape[axis + 1 :]), "its output")
    return [np.take(data, indices.astype(np.int64), axis=axis)]


def _axes_input(node: _Node, inputs: list[Any], since: int) -> list[int] | None:
    """Unsqueeze's and Squeeze's axes: an attribute before opset `since`, an input from."""
    if node.opset < since:
        return node.attributes.integers("axes", None)
    given = _optional(inputs, 1)
    return None if given is None else integers(given, "its axes")


@_operator("Unsqueeze")
def _unsqueeze(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "data")
    axes = _axes_input(node, inputs, 13)
    if axes is None:
        raise ConvcalcError("has no axes")
    rank = data.ndim + len(axes)
    _room((*data.shape, *[1] * len(axes)), "its output")
    return [np.expand_dims(data, tuple(_axes(axes, rank)))]


@_operator("Squeeze")
def _squeeze(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "data")
    axes = _axes_input(node, inputs, 13)
    if axes is None:
        return [np.squeeze(data)]
    normalized = _axes(axes, data.ndim)
    if any(data.shape[axis] != 1 for axis in normalized):
        raise ConvcalcError(f"squeezes axes {axes} of shape {list(data.shape)}, not all of size 1")
    return [np.squeeze(data, axis=tuple(normalized))]


@_operator("Concat")
def _concat(node: _Node, inputs: list[Any]) -> list[Any]:
    arrays = [array for array in inputs if array is not None]
    if not arrays:
        raise ConvcalcError("has no inputs")
    _alike(arrays)
    rank = arrays[0].ndim
    if rank == 0 or any(array.ndim != rank for array in arrays):
        raise ConvcalcError("concatenates scalars or inputs of different ranks")
    axis = _axis(node.attributes.integer("axis", None), rank)
    others = {(*a.shape[:axis], *a.shape[axis + 1 :]) for a in arrays}
    if len(others) != 1:
        raise ConvcalcError(f"its inputs differ in size off axis {axis}")
    shape = list(arrays[0].shape)
    shape[axis] = sum(array.shape[axis] for array in arrays)
    _room(shape, "its output")
    return [np.concatenate(arrays, axis=axis)]


@_operator("Reshape")
def _reshape(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "data")
    target = integers(_given(inputs, 1, "shape"), "its shape")
    keep_zero = node.attributes.integer("allowzero", 0)
    shape = []
    for axis, size in enumerate(target):
        if size == 0 and not keep_zero:
            if axis >= data.ndim:
                raise ConvcalcError(f"copies axis {axis} of a value of rank {data.ndim}")
            size = data.shape[axis]
        shape.append(size)
    if shape.count(-1) > 1 or any(size < -1 for size in shape):
        raise ConvcalcError(f"shape {target} is not a shape")
    if -1 in shape:
        known = math.prod(size for size in shape if size != -1)
        if known == 0 or data.size % known:
            raise ConvcalcError(f"cannot reshape {list(data.shape)} to {target}")
        shape[shape.index(-1)] = data.size // known
    _room(shape, "its output")
    if math.prod(shape) != data.size:
        raise ConvcalcError(f"cannot reshape {list(data.shape)} to {target}")
    return [data.reshape(shape)]


@_operator("Slice")
def _slice(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "data")
    attributes = node.attributes
    if node.opset < 10:
        starts, ends = attributes.integers("starts", None), attributes.integers("ends", None)
        if starts is None or ends is None:
            raise ConvcalcError("has no starts or ends")
        axes, steps = attributes.integers("axes", None), None
    else:
        starts = integers(_given(inputs, 1, "starts"), "its starts")
        ends = integers(_given(inputs, 2, "ends"), "its ends")
        given = [_optional(inputs, 3), _optional(inputs, 4)]
        axes, steps = (None if g is None else integers(g, "its axes or steps") for g in given)
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ConvcalcError("its starts, ends, axes and steps differ in length")
    index = [slice(None)] * data.ndim
    for axis, start, end, step in zip(_axes(axes, data.ndim), starts, ends, steps, strict=True):
        size = data.shape[axis]
        if step == 0:
            raise ConvcalcError("has a step of 0")
        start, end = start + size if start < 0 else start, end + size if end < 0 else end
        # ONNX clamps to [0, size] going forwards and to [−1, size − 1] going backwards,
        # where −1 is before the first element (numpy's None there).
        if step > 0:
            start, end = min(max(start, 0), size), min(max(end, 0), size)
        else:
            start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
        index[axis] = slice(start, None if end < 0 else end, step)
    return [data[tuple(index)]]


@_operator("Transpose")
def _transpose(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "data")
    perm = node.attributes.integers("perm", None)
    perm = list(range(data.ndim))[::-1] if perm is None else perm
    if sorted(perm) != list(range(data.ndim)):
        raise ConvcalcError(f"perm {perm} is no permutation of the {data.ndim} axes")
    return [np.transpose(data, perm)]


@_operator("Expand")
def _expand(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "data")
    shape = integers(_given(inputs, 1, "shape"), "its shape")
    return [np.array(np.broadcast_to(data, _broadcast(data.shape, tuple(shape))))]


@_operator("Range")
def _range(node: _Node, inputs: list[Any]) -> list[Any]:
    ends = [_given(inputs, i, what) for i, what in enumerate(("start", "limit", "delta"))]
    _alike(ends, "iuf")
    if any(end.size != 1 for end in ends):
        raise ConvcalcError("its start, limit and delta must be scalars")
    start, limit, delta = (end.reshape(-1)[0].item() for end in ends)
    dtype = ends[0].dtype
    if dtype.kind == "f":
        reals(np.array([start, limit, delta]), "its start, limit and delta")
    if delta == 0:
        raise ConvcalcError("has a delta of 0")
    if dtype.kind == "f":
        # ONNX: max(ceil((limit − start) / delta), 0) elements, start + i·delta.
        span = (limit - start) / delta
        count = max(math.ceil(span), 0) if math.isfinite(span) else MAX_CONSTANT_ELEMENTS + 1
        _room([count], "its output")
        return [(start + np.arange(count, dtype=np.float64) * delta).astype(dtype)]
    count = max(-((start - limit) // delta), 0)
    _room([count], "its output")
    return [_exact(dtype, np.array(range(start, start + count * delta, delta), dtype=object))]


@_operator("Cast")
def _cast(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "input")
    to = node.attributes.integer("to", None)
    if to not in _DATA_TYPES:
        raise ConvcalcError(f"casts to data type {_type_name(to)}, which convcalc does not")
    dtype = np.dtype(_DATA_TYPES[to][0])
    if dtype.kind == "b":
        return [data != 0]
    if dtype.kind in "iu" and data.dtype.kind == "f":
        if not np.isfinite(data).all():
            raise ConvcalcError(f"casts a value that is not finite to {dtype}")
        data = np.asarray(np.trunc(data)).astype(object)  # as C casts: towards zero
    return [_fitted(data, dtype, "it") if dtype.kind in "iu" else data.astype(dtype)]


def _arithmetic(name: str, operation: Callable[[Any, Any], Any]) -> None:
    """An elementwise operator on two inputs of one number type, broadcast."""

    def run(node: _Node, inputs: list[Any]) -> list[Any]:
        first, second = _given(inputs, 0, "input A"), _given(inputs, 1, "input B")
        _alike([first, second], "iuf")
        _broadcast(first.shape, second.shape)
        if first.dtype.kind == "f":
            return [operation(first, second).astype(first.dtype)]
        if name == "Div" and (second == 0).any():
            raise ConvcalcError("divides by zero")
        return [_exact(first.dtype, operation(first.astype(object), second.astype(object)))]

    _operator(name)(run)


def _divide(first: Any, second: Any) -> Any:
    """ONNX's Div: a float quotient, or an integer one truncated towards zero."""
    if first.dtype != object:
        return first / second
    quotient = abs(first) // abs(second)
    return np.where((first < 0) != (second < 0), -quotient, quotient)


_arithmetic("Add", lambda first, second: first + second)
_arithmetic("Sub", lambda first, second: first - second)
_arithmetic("Mul", lambda first, second: first * second)
_arithmetic("Div", _divide)


@_operator("Neg", "Abs")
def _sign(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "input")
    _alike([data], "iuf")
    if data.dtype.kind == "f":
        return [-data if node.op_type == "Neg" else np.abs(data)]
    exact = data.astype(object)
    return [_exact(data.dtype, -exact if node.op_type == "Neg" else abs(exact))]


@_operator("Floor", "Ceil")
def _round(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "input")
    _alike([data], "f")
    return [np.floor(data) if node.op_type == "Floor" else np.ceil(data)]


@_operator("Min", "Max")
def _extreme(node: _Node, inputs: list[Any]) -> list[Any]:
    arrays = [array for array in inputs if array is not None]
    if not arrays:
        raise ConvcalcError("has no inputs")
    _alike(arrays, "iuf")
    _broadcast(*(array.shape for array in arrays))
    pick = np.minimum if node.op_type == "Min" else np.maximum
    result = arrays[0]
    for array in arrays[1:]:
        result = pick(result, array)
    return [np.array(result)]


@_operator("Clip")
def _clip(node: _Node, inputs: list[Any]) -> list[Any]:
    data = _given(inputs, 0, "input")
    bounds = [_optional(inputs, 1), _optional(inputs, 2)]
    if node.opset < 11:
        bounds = [
            np.array(node.attributes.real(end, 0), data.dtype) if end in node.attributes else None
            for end in ("min", "max")
        ]
    _alike([data, *(bound for bound in bounds if bound is not None)], "iuf")
    low, high = bounds
    if any(bound is not None and bound.size != 1 for bound in bounds):
        raise ConvcalcError("its bounds must be scalars")
    if low is not None:
        data = np.maximum(data, low.reshape(()))
    if high is not None:
        data = np.minimum(data, high.reshape(()))
    return [np.array(data)]


@_operator("Equal")
def _equal(node: _Node, inputs: list[Any]) -> list[Any]:
    first, second = _given(inputs, 0, "input A"), _given(inputs, 1, "input B")
    _alike([first, second])
    _broadcast(first.shape, second.shape)
    return [np.equal(first, second)]


@_operator("Where")
def _where(node: _Node, inputs: list[Any]) -> list[Any]:
    condition = _given(inputs, 0, "condition")
    chosen = [_given(inputs, 1, "input X"), _given(inputs, 2, "input Y")]
    _alike([condition], "b")
    _alike(chosen)
    _broadcast(condition.shape, *(array.shape for array in chosen))
    return [np.where(condition, *chosen)]
