"""A PyTorch module → a convcalc model, by tracing it with torch.fx.

`torch.fx.symbolic_trace` records what `forward` does as a graph of nodes: calls of
submodules, of functions (`torch.cat`, `F.relu`, `+`) and of tensor methods
(`x.flatten(1)`). Each node becomes a layer entry or a merge (`graph.Node`), which
`graph.to_layers` nests into the blocks of a model file, and the ordinary loader makes the
model. The torch.nn layers are read from the modules' attributes (`torch_modules`); on
the way every layer is applied to its input shape with convcalc's own arithmetic, which
resolves what depends on shapes (negative dimensions, `view(x.size(0), -1)`). A node
convcalc cannot follow is an error naming it and its target, never a silent identity.

torch is imported only here, and only when a module is imported. A module named on the
command line (`package.module:attribute`) is imported, made and traced in a child
process, under a time limit, so that whatever its code does ends in a message
(`read_reference`).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import importlib
import json
import math
import operator
import os
import re
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from convcalc.errors import ConvcalcError, Where
from convcalc.imports.graph import Node, graph_document
from convcalc.imports.torch_modules import MODULES, REQUIRED, Module, Parameters, bind, translate
from convcalc.model.layers import Shape, format_shape
from convcalc.model.params import describe

if TYPE_CHECKING:
    from convcalc.model.network import Model

__all__ = ["REFERENCE", "TRACE_TIMEOUT", "from_torch", "read_reference", "torch_document"]

INSTALL = (
    "pip install 'convcalc[torch]' (on these machines install torch==2.13.0 first: "
    "pip install torch==2.13.0; an unpinned torch pulls gigabytes)"
)

#: `package.module:attribute` on the command line: a module to import and trace.
REFERENCE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

#: Seconds that importing, making and tracing such a module may take (`--trace-timeout`),
#: since its code may loop forever; and that importing torch before it may take (a
#: second or two, far longer on a busy machine), which takes none of the module's time.
TRACE_TIMEOUT = 60.0


def _torch() -> Any:
    try:
        import torch
        import torch.fx
    except ImportError:
        raise ConvcalcError(f"importing PyTorch modules needs torch: {INSTALL}") from None
    return torch


def from_torch(module: Any, input_shape: Sequence[int]) -> Model:
    """The convcalc model of a `torch.nn.Module` traced with torch.fx, for an input of
    `input_shape` (channels first, without the batch: (3, 224, 224)). Needs
    `convcalc[torch]`. Raises `ConvcalcError` naming the node it cannot follow."""
    from convcalc.loader import build_model
    from convcalc.source import Document

    return build_model(Document(torch_document(module, input_shape)))


def torch_document(
    module: Any, input_shape: Sequence[int], label: str | None = None
) -> dict[str, Any]:
    """The model document (`{"name", "input", "layers"}`) of a traced module; `label`
    names where the module came from, in messages."""
    from convcalc.loader import check_shape

    torch = _torch()
    where = Where("", label)
    if not isinstance(module, torch.nn.Module):
        raise ConvcalcError(f"expected a torch.nn.Module, got {type(module).__name__}", where)
    try:
        shape = check_shape(list(input_shape))
    except ConvcalcError as error:
        raise ConvcalcError(error.message, Where("input_shape", label)) from None
    try:
        graph = _tracer(torch)().trace(module)
    # fx fails in many ways on code it cannot trace (control flow on the input, …).
    except Exception as error:
        raise ConvcalcError(
            f"torch.fx cannot trace {type(module).__name__}: {_first_line(error)}", where
        ) from None
    return _Translation(torch, module, label).document(graph, shape)


def read_reference(
    reference: str, input_shape: Shape | None, timeout: float | None = None
) -> dict[str, Any]:
    """The model document of `package.module:attribute`, a torch.nn.Module or a callable
    that returns one, imported with the current directory on the path.

    The module's code may do anything: exit, loop forever, crash. So it is imported,
    made and traced in a child process (`_apart`), killed after `timeout` seconds (None:
    TRACE_TIMEOUT) of the module's code, and each way it can end becomes a message."""
    where = Where("", reference)
    if input_shape is None:
        raise ConvcalcError(
            "a PyTorch module has no input shape of its own: give --input, such as 3x224x224",
            where,
        )
    seconds = TRACE_TIMEOUT if timeout is None else timeout
    return _apart(functools.partial(_import_and_trace, reference, input_shape), seconds, where)


