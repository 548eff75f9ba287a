"""Property tests against PyTorch on random graphs (SPEC §6): networks that do not nest.

Each network is drawn node by node. A node reads any earlier node (`from`), not only
the one before it: a leaf (convolutions with strides, dilations and paddings, pools,
transposed convolutions, nearest upsampling by a factor or to another node's size with
`like`, norms and activations), a merge of earlier nodes of fitting shapes (`add`,
`concat` of one to three, `mul` of two maps), or a squeeze-and-excitation gate (a global
pooling, two 1×1 convolutions, a sigmoid, and `mul` broadcasting the C×1×1 gate over its
input). Every node that nothing reads is an output, so most networks have several. The
PyTorch twin is an interpreter over the same list of nodes, built from torch.nn modules
as the nodes' inputs arrive (PyTorch gives every shape while the graph is drawn).

Checks, PyTorch the only source of expected values:

- every row's output shape, the parameter total, and each output's shape;
- fields against gradients on the positive float64 twin (torch_build.field_layer for the
  leaves; sums for add and mul, which depend on the same positions): every probed unit away
  from the border of every spatial row sees exactly the first … last of convcalc's
  per-unit field, with the global paths detached (the outputs of global poolings held
  constant), and the effective stride is the product of the layers' slopes on every
  path (where the paths agree);
- `global_context`: without detaching, a row's units reach every input position exactly
  where convcalc says they also see the whole input through a global path; elsewhere
  they see what the local field says.

No transposed convolution here has a kernel shorter than its stride, so every unit sees
something and a field is a box (test_branching covers the units that see nothing).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("hypothesis")

import torch
import torch.nn.functional as F
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from torch import nn

from convcalc.analysis.analyze import Analysis, analyze
from convcalc.loader import build_model
from convcalc.source import parse

from .test_branching import check_axis, longest_run
from .test_leaf_stacks import SETTINGS
from .torch_build import (
    TorchRejects,
    _slope,
    exact_layer,
    field_layer,
    kind_params,
    measure_rows,
)

torch.set_num_threads(1)

#: Units probed per axis and row.
PROBES = {1: 24, 2: 10, 3: 6}

#: The most elements one activation may have (keeps the gradients quick).
BUDGET = 40_000


@dataclass
class Node:
    """One node as drawn: its layer (or merge) as a model file writes it, the nodes it
    reads (-1: the input), its output as PyTorch computed it, and its module."""

    spec: Any
    inputs: list[int]
    output: torch.Tensor
    module: nn.Module | None = None
    like: int | None = None
    # Whether every channel at a position sees the same input positions: convcalc's
    # field is per position (over all channels), exact for a slice, a shuffle or a pixel
    # shuffle of such a map only (README, "Gates and global context").
    uniform: bool = True


@dataclass
class Graph:
    input: torch.Tensor
    nodes: list[Node] = field(default_factory=list)

    def tensor(self, index: int) -> torch.Tensor:
        return self.input if index < 0 else self.nodes[index].output

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(self.tensor(index).shape[1:])

    def uniform(self, index: int) -> bool:
        return index < 0 or self.nodes[index].uniform

    def add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1


def _channel_spec(draw: st.DrawFn, shape: tuple[int, ...], uniform: bool) -> dict[str, Any] | None:
    """A layer of SPEC §6.4 that works on channels or positions one by one, or None where
    none fits this input."""
    channels, sizes = shape[0], shape[1:]
    kinds = ["pad", "layer_norm", "instance_norm", "scale", "prelu", "group_norm"]
    if uniform:
        kinds += ["channel_slice", "channel_shuffle"]
        if len(sizes) == 2:
            kinds += ["pixel_shuffle", "pixel_unshuffle"] * 3
    kind = draw(st.sampled_from(kinds))
    divisors = [d for d in range(2, channels + 1) if channels % d == 0]
    if kind == "pad":
        padding = draw(
            st.one_of(
                st.integers(0, 2),
                st.lists(
                    st.tuples(st.integers(0, 2), st.integers(0, 2)).map(list),
                    min_size=len(sizes),
                    max_size=len(sizes),
                ),
            )
        )
        return {"pad": {"padding": padding}}
    if kind == "channel_slice":
        start = draw(st.integers(0, channels - 1))
        return {"channel_slice": {"start": start, "end": draw(st.integers(start + 1, channels))}}
    if kind == "channel_shuffle":
        return (
            {"channel_shuffle": {"groups": draw(st.sampled_from(divisors))}} if divisors else None
        )
    if kind == "group_norm":
        return {"group_norm": {"num_groups": draw(st.sampled_from([1, *divisors]))}}
    if kind == "pixel_shuffle":
        return {"pixel_shuffle": {"upscale_factor": 2}} if channels % 4 == 0 else None
    if kind == "pixel_unshuffle":
        even = all(size % 2 == 0 for size in sizes)
        return {"pixel_unshuffle": {"downscale_factor": 2}} if even else None
    if kind == "prelu":
        return {"prelu": {"num_parameters": draw(st.sampled_from([1, channels]))}}
    return {kind: {}}


#: What keeps every channel of a position seeing alike, from an input that does: all but
#: space-to-depth, whose channels read different positions.
_KEEPS_UNIFORM = {"pixel_unshuffle": False}


def _leaf_spec(draw: st.DrawFn, ndim: int, sizes: tuple[int, ...]) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "conv",
                "conv",
                "conv",
                "max_pool",
                "avg_pool",
                "conv_transpose",
                "upsample",
                "relu",
                "batch_norm",
            ]
        )
    )
    if kind == "conv":
        kernel = draw(st.integers(1, 3))
        dilation = draw(st.integers(1, 2)) if kernel > 1 else 1
        stride = draw(st.integers(1, 2))
        padding: Any = draw(
            st.one_of(st.integers(0, (kernel - 1) * dilation // 2 + 1), st.just("same"))
        )
        return {
            "conv": {
                "out_channels": draw(st.integers(1, 4)),
                "kernel_size": kernel,
                "stride": stride,
                "dilation": dilation,
                "padding": padding,
            }
        }
    if kind in ("max_pool", "avg_pool"):
        kernel = draw(st.integers(2, 3))
        return {
            kind: {
                "kernel_size": kernel,
                "stride": draw(st.integers(1, 2)),
                "padding": draw(st.integers(0, kernel // 2)),
            }
        }
    if kind == "conv_transpose":
        stride = draw(st.integers(1, 2))
        kernel = draw(st.integers(stride, 3))  # at least the stride: every unit sees something
        return {
            "conv_transpose": {
                "out_channels": draw(st.integers(1, 4)),
                "kernel_size": kernel,
                "stride": stride,
                "padding": draw(st.integers(0, (kernel - 1) // 2)),
                "output_padding": draw(st.integers(0, stride - 1)),
            }
        }
    if kind == "upsample":
        return {"upsample": {"scale_factor": 2}}
    return {kind: {}}


def _fits(tensor: torch.Tensor) -> bool:
    return tensor.numel() <= BUDGET and all(size >= 1 for size in tensor.shape)


def _run(spec: Any, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor] | None:
    """PyTorch's module and output for a leaf, or None where it does not run."""
    try:
        module = exact_layer(spec, x)
        with torch.no_grad():
            y = module.eval()(x)
    except (RuntimeError, ValueError, TorchRejects):
        return None
    return (module, y) if _fits(y) else None


