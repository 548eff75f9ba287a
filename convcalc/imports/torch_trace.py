"""A PyTorch module → graph nodes, by running it once and recording what it does.

The module runs in eval mode, without gradients, on a random input of the given shape
(batch 1), under a `TorchFunctionMode` that sees every call of a torch function or
tensor method at the level the code wrote it (`F.conv2d`, `F.batch_norm`, `torch.cat`,
`x.permute`, `x + y`), with the real tensors. So every shape is PyTorch's own; code that
reads shapes (TensorFlow "same" padding, `x.ndim`) runs as it does for that input; and a
layer written as a function (timm's `BatchNormAct2d` calls `F.batch_norm` on its own
parameters) is the same call as the module form. Global forward hooks say which module
made each call, for the rows' names (`features.1.0.block.2.fc1`).

Values are followed by identity: a tensor the input flows into is a graph value; a
tensor computed from parameters only (a standardised convolution weight) remembers the
parameters it came from; anything else is a constant. A call that reads a graph value
becomes rows (`_HANDLERS`), and each row's shape and parameter count, computed by
convcalc's own arithmetic, must equal PyTorch's tensors, or the import stops: a
difference is a bug to report, never a number to print. A call convcalc cannot follow
is an error naming the module and the operation, never a silent identity.

Some patterns are several calls: `permute` to channels last, then `LayerNorm`, `Linear`,
activations and `* gamma`, then `permute` back (ConvNeXt) are rows on a value kept
channels last; reshape–transpose–reshape into and out of groups is a `channel_shuffle`;
a reshape between shapes convcalc does not have (`squeeze`, `view(b, c, 1, 1)`) is kept
pending until it is reshaped back or flattened. Arithmetic with a constant number
(`x * 0.5`, `x + 3` inside a hard sigmoid) keeps shapes and has no parameters: it is
transparent, no row.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from convcalc.errors import ConvcalcError, Where
from convcalc.imports.graph import MERGES, Node, graph_document
from convcalc.imports.torch_modules import MODULES, REQUIRED, bind, translate
from convcalc.model.layers import Shape, format_shape
from convcalc.model.params import describe

__all__ = ["trace"]

SOURCE = "input"


@dataclass(frozen=True)
class _Value:
    """A graph value: the node that writes it and its shape (channels first, without the
    batch); `last`: the tensor holds it channels last ((B, H, W, C), after a permute)."""

    node: str
    shape: Shape
    last: bool = False


@dataclass(frozen=True)
class _Pending:
    """A graph value under a reshape convcalc has no row for: `real` is the tensor's
    shape without the batch. `groups`: its channels split into (groups, C/groups), the
    first step of a channel shuffle (`swapped` once the two are transposed)."""

    base: _Value
    real: tuple[int, ...]
    groups: int = 0
    swapped: bool = False

    @property
    def single(self) -> bool:
        """Whether the base has one position (a pooled vector): reshaping and permuting
        its channels then changes neither shapes nor fields (split attention's softmax
        over radix groups)."""
        return all(n == 1 for n in self.base.shape[1:])


@dataclass(frozen=True)
class _Param:
    """A tensor made of parameters only: their names (itself, if it is one)."""

    names: frozenset[str]
    tensor: Any


_INPLACE = (("inplace", False),)
_DROPOUT = (("p", 0.5), ("training", True), *_INPLACE)
_MAX_POOL = (
    ("kernel_size", REQUIRED),
    ("stride", None),
    ("padding", 0),
    ("dilation", 1),
    ("ceil_mode", False),
    ("return_indices", False),
)
_AVG_POOL = (
    ("kernel_size", REQUIRED),
    ("stride", None),
    ("padding", 0),
    ("ceil_mode", False),
    ("count_include_pad", True),
    ("divisor_override", None),
)
_F = "torch.nn.functional."

#: Functions and methods that are a torch.nn layer applied to their first argument
#: (by torch.overrides.resolve_name): the module, and its arguments after the input in
#: the function's order.
_LAYERS: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
    **dict.fromkeys(
        (
            f"{_F}relu",
            f"{_F}relu_",
            "torch.relu",
            "torch.relu_",
            "torch.Tensor.relu",
            "torch.Tensor.relu_",
        ),
        ("ReLU", _INPLACE),
    ),
    f"{_F}relu6": ("ReLU6", _INPLACE),
    **dict.fromkeys(
        (f"{_F}leaky_relu", f"{_F}leaky_relu_"),
        ("LeakyReLU", (("negative_slope", 0.01), *_INPLACE)),
    ),
    f"{_F}gelu": ("GELU", (("approximate", "none"),)),
    f"{_F}silu": ("SiLU", _INPLACE),
    f"{_F}mish": ("Mish", _INPLACE),
    f"{_F}hardswish": ("Hardswish", _INPLACE),
    f"{_F}hardsigmoid": ("Hardsigmoid", _INPLACE),
    **dict.fromkeys((f"{_F}elu", f"{_F}elu_"), ("ELU", (("alpha", 1.0), *_INPLACE))),
    **dict.fromkeys((f"{_F}selu", f"{_F}selu_"), ("SELU", _INPLACE)),
    f"{_F}softplus": ("Softplus", (("beta", 1.0), ("threshold", 20.0))),
    **dict.fromkeys(
        (
            f"{_F}sigmoid",
            "torch.sigmoid",
            "torch.sigmoid_",
            "torch.Tensor.sigmoid",
            "torch.Tensor.sigmoid_",
        ),
        ("Sigmoid", ()),
    ),
    **dict.fromkeys(
        (f"{_F}tanh", "torch.tanh", "torch.tanh_", "torch.Tensor.tanh", "torch.Tensor.tanh_"),
        ("Tanh", ()),
    ),
    **dict.fromkeys(
        (f"{_F}dropout", f"{_F}alpha_dropout", f"{_F}feature_alpha_dropout"),
        ("Dropout", _DROPOUT),
    ),
    **{
        name: layer
        for n in (1, 2, 3)
        for name, layer in {
            f"{_F}dropout{n}d": (f"Dropout{n}d", _DROPOUT),
            f"{_F}max_pool{n}d": (f"MaxPool{n}d", _MAX_POOL),
            f"{_F}max_pool{n}d_with_indices": (f"MaxPool{n}d", _MAX_POOL),
            f"{_F}avg_pool{n}d": (f"AvgPool{n}d", _AVG_POOL[: 5 if n == 1 else 6]),
            f"{_F}adaptive_avg_pool{n}d": (
                f"AdaptiveAvgPool{n}d",
                (("output_size", REQUIRED),),
            ),
            f"{_F}adaptive_max_pool{n}d": (
                f"AdaptiveMaxPool{n}d",
                (("output_size", REQUIRED), ("return_indices", False)),
            ),
        }.items()
    },
    f"{_F}pixel_shuffle": ("PixelShuffle", (("upscale_factor", REQUIRED),)),
    f"{_F}pixel_unshuffle": ("PixelUnshuffle", (("downscale_factor", REQUIRED),)),
    "torch.channel_shuffle": ("ChannelShuffle", (("groups", REQUIRED),)),
    f"{_F}channel_shuffle": ("ChannelShuffle", (("groups", REQUIRED),)),
    f"{_F}local_response_norm": (
        "LocalResponseNorm",
        (("size", REQUIRED), ("alpha", 1e-4), ("beta", 0.75), ("k", 1.0)),
    ),
}

#: Arguments of the functional forms with no bearing on shapes or parameters.
_IGNORED = {"training", "inplace", "return_indices"}

#: Pointwise layers that may run on a value kept channels last (ConvNeXt's MLP).
_POINTWISE = {
    "relu",
    "relu6",
    "leaky_relu",
    "gelu",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "elu",
    "selu",
    "softplus",
    "sigmoid",
    "tanh",
    "dropout",
}

#: Calls that give back their input's values (a copy, a layout, a dtype).
_SAME = {
    "torch.Tensor.contiguous",
    "torch.Tensor.clone",
    "torch.clone",
    "torch.Tensor.detach",
    "torch.Tensor.float",
    "torch.Tensor.to",
    "torch.Tensor.type_as",
    "torch.Tensor.type",
    "torch.Tensor.requires_grad_",
}
_RESHAPES = {
    "torch.Tensor.view",
    "torch.Tensor.reshape",
    "torch.reshape",
    "torch.Tensor.flatten",
    "torch.flatten",
    "torch.Tensor.squeeze",
    "torch.squeeze",
    "torch.Tensor.unsqueeze",
    "torch.unsqueeze",
    "torch.Tensor.view_as",
    "torch.Tensor.reshape_as",
    "torch.Tensor.unflatten",
    "torch.unflatten",
}
_PERMUTES = {
    "torch.Tensor.permute",
    "torch.permute",
    "torch.Tensor.transpose",
    "torch.transpose",
    "torch.Tensor.swapaxes",
    "torch.swapaxes",
}
_EXPANDS = {"torch.Tensor.expand", "torch.Tensor.expand_as"}
_SPLITS = {
    "torch.functional.split",
    "torch.Tensor.chunk",
    "torch.chunk",
    "torch.Tensor.split",
    "torch.split",
    "torch.Tensor.tensor_split",
    "torch.tensor_split",
}
_ADD = {
    "torch.Tensor.add",
    "torch.Tensor.add_",
    "torch.add",
    "torch.Tensor.__radd__",
    "torch.Tensor.__iadd__",
    "torch.Tensor.__add__",
}
_SUB = {
    "torch.Tensor.sub",
    "torch.Tensor.sub_",
    "torch.sub",
    "torch.Tensor.__rsub__",
    "torch.Tensor.__isub__",
    "torch.Tensor.__sub__",
    "torch.rsub",
}
_MUL = {
    "torch.Tensor.mul",
    "torch.Tensor.mul_",
    "torch.mul",
    "torch.Tensor.__rmul__",
    "torch.Tensor.__imul__",
    "torch.Tensor.__mul__",
}
_DIV = {
    "torch.Tensor.div",
    "torch.Tensor.div_",
    "torch.div",
    "torch.Tensor.__truediv__",
    "torch.Tensor.__itruediv__",
    "torch.Tensor.true_divide",
}
_CAT = {"torch.cat", "torch.concat", "torch.concatenate"}
_MEAN = {"torch.mean", "torch.Tensor.mean"}


def trace(torch: Any, root: Any, shape: Shape, label: str | None) -> dict[str, Any]:
    """The model document (graph form) of `root` run on an input of `shape`."""
    recorder = _Recorder(torch, root, label)
    return recorder.run(shape)


@functools.cache
def _mode_class(torch: Any) -> Any:
    """The TorchFunctionMode that hands every call to a recorder (made once torch is
    imported)."""
    from torch.overrides import TorchFunctionMode

    class Mode(TorchFunctionMode):  # type: ignore[misc,unused-ignore]  # Any without stubs
        def __init__(self, recorder: _Recorder) -> None:
            super().__init__()
            self.recorder = recorder

        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            result = func(*args, **(kwargs or {}))
            self.recorder.record(func, args, kwargs or {}, result)
            return result

    return Mode


@dataclass
class _Call:
    """A recorded call: its name (torch.overrides.resolve_name), its arguments with
    graph values and parameters resolved, and its result (tensors as PyTorch gave them)."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    result: Any
    module: str  # the qualified name of the module that made it ("" at the top)
    op: str = ""

    def __post_init__(self) -> None:
        self.op = self.name.rsplit(".", 1)[-1].strip("_")