def _import_and_trace(
    reference: str, input_shape: Shape, doing: Callable[[str], None]
) -> dict[str, Any]:
    """What `read_reference` does in the child; `doing` tells the parent each step, in
    the words of its messages ("while being imported")."""
    torch = _torch()
    where = Where("", reference)
    module_name, _, attribute = reference.partition(":")
    sys.path.insert(0, os.getcwd())
    doing("while being imported")
    try:
        found: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise ConvcalcError(
                f"no such file, and no Python module {missing!r} (looked in the current "
                "directory and on sys.path)",
                where,
            ) from None
        raise ConvcalcError(f"importing {module_name} failed: {error}", where) from None
    # The module's own code may fail in any way; the message is what matters.
    except Exception as error:
        raise ConvcalcError(
            f"importing {module_name} raised {type(error).__name__}: {_first_line(error)}", where
        ) from None
    doing(f"while {attribute} was looked up")
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ConvcalcError(f"{module_name} has no attribute {attribute!r}", where) from None
        except Exception as error:  # a module's __getattr__, a property
            raise ConvcalcError(
                f"looking up {attribute} raised {type(error).__name__}: {_first_line(error)}",
                where,
            ) from None
    if not isinstance(found, torch.nn.Module):
        if not callable(found):
            raise ConvcalcError(
                f"{attribute} is a {type(found).__name__}: expected a torch.nn.Module, or a "
                "callable that returns one",
                where,
            )
        doing(f"while {attribute}() was called")
        try:
            found = found()
        except Exception as error:
            raise ConvcalcError(
                f"calling {attribute}() raised {type(error).__name__}: {_first_line(error)}",
                where,
            ) from None
        if not isinstance(found, torch.nn.Module):
            raise ConvcalcError(
                f"{attribute}() returned a {type(found).__name__}, not a torch.nn.Module", where
            )
    doing("while being traced")
    return torch_document(found, input_shape, reference)


def _apart(
    work: Callable[[Callable[[str], None]], dict[str, Any]], timeout: float, where: Where
) -> dict[str, Any]:
    """`work(doing)` run in a forked child process, which sends back its plain result
    (JSON) through a pipe, or the error it raised: what the work does (exit, loop,
    crash, print) cannot reach convcalc itself. The child is killed once it has taken
    `timeout` seconds from its first step (`doing`), or TRACE_TIMEOUT to reach it (to
    import torch); how it ended, and the last step it had begun, make the message."""
    if not hasattr(os, "fork"):  # Windows: in this process, without a time limit
        return work(lambda step: None)
    for stream in (sys.stdout, sys.stderr):  # or the child would write their buffers again
        if stream is not None:
            stream.flush()
    reader, writer = os.pipe()
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        os.close(reader)
        _child(work, writer, parent)
    os.close(writer)
    try:
        data, status = _wait(child, reader, TRACE_TIMEOUT, timeout)
    finally:
        os.close(reader)
    step, began = "while torch was imported", False
    for line in data.split(b"\n")[:-1]:  # whole lines: the last is cut short, or empty
        message = json.loads(line)
        if "doing" in message:
            step, began = message["doing"], True
        if "document" in message:
            document: dict[str, Any] = message["document"]
            return document
        if "error" in message:
            raise ConvcalcError(
                message["error"], Where(**message["where"]) if message["where"] else None
            )
        if "exit" in message:
            raise ConvcalcError(f"the module called sys.exit({message['exit']}) {step}", where)
        if "raised" in message:
            raise ConvcalcError(f"the module raised {message['raised']} {step}", where)
        if "bug" in message:
            raise RuntimeError(f"convcalc failed {step} (the traceback above is the child's)")
    if status is None and not began:
        raise ConvcalcError(f"importing torch did not finish within {TRACE_TIMEOUT:g} s", where)
    if status is None:
        raise ConvcalcError(
            f"the module did not finish within {timeout:g} s {step} (does it loop forever?); "
            "give it more time with --trace-timeout SECONDS",
            where,
        )
    if os.WIFSIGNALED(status):
        killer = signal.Signals(os.WTERMSIG(status)).name
        raise ConvcalcError(f"the module's process was killed by {killer} {step}", where)
    raise ConvcalcError(
        f"the module called os._exit({os.waitstatus_to_exitcode(status)}) {step}", where
    )


