"""ONNX import (convcalc.imports.onnx): models built with onnx.helper, and exported from
PyTorch, against the same network written as a model file, against ONNX's own shape
inference and reference runtime, and against PyTorch's parameter counts.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnx")

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convcalc.analysis.analyze import Analysis, analyze
from convcalc.errors import ConvcalcError
from convcalc.imports.graph import MERGES
from convcalc.imports.onnx import read_onnx
from convcalc.opening import open_model
from tests.helpers import analyze_yaml

# -- building models -------------------------------------------------------------------


def weight(name: str, *shape: int) -> Any:
    """An initializer of that shape (its values do not matter to convcalc)."""
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def ints(name: str, *values: int) -> Any:
    return numpy_helper.from_array(np.array(values, np.int64), name)


def floats(name: str, *values: float) -> Any:
    return numpy_helper.from_array(np.array(values, np.float32), name)


def node(op: str, inputs: list[str], output: str, **attrs: Any) -> Any:
    """A node named after the value it writes."""
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def save(
    path: Path,
    nodes: list[Any],
    initializers: Sequence[Any] = (),
    shape: list[Any] | None = None,
    opset: int = 17,
    output: str = "y",
) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape or [1, 3, 32, 32])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    # The checker wants the output's shape, which inference gives (convcalc reads none
    # of what inference adds); models it cannot infer are those convcalc must refuse.
    model = onnx.shape_inference.infer_shapes(model)
    if model.graph.output[0].type.tensor_type.HasField("shape"):
        onnx.checker.check_model(model)
    file = path / "model.onnx"
    onnx.save(model, file)
    return file


def imported(file: Path, shape: tuple[int, ...] | None = None) -> Analysis:
    return analyze(open_model(str(file), shape), shape)


def rows(analysis: Analysis) -> list[tuple[Any, ...]]:
    """What must agree, row by row in execution order: kinds, output shapes, parameters,
    MACs and fields, and the input shapes of layers (a merge's input shape is that of one
    of its inputs, which a nested model file and a graph choose differently)."""
    return [
        (
            r.kind,
            None if r.kind in MERGES else r.input_shape,
            r.output_shape,
            r.params,
            r.macs,
            r.receptive_field,
        )
        for r in analysis.rows
    ]


def unnamed(data: Any) -> Any:
    """Layers without the names the importer gives them: `{"relu": {"name": "r"}}` is
    `"relu"` again."""
    if isinstance(data, list):
        return [unnamed(item) for item in data]
    if isinstance(data, dict):
        if len(data) == 1:
            ((kind, params),) = data.items()
            if isinstance(params, dict) and set(params) <= {"name"}:
                return kind
        return {key: unnamed(value) for key, value in data.items() if key != "name"}
    return data


def agree(file: Path, model_file: str, **inferred: Any) -> Analysis:
    """The imported model runs as the model file does, row for row (but for names): the
    same kinds, layer parameters, shapes, MACs and fields, totals and warnings; and its
    shapes are those ONNX's shape inference gives."""
    got = imported(file)
    expected = analyze_yaml(model_file)
    assert rows(got) == rows(expected)
    assert got.totals == expected.totals
    assert [w.code for w in got.warnings] == [w.code for w in expected.warnings]
    assert got.receptive_field == expected.receptive_field
    assert inferred_agrees(file, got, **inferred) > 0
    return got


def inferred_agrees(
    file: Path, analysis: Analysis, written: dict[str, str] | None = None, last: Sequence[str] = ()
) -> int:
    """Check every row named after a node, and the network's output, against
    onnx.shape_inference; how many rows were checked. `written`: the value a row writes
    where it is another node's (a row of several nodes is named after the first); `last`:
    the rows on channels last (between Transposes), whose shapes convcalc keeps channels
    first."""
    model = onnx.load(file)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    shapes = {
        value.name: tuple(d.dim_value for d in value.type.tensor_type.shape.dim)
        for value in [*inferred.value_info, *inferred.output]
    }
    outputs = {n.name: n.output[0] for n in model.graph.node}
    checked = 0
    for row in analysis.rows:
        if row.name in outputs:
            shape = shapes[(written or {}).get(row.name, outputs[row.name])][1:]
            if row.name in last:
                shape = (shape[-1], *shape[:-1])
            assert shape == row.output_shape, row.name
            checked += 1
    assert shapes[inferred.output[0].name][1:] == analysis.output_shape
    return checked


# -- networks as a model file writes them ------------------------------------------------