@dataclass
class _Made:
    """A node and where it was made, to name it once the run is over."""

    node: Node
    module: str
    call: int  # which call of that module
    op: str
    auxiliary: bool  # a pad before a convolution, a gain after it: not the module's row
    params: frozenset[str]  # the parameters it uses


@dataclass
class _Recorder:
    torch: Any
    root: Any
    label: str | None
    live: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # id → (tensor, value)
    derived: dict[int, tuple[Any, frozenset[str]]] = field(default_factory=dict)
    made: list[_Made] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    stack: list[tuple[str, int]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    error: ConvcalcError | None = None
    # An exception of the module's code, and the innermost module it left: its place.
    failed: tuple[BaseException, str] | None = None
    count: int = 0
    shapes: dict[str, Shape] = field(default_factory=dict)  # each value's, in order
    # What each module call returned, where it is a graph value: (module, call) → value.
    returned: dict[tuple[str, int], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = {id(p): name for name, p in self.root.named_parameters()}
        self.modules = {id(m): name for name, m in self.root.named_modules()}
        self.leaves = {id(m) for m in self.root.modules() if not m._modules}

    # -- the run -----------------------------------------------------------------------

    def run(self, shape: Shape) -> dict[str, Any]:
        torch = self.torch
        modes = [(m, m.training) for m in self.root.modules()]
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((1, *shape), generator=generator)
        self.live[id(x)] = (x, _Value(SOURCE, shape))
        self.shapes[SOURCE] = shape
        hooks = torch.nn.modules.module
        before = hooks.register_module_forward_pre_hook(self.enter)
        after = hooks.register_module_forward_hook(self.leave, always_call=True)
        self.root.eval()
        try:
            with torch.no_grad(), _mode_class(torch)(self):
                result = self.root(x)
        except ConvcalcError as error:
            raise self.located(error) from None
        # The module's own code may fail in any way: on this input, it does not run.
        except Exception as error:
            if self.error is not None:
                raise self.located(self.error) from None
            failed = self.failed
            place = failed[1] if failed is not None and failed[0] is error else ""
            raise ConvcalcError(
                f"running {type(self.root).__name__} on an input of shape "
                f"{format_shape((1, *shape))} raised {type(error).__name__}: "
                f"{_first_line(error)}",
                Where(place, self.label),
            ) from None
        finally:
            before.remove()
            after.remove()
            for module, training in modes:
                module.training = training
        if self.error is not None:
            raise self.located(self.error)
        return self.document(result, shape)

    def located(self, error: ConvcalcError) -> ConvcalcError:
        return error if error.where is not None else error.at(Where("", self.label))

    def enter(self, module: Any, args: Any) -> None:
        name = self.modules.get(id(module))
        if name is None:  # a module made on the fly: its caller's name
            name = self.stack[-1][0] if self.stack else ""
        count = self.calls.get(name, 0)
        self.calls[name] = count + 1
        self.stack.append((name, count))

    def leave(self, module: Any, args: Any, result: Any) -> None:
        # Called by torch while the exception is handled, when the forward raised.
        error = sys.exc_info()[1]
        if (
            self.stack
            and error is not None
            and (self.failed is None or self.failed[0] is not error)
        ):
            name = self.stack[-1][0]
            self.failed = (error, f"{name} ({type(module).__name__})" if name else "")
        if self.stack:
            key = self.stack.pop()
            found = self.live.get(id(result))
            if found is not None:
                self.returned[key] = found[1]

    def record(self, func: Any, args: Any, kwargs: dict[str, Any], result: Any) -> None:
        if self.error is not None:
            return
        try:
            self.follow(func, args, kwargs, result)
        except ConvcalcError as error:
            self.error = error

    def follow(self, func: Any, args: Any, kwargs: dict[str, Any], result: Any) -> None:
        from torch.overrides import resolve_name

        resolved = [self.resolve(a) for a in args]
        keywords = {k: self.resolve(v) for k, v in kwargs.items()}
        reads = list(_flat([resolved, keywords]))
        name = resolve_name(func) or getattr(func, "__name__", repr(func))
        if not any(isinstance(v, _Value | _Pending) for v in reads):
            # Parameters only: remember what a computed tensor is made of.
            names = frozenset().union(*(v.names for v in reads if isinstance(v, _Param)))
            if names:
                for tensor in self.tensors(result):
                    self.derived[id(tensor)] = (tensor, names)
            return
        if not any(True for _ in self.tensors(result)):
            return  # a size, a dimension count: the shape is known anyway
        module, call = self.stack[-1] if self.stack else ("", 0)
        handler = _handler(name)
        if handler is None:
            raise self.fail(
                module,
                name,
                "convcalc cannot follow this operation (it follows convolutions, "
                "normalisations, activations, pooling, upsampling, padding, +, ×, cat, "
                "channel slices and shuffles, flatten, permutes to channels last and back: "
                "see the README's PyTorch section)",
            )
        handler(self, _Call(name, resolved, keywords, result, module), call)

    def tensors(self, result: Any) -> Iterator[Any]:
        if isinstance(result, self.torch.Tensor):
            yield result
        elif isinstance(result, tuple | list):
            for item in result:
                yield from self.tensors(item)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, self.torch.Tensor):
            key = id(value)
            if key in self.live:
                return self.live[key][1]
            if key in self.params:
                return _Param(frozenset((self.params[key],)), value)
            if key in self.derived:
                return _Param(self.derived[key][1], value)
            return value  # a constant
        if isinstance(value, tuple | list):
            return type(value)(self.resolve(v) for v in value)
        return value

    def fail(self, module: str, operation: str, message: str) -> ConvcalcError:
        place = f"{module} ({operation})" if module else operation
        return ConvcalcError(message, Where(place, self.label))

    # -- making rows -------------------------------------------------------------------

    def value(self, call: _Call, value: Any, what: str = "its input") -> _Value:
        """A graph value as a row reads it: a pending reshape made real first."""
        if isinstance(value, _Pending):
            return self.settle(call, value)
        if not isinstance(value, _Value):
            raise self.fail(
                call.module,
                call.name,
                f"expected {what} to be computed from the input, got "
                f"{describe(value) if not hasattr(value, 'shape') else 'a constant tensor'}",
            )
        return value

    def settle(self, call: _Call, pending: _Pending) -> _Value:
        if pending.real == pending.base.shape and not pending.groups:
            return pending.base
        if len(pending.real) == 1 and not pending.groups:
            return self.row(call, "flatten", {}, pending.base, None, op="flatten")
        raise self.fail(
            call.module,
            call.name,
            f"reads a tensor of shape {format_shape(pending.real)} made by reshaping "
            f"{format_shape(pending.base.shape)}; convcalc follows reshapes to (batch, -1), "
            "channel shuffles, and reshapes undone before the next layer",
        )

    def row(
        self,
        call: _Call,
        kind: str,
        params: dict[str, Any],
        x: _Value | tuple[_Value, ...],
        result: Any,
        *,
        uses: tuple[_Param | None, ...] = (),
        op: str | None = None,
        auxiliary: bool = False,
        last: bool = False,
        like: str | None = None,
    ) -> _Value:
        """A node for `call`: a layer (`kind`, `params`) reading `x`, or a merge reading
        several; its output checked against `result` (the tensor PyTorch gave, None for
        a row PyTorch has no tensor of its own for), and its parameters against `uses`."""
        from convcalc.loader import build_layer

        inputs = x if isinstance(x, tuple) else (x,)
        shapes = [v.shape for v in inputs]
        names = frozenset().union(*(p.names for p in uses if p is not None))
        if kind in MERGES:
            output = _merged(kind, shapes)
            counted = 0
            entry: Any = kind
        else:
            try:
                # An upsampling `like` a value is, on this input, one to its size.
                made = params if like is None else {**params, "size": self.shapes[like][1:]}
                layer = build_layer(kind, made, lambda name: Where(name or ""))
                effect = layer.apply(shapes[0])
            except ConvcalcError as error:
                where = error.where.path if error.where is not None else ""
                message = f"{where}: {error.message}" if where else error.message
                raise self.fail(call.module, call.name, message) from None
            output, counted = effect.output_shape, effect.params
            entry = {kind: params or {}}
        if result is not None:
            real = tuple(result.shape[1:])
            if last:
                real = (real[-1], *real[:-1])
            if real != output:
                raise self.fail(
                    call.module,
                    call.name,
                    f"convcalc computes the shape {format_shape(output)} for this {kind}, "
                    f"PyTorch {format_shape(real)}: a bug in convcalc, please report it",
                )
        actual = sum(self.numel(n) for n in names)
        if counted != actual:
            raise self.fail(
                call.module,
                call.name,
                f"convcalc counts {counted:,} parameters for this {kind}, the module uses "
                f"{actual:,} ({', '.join(sorted(names)) or 'none'})",
            )
        self.used.update(names)
        self.count += 1
        node_id = f"v{self.count}"
        module, index = self.stack[-1] if self.stack else ("", 0)
        self.shapes[node_id] = output
        self.made.append(
            _Made(
                Node("", entry, tuple(v.node for v in inputs), node_id, like),
                module,
                index,
                op or call.op,
                auxiliary,
                names,
            )
        )
        value = _Value(node_id, output, last)
        if result is not None:
            self.live[id(result)] = (result, value)
        return value

    def like(self, size: tuple[int, ...], x: _Value) -> str | None:
        """The latest value other than `x` whose spatial size is `size` (the input
        last), by its node: what an upsampling to that size follows, whatever the input
        size; None if there is none."""
        for node in reversed(self.shapes):
            if node != x.node and self.shapes[node][1:] == size:
                return node
        return None

    def numel(self, name: str) -> int:
        return int(self.root.get_parameter(name).numel())

    def same(self, result: Any, value: Any) -> None:
        """`result` holds the values of `value` (no row)."""
        self.live[id(result)] = (result, value)

    # -- the end -----------------------------------------------------------------------

    def document(self, result: Any, shape: Shape) -> dict[str, Any]:
        outputs: list[tuple[str, Any]] = []
        _outputs(result, "", outputs)
        if not outputs:
            raise ConvcalcError(
                f"forward returns {type(result).__name__}, no tensor", Where("", self.label)
            )
        values, names = [], []
        end = _Call("output", [], {}, None, "")
        for key, tensor in outputs:
            found = self.live.get(id(tensor))
            if found is None:
                raise ConvcalcError(
                    f"the output {key or 'returned'} does not depend on the input",
                    Where("", self.label),
                )
            value = found[1]
            if isinstance(value, _Value) and value.last:
                raise self.fail("", "output", "returns a tensor channels last")
            values.append(self.value(end, value).node)
            names.append(key)
        nodes = self.named()
        graph = graph_document(nodes, SOURCE, values, names if any(names) else ())
        document: dict[str, Any] = {"name": type(self.root).__name__, "input": list(shape)}
        document.update(graph)
        # Each unused parameter under the outermost module none of whose parameters
        # the forward uses (googlenet's `aux1`, not its `aux1.conv.conv`).
        everything = dict(self.root.named_parameters())
        touched = {prefix for name in self.used for prefix in _prefixes(name)}
        unused: dict[str, int] = {}
        for name, parameter in everything.items():
            if name not in self.used:
                owner = next(p for p in _prefixes(name) if p not in touched)
                unused[owner] = unused.get(owner, 0) + parameter.numel()
        if unused:
            document["unused_params"] = unused
        return document

    def named(self) -> list[Node]:
        """The nodes with their names (graph_document makes repeated ones unique:
        `relu_1`):

        - a module's one row (besides a pad or gain around it) is named as the module
          (`layer1.0.conv1`), if the module holds no others or the row has its
          parameters (timm's BatchNormAct2d: `bn1`), and gives the module's output shape;
        - a row with the parameters of the module that makes it, among other rows, by
          the parameter (ConvNeXt's `features.1.0.layer_scale`, a gain's `conv1.gain`);
        - others by the module and the operation (`layer1.0.add`)."""
        groups: dict[tuple[str, int], list[_Made]] = {}
        for made in self.made:
            groups.setdefault((made.module, made.call), []).append(made)
        leaves = {name for key, name in self.modules.items() if key in self.leaves}
        nodes = []
        for made in self.made:
            key = (made.module, made.call)
            main = [m for m in groups[key] if not m.auxiliary]
            owners = {name.rpartition(".")[0] for name in made.params}
            owned = bool(made.module) and owners == {made.module}
            returned = self.returned.get(key)
            fits = not isinstance(returned, _Value | _Pending) or (
                isinstance(returned, _Value) and returned.shape == self.shapes[made.node.output]
            )
            if made.module and main == [made] and fits and (made.module in leaves or owned):
                name = made.module
            elif owned and len(made.params) == 1:
                (name,) = made.params
            else:
                name = f"{made.module}.{made.op}" if made.module else made.op
            node = made.node
            nodes.append(Node(name, node.entry, node.inputs, node.output, node.like))
        return nodes


def _prefixes(name: str) -> list[str]:
    """`a.b.c` → `a`, `a.b`, `a.b.c`."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _outputs(result: Any, key: str, found: list[tuple[str, Any]]) -> None:
    """The tensors a forward returns, with their keys in dicts."""
    if hasattr(result, "shape") and hasattr(result, "dim"):
        found.append((key, result))
    elif isinstance(result, dict):
        for name, item in result.items():
            _outputs(item, f"{key}.{name}" if key else str(name), found)
    elif isinstance(result, tuple | list):
        for item in result:
            _outputs(item, key, found)


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, tuple | list):
        for item in value:
            yield from _flat(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flat(item)
    else:
        yield value


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _merged(kind: str, shapes: list[Shape]) -> Shape:
    if kind == "concat":
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    if kind == "mul":
        rank = max(len(s) for s in shapes)
        return tuple(max(s[i] for s in shapes) for i in range(rank))
    return shapes[0]


# -- the handlers --------------------------------------------------------------------

Handler = Callable[[_Recorder, _Call, int], None]


def _handler(name: str) -> Handler | None:
    if name in _LAYERS:
        return _layer
    for names, handler in _TABLE:
        if name in names:
            return handler
    return None


def _layer(recorder: _Recorder, call: _Call, index: int) -> None:
    module_name, order = _LAYERS[call.name]
    spec = MODULES[module_name]
    args = list(call.args)
    kwargs = dict(call.kwargs)
    if "input" in kwargs:
        args.insert(0, kwargs.pop("input"))
    x = recorder.value(call, args[0])
    for value in [*args[1:], *kwargs.values()]:
        if isinstance(value, _Value | _Pending | _Param):
            raise recorder.fail(call.module, call.name, "reads a second tensor")
    try:
        arguments = bind(spec, args[1:], kwargs, order)
    except ConvcalcError as error:
        raise recorder.fail(call.module, call.name, error.message) from None
    for name, default in order:
        if name not in spec.names() and name not in _IGNORED and arguments[name] != default:
            raise recorder.fail(
                call.module,
                call.name,
                f"{name}={describe(arguments[name])} has no convcalc equivalent",
            )
    arguments = {k: v for k, v in arguments.items() if k in spec.names() or k in _IGNORED}
    _translated(recorder, call, spec, arguments, x)


def _translated(
    recorder: _Recorder,
    call: _Call,
    spec: Any,
    arguments: dict[str, Any],
    x: _Value,
    uses: tuple[_Param | None, ...] = (),
) -> _Value:
    try:
        kind, params = translate(spec, arguments, x.shape)
        params.pop("inplace", None)  # how PyTorch computes it, not what
    except ConvcalcError as error:
        where = error.where.path if error.where is not None else ""
        message = f"{where}: {error.message}" if where else error.message
        raise recorder.fail(call.module, call.name, message) from None
    if x.last and kind not in _POINTWISE:
        raise recorder.fail(
            call.module, call.name, f"convcalc follows {kind} on channels first, not last"
        )
    result = call.result[0] if isinstance(call.result, tuple) else call.result
    return recorder.row(call, kind, params, x, result, uses=uses, last=x.last)


def _weight(recorder: _Recorder, call: _Call, value: Any) -> tuple[_Param, _Param | None]:
    """A convolution's weight: a parameter, or computed from one of the same shape and
    (a gain) from one value per output channel."""
    if not isinstance(value, _Param):
        raise recorder.fail(
            call.module, call.name, "its weight is not a parameter (nor computed from one)"
        )
    shape = tuple(value.tensor.shape)
    own = [n for n in value.names if tuple(recorder.root.get_parameter(n).shape) == shape]
    others = value.names - set(own[:1])
    if len(own) < 1 or any(recorder.numel(n) != shape[0] for n in others) or len(others) > 1:
        raise recorder.fail(
            call.module,
            call.name,
            "its weight is computed from the parameters "
            f"{', '.join(sorted(value.names))}; convcalc follows a weight computed from "
            "one parameter of its shape, and one value per output channel (a gain)",
        )
    gain = _Param(frozenset(others), None) if others else None
    return _Param(frozenset(own[:1]), value.tensor), gain


def _bias(recorder: _Recorder, call: _Call, value: Any) -> _Param | None:
    if value is None:
        return None
    if not isinstance(value, _Param):
        raise recorder.fail(call.module, call.name, "its bias is not a parameter")
    return value


def _conv(recorder: _Recorder, call: _Call, index: int) -> None:
    transposed = "transpose" in call.name
    order = (
        ("input", REQUIRED),
        ("weight", REQUIRED),
        ("bias", None),
        ("stride", 1),
        ("padding", 0),
        *(
            (("output_padding", 0), ("groups", 1), ("dilation", 1))
            if transposed
            else (("dilation", 1), ("groups", 1))
        ),
    )
    given = dict(zip((n for n, _ in order), call.args, strict=False)) | call.kwargs
    arguments = dict(order) | given
    x = recorder.value(call, arguments["input"])
    weight, gain = _weight(recorder, call, arguments["weight"])
    bias = _bias(recorder, call, arguments["bias"])
    shape = tuple(weight.tensor.shape)
    axes = len(shape) - 2
    groups = arguments["groups"]
    out = shape[1] * groups if transposed else shape[0]
    spec = MODULES[f"ConvTranspose{axes}d" if transposed else f"Conv{axes}d"]
    module_arguments = {
        name: default for name, default in (*spec.parameters, *spec.keyword_only)
    } | {
        "in_channels": x.shape[0],
        "out_channels": out,
        "kernel_size": shape[2:],
        "stride": arguments["stride"],
        "padding": arguments["padding"],
        "dilation": arguments["dilation"],
        "groups": groups,
        "bias": bias is not None,
        "padding_mode": "zeros",
    }
    if transposed:
        module_arguments["output_padding"] = arguments["output_padding"]
    result = _translated(recorder, call, spec, module_arguments, x, (weight, bias))
    if gain is not None:  # conv(x, w · g) is conv(x, w) · g, one g per output channel
        scaled = recorder.row(
            call, "scale", {}, result, None, uses=(gain,), op="gain", auxiliary=True
        )
        recorder.same(call.result, scaled)


def _linear(recorder: _Recorder, call: _Call, index: int) -> None:
    args = dict(zip(("input", "weight", "bias"), call.args, strict=False)) | call.kwargs
    x = recorder.value(call, args["input"])
    weight = args["weight"]
    bias = _bias(recorder, call, args.get("bias"))
    if not isinstance(weight, _Param) or len(weight.names) != 1:
        raise recorder.fail(call.module, call.name, "its weight is not a parameter")
    out = int(weight.tensor.shape[0])
    if x.last:  # a 1×1 convolution on channels last (ConvNeXt's MLP)
        params = {"out_channels": out, "kernel_size": 1} | ({} if bias else {"bias": False})
        recorder.row(call, "conv", params, x, call.result, uses=(weight, bias), last=True)
        return
    if len(x.shape) != 1:
        raise recorder.fail(
            call.module,
            call.name,
            f"applies a Linear to {format_shape(x.shape)}; convcalc follows one on a flat "
            "input, or on the channels of a value permuted channels last",
        )
    params = {"out_features": out} | ({} if bias else {"bias": False})
    recorder.row(call, "linear", params, x, call.result, uses=(weight, bias))


def _normalised(
    recorder: _Recorder, call: _Call, names: tuple[str, ...]
) -> tuple[dict[str, Any], _Value, Any, Any]:
    """A normalisation's arguments by name (`names`: its signature), its input, and its
    weight and bias, each a parameter or None."""
    args = dict(zip(names, call.args, strict=False)) | call.kwargs
    x = recorder.value(call, args["input"])
    weight, bias = args.get("weight"), args.get("bias")
    for value in (weight, bias):
        if value is not None and not isinstance(value, _Param):
            raise recorder.fail(call.module, call.name, "its weight or bias is not a parameter")
    return args, x, weight, bias


def _eps(args: dict[str, Any]) -> dict[str, Any]:
    """A normalisation's eps, where it is not PyTorch's default."""
    eps = args.get("eps", 1e-5)
    return {} if eps == 1e-5 else {"eps": eps}


_STATISTICS = ("input", "running_mean", "running_var", "weight", "bias")


def _batch_norm(recorder: _Recorder, call: _Call, index: int) -> None:
    names = (*_STATISTICS, "training", "momentum", "eps")
    args, x, weight, bias = _normalised(recorder, call, names)
    if args.get("training") or args.get("running_mean") is None:
        raise recorder.fail(
            call.module,
            call.name,
            "normalises with the statistics of the batch (no running statistics, or "
            "training=True); convcalc follows batch_norm at inference",
        )
    params: dict[str, Any] = _eps(args)
    if weight is None and bias is None:
        params["affine"] = False
    elif weight is None or bias is None:
        raise recorder.fail(call.module, call.name, "has a scale or a shift but not both")
    recorder.row(call, "batch_norm", params, x, call.result, uses=(weight, bias))


def _group_norm(recorder: _Recorder, call: _Call, index: int) -> None:
    names = ("input", "num_groups", "weight", "bias", "eps")
    args, x, weight, bias = _normalised(recorder, call, names)
    params = {"num_groups": args["num_groups"], **_eps(args)}
    if weight is None and bias is None:
        params["affine"] = False
    recorder.row(call, "group_norm", params, x, call.result, uses=(weight, bias))


def _instance_norm(recorder: _Recorder, call: _Call, index: int) -> None:
    names = (*_STATISTICS, "use_input_stats", "momentum", "eps")
    args, x, weight, bias = _normalised(recorder, call, names)
    params: dict[str, Any] = _eps(args)
    if weight is not None:
        params["affine"] = True
    if not args.get("use_input_stats", True):
        params["track_running_stats"] = True
    recorder.row(call, "instance_norm", params, x, call.result, uses=(weight, bias))


def _layer_norm(recorder: _Recorder, call: _Call, index: int) -> None:
    names = ("input", "normalized_shape", "weight", "bias", "eps")
    args, x, weight, bias = _normalised(recorder, call, names)
    normalized = tuple(args["normalized_shape"])
    if normalized != (x.shape[0],) or (not x.last and len(x.shape) != 1):
        raise recorder.fail(
            call.module,
            call.name,
            f"normalises over {describe(list(normalized))} of {format_shape(x.shape)}; "
            "convcalc follows layer_norm over the channels (channels last) or a flat input",
        )
    params: dict[str, Any] = _eps(args)
    if weight is None:
        params["elementwise_affine"] = False
    elif bias is None:
        params["bias"] = False
    recorder.row(call, "layer_norm", params, x, call.result, uses=(weight, bias), last=x.last)


def _prelu(recorder: _Recorder, call: _Call, index: int) -> None:
    x = recorder.value(call, call.args[0])
    weight = call.args[1] if len(call.args) > 1 else call.kwargs["weight"]
    if not isinstance(weight, _Param):
        raise recorder.fail(call.module, call.name, "its weight is not a parameter")
    params = {"num_parameters": int(weight.tensor.numel())}
    recorder.row(call, "prelu", params, x, call.result, uses=(weight,))


def _hardtanh(recorder: _Recorder, call: _Call, index: int) -> None:
    names = ("input", "min_val", "max_val", "inplace")
    args = {"min_val": -1.0, "max_val": 1.0} | dict(zip(names, call.args, strict=False))
    args |= call.kwargs
    x = recorder.value(call, args["input"])
    if (args["min_val"], args["max_val"]) != (0, 6):
        raise recorder.fail(
            call.module, call.name, "convcalc follows hardtanh between 0 and 6 (relu6)"
        )
    recorder.row(call, "relu6", {}, x, call.result, last=x.last)


def _softmax(recorder: _Recorder, call: _Call, index: int) -> None:
    value = call.args[0]
    dim = call.args[1] if len(call.args) > 1 else call.kwargs.get("dim")
    # Across the groups of a regrouped tensor (selective kernels, split attention):
    # channels mixed at each position, as convcalc's softmax over the channels.
    if (
        isinstance(value, _Pending)
        and dim is not None
        and (value.single or (value.groups > 0 and dim % (len(value.real) + 1) == 1))
    ):
        mixed = recorder.row(call, "softmax", {}, value.base, None)
        real = tuple(call.result.shape[1:])
        recorder.same(call.result, _Pending(mixed, real, value.groups, value.swapped))
        return
    x = recorder.value(call, value)
    if dim is None or dim % (len(x.shape) + 1) != 1:
        raise recorder.fail(
            call.module, call.name, "convcalc follows a softmax over the channels (dim=1)"
        )
    recorder.row(call, "softmax", {}, x, call.result)


def _interpolate(recorder: _Recorder, call: _Call, index: int) -> None:
    names = (
        "input",
        "size",
        "scale_factor",
        "mode",
        "align_corners",
        "recompute_scale_factor",
        "antialias",
    )
    args = dict(zip(names, call.args, strict=False)) | call.kwargs
    x = recorder.value(call, args["input"])
    if args.get("antialias"):  # a wider kernel when it downsamples: another field
        raise recorder.fail(call.module, call.name, "antialias=True has no convcalc equivalent")
    spec = MODULES["Upsample"]
    arguments = {n: d for n, d in spec.parameters} | {
        k: v for k, v in args.items() if k in spec.names()
    }
    like = None
    if args.get("size") is not None:
        # A size read from another value's shape (FPN, U-Net, a segmentation head
        # back to the input's size): that value's size whatever the input is.
        size = tuple(call.result.shape[2:])
        like = recorder.like(size, x)
    if like is not None:
        try:
            params = translate(spec, arguments | {"scale_factor": None}, x.shape)[1]
        except ConvcalcError as error:
            raise recorder.fail(call.module, call.name, error.message) from None
        params.pop("size", None)
        recorder.row(call, "upsample", params, x, call.result, like=like)
        return
    _translated(recorder, call, spec, arguments, x)


def _pad(recorder: _Recorder, call: _Call, index: int) -> None:
    names = ("input", "pad", "mode", "value")
    args = {"mode": "constant", "value": None} | dict(zip(names, call.args, strict=False))
    args |= call.kwargs
    x = recorder.value(call, args["input"])
    mode = args["mode"]
    spec = {
        "constant": "ConstantPad",
        "reflect": "ReflectionPad",
        "replicate": "ReplicationPad",
        "circular": "CircularPad",
    }.get(mode)
    if spec is None:
        raise recorder.fail(call.module, call.name, f"pads in mode {describe(mode)}")
    module = MODULES[f"{spec}{len(x.shape) - 1}d"] if len(x.shape) > 1 else None
    if module is None:
        raise recorder.fail(call.module, call.name, "pads a flat input")
    arguments: dict[str, Any] = {"padding": list(args["pad"])}
    if mode == "constant":
        arguments["value"] = args["value"] or 0.0
    _translated(recorder, call, module, arguments, x)
    # Before a convolution (TF "same" padding), the module's own row is the convolution.
    recorder.made[-1].op = "pad"
    recorder.made[-1].auxiliary = True


def _same(recorder: _Recorder, call: _Call, index: int) -> None:
    recorder.same(call.result, call.args[0])


def _reshape(recorder: _Recorder, call: _Call, index: int) -> None:
    value = call.args[0]
    real = tuple(call.result.shape)
    if not real or real[0] != 1:
        raise recorder.fail(
            call.module, call.name, f"reshapes the batch too, to {format_shape(real)}"
        )
    real = real[1:]
    if isinstance(value, _Value) and value.last:
        raise recorder.fail(call.module, call.name, "reshapes a tensor kept channels last")
    if isinstance(value, _Pending):
        base, groups, swapped = value.base, value.groups, value.swapped
    else:
        base, groups, swapped = value, 0, False
    if groups and swapped and real == base.shape:
        recorder.row(
            call, "channel_shuffle", {"groups": groups}, base, call.result, op="channel_shuffle"
        )
        return
    if (
        not groups
        and len(real) == len(base.shape) + 1
        and real[2:] == base.shape[1:]
        and real[0] * real[1] == base.shape[0]
    ):
        recorder.same(call.result, _Pending(base, real, groups=real[0]))
        return
    if real == base.shape:
        recorder.same(call.result, base)
    elif (
        len(base.shape) == 1 and len(real) > 1 and real[0] == base.shape[0] and set(real[1:]) == {1}
    ):
        # A flat gate back to C×1×1 (x * fc(pool(x).view(b, c)).view(b, c, 1, 1)).
        recorder.row(call, "unflatten", {"axes": len(real) - 1}, base, call.result, op="view")
    elif len(real) == 1 and len(base.shape) > 1 and not isinstance(value, _Pending):
        recorder.row(call, "flatten", {}, base, call.result, op="flatten")
    else:
        recorder.same(call.result, _Pending(base, real))


def _permute(recorder: _Recorder, call: _Call, index: int) -> None:
    value = call.args[0]
    dims = [d for d in call.args[1:]] or list(call.kwargs.values())
    if len(dims) == 1 and isinstance(dims[0], tuple | list):
        dims = list(dims[0])
    result = call.result
    rank = result.dim()
    if call.op in ("transpose", "swapaxes"):
        first, second = sorted(d % rank for d in dims)
        order = list(range(rank))
        order[first], order[second] = second, first
    else:
        order = [d % rank for d in dims]
    if (
        isinstance(value, _Pending)
        and value.groups
        and not value.swapped
        and order[:3] == [0, 2, 1]
    ):
        recorder.same(result, _Pending(value.base, tuple(result.shape[1:]), value.groups, True))
        return
    if isinstance(value, _Pending) and value.single:
        recorder.same(result, _Pending(value.base, tuple(result.shape[1:])))
        return
    x = recorder.value(call, value)
    to_last = [0, *range(2, rank), 1]
    to_first = [0, rank - 1, *range(1, rank - 1)]
    if not x.last and order == to_last:
        recorder.same(result, _Value(x.node, x.shape, True))
    elif x.last and order == to_first:
        recorder.same(result, _Value(x.node, x.shape, False))
    else:
        raise recorder.fail(
            call.module,
            call.name,
            f"permutes dimensions to {order}; convcalc follows a permute to channels last "
            "and back, and the transpose of a channel shuffle",
        )


def _expand(recorder: _Recorder, call: _Call, index: int) -> None:
    # A gate expanded to the shape it multiplies: broadcast anyway by mul.
    x = recorder.value(call, call.args[0])
    recorder.same(call.result, _Pending(x, tuple(call.result.shape[1:]), groups=-1))


def _split(recorder: _Recorder, call: _Call, index: int) -> None:
    x = recorder.value(call, call.args[0])
    dim = call.args[2] if len(call.args) > 2 else call.kwargs.get("dim", 0)
    if x.last or dim % (len(x.shape) + 1) != 1:
        raise recorder.fail(
            call.module, call.name, "splits along another dimension than the channels"
        )
    start = 0
    for part in call.result:
        end = start + int(part.shape[1])
        recorder.row(call, "channel_slice", {"start": start, "end": end}, x, part, op="split")
        start = end


def _getitem(recorder: _Recorder, call: _Call, index: int) -> None:
    x = recorder.value(call, call.args[0])
    key = call.args[1]
    items = list(key) if isinstance(key, tuple) else [key]
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + [slice(None)] * (len(x.shape) + 2 - len(items)) + items[at + 1 :]
    whole = slice(None)
    if (
        len(items) >= 2
        and items[0] == whole
        and isinstance(items[1], slice)
        and items[1].step in (None, 1)
        and all(item == whole for item in items[2:])
        and not x.last
    ):
        start, end, _ = items[1].indices(x.shape[0])
        recorder.row(
            call, "channel_slice", {"start": start, "end": end}, x, call.result, op="slice"
        )
        return
    raise recorder.fail(
        call.module, call.name, "indexes the tensor; convcalc follows x[:, a:b] (channels)"
    )


def _cat(recorder: _Recorder, call: _Call, index: int) -> None:
    tensors = call.args[0] if call.args else call.kwargs["tensors"]
    dim = call.args[1] if len(call.args) > 1 else call.kwargs.get("dim", 0)
    parts = tuple(recorder.value(call, t, "every part") for t in tensors)
    rank = len(parts[0].shape) + 1
    if any(p.last for p in parts) or dim % rank != 1:
        raise recorder.fail(
            call.module, call.name, "concatenates along another dimension than the channels"
        )
    recorder.row(call, "concat", {}, parts, call.result, op="cat")


def _arithmetic(recorder: _Recorder, call: _Call, index: int) -> None:
    operands = list(call.args[:2])
    if len(operands) < 2:
        operands.append(call.kwargs.get("other"))
    kind = {
        "add": "add",
        "radd": "add",
        "iadd": "add",
        "mul": "mul",
        "rmul": "mul",
        "imul": "mul",
    }.get(call.op)
    graph = [v for v in operands if isinstance(v, _Value | _Pending)]
    others = [v for v in operands if not isinstance(v, _Value | _Pending)]
    if len(graph) == 2 and kind is None:
        raise recorder.fail(
            call.module, call.name, "convcalc follows the sum and the product of two tensors"
        )
    if (
        kind == "mul"
        and len(graph) == 2
        and all(isinstance(v, _Pending) and v.groups > 0 and not v.swapped for v in graph)
        and len({v.groups for v in graph if isinstance(v, _Pending)}) == 1
    ):
        # Two regrouped tensors (the branches and their attention): their bases' product,
        # regrouped alike.
        bases = tuple(v.base for v in graph if isinstance(v, _Pending))
        product = recorder.row(call, "mul", {}, bases, None, op="mul")
        groups = graph[0].groups if isinstance(graph[0], _Pending) else 0
        recorder.same(call.result, _Pending(product, tuple(call.result.shape[1:]), groups))
        return
    if len(graph) == 2 and kind is not None:
        if kind == "mul":
            values = tuple(
                v.base if isinstance(v, _Pending) and v.groups == -1 else recorder.value(call, v)
                for v in graph
            )
        else:
            values = tuple(recorder.value(call, v) for v in graph)
        if values[0].last != values[1].last:
            raise recorder.fail(call.module, call.name, "combines channels first and last")
        if kind == "add" and values[0].shape != values[1].shape:
            raise recorder.fail(
                call.module,
                call.name,
                f"adds tensors of shapes {format_shape(values[0].shape)} and "
                f"{format_shape(values[1].shape)}; convcalc's add takes one shape",
            )
        recorder.row(call, kind, {}, values, call.result, op=kind, last=values[0].last)
        return
    (value,) = graph
    (other,) = others
    if isinstance(other, _Param):
        x = recorder.value(call, value)
        size = int(other.tensor.numel())
        if kind == "mul" and size == x.shape[0] and _per_channel(other.tensor.shape, x):
            recorder.row(call, "scale", {}, x, call.result, uses=(other,), last=x.last)
            return
        raise recorder.fail(
            call.module,
            call.name,
            f"combines the input with the parameters {', '.join(sorted(other.names))} "
            f"(shape {format_shape(tuple(other.tensor.shape))}); convcalc follows a product "
            "with one factor per channel (scale)",
        )
    real = tuple(call.result.shape[1:])
    if isinstance(value, _Value) and value.last:
        real = (real[-1], *real[:-1])
    shape = value.real if isinstance(value, _Pending) else value.shape
    if real != shape or call.result.shape[0] != 1:
        raise recorder.fail(
            call.module,
            call.name,
            f"broadcasts the input {format_shape(shape)} with a constant to "
            f"{format_shape(tuple(call.result.shape))} (batch first)",
        )
    # A number, or a constant tensor (buffers: torchvision's FrozenBatchNorm2d computes
    # x * scale + shift from them): shapes and fields stay, and no parameters.
    recorder.same(call.result, value)


def _per_channel(shape: Any, x: _Value) -> bool:
    """Whether a parameter of `shape` broadcasts as one value per channel of `x`."""
    dims = list(shape)
    rank = len(x.shape) + 1
    if x.last:
        return dims[-1:] == [x.shape[0]] and math.prod(dims[:-1]) == 1
    full = [1] * (rank - len(dims)) + dims
    return full[1] == x.shape[0] and math.prod(full) == x.shape[0]


def _mean(recorder: _Recorder, call: _Call, index: int) -> None:
    x = recorder.value(call, call.args[0])
    dims = call.args[1] if len(call.args) > 1 else call.kwargs.get("dim")
    keep = call.args[2] if len(call.args) > 2 else call.kwargs.get("keepdim", False)
    rank = len(x.shape) + 1
    axes = dims if isinstance(dims, tuple | list) else (dims,)
    if (
        x.last
        or not all(isinstance(a, int) for a in axes)
        or {a % rank for a in axes} != set(range(2, rank))
    ):
        raise recorder.fail(
            call.module,
            call.name,
            f"takes the mean over dimensions {describe(dims)} of {rank}; convcalc follows "
            "a mean over every spatial axis (a global average pooling)",
        )
    pooled = recorder.row(
        call, "adaptive_avg_pool", {"output_size": 1}, x, call.result if keep else None, op="mean"
    )
    if not keep:
        recorder.row(call, "flatten", {}, pooled, call.result, op="flatten")


def _sum(recorder: _Recorder, call: _Call, index: int) -> None:
    value = call.args[0]
    dim = call.args[1] if len(call.args) > 1 else call.kwargs.get("dim")
    keep = call.args[2] if len(call.args) > 2 else call.kwargs.get("keepdim", False)
    if not (
        isinstance(value, _Pending)
        and value.groups > 0
        and not value.swapped
        and dim in (1, -len(value.real))
        and not keep
    ):
        raise recorder.fail(
            call.module,
            call.name,
            "convcalc follows a sum over the groups of a tensor regrouped as (batch, groups, "
            "channels, …): the sum of its channel slices",
        )
    base, groups = value.base, value.groups
    width = base.shape[0] // groups
    parts = tuple(
        recorder.row(
            call,
            "channel_slice",
            {"start": i * width, "end": (i + 1) * width},
            base,
            None,
            op="slice",
        )
        for i in range(groups)
    )
    if groups == 1:
        recorder.same(call.result, parts[0])
    else:
        recorder.row(call, "add", {}, parts, call.result, op="sum")


def _stack(recorder: _Recorder, call: _Call, index: int) -> None:
    tensors = call.args[0] if call.args else call.kwargs["tensors"]
    dim = call.args[1] if len(call.args) > 1 else call.kwargs.get("dim", 0)
    parts = tuple(recorder.value(call, t, "every part") for t in tensors)
    if dim != 1 or any(p.last or p.shape != parts[0].shape for p in parts):
        raise recorder.fail(
            call.module,
            call.name,
            "convcalc follows a stack of tensors of one shape as a new dimension 1 (the "
            "branches of selective kernels)",
        )
    # Stacked as dimension 1, the channels of the concatenation, regrouped.
    joined = recorder.row(call, "concat", {}, parts, None, op="stack")
    recorder.same(call.result, _Pending(joined, tuple(call.result.shape[1:]), len(parts)))


_TABLE: list[tuple[set[str], Handler]] = [
    ({f"{_F}conv{n}d" for n in (1, 2, 3)} | {f"{_F}conv_transpose{n}d" for n in (1, 2, 3)}, _conv),
    ({f"{_F}linear"}, _linear),
    ({f"{_F}batch_norm"}, _batch_norm),
    ({f"{_F}group_norm"}, _group_norm),
    ({f"{_F}instance_norm"}, _instance_norm),
    ({f"{_F}layer_norm"}, _layer_norm),
    ({f"{_F}prelu"}, _prelu),
    ({f"{_F}hardtanh", f"{_F}hardtanh_"}, _hardtanh),
    ({f"{_F}softmax", "torch.softmax", "torch.Tensor.softmax"}, _softmax),
    ({f"{_F}interpolate", f"{_F}upsample"}, _interpolate),
    ({f"{_F}pad"}, _pad),
    (_SAME, _same),
    (_RESHAPES, _reshape),
    (_PERMUTES, _permute),
    (_EXPANDS, _expand),
    (_SPLITS, _split),
    ({"torch.Tensor.__getitem__"}, _getitem),
    (_CAT, _cat),
    (_ADD | _MUL | _SUB | _DIV, _arithmetic),
    (_MEAN, _mean),
    ({"torch.sum", "torch.Tensor.sum"}, _sum),
    ({"torch.stack"}, _stack),
]