def _pick(draw: st.DrawFn, graph: Graph) -> int:
    """A node to read: mostly the latest, else any earlier one (or the input)."""
    last = len(graph.nodes) - 1
    if last < 0 or draw(st.integers(0, 2)) == 0:
        return draw(st.integers(-1, last))
    return last


def _draw_step(draw: st.DrawFn, graph: Graph, ndim: int) -> None:
    action = draw(
        st.sampled_from(
            ["leaf", "leaf", "leaf", "channels", "channels", "add", "concat", "mul", "gate", "like"]
        )
    )
    source = _pick(draw, graph)
    x = graph.tensor(source)
    if action in ("leaf", "channels"):
        if action == "leaf":
            spec: Any = _leaf_spec(draw, ndim, tuple(x.shape[2:]))
            # A convolution mixes the channels: each then sees what the position sees.
            uniform = kind_params(spec)[0] in ("conv", "conv_transpose") or graph.uniform(source)
        else:
            spec = _channel_spec(draw, graph.shape(source), graph.uniform(source))
            if spec is None:
                return
            kind = kind_params(spec)[0]
            uniform = graph.uniform(source) and _KEEPS_UNIFORM.get(kind, True)
        ran = _run(spec, x)
        if ran is not None:
            graph.add(Node(spec, [source], ran[1], ran[0], uniform=uniform))
        return
    if action in ("add", "mul", "concat"):
        same = (
            (lambda i: graph.shape(i) == graph.shape(source))
            if action != "concat"
            else (lambda i: graph.shape(i)[1:] == graph.shape(source)[1:])
        )
        fitting = [i for i in range(-1, len(graph.nodes)) if same(i) and i != source]
        least = 0 if action == "concat" else 1
        if len(fitting) < least:
            return
        others = (
            draw(st.lists(st.sampled_from(fitting), min_size=least, max_size=2, unique=True))
            if fitting
            else []
        )
        inputs = [source, *others]
        tensors = [graph.tensor(i) for i in inputs]
        if action == "add":
            y = sum(tensors[1:], tensors[0])
        elif action == "mul":
            y = math.prod(tensors[1:], start=tensors[0])
        else:
            y = torch.cat(tensors, 1)
        uniform = all(graph.uniform(i) for i in inputs) and (
            action != "concat" or len(set(inputs)) == 1
        )
        if _fits(y):
            graph.add(Node({action: {"from": inputs}}, inputs, y, uniform=uniform))
        return
    if action == "gate":
        channels = x.shape[1]
        squeeze = draw(st.integers(1, 3))
        steps: list[Any] = [
            {"adaptive_avg_pool": {"output_size": 1}},
            {"conv": {"out_channels": squeeze, "kernel_size": 1}},
            {"relu": {}},
            {"conv": {"out_channels": channels, "kernel_size": 1}},
            {"sigmoid": {}},
        ]
        read = source
        for spec in steps:
            ran = _run(spec, graph.tensor(read))
            assert ran is not None
            read = graph.add(Node(spec, [read], ran[1], ran[0]))
        y = x * graph.tensor(read)
        graph.add(
            Node(
                {"mul": {"from": [source, read]}}, [source, read], y, uniform=graph.uniform(source)
            )
        )
        return
    # upsample: {like: …}: to the spatial size of a larger node
    larger = [
        i
        for i in range(-1, len(graph.nodes))
        if all(a >= b for a, b in zip(graph.shape(i)[1:], graph.shape(source)[1:], strict=True))
        and graph.shape(i)[1:] != graph.shape(source)[1:]
    ]
    if not larger:
        return
    like = draw(st.sampled_from(larger))
    size = graph.shape(like)[1:]
    y = F.interpolate(x, size=size, mode="nearest")
    if _fits(y):
        graph.add(Node({"upsample": {}}, [source], y, like=like, uniform=graph.uniform(source)))