def test_a_conv_chain(tmp_path: Path) -> None:
    file = save(
        tmp_path,
        [
            node(
                "Conv",
                ["x", "w1", "b1"],
                "c1",
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
            ),
            node("Relu", ["c1"], "r1"),
            # pads: all begins, then all ends: H [0, 2], W [1, 1].
            node("Conv", ["r1", "w2"], "c2", dilations=[2, 2], group=2, pads=[0, 1, 2, 1]),
            node("MaxPool", ["c2"], "p1", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
            node("AveragePool", ["p1"], "p2", kernel_shape=[2, 2], pads=[1, 1, 1, 1]),
            node(
                "ConvTranspose",
                ["p2", "w3", "b3"],
                "y",
                strides=[2, 2],
                pads=[1, 0, 1, 0],
                output_padding=[1, 1],
            ),
        ],
        [
            weight("w1", 16, 3, 3, 3),
            weight("b1", 16),
            weight("w2", 8, 8, 3, 3),
            weight("w3", 8, 4, 3, 3),
            weight("b3", 4),
        ],
    )
    agree(
        file,
        """\
        input: [3, 32, 32]
        layers:
          - conv: {out_channels: 16, kernel_size: 3, stride: 2, padding: 1}
          - relu
          - conv: {out_channels: 8, kernel_size: 3, dilation: 2, groups: 2,
                   padding: [[0, 2], [1, 1]], bias: false}
          - max_pool: {kernel_size: 3, stride: 2, ceil_mode: true}
          - avg_pool: {kernel_size: 2, stride: 1, padding: 1, count_include_pad: false}
          - conv_transpose: {out_channels: 4, kernel_size: 3, stride: 2, padding: [1, 0],
                             output_padding: 1}
        """,
    )
    assert read_onnx(str(file))["layers"][0] == {
        "conv": {"name": "c1", "out_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1}
    }


def _basic_block(
    prefix: str, source: str, channels: int, stride: int
) -> tuple[list[Any], list[Any], str]:
    """A ResNet basic block (He et al. 2016) as torchvision writes it, as ONNX nodes."""
    nodes = [
        node(
            "Conv",
            [source, f"{prefix}w1"],
            f"{prefix}c1",
            kernel_shape=[3, 3],
            strides=[stride] * 2,
            pads=[1] * 4,
        ),
        node(
            "BatchNormalization",
            [f"{prefix}c1", f"{prefix}s", f"{prefix}b", f"{prefix}m", f"{prefix}v"],
            f"{prefix}n1",
        ),
        node("Relu", [f"{prefix}n1"], f"{prefix}r1"),
        node(
            "Conv", [f"{prefix}r1", f"{prefix}w2"], f"{prefix}c2", kernel_shape=[3, 3], pads=[1] * 4
        ),
        node(
            "BatchNormalization",
            [f"{prefix}c2", f"{prefix}s", f"{prefix}b", f"{prefix}m", f"{prefix}v"],
            f"{prefix}n2",
        ),
    ]
    inputs = 8 if stride == 2 else channels
    inits = [
        weight(f"{prefix}w1", channels, inputs, 3, 3),
        weight(f"{prefix}w2", channels, channels, 3, 3),
    ]
    inits += [weight(f"{prefix}{n}", channels) for n in "sbmv"]
    shortcut = source
    if stride == 2:
        nodes += [
            node(
                "Conv", [source, f"{prefix}wd"], f"{prefix}d", kernel_shape=[1, 1], strides=[2, 2]
            ),
            node(
                "BatchNormalization",
                [f"{prefix}d", f"{prefix}s", f"{prefix}b", f"{prefix}m", f"{prefix}v"],
                f"{prefix}nd",
            ),
        ]
        inits.append(weight(f"{prefix}wd", channels, inputs, 1, 1))
        shortcut = f"{prefix}nd"
    nodes += [
        node("Add", [f"{prefix}n2", shortcut], f"{prefix}sum"),
        node("Relu", [f"{prefix}sum"], f"{prefix}out"),
    ]
    return nodes, inits, f"{prefix}out"


def test_resnet_basic_blocks(tmp_path: Path) -> None:
    first, inits1, value = _basic_block("a", "x", 8, 1)
    second, inits2, value = _basic_block("b", value, 16, 2)
    head = [
        node("GlobalAveragePool", [value], "gap"),
        node("Flatten", ["gap"], "flat"),
        node("Gemm", ["flat", "fcw", "fcb"], "y", transB=1),
    ]
    file = save(
        tmp_path,
        first + second + head,
        [*inits1, *inits2, weight("fcw", 10, 16), weight("fcb", 10)],
        shape=[1, 8, 16, 16],
    )
    got = agree(
        file,
        """\
        input: [8, 16, 16]
        layers:
          - residual:
              body:
                - conv: {out_channels: 8, kernel_size: 3, padding: 1, bias: false}
                - batch_norm
                - relu
                - conv: {out_channels: 8, kernel_size: 3, padding: 1, bias: false}
                - batch_norm
          - relu
          - add:
            - - conv: {out_channels: 16, kernel_size: 3, stride: 2, padding: 1, bias: false}
              - batch_norm
              - relu
              - conv: {out_channels: 16, kernel_size: 3, padding: 1, bias: false}
              - batch_norm
            - - conv: {out_channels: 16, kernel_size: 1, stride: 2, bias: false}
              - batch_norm
          - relu
          - adaptive_avg_pool: {output_size: 1}
          - flatten
          - linear: {out_features: 10}
        """,
    )
    # 2·(8·8·9) + 2·16 (block a), 16·8·9 + 16·16·9 + 16·8 + 3·32 (block b), 16·10 + 10.
    assert got.totals.params == 1152 + 32 + 3456 + 128 + 96 + 170


def test_inception_concat_keeps_the_order_of_its_inputs(tmp_path: Path) -> None:
    file = save(
        tmp_path,
        [
            node("Conv", ["x", "w1"], "a", kernel_shape=[1, 1]),
            node("Conv", ["x", "w2"], "b1", kernel_shape=[1, 1]),
            node("Conv", ["b1", "w3"], "b2", kernel_shape=[3, 3], pads=[1] * 4),
            node("MaxPool", ["x"], "c1", kernel_shape=[3, 3], pads=[1] * 4),
            node("Conv", ["c1", "w4"], "c2", kernel_shape=[1, 1]),
            node("Concat", ["b2", "c2", "a"], "y", axis=1),
        ],
        [
            weight("w1", 4, 3, 1, 1),
            weight("w2", 2, 3, 1, 1),
            weight("w3", 6, 2, 3, 3),
            weight("w4", 5, 3, 1, 1),
        ],
    )
    got = agree(
        file,
        """\
        input: [3, 32, 32]
        layers:
          - conv: {name: a, out_channels: 4, kernel_size: 1, bias: false}
          - conv: {name: b1, from: input, out_channels: 2, kernel_size: 1, bias: false}
          - conv: {name: b2, out_channels: 6, kernel_size: 3, padding: 1, bias: false}
          - max_pool: {name: c1, from: input, kernel_size: 3, stride: 1, padding: 1}
          - conv: {name: c2, out_channels: 5, kernel_size: 1, bias: false}
          - concat: {name: y, from: [b2, c2, a]}
        """,
    )
    assert got.output_shape == (15, 32, 32)
    assert read_onnx(str(file))["layers"][-1] == {
        "concat": {"name": "y", "from": ["b2", "c2", "a"]}
    }


def test_a_u_net_long_skip_with_resize(tmp_path: Path) -> None:
    # e1 ─────────────────────────────── concat → y
    #  └ pool → e2 ── concat → up (Resize) ┘
    #            └ pool → b → convT ┘
    file = save(
        tmp_path,
        [
            node("Conv", ["x", "w1"], "e1", kernel_shape=[3, 3], pads=[1] * 4),
            node("MaxPool", ["e1"], "p1", kernel_shape=[2, 2], strides=[2, 2]),
            node("Conv", ["p1", "w2"], "e2", kernel_shape=[3, 3], pads=[1] * 4),
            node("MaxPool", ["e2"], "p2", kernel_shape=[2, 2], strides=[2, 2]),
            node("Conv", ["p2", "w3"], "b", kernel_shape=[3, 3], pads=[1] * 4),
            node("ConvTranspose", ["b", "w4"], "u2", kernel_shape=[2, 2], strides=[2, 2]),
            node("Concat", ["e2", "u2"], "j2", axis=1),
            helper.make_node(
                "Resize",
                ["j2", "", "scales"],
                ["u1"],
                name="u1",
                mode="linear",
                coordinate_transformation_mode="pytorch_half_pixel",
            ),
            node("Concat", ["e1", "u1"], "y", axis=-3),
        ],
        [
            weight("w1", 4, 3, 3, 3),
            weight("w2", 8, 4, 3, 3),
            weight("w3", 16, 8, 3, 3),
            weight("w4", 16, 8, 2, 2),
            floats("scales", 1, 1, 2, 2),
        ],
    )
    agree(
        file,
        """\
        input: [3, 32, 32]
        layers:
          - conv: {out_channels: 4, kernel_size: 3, padding: 1, bias: false}
          - concat:
            - []
            - - max_pool: {kernel_size: 2}
              - conv: {out_channels: 8, kernel_size: 3, padding: 1, bias: false}
              - concat:
                - []
                - - max_pool: {kernel_size: 2}
                  - conv: {out_channels: 16, kernel_size: 3, padding: 1, bias: false}
                  - conv_transpose: {out_channels: 8, kernel_size: 2, stride: 2, bias: false}
              - upsample: {scale_factor: 2, mode: bilinear}
        """,
    )


# -- auto_pad, against ONNX's reference runtime ------------------------------------------


def _first_and_last(file: Path, length: int) -> tuple[float, float]:
    """Run the model on ones (ONNX's reference runtime): with a kernel of ones, the
    first and last outputs count the real input pixels their windows cover."""
    from onnx.reference import ReferenceEvaluator

    (out,) = ReferenceEvaluator(str(file)).run(None, {"x": np.ones((1, 1, length), np.float32)})
    return float(out[0, 0, 0]), float(out[0, 0, -1])


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize(
    ("length", "kernel", "stride", "dilation"),
    [(9, 4, 1, 1), (10, 3, 2, 1), (11, 2, 3, 1), (12, 3, 2, 2), (7, 5, 3, 1)],
)
def test_auto_pad(
    tmp_path: Path, auto_pad: str, length: int, kernel: int, stride: int, dilation: int
) -> None:
    file = save(
        tmp_path,
        [
            node(
                "Conv",
                ["x", "w"],
                "y",
                kernel_shape=[kernel],
                strides=[stride],
                dilations=[dilation],
                auto_pad=auto_pad,
            )
        ],
        [weight("w", 1, 1, kernel)],
        shape=[1, 1, length],
    )
    got = imported(file)
    assert inferred_agrees(file, got) == 1
    ((conv,),) = [read_onnx(str(file))["layers"]]
    assert (conv["conv"].get("padding") == "same") == (auto_pad == "SAME_UPPER")
    # Unit y's window starts at y·stride − before (its field's effective padding): the
    # taps that fall on real pixels, for the first and the last unit, are what the
    # reference runtime counts with a kernel of ones.
    before = got.receptive_field.effective_padding[0]
    out = got.output_shape[1]

    def taps(start: Any) -> int:
        return sum(1 for t in range(kernel) if 0 <= start + t * dilation < length)

    assert _first_and_last(file, length) == (taps(-before), taps((out - 1) * stride - before))
    if auto_pad != "VALID":
        assert out == -(-length // stride)


@pytest.mark.parametrize(
    ("attrs", "pads"),
    [
        # Output 5·3 = 15 of (5 − 1)·3 + 4 = 16: one to crop, at the end (UPPER) or start.
        ({"auto_pad": "SAME_UPPER"}, [0, 1]),
        ({"auto_pad": "SAME_LOWER"}, [1, 0]),
        # total_padding 16 − 11 = 5: "pads[start_i] = total_padding[i] − (total_padding[i]/2)".
        ({"output_shape": [11]}, [3, 2]),
        ({"output_shape": [13], "output_padding": [1]}, [2, 2]),
        ({"auto_pad": "VALID"}, [0, 0]),
        ({"pads": [2, 1]}, [2, 1]),
    ],
)
def test_conv_transpose_padding(tmp_path: Path, attrs: dict[str, Any], pads: list[int]) -> None:
    length, kernel, stride = 5, 4, 3
    taps = np.arange(1, kernel + 1, dtype=np.float32)  # tap t weighs t + 1
    file = save(
        tmp_path,
        [node("ConvTranspose", ["x", "w"], "y", kernel_shape=[kernel], strides=[stride], **attrs)],
        [numpy_helper.from_array(taps.reshape(1, 1, kernel), "w")],
        shape=[1, 1, length],
    )
    padding = read_onnx(str(file))["layers"][0]["conv_transpose"].get("padding", 0)
    assert (padding if isinstance(padding, list) else [[padding, padding]]) == [pads]
    assert inferred_agrees(file, imported(file)) == 1
    if "output_shape" in attrs:
        return  # ONNX's reference runtime does not take output_shape
    from onnx.reference import ReferenceEvaluator

    (out,) = ReferenceEvaluator(str(file)).run(None, {"x": np.ones((1, 1, length), np.float32)})
    # The whole transposed convolution, uncropped: the output is the window of it that
    # starts after the padding.
    whole = np.zeros((length - 1) * stride + kernel, np.float32)
    for i in range(length):
        whole[i * stride : i * stride + kernel] += taps
    before, after = pads
    assert np.array_equal(out[0, 0], whole[before : len(whole) - after])


def test_same_lower_puts_the_odd_pixel_before(tmp_path: Path) -> None:
    file = save(
        tmp_path,
        [node("Conv", ["x", "w"], "y", kernel_shape=[4, 3], auto_pad="SAME_LOWER")],
        [weight("w", 2, 3, 4, 3)],
    )
    assert read_onnx(str(file))["layers"][0]["conv"]["padding"] == [[2, 1], [1, 1]]


# -- folded Pad, Resize, Gemm / MatMul, activations ------------------------------------


def test_pad_folds_into_the_next_conv_or_pool(tmp_path: Path) -> None:
    file = save(
        tmp_path,
        [
            # H by [1, 2], W by [0, 3]: begins (N, C, H, W), then ends.
            node("Pad", ["x", "pads1"], "padded"),
            node("Conv", ["padded", "w"], "c", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            node("Pad", ["c", "pads2"], "padded2"),
            node("AveragePool", ["padded2"], "y", kernel_shape=[2, 2], strides=[2, 2]),
        ],
        [
            ints("pads1", 0, 0, 1, 0, 0, 0, 2, 3),
            weight("w", 4, 3, 3, 3),
            ints("pads2", 0, 0, 1, 1, 0, 0, 0, 0),
        ],
    )
    agree(
        file,
        """\
        input: [3, 32, 32]
        layers:
          - conv: {out_channels: 4, kernel_size: 3, padding: [[2, 3], [1, 4]], bias: false}
          - avg_pool: {kernel_size: 2, padding: [[1, 0], [1, 0]]}
        """,
    )


def test_reflect_pad_folds_into_a_conv_padding_mode(tmp_path: Path) -> None:
    file = save(
        tmp_path,
        [
            helper.make_node("Pad", ["x", "pads"], ["p"], name="pad", mode="reflect"),
            node("Conv", ["p", "w", "b"], "y", kernel_shape=[3, 3]),
        ],
        [ints("pads", 0, 0, 1, 1, 0, 0, 1, 1), weight("w", 4, 3, 3, 3), weight("b", 4)],
    )
    assert read_onnx(str(file))["layers"] == [
        {
            "conv": {
                "name": "y",
                "out_channels": 4,
                "kernel_size": 3,
                "padding": 1,
                "padding_mode": "reflect",
            }
        }
    ]


@pytest.mark.parametrize(
    ("nodes", "inits", "pad"),
    [
        (
            [node("Pad", ["x", "pads"], "p"), node("Relu", ["p"], "y")],
            [ints("pads", 0, 0, 1, 2, 0, 0, 1, 2)],
            {"padding": [1, 2]},
        ),
        (
            [helper.make_node("Pad", ["x", "pads"], ["y"], name="p", mode="edge")],
            [ints("pads", 0, 0, 1, 0, 0, 0, 2, 0)],
            {"padding": [[1, 2], [0, 0]], "mode": "replicate"},
        ),
        (
            [
                node("Pad", ["x", "pads", "one"], "p"),
                node("MaxPool", ["p"], "y", kernel_shape=[3, 3]),
            ],
            [ints("pads", 0, 0, 1, 1, 0, 0, 1, 1), floats("one", 1.5)],
            {"padding": 1, "value": 1.5},
        ),
    ],
)
def test_pads_it_cannot_fold_are_pad_rows(
    tmp_path: Path, nodes: list[Any], inits: list[Any], pad: dict[str, Any]
) -> None:
    file = save(tmp_path, nodes, inits)
    assert unnamed(read_onnx(str(file))["layers"][0]) == {"pad": pad}
    assert inferred_agrees(file, imported(file)) == len(nodes)


def test_a_pad_of_the_channels_is_refused(tmp_path: Path) -> None:
    nodes = [node("Pad", ["x", "pads"], "p"), node("MaxPool", ["p"], "y", kernel_shape=[3, 3])]
    with pytest.raises(ConvcalcError, match=r"node 'p' \(Pad\): .*pads \[0, 1, 0"):
        read_onnx(str(save(tmp_path, nodes, [ints("pads", 0, 1, 0, 0, 0, 0, 0, 0)])))


@pytest.mark.parametrize(
    ("resize", "inits", "opset", "entry"),
    [
        (
            helper.make_node(
                "Resize",
                ["x", "", "s"],
                ["y"],
                name="y",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            ),
            [floats("s", 1, 1, 2, 3)],
            17,
            {"scale_factor": [2, 3]},
        ),
        (
            helper.make_node(
                "Resize",
                ["x", "", "", "size"],
                ["y"],
                name="y",
                mode="linear",
                coordinate_transformation_mode="align_corners",
            ),
            [ints("size", 1, 3, 48, 40)],
            17,
            {"size": [48, 40], "mode": "bilinear", "align_corners": True},
        ),
        (
            helper.make_node(
                "Resize", ["x", "", "s"], ["y"], name="y", nearest_mode="round_prefer_ceil"
            ),
            [floats("s", 1, 1, 1.5, 1.5)],
            17,
            {"scale_factor": 1.5, "mode": "nearest-exact"},
        ),
        (
            helper.make_node(
                "Resize", ["x", "", "s"], ["y"], name="y"
            ),  # ONNX's defaults, whole scale
            [floats("s", 1, 1, 2, 2)],
            17,
            {"scale_factor": 2},
        ),
        (
            helper.make_node("Resize", ["x", "", "s"], ["y"], name="y", mode="cubic"),
            [floats("s", 1, 1, 0.5, 0.5)],
            17,
            {"scale_factor": 0.5, "mode": "bicubic"},
        ),
        (
            helper.make_node("Upsample", ["x", "s"], ["y"], name="y"),
            [floats("s", 1, 1, 2, 2)],
            9,
            {"scale_factor": 2},
        ),
    ],
)
def test_resize(
    tmp_path: Path, resize: Any, inits: list[Any], opset: int, entry: dict[str, Any]
) -> None:
    file = save(tmp_path, [resize], inits, opset=opset)
    assert read_onnx(str(file))["layers"] == [{"upsample": {"name": "y", **entry}}]
    if opset > 9:  # Upsample is deprecated: shape inference no longer takes it
        assert inferred_agrees(file, imported(file)) == 1


def test_resize_it_cannot_follow(tmp_path: Path) -> None:
    asymmetric_round = helper.make_node(
        "Resize", ["x", "", "s"], ["y"], name="y", coordinate_transformation_mode="asymmetric"
    )
    file = save(tmp_path, [asymmetric_round], [floats("s", 1, 1, 3, 3)])
    with pytest.raises(ConvcalcError, match="neither of convcalc's nearest modes"):
        read_onnx(str(file))
    channels = helper.make_node("Resize", ["x", "", "s"], ["y"], name="y")
    file = save(tmp_path, [channels], [floats("s", 1, 2, 1, 1)])
    with pytest.raises(ConvcalcError, match=r"scales the batch or channels \(\[1.0, 2.0\]\)"):
        read_onnx(str(file))


def test_gemm_matmul_and_a_bias_add(tmp_path: Path) -> None:
    file = save(
        tmp_path,
        [
            node("Flatten", ["x"], "f"),
            node("Gemm", ["f", "w1", "b1"], "g"),  # B as [in, out]: transB 0
            node("MatMul", ["g", "w2"], "m"),
            node("Add", ["m", "b2"], "a"),
            node("MatMul", ["a", "w3"], "y"),
        ],
        [
            weight("w1", 48, 20),
            weight("b1", 20),
            weight("w2", 20, 7),
            weight("b2", 7),
            weight("w3", 7, 5),
        ],
        shape=[1, 3, 4, 4],
    )
    got = agree(
        file,
        """\
        input: [3, 4, 4]
        layers:
          - flatten
          - linear: {out_features: 20}
          - linear: {out_features: 7}
          - linear: {out_features: 5, bias: false}
        """,
    )
    assert [row.name for row in got.rows] == ["f", "g", "m", "y"]


def test_activations_and_their_options(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("LeakyRelu", ["x"], ["a1"], alpha=0.2),
        helper.make_node("Clip", ["a1", "zero", "six"], ["a2"]),
        helper.make_node("Clip", ["a2", "zero"], ["a3"]),
        helper.make_node("Sigmoid", ["a3"], ["s"]),
        helper.make_node("Mul", ["a3", "s"], ["a4"]),  # x·sigmoid(x): SiLU
        helper.make_node("Sigmoid", ["a4"], ["a5"]),
        helper.make_node("HardSwish", ["a5"], ["a6"]),
        helper.make_node("Gelu", ["a6"], ["a7"], approximate="tanh"),
        helper.make_node("Tanh", ["a7"], ["a8"]),
        helper.make_node("Dropout", ["a8", "ratio"], ["a9", "mask"]),
        helper.make_node("Identity", ["a9"], ["a10"]),
        helper.make_node("BatchNormalization", ["a10", "g", "b", "m", "v"], ["a11"], epsilon=1e-3),
        helper.make_node("Softmax", ["a11"], ["y"], axis=1),
    ]
    inits = [floats("zero", 0), floats("six", 6), floats("ratio", 0.1)]
    inits += [weight(name, 3) for name in "gbmv"]
    file = save(tmp_path, nodes, inits, opset=20)
    assert unnamed(read_onnx(str(file))["layers"]) == [
        {"leaky_relu": {"negative_slope": 0.2}},
        "relu6",
        "relu",
        "silu",
        "sigmoid",
        "hardswish",
        {"gelu": {"approximate": "tanh"}},
        "tanh",
        {"dropout": {"p": 0.1}},
        "identity",
        {"batch_norm": {"eps": 0.001}},
        "softmax",
    ]
    assert imported(file).totals.params == 6


def test_reshape_to_flat(tmp_path: Path) -> None:
    for target in ([0, -1], [1, 48], [-1, 48]):
        file = save(
            tmp_path, [node("Reshape", ["x", "t"], "y")], [ints("t", *target)], shape=[1, 3, 4, 4]
        )
        assert unnamed(read_onnx(str(file))["layers"]) == ["flatten"]


def test_reshape_to_a_target_computed_from_the_shape(tmp_path: Path) -> None:
    # x.view(x.size(0), -1) exported with a symbolic batch: Shape → Gather → Unsqueeze →
    # Concat with -1 → Reshape; and a target whose batch is a real number, refused.
    nodes = [
        node("Conv", ["x", "w"], "c", kernel_shape=[3, 3]),
        node("Shape", ["c"], "s"),
        node("Gather", ["s", "first"], "n", axis=0),
        node("Unsqueeze", ["n", "zero"], "n1"),
        node("Concat", ["n1", "minus1"], "target", axis=0),
        node("Reshape", ["c", "target"], "y"),
    ]
    first = numpy_helper.from_array(np.array(0, np.int64), "first")  # a scalar index
    inits = [weight("w", 2, 3, 3, 3), first, ints("zero", 0), ints("minus1", -1)]
    file = save(tmp_path, nodes, inits, shape=["N", 3, 8, 8])
    assert unnamed(read_onnx(str(file))["layers"][1:]) == ["flatten"]
    assert imported(file).output_shape == (72,)
    nodes[4] = node("Concat", ["n1", "n1"], "target", axis=0)
    with pytest.raises(ConvcalcError, match=r"reshapes \[2, 6, 6\] .* to \[\d+, \d+\]"):
        read_onnx(str(save(tmp_path, nodes, inits, shape=["N", 3, 8, 8])))


def test_opset_10_attributes(tmp_path: Path) -> None:
    # Before opset 11, Pad, Clip and Dropout took attributes where they now take inputs,
    # and Resize had no roi.
    nodes = [
        node("Pad", ["x"], "p", pads=[0, 0, 1, 1, 0, 0, 1, 1]),
        node("MaxPool", ["p"], "m", kernel_shape=[3, 3], strides=[2, 2]),
        node("Clip", ["m"], "c", min=0.0, max=6.0),
        node("Dropout", ["c"], "d", ratio=0.25),
        node("Resize", ["d", "s"], "y"),
    ]
    file = save(tmp_path, nodes, [floats("s", 1, 1, 2, 2)], opset=10)
    assert unnamed(read_onnx(str(file))["layers"]) == [
        {"max_pool": {"kernel_size": 3, "stride": 2, "padding": 1}},
        "relu6",
        {"dropout": {"p": 0.25}},
        {"upsample": {"scale_factor": 2}},
    ]
    assert inferred_agrees(file, imported(file)) == 4


# -- the operations of today's CNNs ---------------------------------------------------------


def test_a_squeeze_and_excitation_gate_and_numbers(tmp_path: Path) -> None:
    # x · sigmoid(fc2(relu(fc1(mean(x))))), as timm writes it, with x·1 and x/1 on the way
    # (numbers: no rows) and a HardSigmoid gate as MobileNetV3's.
    nodes = [
        node("Conv", ["x", "w"], "c", kernel_shape=[3, 3], pads=[1] * 4),
        node("ReduceMean", ["c"], "m", axes=[2, 3], keepdims=1),
        node("Conv", ["m", "w1", "b1"], "f1", kernel_shape=[1, 1]),
        node("Relu", ["f1"], "r"),
        node("Conv", ["r", "w2", "b2"], "f2", kernel_shape=[1, 1]),
        node("Mul", ["f2", "one"], "f3"),
        node("Div", ["f3", "one"], "f4"),
        node("HardSigmoid", ["f4"], "g", alpha=1 / 6),
        node("Mul", ["c", "g"], "y"),
    ]
    inits = [weight("w", 8, 3, 3, 3), weight("w1", 2, 8, 1, 1), weight("b1", 2)]
    inits += [weight("w2", 8, 2, 1, 1), weight("b2", 8), floats("one", 1)]
    got = agree(
        save(tmp_path, nodes, inits),
        """\
        input: [3, 32, 32]
        layers:
          - conv: {name: c, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
          - adaptive_avg_pool: {output_size: 1}
          - conv: {out_channels: 2, kernel_size: 1}
          - relu
          - conv: {out_channels: 8, kernel_size: 1}
          - hardsigmoid: {name: g}
          - mul: {from: [c, g]}
        """,
    )
    assert got.rows[-1].global_context and got.output_shape == (8, 32, 32)


@pytest.mark.parametrize("keepdims", [0, 1])
def test_a_mean_over_space_is_a_global_pool(tmp_path: Path, keepdims: int) -> None:
    nodes = [node("ReduceMean", ["x"], "y", axes=[-1, 2], keepdims=keepdims)]
    file = save(tmp_path, nodes)
    pool = {"adaptive_avg_pool": {"name": "y", "output_size": 1}}
    flat = [{"flatten": {"name": "y_1"}}] if not keepdims else []
    assert read_onnx(str(file))["layers"] == [pool, *flat]
    assert imported(file).output_shape == ((3,) if not keepdims else (3, 1, 1))


def test_layer_scale_split_slice_and_shuffle(tmp_path: Path) -> None:
    # ShuffleNetV2's unit: split the channels in two halves (a Slice each, as the
    # exporter writes x.chunk), convolve one, concatenate, shuffle; then a layer scale,
    # and a Split into three of which the middle is unused.
    nodes = [
        node("Slice", ["x", "zero", "four", "one"], "left"),
        node("Slice", ["x", "four", "big", "one"], "right"),
        node("Conv", ["right", "w"], "c", kernel_shape=[1, 1]),
        node("Concat", ["left", "c"], "cat", axis=1),
        node("Reshape", ["cat", "grouped"], "g"),
        node("Transpose", ["g"], "t", perm=[0, 2, 1, 3, 4]),
        node("Reshape", ["t", "back"], "s"),
        node("Mul", ["gamma", "s"], "scaled"),
        helper.make_node("Split", ["scaled", "parts"], ["a", "b", "c2"], name="split", axis=1),
        node("Concat", ["a", "c2"], "y", axis=1),
    ]
    inits = [ints("zero", 0), ints("four", 4), ints("big", 2**62), ints("one", 1)]
    inits += [weight("w", 4, 4, 1, 1), ints("grouped", 1, 2, 4, 16, 16)]
    inits += [ints("back", 1, 8, 16, 16), weight("gamma", 8, 1, 1), ints("parts", 2, 3, 3)]
    file = save(tmp_path, nodes, inits, shape=[1, 8, 16, 16])
    agree(
        file,
        """\
        input: [8, 16, 16]
        layers:
          - channel_slice: {name: left, end: 4}
          - channel_slice: {name: right, from: input, start: 4}
          - conv: {name: c, out_channels: 4, kernel_size: 1, bias: false}
          - concat: {from: [left, c]}
          - channel_shuffle: {groups: 2}
          - scale: {name: scale}
          - channel_slice: {name: a, end: 2}
          - channel_slice: {name: c2, from: scale, start: 5, end: 8}
          - concat: {from: [a, c2]}
        """,
        written={"g": "s"},
    )
    layers = read_onnx(str(file))["layers"]
    assert layers[4] == {"channel_shuffle": {"name": "g", "groups": 2}}
    assert [next(iter(layer)) for layer in layers].count("channel_slice") == 4


def test_channels_last_between_transposes(tmp_path: Path) -> None:
    # ConvNeXt's block: a depthwise conv, then on channels last LayerNorm, Linear, GELU
    # (written out with Erf), Linear, layer scale, then channels first again and add.
    nodes = [
        node("Conv", ["x", "dw", "db"], "dw_out", kernel_shape=[7, 7], pads=[3] * 4, group=8),
        node("Transpose", ["dw_out"], "last", perm=[0, 2, 3, 1]),
        node("LayerNormalization", ["last", "ln_w", "ln_b"], "ln", axis=-1, epsilon=1e-6),
        node("Transpose", ["fc1_w"], "fc1_t", perm=[1, 0]),
        node("MatMul", ["ln", "fc1_t"], "fc1"),
        node("Add", ["fc1_b", "fc1"], "fc1_out"),
        node("Div", ["fc1_out", "sqrt2"], "d"),
        node("Erf", ["d"], "e"),
        node("Add", ["e", "one"], "e1"),
        node("Mul", ["fc1_out", "e1"], "m"),
        node("Mul", ["m", "half"], "gelu"),
        node("MatMul", ["gelu", "fc2_w"], "fc2"),
        node("Mul", ["fc2", "gamma"], "scaled"),
        node("Transpose", ["scaled"], "first", perm=[0, 3, 1, 2]),
        node("Add", ["first", "x"], "y"),
    ]
    inits = [weight("dw", 8, 1, 7, 7), weight("db", 8), weight("ln_w", 8), weight("ln_b", 8)]
    inits += [weight("fc1_w", 32, 8), weight("fc1_b", 32), floats("sqrt2", 2**0.5)]
    inits += [floats("one", 1), floats("half", 0.5), weight("fc2_w", 32, 8), weight("gamma", 8)]
    file = save(tmp_path, nodes, inits, shape=[1, 8, 16, 16])
    got = agree(
        file,
        """\
        input: [8, 16, 16]
        layers:
          - conv: {out_channels: 8, kernel_size: 7, padding: 3, groups: 8}
          - layer_norm: {eps: 1.0e-6}
          - conv: {out_channels: 32, kernel_size: 1}
          - gelu
          - conv: {out_channels: 8, kernel_size: 1, bias: false}
          - scale: {name: scaled}
          - add: {from: [scaled, input]}
        """,
        written={"fc1": "fc1_out", "d": "gelu"},
        last=["ln", "fc1", "d", "fc2", "scaled"],
    )
    # 8·49 + 8, 2·8, 8·32 + 32, 32·8, 8.
    assert got.totals.params == 400 + 16 + 288 + 256 + 8


def test_names_from_the_exporters_scopes(tmp_path: Path) -> None:
    # A module's one row takes its name; rows beside others in a module with modules
    # inside it, and merges, add their own part; a repeat keeps the exporter's count.
    nodes = [
        node("Conv", ["x", "w"], "/layer1/layer1.0/conv1/Conv", kernel_shape=[1, 1]),
        node(
            "BatchNormalization",
            ["/layer1/layer1.0/conv1/Conv", *"sbmv"],
            "/layer1/layer1.0/bn1/BatchNormalization",
        ),
        node("Relu", ["/layer1/layer1.0/bn1/BatchNormalization"], "/layer1/layer1.0/bn1/act/Relu"),
        node("Add", ["/layer1/layer1.0/bn1/act/Relu", "x"], "/layer1/layer1.0/Add"),
        node("Relu", ["/layer1/layer1.0/Add"], "/layer1/layer1.0/Relu"),
        node("Relu", ["/layer1/layer1.0/Relu"], "/layer1/layer1.0/Relu_1"),
        node("Concat", ["/layer1/layer1.0/Relu_1"], "/Concat", axis=1),  # no row: x itself
        node("Identity", ["/Concat"], "y"),
    ]
    inits = [weight("w", 3, 3, 1, 1), *(weight(name, 3) for name in "sbmv")]
    layers = read_onnx(str(save(tmp_path, nodes, inits)))["layers"]
    assert [next(iter(layer.values()))["name"] for layer in layers] == [
        "layer1.0.conv1",
        "layer1.0.bn1.batch_norm",
        "layer1.0.bn1.act",
        "layer1.0.add",
        "layer1.0.relu",
        "layer1.0.relu_1",
        "y",
    ]


def test_graphs_that_do_not_nest_several_outputs_and_dead_branches(tmp_path: Path) -> None:
    # a and b each feed two merges outside each other's branches (as HRNet's exchanges);
    # the graph has two outputs, and a branch no output reads.
    nodes = [
        node("Conv", ["x", "w"], "a", kernel_shape=[1, 1]),
        node("Conv", ["x", "w3"], "b", kernel_shape=[3, 3], pads=[1] * 4),
        node("Add", ["a", "b"], "p"),
        node("Mul", ["b", "a"], "q"),
        node("Conv", ["p", "w2"], "dead", kernel_shape=[1, 1]),
        node("Concat", ["q", "p", "a"], "out", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("out", "p")],
        [weight("w", 3, 3, 1, 1), weight("w3", 3, 3, 3, 3), weight("w2", 5, 3, 1, 1)],
    )
    file = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), file)
    document = read_onnx(str(file))
    assert document["outputs"] == ["out", "p"]
    assert document["dropped"] == ["dead"] and document["unused_params"] == {"dead": 15}
    got = imported(file)
    assert [(o.name, o.shape) for o in got.outputs] == [("out", (9, 8, 8)), ("p", (3, 8, 8))]
    assert got.totals.params == 9 + 81 and got.totals.unused_params == 15
    assert {w.code for w in got.warnings} >= {"dead-branches", "unused-parameters"}


# -- what it refuses, naming the node ---------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "inits", "message"),
    [
        (
            [helper.make_node("LSTM", ["x", "w", "r"], ["y"], name="rnn", hidden_size=4)],
            [weight("w", 1, 16, 32), weight("r", 1, 16, 4)],
            r"node 'rnn' \(LSTM\): convcalc cannot follow the operator LSTM; it follows .*Conv",
        ),
        (
            [node("MaxPool", ["x"], "p", kernel_shape=[2, 2]), node("Mul", ["x", "p"], "y")],
            [],
            r"node 'y' \(Mul\): multiplies inputs of shapes that do not broadcast",
        ),
        (
            [node("Mul", ["x", "w"], "y")],
            [weight("w", 3)],
            r"node 'y' \(Mul\): multiplies \[3, 32, 32\] by a constant of shape \[3\]",
        ),
        (
            [node("Div", ["w", "x"], "y")],
            [weight("w", 1)],
            r"node 'y' \(Div\): divides by a computed value",
        ),
        (
            [node("Transpose", ["x"], "y", perm=[0, 1, 3, 2])],
            [],
            r"node 'y' \(Transpose\): permutes axes \[0, 1, 3, 2\]",
        ),
        (
            [node("Transpose", ["x"], "t", perm=[0, 2, 3, 1]), node("Conv", ["t", "w"], "y")],
            [weight("w", 4, 32, 1, 1)],
            r"node 'y' \(Conv\): reads 't', which is channels last",
        ),
        (
            [node("ReduceMean", ["x"], "y", axes=[1])],
            [],
            r"node 'y' \(ReduceMean\): reduces axes \[1\] of \[3, 32, 32\]",
        ),
        (
            [node("Split", ["x"], "y", axis=2)],
            [],
            r"node 'y' \(Split\): splits axis 2",
        ),
        (
            [node("Slice", ["x", "zero", "two", "two"], "y")],
            [ints("zero", 0), ints("two", 2)],
            r"node 'y' \(Slice\): slices axis 2 \(0:2:1\)",
        ),
        (
            [node("Concat", ["x", "x"], "y", axis=2)],
            [],
            r"node 'y' \(Concat\): concatenates on axis 2",
        ),
        (
            [node("Reshape", ["x", "t"], "y")],
            [ints("t", 1, 3, 1024)],
            r"node 'y' \(Reshape\): reshapes \[3, 32, 32\].*\[N, -1\]",
        ),
        ([node("Flatten", ["x"], "y", axis=2)], [], "flattens from axis 2"),
        (
            [node("Clip", ["x", "lo", "hi"], "y")],
            [floats("lo", -1), floats("hi", 1)],
            r"clips to \[-1.0, 1.0\]",
        ),
        (
            [node("Add", ["x", "c"], "y")],
            [floats("c", 1, 2, 3)],
            r"node 'y' \(Add\): adds a constant of shape \[3\]",
        ),
        ([node("Softmax", ["x"], "y")], [], "over axis -1"),
        (
            [node("MaxPool", ["x"], "p", kernel_shape=[2, 2]), node("Add", ["x", "p"], "y")],
            [],
            r"different shapes \(\[3, 32, 32\], \[3, 31, 31\]\)",
        ),
        (
            [node("Conv", ["x", "w"], "y", kernel_shape=[3, 3])],
            [weight("w", 8, 4, 3, 3)],
            r"initializers hold 288 parameters, but conv as convcalc reads it has 216",
        ),
        (
            [node("Gemm", ["x", "w", "b"], "y")],
            [weight("w", 3, 4), weight("b", 1)],
            "hold 13 parameters, but linear .* has 16",
        ),
        (
            [
                helper.make_node("MaxPool", ["x"], ["p", "idx"], name="y", kernel_shape=[2, 2]),
                node("Add", ["p", "idx"], "y2"),
            ],
            [],
            r"its output 1 \('idx'\) is used",
        ),
        (
            [node("Conv", ["x", "x"], "y")],
            [],
            r"reads 2 computed values \('x', 'x'\) where convcalc follows one",
        ),
        (
            [node("MatMul", ["w", "x"], "y")],
            [weight("w", 5, 3)],
            r"reads the computed value 'x' as its input 1; convcalc follows a node's first input",
        ),
    ],
)
def test_what_it_refuses(tmp_path: Path, nodes: list[Any], inits: list[Any], message: str) -> None:
    shape = [1, 3] if nodes[0].op_type == "Gemm" else None
    with pytest.raises(ConvcalcError, match=message) as caught:
        read_onnx(str(save(tmp_path, nodes, inits, shape=shape, opset=17)))
    assert str(caught.value).startswith(str(tmp_path / "model.onnx"))


def test_inputs_and_outputs(tmp_path: Path) -> None:
    file = save(tmp_path, [node("Relu", ["x"], "y")], shape=["N", 3, "H", "W"])
    with pytest.raises(ConvcalcError, match=r"symbolic size on axis 2 \('H'\); give --input"):
        read_onnx(str(file))
    assert imported(file, (3, 20, 24)).output_shape == (3, 20, 24)
    with pytest.raises(ConvcalcError, match=r"--input: .* has 3 axes after the batch; --input"):
        read_onnx(str(file), (3, 20))
    graph = helper.make_graph(
        [node("Add", ["x", "z"], "y")],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 4, 4]) for n in "xz"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    onnx.save(helper.make_model(graph), tmp_path / "two.onnx")
    with pytest.raises(
        ConvcalcError, match=r"2 inputs \('x', 'z'\); convcalc follows a network with one"
    ):
        read_onnx(str(tmp_path / "two.onnx"))