def _wait(child: int, reader: int, first: float, then: float) -> tuple[bytes, int | None]:
    """What the child sent until it closed the pipe, and its wait status; None if it
    was still running `first` seconds before its first message, or `then` seconds
    after, when it is killed."""
    deadline = time.monotonic() + first
    data = bytearray()
    status = None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([reader], [], [], left)[0]:
                break
            chunk = os.read(reader, 1 << 16)
            if not chunk:  # closed: the child is ending
                break
            if b"\n" in chunk and b"\n" not in data:  # the first message
                deadline = time.monotonic() + then
            data += chunk
        while time.monotonic() < deadline:
            ended, code = os.waitpid(child, os.WNOHANG)
            if ended:
                status = code
                break
            time.sleep(0.01)
    finally:
        if status is None:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
    return bytes(data), status


def _child(
    work: Callable[[Callable[[str], None]], dict[str, Any]], writer: int, parent: int
) -> NoReturn:
    """The child's side of `_apart`: it never returns."""
    try:
        if sys.platform.startswith("linux"):
            # Die with the parent: it kills the child on a timeout, but if it is killed
            # itself (Ctrl-C, kill), the child would go on looping.
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)
        gc.enable()  # the command line turns it off for its own short run
        os.dup2(2, 1)  # what the module prints goes to standard error, not into convcalc's output
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)  # and it reads nothing
        with open(writer, "w", encoding="utf-8") as pipe:

            def send(message: dict[str, Any]) -> None:
                pipe.write(json.dumps(message) + "\n")
                pipe.flush()

            try:
                send({"document": work(lambda step: send({"doing": step}))})
            except ConvcalcError as error:
                where = dataclasses.asdict(error.where) if error.where is not None else None
                send({"error": error.message, "where": where})
            except SystemExit as exit:
                send({"exit": repr(exit.code) if exit.code is not None else ""})
            except Exception:
                # The module's own exceptions are messages already: this is a bug of
                # convcalc's, whose traceback goes to standard error (the parent's).
                traceback.print_exc()
                send({"bug": True})
            except BaseException as error:  # KeyboardInterrupt, raised by the module's code
                send({"raised": f"{type(error).__name__}: {_first_line(error)}"})
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    finally:
        os._exit(0)


def _has_tensor(value: Any) -> bool:
    if isinstance(value, _Tensor):
        return True
    if isinstance(value, tuple | list):
        return any(map(_has_tensor, value))
    if isinstance(value, dict):
        return any(map(_has_tensor, value.values()))
    return False


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _torch_type(torch: Any, module: Any) -> Module | None:
    """The torch.nn layer a module is: its type, or a subclass that overrides no method
    (so that it computes what its torch.nn base does)."""
    for index, cls in enumerate(type(module).__mro__):
        spec = MODULES.get(cls.__name__)
        if spec is not None and cls is getattr(torch.nn, cls.__name__, None):
            overrides = {
                name
                for base in type(module).__mro__[:index]
                for name, value in vars(base).items()
                if callable(value) and name not in ("__init__", "extra_repr")
            }
            return None if overrides else spec
    return None