@st.composite
def graphs(draw: st.DrawFn, ndims: tuple[int, ...] = (1, 2, 3)) -> Graph:
    ndim = draw(st.sampled_from(ndims))
    sizes = {1: (8, 40), 2: (6, 20), 3: (4, 10)}[ndim]
    shape = (
        draw(st.integers(1, 3)),
        *draw(st.lists(st.integers(*sizes), min_size=ndim, max_size=ndim)),
    )
    graph = Graph(torch.randn(1, *shape))
    for _ in range(draw(st.integers(2, 10))):
        _draw_step(draw, graph, ndim)
    if not graph.nodes:
        spec = {"relu": {}}
        graph.add(Node(spec, [-1], torch.relu(graph.input), nn.ReLU()))
    return graph


def document(graph: Graph) -> dict[str, Any]:
    """The model file: every node named `nI`, reading its inputs with `from`; the nodes
    that nothing reads are the outputs."""

    def name(index: int) -> str:
        return "input" if index < 0 else f"n{index}"

    layers = []
    for index, node in enumerate(graph.nodes):
        kind, params = kind_params(node.spec)
        params = dict(params)
        if kind in ("add", "concat", "mul"):
            params["from"] = [name(i) for i in node.inputs]
        else:
            params["from"] = name(node.inputs[0])
            if node.like is not None:
                params["like"] = name(node.like)
        layers.append({kind: {"name": name(index), **params}})
    read = {
        i
        for node in graph.nodes
        for i in (*node.inputs, *([node.like] if node.like is not None else []))
    }
    outputs = [name(i) for i in range(len(graph.nodes)) if i not in read]
    return {"input": list(graph.input.shape[1:]), "layers": layers, "outputs": outputs}