def test_files_that_are_not_onnx(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "bad.onnx").write_text("layers: []\n")
    result = cli("net", str(tmp_path / "bad.onnx"))
    assert (result.code, result.stderr) == (
        2,
        f"error: {tmp_path / 'bad.onnx'}: not an ONNX model (the file does not parse)\n",
    )
    result = cli("net", str(tmp_path / "none.onnx"))
    assert (result.code, result.stderr) == (2, f"error: {tmp_path / 'none.onnx'}: no such file\n")


def test_without_the_onnx_package(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = save(tmp_path, [node("Relu", ["x"], "y")])
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    result = cli("net", str(file))
    assert result.code == 2
    needs = "reading ONNX files needs the onnx package: pip install 'convcalc[onnx]'"
    assert result.stderr == f"error: {file}: {needs}\n"


# -- the command line: net and export ---------------------------------------------------


def test_net_and_export_round_trip(tmp_path: Path, cli: Any) -> None:
    nodes, inits, value = _basic_block("a", "x", 8, 1)
    file = save(tmp_path, [*nodes, node("Identity", [value], "y")], inits, shape=[1, 8, 9, 9])
    direct = cli("net", str(file), "--json")
    assert direct.code == 0, direct.stderr
    exported = cli("export", str(file), "-o", str(tmp_path / "model.yaml"))
    assert (exported.code, exported.stdout, exported.stderr) == (0, "", "")
    text = (tmp_path / "model.yaml").read_text()
    assert text.splitlines()[1:5] == [
        "name: model",
        "input: [8, 9, 9]",
        "layers:",
        "  - conv: {name: ac1, out_channels: 8, kernel_size: 3, padding: 1, bias: false}",
    ]
    assert "  - add: {name: asum, from: [an2, input]}" in text
    again = cli("net", str(tmp_path / "model.yaml"), "--json")
    assert json.loads(again.stdout) == json.loads(direct.stdout)
    # At another input size, from the command line, both ways.
    resized = cli("export", str(file), "--input", "8x17x17")
    (tmp_path / "resized.yaml").write_text(resized.stdout)
    wide = cli("net", str(file), "--input", "8x17x17", "--json")
    assert json.loads(cli("net", str(tmp_path / "resized.yaml"), "--json").stdout) == json.loads(
        wide.stdout
    )
    assert json.loads(wide.stdout)["output_shape"] == [8, 17, 17]


@pytest.mark.parametrize("model", ["resnet18", "unet", "mobilenet_v2"])
def test_export_of_any_model_reads_back_to_the_same_analysis(
    tmp_path: Path, cli: Any, model: str
) -> None:
    exported = cli("export", model)
    assert exported.code == 0, exported.stderr
    (tmp_path / "model.yaml").write_text(exported.stdout)
    back = json.loads(cli("net", str(tmp_path / "model.yaml"), "--json").stdout)
    assert back == json.loads(cli("net", model, "--json").stdout)


def test_export_refuses_what_net_refuses(tmp_path: Path, cli: Any) -> None:
    result = cli(
        "export",
        "-",
        stdin="input: [3, 4, 4]\nlayers:\n  - conv: {out_channels: 2, kernel_size: 5}\n",
    )
    assert result.code == 2 and "output would be empty" in result.stderr
    result = cli("export", "resnet18", "-o", str(tmp_path / "missing" / "x.yaml"))
    assert result.code == 2 and result.stderr.startswith("error: --output: cannot write")


# -- exported from PyTorch ------------------------------------------------------------


def test_a_network_exported_from_pytorch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    class Dense(nn.Module):
        """torchvision's DenseNet: every layer reads all earlier features."""

        def __init__(self, channels: int, growth: int, count: int) -> None:
            super().__init__()
            self.layers = nn.ModuleList(
                nn.Sequential(
                    nn.BatchNorm2d(channels + i * growth),
                    nn.ReLU(),
                    nn.Conv2d(channels + i * growth, growth, 3, padding=1, bias=False),
                )
                for i in range(count)
            )

        def forward(self, x: Any) -> Any:
            features = [x]
            for layer in self.layers:
                features.append(layer(torch.cat(features, 1)))
            return torch.cat(features, 1)

    class Block(nn.Module):
        def __init__(self, inputs: int, channels: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(inputs, channels, 3, stride, 1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(channels),
            )
            self.down = (
                nn.Sequential(
                    nn.Conv2d(inputs, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
                )
                if stride > 1
                else nn.Identity()
            )

        def forward(self, x: Any) -> Any:
            return torch.relu(self.body(x) + self.down(x))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.ZeroPad2d((1, 2, 1, 2)),
                nn.Conv2d(3, 16, 4, 2),
                nn.BatchNorm2d(16),
                nn.SiLU(),
                nn.MaxPool2d(3, 2, 1, ceil_mode=True),
            )
            self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Dense(32, 8, 3))
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.left = nn.Conv2d(56, 8, 1)
            self.right = nn.Sequential(nn.Conv2d(56, 8, 3, padding=2, dilation=2), nn.Hardswish())
            self.head = nn.Sequential(
                nn.AvgPool2d(2),
                nn.Flatten(),
                nn.Dropout(0.2),
                nn.Linear(16 * 5 * 5, 10),
                nn.ReLU6(),
                nn.Linear(10, 5),
                nn.Softmax(1),
            )

        def forward(self, x: Any) -> Any:
            x = self.up(self.blocks(self.stem(x)))
            return self.head(torch.cat([self.left(x), self.right(x)], 1))

    net = Net().eval()
    example = torch.randn(1, 3, 32, 32)
    # Every convolution and linear layer as PyTorch runs it: kind, output shape, params.
    measured = []

    def record(name: str) -> Any:
        def hook(module: Any, _: Any, output: Any) -> None:
            kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
            params = sum(p.numel() for p in module.parameters())
            measured.append((name, kind, tuple(output.shape[1:]), params))

        return hook

    hooks = [
        module.register_forward_hook(record(name))
        for name, module in net.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    output_shape = tuple(net(example).shape[1:])
    for hook in hooks:
        hook.remove()
    file = tmp_path / "net.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The TorchScript exporter (dynamo=False) needs nothing beyond torch and onnx;
            # without constant folding it keeps BatchNorm apart from the Conv before it.
            torch.onnx.export(net, example, str(file), dynamo=False, do_constant_folding=False)
    except Exception as error:  # any failure to export means: nothing to test here
        pytest.skip(f"torch.onnx.export does not work here: {error}")
    got = imported(file)
    assert got.totals.params == sum(p.numel() for p in net.parameters()) == 37_457
    assert got.output_shape == output_shape
    # Every convolution and linear layer as PyTorch ran them, in order, named by the
    # module's qualified name.
    layers = [
        (r.name, r.kind, r.output_shape, r.params) for r in got.rows if r.kind in ("conv", "linear")
    ]
    assert layers == measured and len(layers) == 13