@functools.cache
def _tracer(torch: Any) -> Any:
    class Tracer(torch.fx.Tracer):  # type: ignore[misc]
        """fx's tracer, with plain subclasses of the known layers kept whole too."""

        def is_leaf_module(self, module: Any, name: str) -> bool:
            return _torch_type(torch, module) is not None or bool(
                super().is_leaf_module(module, name)
            )

    return Tracer


@dataclass(frozen=True)
class _Tensor:
    """A tensor of the network: the value that holds it and its shape without the batch."""

    value: str
    shape: Shape


class _Batch:
    """The batch size, as `x.size(0)` gives it: known only to be the batch."""

    def __repr__(self) -> str:
        return "batch"


BATCH = _Batch()


@dataclass(frozen=True)
class _Layer:
    """A function or method that is a torch.nn layer in functional form: the module
    type, and its parameters after the input in the function's order."""

    module: str
    parameters: Parameters = ()


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
)
_FLATTEN = (("start_dim", 0), ("end_dim", -1))  # torch.flatten flattens the batch too

#: Functions (by qualified name) and tensor methods (".name") that are a layer.
_LAYERS: dict[str, _Layer] = {
    **dict.fromkeys(
        ("torch.relu", "torch.relu_", ".relu", ".relu_", "torch.nn.functional.relu_"),
        _Layer("ReLU"),
    ),
    "torch.nn.functional.relu": _Layer("ReLU", _INPLACE),
    "torch.nn.functional.relu6": _Layer("ReLU6", _INPLACE),
    "torch.nn.functional.leaky_relu": _Layer("LeakyReLU", (("negative_slope", 0.01), *_INPLACE)),
    "torch.nn.functional.leaky_relu_": _Layer("LeakyReLU", (("negative_slope", 0.01),)),
    "torch.nn.functional.gelu": _Layer("GELU", (("approximate", "none"),)),
    "torch.nn.functional.silu": _Layer("SiLU", _INPLACE),
    "torch.nn.functional.hardswish": _Layer("Hardswish", _INPLACE),
    **dict.fromkeys(
        ("torch.sigmoid", "torch.sigmoid_", "torch.nn.functional.sigmoid", ".sigmoid", ".sigmoid_"),
        _Layer("Sigmoid"),
    ),
    **dict.fromkeys(
        ("torch.tanh", "torch.tanh_", "torch.nn.functional.tanh", ".tanh", ".tanh_"),
        _Layer("Tanh"),
    ),
    "torch.nn.functional.softmax": _Layer(
        "Softmax", (("dim", None), ("_stacklevel", 3), ("dtype", None))
    ),
    **dict.fromkeys(
        ("torch.softmax", ".softmax"), _Layer("Softmax", (("dim", REQUIRED), ("dtype", None)))
    ),
    "torch.nn.functional.dropout": _Layer("Dropout", _DROPOUT),
    "torch.nn.functional.interpolate": _Layer(
        "Upsample",
        (
            ("size", None),
            ("scale_factor", None),
            ("mode", "nearest"),
            ("align_corners", None),
            ("recompute_scale_factor", None),
            ("antialias", False),
        ),
    ),
    **dict.fromkeys(("torch.flatten", ".flatten"), _Layer("Flatten", _FLATTEN)),
    **{
        name: layer
        for n in (1, 2, 3)
        for name, layer in {
            f"torch.nn.functional.dropout{n}d": _Layer(f"Dropout{n}d", _DROPOUT),
            f"torch.nn.functional.adaptive_avg_pool{n}d": _Layer(
                f"AdaptiveAvgPool{n}d", (("output_size", REQUIRED),)
            ),
            f"torch.nn.functional.adaptive_max_pool{n}d": _Layer(
                f"AdaptiveMaxPool{n}d", (("output_size", REQUIRED), ("return_indices", False))
            ),
            f"torch.nn.functional.max_pool{n}d": _Layer(f"MaxPool{n}d", _MAX_POOL),
            f"torch.nn.functional.avg_pool{n}d": _Layer(
                f"AvgPool{n}d", _AVG_POOL if n == 1 else (*_AVG_POOL, ("divisor_override", None))
            ),
        }.items()
    },
}