def _statistics(node: Node) -> bool:
    """A normalisation with statistics over every position (SPEC §6.5)."""
    kind, params = kind_params(node.spec)
    return kind == "group_norm" or (
        kind == "instance_norm" and not params.get("track_running_stats", False)
    )


def _is_global(node: Node, graph: Graph) -> bool:
    kind, _ = kind_params(node.spec)
    return kind == "adaptive_avg_pool" and all(s == 1 for s in node.output.shape[2:])


def twin(graph: Graph, detach_global: bool) -> Any:
    """The positive float64 twin (x, e, rows) → the last output, appending every node's
    output to `rows` (torch_build's measure_rows drives it)."""
    generator = torch.Generator().manual_seed(0)
    steps: list[Any] = []
    for node in graph.nodes:
        kind, _ = kind_params(node.spec)
        if kind in ("add", "concat", "mul"):
            steps.append(kind)
        elif node.like is not None:
            steps.append(("like", tuple(node.output.shape[2:])))
        elif _statistics(node):
            steps.append("statistics")
        else:
            in_shape = tuple(graph.tensor(node.inputs[0]).shape[1:])
            steps.append(field_layer(node.spec, in_shape, tuple(node.output.shape[1:]), generator))

    def run(x: torch.Tensor, e: torch.Tensor, rows: list[torch.Tensor]) -> torch.Tensor:
        values: list[torch.Tensor] = []

        def value(index: int) -> torch.Tensor:
            return x if index < 0 else values[index]

        for node, step in zip(graph.nodes, steps, strict=True):
            if step == "add":
                y = sum((value(i) for i in node.inputs[1:]), value(node.inputs[0]))
            elif step == "mul":
                # A product of positive values depends on what each factor depends on, as a
                # sum does; the sum keeps a unit whose factor is padding (zero) seeing the
                # other factor's positions, as convcalc's field has it.
                y = sum((value(i) for i in node.inputs[1:]), value(node.inputs[0]))
            elif step == "concat":
                y = torch.cat([value(i) for i in node.inputs], 1)
            elif step == "statistics":
                # A normalisation: each position, plus its channel's mean over every
                # position (the statistics: a global path, held where asked).
                z = value(node.inputs[0])
                mean = z.mean(dim=tuple(range(2, z.dim())), keepdim=True)
                y = z + (mean.detach() if detach_global else mean)
            elif isinstance(step, tuple):
                y = F.interpolate(value(node.inputs[0]), size=step[1], mode="nearest")
            else:
                y = step(value(node.inputs[0]), e)
            if detach_global and _is_global(node, graph):
                y = y.detach()
            values.append(y)
            rows.append(y)
        return values[-1]

    return run


Strides = tuple[Fraction, ...] | None  # None: no local field, or paths that disagree


def expected_strides(graph: Graph) -> list[tuple[bool, Strides]]:
    """Per node, from the layers' parameters and PyTorch's shapes (not from convcalc):
    whether it has a local field, and its effective stride where its paths agree."""
    ndim = graph.input.dim() - 2
    found: list[tuple[bool, Strides]] = []

    def of(index: int) -> tuple[bool, Strides]:
        return (True, (Fraction(1),) * ndim) if index < 0 else found[index]

    for node in graph.nodes:
        kind, _ = kind_params(node.spec)
        if kind in ("add", "concat", "mul"):
            local = [of(i) for i in node.inputs if of(i)[0]]
            strides = {s for _, s in local}
            found.append((bool(local), strides.pop() if len(strides) == 1 else None))
            continue
        has, strides = of(node.inputs[0])
        if _is_global(node, graph):
            found.append((False, None))
            continue
        sizes = tuple(graph.tensor(node.inputs[0]).shape[2:])
        out = tuple(node.output.shape[2:])
        if strides is not None:
            if node.like is not None:
                spec: Any = {"upsample": {"size": list(out)}}
            else:
                spec = node.spec
            strides = tuple(s * _slope(spec, sizes, out, axis) for axis, s in enumerate(strides))
        found.append((has, strides))
    return found


def analyse(doc: dict[str, Any]) -> Analysis:
    return analyze(build_model(parse(json.dumps(doc), "model.json")))


