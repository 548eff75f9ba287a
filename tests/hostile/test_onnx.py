"""Hostile ONNX files: each cause of the catalogue as a small file built with
onnx.helper (or its bytes spoiled), read by `convcalc net` in a child under the
harness's bounds, which must refuse it with one clean line naming the file and the node;
and random damage to a valid file, which must be read or refused, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnx")

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, ModelProto, TensorProto, helper, numpy_helper

from convcalc.imports import onnx_constants
from tests.hostile.harness import CONTROL, assert_clean_error, run_convcalc
from tests.imports.test_onnx import floats, ints, node, weight

INT64_MAX = 2**63 - 1

# -- building files -------------------------------------------------------------------


def model(
    nodes: Sequence[Any],
    initializers: Sequence[TensorProto] = (),
    *,
    shape: Sequence[Any] = (1, 3, 8, 8),
    opsets: Sequence[tuple[str, int]] = (("", 17),),
    inputs: Sequence[str] = ("x",),
    outputs: Sequence[str] = ("y",),
) -> ModelProto:
    """A model as written, unchecked: the point is that it may be wrong."""
    graph = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)) for name in inputs],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        list(initializers),
    )
    imports = [helper.make_opsetid(domain, version) for domain, version in opsets]
    return helper.make_model(graph, opset_imports=imports)


def flatten_by(
    target: Sequence[Any] = (), *initializers: TensorProto, **options: Any
) -> ModelProto:
    """x → Reshape 'y' to the target 't', which `target` nodes or `initializers` give."""
    return model([*target, node("Reshape", ["x", "t"], "y")], initializers, **options)


def conv_after(*pad: Any, opset: int = 17) -> ModelProto:
    """x → Pad 'p' (its amounts from `pad`) → Conv 'y'."""
    nodes = [*pad, node("Pad", ["x", "pads"], "p"), node("Conv", ["p", "w"], "y")]
    return model(nodes, [weight("w", 4, 3, 3, 3)], opsets=[("", opset)])


def with_attribute(attribute: AttributeProto) -> ModelProto:
    """x → Conv 'y' with one attribute as given."""
    conv = node("Conv", ["x", "w"], "y")
    conv.attribute.append(attribute)
    return model([conv], [weight("w", 4, 3, 3, 3)])


def attribute(name: str, kind: int, **fields: Any) -> AttributeProto:
    made = AttributeProto(name=name, type=kind)
    for field, value in fields.items():
        if isinstance(value, list):
            getattr(made, field).extend(value)
        else:
            setattr(made, field, value)
    return made


def external(tensor: TensorProto, location: str) -> TensorProto:
    """The tensor, its values said to be in the file `location` beside the model."""
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


def spoiled(tensor: TensorProto, **fields: Any) -> TensorProto:
    for field, value in fields.items():
        if isinstance(value, list):
            tensor.ClearField(field)
            getattr(tensor, field).extend(value)
        else:
            setattr(tensor, field, value)
    return tensor


def doublings() -> list[Any]:
    """A chain of doublings of a ConstantOfShape of n ones (17 values of n elements),
    feeding a target [0, -1] through its Shape."""
    one = helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
    nodes = [node("ConstantOfShape", ["n"], "c0", value=one)]
    for step in range(1, 18):
        nodes.append(node("Add", [f"c{step - 1}", f"c{step - 1}"], f"c{step}"))
    return [
        *nodes,
        node("Shape", ["c17"], "s"),
        node("Sub", ["s", "s"], "zero"),
        node("Concat", ["zero", "minus1"], "t", axis=0),
    ]


def renamed(built: ModelProto, old: bytes, new: bytes) -> bytes:
    """The model's bytes with a name replaced by bytes of the same length (which
    onnx.helper would not write: not UTF-8)."""
    data = built.SerializeToString()
    assert data.count(old) == 1 and len(old) == len(new)
    return data.replace(old, new)


# -- the catalogue --------------------------------------------------------------------

Case = tuple[Callable[[Path], ModelProto | bytes], str, str]

#: id → (the file, the node the error names ("" for the file alone), what it says).
CASES: dict[str, Case] = {
    # External data: never read, not even when it is there, or a link out of the folder.
    "external-target": (
        lambda tmp: flatten_by((), external(ints("t", 0, -1), "t.bin")),
        "node 'y' (Reshape)",
        "its shape 't': it is stored in external data ('t.bin'); convcalc reads no external data",
    ),
    "external-symlink": (
        lambda tmp: flatten_by((), external(ints("t", 0, -1), "passwd")),
        "node 'y' (Reshape)",
        "stored in external data",
    ),
    "external-constant": (
        lambda tmp: flatten_by(
            [node("Constant", [], "t", value=external(ints("v", 0, -1), "t.bin"))]
        ),
        "node 'y' (Reshape)",
        "its value is stored in external data",
    ),
    # Subgraphs.
    "loop": (
        lambda tmp: model(
            [
                node("Relu", ["x"], "y"),
                node("Loop", ["", ""], "l", body=helper.make_graph([], "b", [], [])),
            ]
        ),
        "node 'l' (Loop)",
        "holds a subgraph (attribute 'body'); convcalc reads no subgraphs (Loop, If, Scan",
    ),
    "if": (
        lambda tmp: model(
            [
                node(
                    "If",
                    ["x"],
                    "y",
                    then_branch=helper.make_graph([], "a", [], []),
                    else_branch=helper.make_graph([], "b", [], []),
                )
            ]
        ),
        "node 'y' (If)",
        "holds a subgraph",
    ),
    "scan": (
        lambda tmp: model(
            [node("Scan", ["x"], "y", body=helper.make_graph([], "b", [], []), num_scan_inputs=1)]
        ),
        "node 'y' (Scan)",
        "holds a subgraph",
    ),
    # The graph's structure.
    "cycle": (
        lambda tmp: model([node("Add", ["x", "b"], "a"), node("Relu", ["a"], "b")], outputs=["b"]),
        "node 'a' (Add)",
        "reads 'b' before any node writes it: the nodes are out of order, or form a cycle",
    ),
    "undefined": (
        lambda tmp: flatten_by((), ints("u", 0, -1)),
        "node 'y' (Reshape)",
        "reads 't', which no initializer, graph input or node gives",
    ),
    "written-twice": (
        lambda tmp: model([node("Relu", ["x"], "y"), node("Tanh", ["x"], "y")]),
        "node 'y' (Tanh)",
        "writes 'y', which an initializer, the graph input or another node already gives",
    ),
    "no-output-of-node": (
        lambda tmp: model([helper.make_node("Relu", ["x"], [], name="r")], outputs=["x"]),
        "node 'r' (Relu)",
        "has no output",
    ),
    "no-nodes": (lambda tmp: model([], outputs=["x"]), "", "the graph has no nodes"),
    "no-inputs": (
        lambda tmp: model([node("Relu", ["x"], "y")], inputs=[]),
        "node 'y' (Relu)",
        "reads 'x', which no initializer, graph input or node gives",
    ),
    "no-outputs": (
        lambda tmp: model([node("Relu", ["x"], "y")], outputs=[]),
        "",
        "the graph has no outputs",
    ),
    "no-graph": (
        lambda tmp: ModelProto(ir_version=8),
        "",
        "the file holds no graph: not an ONNX model",
    ),
    # Malformed tensors.
    "raw-data-length": (
        lambda tmp: flatten_by((), spoiled(ints("t", 0, -1), raw_data=b"\x00\x01\x02")),
        "node 'y' (Reshape)",
        "it has 3 bytes of data; shape [2] of int64 takes 16",
    ),
    "negative-dim": (
        lambda tmp: flatten_by((), spoiled(ints("t", 0, -1), dims=[-2])),
        "node 'y' (Reshape)",
        "would have a negative size, in shape [-2]",
    ),
    "huge-dim": (
        lambda tmp: flatten_by((), spoiled(ints("t", 0, -1), dims=[2**40])),
        "node 'y' (Reshape)",
        "would have 1,099,511,627,776 elements; convcalc computes constants of at most 1,048,576",
    ),
    "unknown-type": (
        lambda tmp: flatten_by((), spoiled(ints("t", 0, -1), data_type=999)),
        "node 'y' (Reshape)",
        "has data type unknown (999)",
    ),
    "weight-negative-dim": (
        lambda tmp: model(
            [node("Conv", ["x", "w"], "y")], [spoiled(weight("w", 4, 3, 3, 3), dims=[4, 3, -3, 3])]
        ),
        "node 'y' (Conv)",
        "its weight 'w' has shape [4, 3, -3, 3], with a negative size",
    ),
    "huge-weight": (
        lambda tmp: model(
            [node("Conv", ["x", "w"], "y")],
            [spoiled(weight("w", 1, 3, 3, 3), dims=[2**62, 3, 3, 3], raw_data=b"")],
        ),
        "node 'y' (Conv)",
        "more than 2^63 − 1",
    ),
    "huge-input": (
        lambda tmp: flatten_by((), ints("t", 0, -1), shape=[1, 3, 2**62, 2**62]),
        "node 'y' (Reshape)",
        "the output would have at least 2^125 elements",
    ),
    # Wrong data types.
    "float-target": (
        lambda tmp: flatten_by((), floats("t", 0, -1)),
        "node 'y' (Reshape)",
        "its shape has data type float32, not an integer type",
    ),
    "float-pads": (
        lambda tmp: conv_after(node("Constant", [], "pads", value=floats("v", *[1e30] * 8))),
        "node 'p' (Pad)",
        "its pads has data type float32, not an integer type",
    ),
    "int-scales": (
        lambda tmp: model(
            [node("Resize", ["x", "", "s"], "y")], [ints("s", 1, 1, 2, 2)], opsets=[("", 13)]
        ),
        "node 'y' (Resize)",
        "its scales has data type int64, not a floating-point type",
    ),
    # Numbers out of range, or not finite.
    "pad-1e30": (
        lambda tmp: conv_after(
            node("Constant", [], "f", value=floats("v", *[1e30] * 8)),
            node("Cast", ["f"], "pads", to=TensorProto.INT64),
        ),
        "node 'p' (Pad)",
        "its pads 'pads': node 'pads' (Cast): it holds 1000000015047466219876688855040, "
        "out of range for int64",
    ),
    "pad-int64-max": (
        lambda tmp: conv_after(
            node("Constant", [], "pads", value=ints("v", 0, 0, INT64_MAX, 1, 0, 0, INT64_MAX, 1))
        ),
        "node 'y' (Conv)",
        "the output would have at least 2^69 elements, more than 2^63 − 1",
    ),
    "nan-scales": (
        lambda tmp: model(
            [node("Resize", ["x", "", "s"], "y")],
            [floats("s", 1, 1, float("nan"), 2)],
            opsets=[("", 13)],
        ),
        "node 'y' (Resize)",
        "its scales holds [1.0, 1.0, nan, 2.0], not all finite numbers",
    ),
    "int64-overflow": (
        lambda tmp: flatten_by(
            [node("Add", ["a", "b"], "t")], ints("a", INT64_MAX, -1), ints("b", 1, 0)
        ),
        "node 'y' (Reshape)",
        "node 't' (Add): the result holds 9223372036854775808, out of range for int64",
    ),
    "int64-min-target": (
        lambda tmp: flatten_by((), ints("t", -(2**63), -1)),
        "node 'y' (Reshape)",
        "reshapes [3, 8, 8] (without the batch) to [-9223372036854775808, -1]",
    ),
    "infinite-alpha": (
        lambda tmp: model([node("LeakyRelu", ["x"], "y", alpha=float("inf"))]),
        "node 'y' (LeakyRelu)",
        "attribute alpha is inf, not a finite number",
    ),
    # Attributes of the wrong type, or out of range, or not UTF-8.
    "string-kernel": (
        lambda tmp: with_attribute(attribute("kernel_shape", AttributeProto.STRING, s=b"3x3")),
        "node 'y' (Conv)",
        "attribute kernel_shape is a string, not a list of integers as ONNX defines it",
    ),
    "float-strides": (
        lambda tmp: with_attribute(attribute("strides", AttributeProto.FLOATS, floats=[1.0, 1.0])),
        "node 'y' (Conv)",
        "attribute strides is a list of numbers, not a list of integers",
    ),
    "zero-strides": (
        lambda tmp: with_attribute(attribute("strides", AttributeProto.INTS, ints=[0, 0])),
        "node 'y' (Conv)",
        "attribute strides is [0, 0]; it must be positive",
    ),
    "not-utf8-attribute": (
        lambda tmp: with_attribute(attribute("auto_pad", AttributeProto.STRING, s=b"SAME\xff")),
        "node 'y' (Conv)",
        "attribute auto_pad is not UTF-8 text: b'SAME\\xff'",
    ),
    "repeated-attribute": (
        lambda tmp: _repeat_attribute(),
        "node 'y' (LeakyRelu)",
        "has two attributes named 'alpha'",
    ),
    # Names: escaped, shortened, and text.
    "control-characters": (
        lambda tmp: model([helper.make_node("LSTM", ["x"], ["y"], name="\x1b[2J\r\nevil")]),
        "node '\\x1b[2J\\r\\nevil' (LSTM)",
        "convcalc cannot follow the operator LSTM",
    ),
    "control-operator": (
        lambda tmp: model([helper.make_node("Re\x07lu\n", ["x"], ["y"], name="r")]),
        "node 'r' ('Re\\x07lu\\n')",
        "convcalc cannot follow the operator 'Re\\x07lu\\n'",
    ),
    "long-name": (
        lambda tmp: model([helper.make_node("LSTM", ["x"], ["y"], name="n" * 100_000)]),
        f"node '{'n' * 40}…{'n' * 40}' (LSTM)",
        "convcalc cannot follow the operator LSTM",
    ),
    "not-utf8-name": (
        lambda tmp: renamed(
            model([helper.make_node("Relu", ["x"], ["y"], name="AAAA")]), b"AAAA", b"A\xffAA"
        ),
        "node #0",
        "its name is not UTF-8 text: b'A\\xffAA'",
    ),
    # Opsets.
    "opset-0": (
        lambda tmp: flatten_by((), ints("t", 0, -1), opsets=[("", 0)]),
        "",
        "imports opset 0",
    ),
    "opset-huge": (
        lambda tmp: flatten_by((), ints("t", 0, -1), opsets=[("", 10**9)]),
        "",
        "imports opset 1000000000 of the default domain; onnx ",
    ),
    "no-default-opset": (
        lambda tmp: flatten_by((), ints("t", 0, -1), opsets=[("com.example", 1)]),
        "",
        "imports no opset of the default domain (ai.onnx)",
    ),
    # Bounds on computing constants.
    "constant-of-shape": (
        lambda tmp: flatten_by(
            [node("ConstantOfShape", ["n"], "c"), node("Shape", ["c"], "t")], ints("n", 2**30)
        ),
        "node 'y' (Reshape)",
        "node 'c' (ConstantOfShape): its output would have 1,073,741,824 elements",
    ),
    "work": (
        lambda tmp: flatten_by(doublings(), ints("n", 2**20), ints("minus1", -1)),
        "node 'y' (Reshape)",
        "the constants of this file take more than 16,777,216 elements in all",
    ),
    # Files that are no ONNX model.
    "empty": (lambda tmp: b"", "", "the file is empty, not an ONNX model"),
    "garbage": (lambda tmp: b"\xff" * 64, "", "not an ONNX model (the file does not parse)"),
    "truncated": (
        lambda tmp: flatten_by((), ints("t", 0, -1)).SerializeToString()[:-3],
        "",
        "not an ONNX model (the file does not parse)",
    ),
}


def _repeat_attribute() -> bytes:
    leaky = node("LeakyRelu", ["x"], "y", alpha=0.1)
    leaky.attribute.append(attribute("alpha", AttributeProto.FLOAT, f=0.2))
    return model([leaky]).SerializeToString()


def write(tmp_path: Path, made: ModelProto | bytes) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(made if isinstance(made, bytes) else made.SerializeToString())
    return path


@pytest.mark.parametrize("case", CASES)
def test_refused_cleanly_naming_the_node(tmp_path: Path, case: str) -> None:
    build, where, says = CASES[case]
    # Beside the model: external data it could read, and a link out of its folder.
    (tmp_path / "t.bin").write_bytes(np.array([0, -1], np.int64).tobytes())
    (tmp_path / "passwd").symlink_to("/etc/passwd")
    path = write(tmp_path, build(tmp_path))
    result = run_convcalc(["net", str(path), "--json"])
    assert_clean_error(result, f"{path}: {where}" if where else f"{path}: ", says)
    assert len(result.stderr) < 1_000 + len(str(path))


def test_a_directory_named_onnx(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").mkdir()
    result = run_convcalc(["net", str(tmp_path / "model.onnx"), "--json"])
    assert_clean_error(result, f"{tmp_path / 'model.onnx'}: cannot read: Is a directory")


def test_a_file_over_2_gib_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    with path.open("wb") as file:
        file.truncate(3 << 30)  # sparse: no disk is written
    result = run_convcalc(["net", str(path), "--json"])
    assert_clean_error(result, f"{path}: larger than 2,147,483,647 bytes")


def test_an_endless_device_named_onnx_is_refused(tmp_path: Path) -> None:
    # Read in chunks to 2 GiB at most; under the harness's 1 GiB the memory ends first.
    (tmp_path / "zero.onnx").symlink_to("/dev/zero")
    result = run_convcalc(["net", str(tmp_path / "zero.onnx"), "--json"])
    assert_clean_error(result, f"{tmp_path / 'zero.onnx'}: too large to read in the memory")


def test_weights_in_external_data_are_not_needed(tmp_path: Path) -> None:
    # The weight's values are in no file at all: its shape, in the model, is enough.
    conv = node("Conv", ["x", "w"], "y", kernel_shape=[3, 3])
    path = write(tmp_path, model([conv], [external(weight("w", 4, 3, 3, 3), "missing.bin")]))
    result = run_convcalc(["net", str(path), "--json"])
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["params"] == 4 * 3 * 3 * 3


def test_a_chain_of_100000_nodes_is_walked_without_recursion(tmp_path: Path) -> None:
    # t = [0, -1] + 0 + 0 … through Identity and Add, 100,000 nodes deep.
    nodes = []
    for step in range(50_000):
        nodes.append(node("Identity", [f"t{step}"], f"i{step}"))
        nodes.append(node("Add", [f"i{step}", "zero"], f"t{step + 1}"))
    nodes.append(node("Identity", ["t50000"], "t"))
    path = write(tmp_path, flatten_by(nodes, ints("t0", 0, -1), ints("zero", 0, 0)))
    result = run_convcalc(["net", str(path), "--json"])
    assert result.code == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["output_shape"] == [3 * 8 * 8]


def test_the_bound_on_nodes_computed(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MAX_CONSTANT_STEPS is a million, too many to build here: lowered, it is met.
    monkeypatch.setattr(onnx_constants, "MAX_CONSTANT_STEPS", 10)
    nodes = [node("Identity", [f"t{step}"], f"t{step + 1}") for step in range(11)]
    nodes.append(node("Identity", ["t11"], "t"))
    path = write(tmp_path, flatten_by(nodes, ints("t0", 0, -1)))
    result = cli("net", str(path), "--json")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {path}: node 'y' (Reshape): its shape 't': computing the constants of this "
        "file takes more than 10 nodes\n"
    )


# -- random damage --------------------------------------------------------------------


def small_network() -> bytes:
    """A valid file with a little of everything: Conv, Relu, Pad, a computed Reshape."""
    nodes = [
        node("Conv", ["x", "w1", "b1"], "c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("Relu", ["c1"], "r1"),
        node("Pad", ["r1", "pads"], "p"),
        node("Conv", ["p", "w2"], "c2", kernel_shape=[3, 3], strides=[2, 2]),
        node("Relu", ["c2"], "r2"),
        node("Shape", ["r2"], "s"),
        node("Gather", ["s", "first"], "n", axis=0),
        node("Unsqueeze", ["n", "zero"], "n1"),
        node("Concat", ["n1", "minus1"], "t", axis=0),
        node("Reshape", ["r2", "t"], "y"),
    ]
    initializers = [
        weight("w1", 4, 3, 3, 3),
        weight("b1", 4),
        weight("w2", 8, 4, 3, 3),
        ints("pads", 0, 0, 1, 1, 0, 0, 1, 1),
        numpy_helper.from_array(np.array(0, np.int64), "first"),
        ints("zero", 0),
        ints("minus1", -1),
    ]
    return model(nodes, initializers, shape=["N", 3, 16, 16]).SerializeToString()


SMALL_NETWORK = small_network()

#: One change to the bytes: (where, in thousandths of the length; how many bytes it
#: replaces; what it puts there).
_change = st.tuples(st.integers(0, 999), st.integers(0, 8), st.binary(max_size=8))


def read_or_refused(cli: Any, path: Path) -> None:
    """`convcalc net` reads the file, or refuses it with one clean line, in this process
    (for speed: the time and memory bounds are not enforced here; the catalogue above
    runs each cause under them). Any other exception fails the test."""
    result = cli("net", str(path), "--json")
    assert result.code in (0, 2), result.stderr
    if result.code == 2:
        assert result.stdout == ""
        assert result.stderr.startswith(f"error: {path}: ") and result.stderr.count("\n") == 1
        assert not CONTROL.search(result.stderr[:-1]), repr(result.stderr)
    else:
        json.loads(result.stdout)


_IN_PROCESS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_IN_PROCESS
@given(changes=st.lists(_change, min_size=1, max_size=6), cut=st.none() | st.integers(0, 999))
def test_damaged_files_are_read_or_refused_cleanly(
    tmp_path: Path, cli: Any, changes: list[tuple[int, int, bytes]], cut: int | None
) -> None:
    data = bytearray(SMALL_NETWORK)
    for where, length, replacement in changes:
        start = where * len(data) // 1000
        data[start : start + length] = replacement
    if cut is not None:
        del data[cut * len(data) // 1000 :]
    path = tmp_path / "damaged.onnx"
    path.write_bytes(bytes(data))
    read_or_refused(cli, path)


_OPERATORS = ["Add", "Div", "Gather", "Slice", "Cast", "Range", "Expand", "Reshape", "Concat"]
_OPERATORS += ["Unsqueeze", "Squeeze", "Shape", "Conv", "Pad", "Resize", "MaxPool", "Where"]
_NUMBERS = st.sampled_from([0, 1, -1, 2, 3, -3, 2**31, 2**62, INT64_MAX, -(2**63)])
_ATTRIBUTES = ["axis", "kernel_shape", "strides", "pads", "to", "start", "end", "perm", "axes"]


@st.composite
def edited_network(draw: st.DrawFn) -> bytes:
    """The small network with a few of its nodes, attributes and initializers changed
    as a careless or hostile hand would: what random bytes seldom reach."""
    built = ModelProto.FromString(SMALL_NETWORK)
    graph = built.graph
    names = [*(value for n in graph.node for value in n.output), "x", "pads", "first", "ghost"]
    for _ in range(draw(st.integers(1, 4))):
        edited = graph.node[draw(st.integers(0, len(graph.node) - 1))]
        tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
        edit = draw(st.sampled_from(["operator", "input", "attribute", "dims", "type"]))
        if edit == "operator":
            edited.op_type = draw(st.sampled_from(_OPERATORS))
        elif edit == "input":
            edited.input.append(draw(st.sampled_from(names)))
            edited.input[draw(st.integers(0, len(edited.input) - 1))] = draw(st.sampled_from(names))
        elif edit == "attribute":
            name = draw(st.sampled_from(_ATTRIBUTES))
            kept = [a for a in edited.attribute if a.name != name]
            edited.ClearField("attribute")
            value = draw(_NUMBERS | st.lists(_NUMBERS, min_size=1, max_size=4))
            edited.attribute.extend([*kept, helper.make_attribute(name, value)])
        elif edit == "dims":
            tensor.ClearField("dims")
            tensor.dims.extend(draw(st.lists(_NUMBERS, max_size=4)))
        else:
            tensor.data_type = draw(st.sampled_from([1, 6, 7, 8, 9, 10, 11, 16, 999]))
    return built.SerializeToString()


@_IN_PROCESS
@given(data=edited_network())
def test_edited_networks_are_read_or_refused_cleanly(tmp_path: Path, cli: Any, data: bytes) -> None:
    path = tmp_path / "edited.onnx"
    path.write_bytes(data)
    read_or_refused(cli, path)


def test_the_small_network_reads(tmp_path: Path) -> None:
    path = tmp_path / "small.onnx"
    path.write_bytes(SMALL_NETWORK)
    result = run_convcalc(["net", str(path), "--input", "3x16x16", "--json"])
    assert result.code == 0, result.stderr
    # conv 3→4 (3×3, padding 1): 16×16; Pad 1 and conv 4→8 (3×3, stride 2): 8×8.
    assert json.loads(result.stdout)["output_shape"] == [8 * 8 * 8]