#: Arguments of the functional forms with no bearing on shapes or parameters.
_IGNORED = {"training", "_stacklevel", "dtype"}

_ADD = {"operator.add", "operator.iadd", "torch.add", ".add", ".add_"}
_CAT = {"torch.cat", "torch.concat", "torch.concatenate"}
_RESHAPE = {".view", ".reshape", "torch.reshape"}
_MEAN = {"torch.mean", ".mean"}
_SHAPE = {".size", ".dim", "builtins.getattr"}
#: Arithmetic on sizes (`c * h * w`), and reading them (`x.shape[2:]`).
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "operator.add": operator.add,
    "operator.sub": operator.sub,
    "operator.mul": operator.mul,
    "operator.floordiv": operator.floordiv,
    "operator.getitem": operator.getitem,
}


@functools.cache
def _functions(torch: Any) -> dict[Any, str]:
    """The functions of the tables above by identity, to their names there (the same
    function has several names, and some report a private one: torch._C._nn.gelu)."""
    found: dict[Any, str] = {}
    for name in (*_LAYERS, *_ADD, *_CAT, *_RESHAPE, *_MEAN, *_SHAPE, *_ARITHMETIC):
        if name.startswith("."):
            continue  # a tensor method, known by its name
        module, _, attribute = name.rpartition(".")
        function = getattr(importlib.import_module(module), attribute, None)
        if function is not None:
            found.setdefault(function, name)
    return found


_FOLLOWS = (
    "convcalc follows the torch.nn layers (Conv2d, BatchNorm2d, …) called as modules, "
    "+ / torch.add, torch.cat on the channels, flatten and view/reshape to (batch, -1), "
    "mean over the spatial axes, and the functional forms of the layers (F.relu, "
    "F.max_pool2d, F.adaptive_avg_pool2d, F.interpolate, …)"
)