def check_shapes(graph: Graph, analysis: Analysis, doc: dict[str, Any]) -> None:
    assert len(analysis.rows) == len(graph.nodes)
    for row, node in zip(analysis.rows, graph.nodes, strict=True):
        assert row.output_shape == tuple(node.output.shape[1:]), row.qualified_name
    params = sum(
        p.numel()
        for node in graph.nodes
        if node.module is not None
        for p in node.module.parameters()
    )
    assert analysis.totals.params == params
    assert [output.name for output in analysis.outputs] == doc["outputs"]
    for output in analysis.outputs:
        index = int(output.name[1:])
        assert output.shape == tuple(graph.nodes[index].output.shape[1:])


def check_fields(graph: Graph, analysis: Analysis) -> None:
    input_shape = tuple(graph.input.shape[1:])
    ndim = len(input_shape) - 1
    shapes = [row.output_shape for row in analysis.rows]
    strides = expected_strides(graph)
    spatial = [i for i, row in enumerate(analysis.rows) if len(row.output_shape) > 1]
    for i in spatial:
        row = analysis.rows[i]
        assert (row.receptive_field is not None) == strides[i][0], row.qualified_name
    wanted = [i for i in spatial if analysis.rows[i].receptive_field is not None]
    local = measure_rows(twin(graph, True), input_shape, shapes, wanted, PROBES[ndim])
    for i in wanted:
        row = analysis.rows[i]
        stride = strides[i][1]
        note(f"row {row.qualified_name} ({row.kind}): {row.receptive_field}")
        assert row.receptive_field is not None and row.fields is not None
        if stride is not None:
            assert row.receptive_field.effective_stride == stride, row.qualified_name
        else:
            event("field: paths with different strides")
        runs = [longest_run(units) for units in local[i]]
        for axis, units in enumerate(local[i]):
            # A probe is a slice over the other axes: it sees all of what a unit sees on
            # this axis only if some unit of the slice reads more than padding there
            # (fields are boxes here); else what it sees lies within the field.
            complete = all(run for other, run in enumerate(runs) if other != axis)
            check_axis(
                units,
                row.fields[axis],
                row.receptive_field.size[axis],
                row.receptive_field.effective_stride[axis],
                row.receptive_field.effective_padding[axis],
                None,
                complete,
            )
            if longest_run(units) and complete:
                event("field: interior units compared")


def check_global_context(graph: Graph, analysis: Analysis) -> None:
    """A row has global context exactly where the part of a unit's gradient that comes
    through global paths reaches every input position. On the positive twin every path
    adds a positive amount, so that part is the full gradient less the gradient with
    the global paths held constant."""
    input_shape = tuple(graph.input.shape[1:])
    full, held = twin(graph, False), twin(graph, True)
    for i, row in enumerate(analysis.rows):
        if len(row.output_shape) < 2:
            continue
        middle = tuple(size // 2 for size in row.output_shape[1:])
        gradients = []
        for net in (full, held):
            x = torch.ones(1, *input_shape, dtype=torch.float64, requires_grad=True)
            e = torch.zeros(1, len(input_shape) - 1, dtype=torch.float64, requires_grad=True)
            rows: list[torch.Tensor] = []
            net(x, e, rows)
            target = rows[i][(0, slice(None), *middle)].sum()
            grad = None
            if target.requires_grad:
                (grad,) = torch.autograd.grad(target, [x], allow_unused=True)
            gradients.append(torch.zeros_like(x)[0] if grad is None else grad[0])
        through_global = gradients[0] - gradients[1]
        everywhere = bool((through_global.sum(0) > 1e-9 * gradients[0].abs().max()).all())
        event(f"global context {row.global_context}")
        assert row.global_context == everywhere, row.qualified_name


@settings(max_examples=300, **SETTINGS)
@given(graphs())
def test_random_graphs_match_torch(graph: Graph) -> None:
    doc = document(graph)
    note(json.dumps(doc))
    analysis = analyse(doc)
    event(f"{len(analysis.outputs)} output(s)")
    for kind in {kind_params(node.spec)[0] for node in graph.nodes}:
        event(f"kind {kind}")
    check_shapes(graph, analysis, doc)
    check_fields(graph, analysis)
    check_global_context(graph, analysis)