class _Translation:
    """One traced graph → graph nodes, with every value's shape (or Python value)."""

    def __init__(self, torch: Any, root: Any, label: str | None) -> None:
        self.torch = torch
        self.root = root
        self.label = label
        self.values: dict[str, Any] = {}  # fx node name → _Tensor, or a Python value
        self.nodes: list[Node] = []
        self.calls: dict[str, int] = {}  # how often each name was given

    def fail(self, node: Any, message: str) -> ConvcalcError:
        return ConvcalcError(
            message, Where(f"node {node.name!r} ({self.target(node)})", self.label)
        )

    def target(self, node: Any) -> str:
        if node.op == "call_module":
            return f"{node.target}: {type(self.root.get_submodule(node.target)).__name__}"
        if node.op in ("call_method", "call_function"):
            return self.key(node)
        return "return" if node.op == "output" else f"{node.op} {node.target}"

    def key(self, node: Any) -> str:
        """A call's name in the tables (`.flatten` for a method), or else its own."""
        if node.op == "call_method":
            return "." + str(node.target)
        known = _functions(self.torch).get(node.target)
        if known is not None:
            return known
        module = getattr(node.target, "__module__", None) or "torch"
        return f"{module}.{getattr(node.target, '__name__', repr(node.target))}"

    def document(self, graph: Any, shape: Shape) -> dict[str, Any]:
        source = None
        result = None
        for node in graph.nodes:
            if node.op == "placeholder":
                if source is None:
                    source = node.name
                    self.values[node.name] = _Tensor(node.name, shape)
                elif node.users or not node.args:
                    raise self.fail(
                        node,
                        f"forward takes a second input, {node.target!r}; convcalc follows a "
                        "network with one input",
                    )
            elif node.op == "output":
                result = self.output(node)
            elif node.op == "get_attr":
                if node.users:
                    raise self.fail(
                        node,
                        f"reads the parameter or buffer {node.target!r} itself (as F.conv2d(x, "
                        "self.weight) does); convcalc follows torch.nn layers called as modules",
                    )
            else:
                self.values[node.name] = self.call(node)
        if source is None or result is None:
            raise ConvcalcError("forward takes no input", Where("", self.label))
        try:
            graph = graph_document(self.nodes, source, [result.value])
        except ConvcalcError as error:
            raise error.at(Where("", self.label)) from None
        return {"name": type(self.root).__name__, "input": list(shape), **graph}

    def output(self, node: Any) -> _Tensor:
        (value,) = node.args
        if not isinstance(value, self.torch.fx.Node):
            raise self.fail(
                node,
                f"forward returns {type(value).__name__}; convcalc follows a network with one "
                "output tensor",
            )
        found = self.values[value.name]
        if not isinstance(found, _Tensor):
            raise self.fail(node, f"forward returns {describe(found)}, not a tensor")
        return found

    # -- values ------------------------------------------------------------------------

    def resolve(self, argument: Any) -> Any:
        """An argument with the values of the nodes it names (tuples and lists kept)."""
        if isinstance(argument, self.torch.fx.Node):
            return self.values[argument.name]
        if isinstance(argument, tuple | list):
            return type(argument)(self.resolve(item) for item in argument)
        if isinstance(argument, dict):
            return {key: self.resolve(item) for key, item in argument.items()}
        return argument

    def tensor(self, node: Any, value: Any, what: str = "its input") -> _Tensor:
        if not isinstance(value, _Tensor):
            raise self.fail(node, f"expected {what} to be a tensor, got {describe(value)}")
        return value

    def literal(self, node: Any, value: Any) -> Any:
        """An argument that must be a plain value (sizes read from a shape are)."""
        if isinstance(value, _Tensor):
            raise self.fail(node, "takes a second tensor; convcalc follows layers of one input")
        if value is BATCH or (isinstance(value, tuple | list) and any(v is BATCH for v in value)):
            raise self.fail(node, "uses the batch size, which convcalc leaves open")
        return value

    def add(self, node: Any, entry: Any, inputs: tuple[str, ...], output: str) -> None:
        """A graph node, named as print(model) names its module (`layer1.0.conv1`); a call
        of a function by its fx name within the module that calls it (`layer1.0.add`)."""
        if node.op == "call_module":
            name = node.target
        else:
            # fx's record of the modules whose forward made the call, outermost first.
            stack = list((node.meta.get("nn_module_stack") or {}).items())
            path = stack[-1][1][0] if stack and isinstance(stack[-1][1], tuple) else ""
            name = f"{path}.{node.name}" if path else node.name
        # A module called twice (ResNet's one `relu`) names its second call `relu_1`, as
        # torch.fx names repeated calls: qualified names are unique (SPEC §6.1).
        calls = self.calls.get(name, 0)
        self.calls[name] = calls + 1
        self.nodes.append(Node(f"{name}_{calls}" if calls else name, entry, inputs, output))

    # -- nodes -------------------------------------------------------------------------

    def call(self, node: Any) -> Any:
        args = [self.resolve(argument) for argument in node.args]
        kwargs = {key: self.resolve(value) for key, value in node.kwargs.items()}
        if node.op == "call_module":
            return self.module(node, args, kwargs)
        key = self.key(node)
        if not _has_tensor([args, kwargs]):
            return self.sizes(node, key, args, kwargs)
        if key in _LAYERS:
            return self.function(node, _LAYERS[key], args, kwargs)
        if key in _ADD:
            return self.merge_add(node, args, kwargs)
        if key in _CAT:
            return self.concat(node, args, kwargs)
        if key in _RESHAPE:
            return self.reshape(node, args, kwargs)
        if key in _MEAN:
            return self.mean(node, args, kwargs)
        if key in _SHAPE and (key != "builtins.getattr" or args[1:] == ["shape"]):
            return self.shape_of(node, key, args)
        raise self.fail(node, f"convcalc cannot follow this operation; {_FOLLOWS}")

    def module(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Tensor:
        module = self.root.get_submodule(node.target)
        spec = _torch_type(self.torch, module)
        if spec is None:
            raise self.fail(
                node,
                f"convcalc does not follow the module {type(module).__name__}; it follows "
                + ", ".join(sorted(MODULES)),
            )
        if len(args) != 1 or kwargs:
            raise self.fail(node, "expected the module to be called on one tensor alone")
        attributes = {}
        for name in spec.names():
            if name in ("device", "dtype"):
                continue
            # A learnable bias is a parameter or None; the constructor's flag is not kept.
            attributes[name] = module.bias is not None if name == "bias" else getattr(module, name)
        arguments = bind(spec, (), attributes)
        return self.layer(node, spec, arguments, self.tensor(node, args[0]))

    def layer(self, node: Any, spec: Module, arguments: dict[str, Any], x: _Tensor) -> _Tensor:
        """Apply a torch.nn layer to `x`: a node, and the shape it gives."""
        from convcalc.loader import build_layer

        try:
            kind, params = translate(spec, arguments, x.shape)
            shape = build_layer(kind, params, lambda name: Where(name or "")).apply(x.shape)
        except ConvcalcError as error:
            where = error.where.path if error.where is not None else ""
            raise self.fail(node, f"{where}: {error.message}" if where else error.message) from None
        self.add(node, {kind: params}, (x.value,), node.name)
        return _Tensor(node.name, shape.output_shape)

    def function(
        self, node: Any, layer: _Layer, args: list[Any], kwargs: dict[str, Any]
    ) -> _Tensor:
        spec = MODULES[layer.module]
        if "input" in kwargs:
            args = [kwargs.pop("input"), *args]
        x = self.tensor(node, args[0] if args else None)
        rest = [self.literal(node, value) for value in args[1:]]
        keywords = {key: self.literal(node, value) for key, value in kwargs.items()}
        try:
            arguments = bind(spec, rest, keywords, layer.parameters)
        except ConvcalcError as error:
            raise self.fail(node, error.message) from None
        own = spec.names()
        for name, default in layer.parameters:
            if name not in own and name not in _IGNORED and arguments[name] != default:
                raise self.fail(
                    node, f"{name}={describe(arguments[name])} has no convcalc equivalent"
                )
        return self.layer(node, spec, arguments, x)

    def merge_add(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Tensor:
        # torch.add's alpha scales the second operand: values, not shapes.
        operands = [*args, kwargs.get("other")] if "other" in kwargs else args
        if len(operands) != 2 or not all(isinstance(value, _Tensor) for value in operands):
            raise self.fail(
                node,
                "adds something other than two tensors (a constant, a parameter); convcalc's "
                "add sums two tensors of the same shape",
            )
        first, second = operands
        if first.shape != second.shape:
            raise self.fail(
                node,
                f"adds tensors of shapes {format_shape(first.shape)} and "
                f"{format_shape(second.shape)}; convcalc's add takes the same shape (no "
                "broadcasting)",
            )
        self.add(node, "add", (first.value, second.value), node.name)
        return _Tensor(node.name, first.shape)

    def concat(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Tensor:
        tensors = args[0] if args else kwargs.get("tensors", ())
        dim = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis", 0))
        if not isinstance(tensors, tuple | list) or not tensors:
            raise self.fail(node, "expected a list of tensors to concatenate")
        parts = [self.tensor(node, value, "every part") for value in tensors]
        rank = len(parts[0].shape) + 1
        if not isinstance(dim, int) or dim % rank != 1 or not -rank <= dim < rank:
            raise self.fail(
                node,
                f"concatenates along dimension {describe(dim)} of {rank} (batch first); "
                "convcalc's concat joins the channels (dim=1)",
            )
        spatial = {part.shape[1:] for part in parts}
        if len(spatial) > 1 or len({len(part.shape) for part in parts}) > 1:
            shapes = ", ".join(format_shape(part.shape) for part in parts)
            raise self.fail(node, f"concatenates tensors of shapes {shapes}: sizes differ")
        shape = (sum(part.shape[0] for part in parts), *parts[0].shape[1:])
        if len(parts) == 1:
            raise self.fail(node, "concatenates one tensor; convcalc's concat joins two or more")
        self.add(node, "concat", tuple(part.value for part in parts), node.name)
        return _Tensor(node.name, shape)

    def reshape(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Tensor:
        x = self.tensor(node, args[0])
        sizes = args[1:] or [kwargs.get("shape", kwargs.get("size", ()))]
        if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
            sizes = list(sizes[0])
        flat = math.prod(x.shape)
        if sizes not in ([BATCH, -1], [BATCH, flat], [-1, flat]):
            shown = ", ".join("batch" if s is BATCH else describe(s) for s in sizes)
            raise self.fail(
                node,
                f"reshapes {format_shape(x.shape)} (after the batch) to ({shown}); convcalc "
                "follows a reshape only to (batch, -1), a flatten",
            )
        return self.layer(node, MODULES["Flatten"], bind(MODULES["Flatten"], (), {}), x)

    def mean(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Tensor:
        x = self.tensor(node, args[0] if args else kwargs.get("input"))
        dims = args[1] if len(args) > 1 else kwargs.get("dim")
        keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        rank = len(x.shape) + 1
        axes = dims if isinstance(dims, tuple | list) else (dims,)
        if (
            rank < 3
            or not all(isinstance(a, int) and -rank <= a < rank for a in axes)
            or {a % rank for a in axes} != set(range(2, rank))
        ):
            raise self.fail(
                node,
                f"takes the mean over dimensions {describe(dims)} of {rank} (batch first); "
                "convcalc follows a mean over every spatial axis (a global average pooling)",
            )
        # A global average pooling, then (unless the axes are kept) a flatten.
        pooled = node.name if keepdim else node.name + ":pool"
        self.add(node, {"adaptive_avg_pool": {"output_size": 1}}, (x.value,), pooled)
        if keepdim:
            return _Tensor(pooled, (x.shape[0], *[1] * (rank - 2)))
        self.add(node, {"flatten": {}}, (pooled,), node.name)
        return _Tensor(node.name, (x.shape[0],))

    def shape_of(self, node: Any, key: str, args: list[Any]) -> Any:
        """`x.size()`, `x.size(i)`, `x.shape`, `x.dim()`: the batch first, then the shape."""
        x = self.tensor(node, args[0])
        sizes = (BATCH, *x.shape)
        if key == ".dim":
            return len(sizes)
        if key == ".size" and len(args) > 1:
            index = args[1]
            if not isinstance(index, int) or not -len(sizes) <= index < len(sizes):
                raise self.fail(
                    node, f"expected a dimension of {len(sizes)}, got {describe(index)}"
                )
            return sizes[index]
        return sizes

    def sizes(self, node: Any, key: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Arithmetic on sizes and reading them, on plain values only."""
        function = _ARITHMETIC.get(key)
        if function is None or kwargs or len(args) != 2:
            raise self.fail(node, f"convcalc cannot follow this operation; {_FOLLOWS}")
        first, second = args
        if key == "operator.getitem":
            if not isinstance(first, tuple) or not isinstance(second, int | slice):
                raise self.fail(node, f"convcalc cannot follow this operation; {_FOLLOWS}")
            return first[second]
        if any(v is BATCH for v in args) or not all(isinstance(v, int) for v in args):
            raise self.fail(
                node, "computes with the batch size or non-integers, which convcalc leaves open"
            )
        return function(first, second)
