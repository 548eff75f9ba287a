"""Compare a bundled model (or any convcalc analysis) with the PyTorch module it
describes: parameters, every module call's output shape and multiply-accumulates, and
receptive fields and global context measured by gradients.

The module is the real one (torchvision's or timm's; where a package cannot be
installed, a transcription of its published source, kept beside the test that uses it),
never a copy of the bundled model. Build it on the meta device: nothing here reads its
weights.

Calls. Shapes and MACs come from forward hooks on every submodule, keyed by the name of
the call, which the bundled model's rows carry (SPEC §6.1): a module's qualified name
for its first call and, for a module called more than once (ResNet's one `relu`),
`relu_1`, `relu_2` for the later ones, as torch.fx and convcalc's importer name them.

Fields. `linear_twin` copies the module with positive weights (1 / the fan-in, so that
values stay near 1 however deep) and no bias; `measure` runs the copy under a torch
function mode that makes every call linear and positive, whether a layer is a module or
a functional call: max pools average the same window, norms, activations, dropout and a
softmax over the channels are identities, sigmoid-like gates keep their positive value.
The gradient of one output unit is then nonzero exactly on the input positions it sees.
Every call that reads its whole input at once, as convcalc sees it (an adaptive pooling
to 1, a mean over every spatial axis, or a flattening of spatial axes), hands its output
on as a new leaf: the gradient with respect to the input stops there (the local field,
SPEC §6.5), and the gradient with respect to the leaf tells whether the unit reads that
summary, which is global context if the summary itself sees every input position.
Gradients are cut back to 0 or 1 after every call, so that neither deep products of
weights nor long chains of averages leave float32's range.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import torch
from torch import nn
from torch.nn import functional
from torch.overrides import TorchFunctionMode

from convcalc.analysis.analyze import Analysis

__all__ = [
    "Seen",
    "Twin",
    "call_of",
    "check_fields",
    "check_module",
    "extent",
    "linear_twin",
    "measure",
    "module_macs",
    "module_shapes",
    "sample",
    "units",
]

_T = TypeVar("_T")
Unit = tuple[int, ...]
Span = tuple[int, int] | None


# --- Calls: names, shapes, multiply-accumulates ---------------------------------------


def call_of(module: nn.Module, name: str) -> tuple[str, int]:
    """The submodule and the call (0 for the first) that a call name stands for:
    `layer1.0.relu_1` is the second call of `layer1.0.relu` (unless a submodule bears
    that name itself)."""
    repeated = re.fullmatch(r"(.+)_([1-9][0-9]*)", name)
    if repeated and name not in dict(module.named_modules()):
        return repeated[1], int(repeated[2])
    return name, 0


def _calls(
    module: nn.Module,
    input_shape: tuple[int, ...],
    measure: Callable[[nn.Module, torch.Tensor, torch.Tensor], _T],
    *,
    auxiliary: bool = False,
) -> dict[str, _T]:
    """`measure(submodule, its input, its output)` of every call of a submodule that
    reads and returns a tensor, by call name, in one forward pass on the meta device (no
    memory, no arithmetic): the module is moved there. `auxiliary`: with the heads the
    module runs only in training (see `_with_auxiliary`)."""
    measured: dict[str, _T] = {}
    calls: dict[str, int] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(sub: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            call = calls[name] = calls.get(name, -1) + 1
            if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
                measured[f"{name}_{call}" if call else name] = measure(sub, inputs[0], output)

        return record

    module = module.to("meta").eval()
    if auxiliary:
        _with_auxiliary(module)
    handles = [
        sub.register_forward_hook(hook(name)) for name, sub in module.named_modules() if name
    ]
    try:
        with torch.no_grad():
            module(torch.zeros(1, *input_shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return measured


def _with_auxiliary(module: nn.Module) -> None:
    """The root module in training mode, every submodule in eval mode: the root's forward
    then runs the heads it runs only in training (Inception's AuxLogits), while its
    layers behave as at inference."""
    module.training = True


def module_macs(module: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """The multiply-accumulates of every call of a convolution or linear layer as torch
    ran it (batch 1; SPEC §3's convention), by call name, on the meta device (the module
    is moved there)."""
    return {
        name: macs for name, macs in _calls(module, input_shape, _macs).items() if macs is not None
    }


def module_shapes(module: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch) of every call of a submodule, by call name,
    on the meta device (the module is moved there)."""
    return _calls(module, input_shape, lambda _, __, output: tuple(output.shape[1:]))


def _macs(sub: nn.Module, x: torch.Tensor, output: torch.Tensor) -> int | None:
    if isinstance(sub, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        return x.numel() * sub.out_channels // sub.groups * math.prod(sub.kernel_size)
    if isinstance(sub, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return output.numel() * sub.in_channels // sub.groups * math.prod(sub.kernel_size)
    if isinstance(sub, nn.Linear):
        return output.numel() * sub.in_features
    return None


class _Call(NamedTuple):
    layer: bool  # a module without submodules
    identity: bool  # its output is its input (stochastic depth at inference)
    shape: tuple[int, ...]
    macs: int | None


def check_module(
    analysis: Analysis, module: nn.Module, input_shape: tuple[int, ...], *, auxiliary: bool = False
) -> None:
    """convcalc's params are `sum(p.numel())`; every call of a layer (a module without
    submodules) is a row of its call name, unless its output is its input; every row
    named like a call has the call's output shape and, for a convolution or a linear
    layer, the multiply-accumulates torch ran, and those are all of convcalc's; every row
    with parameters is named like a call. The module is moved to the meta device;
    `auxiliary` as for `_calls`."""
    assert analysis.totals.params == sum(p.numel() for p in module.parameters())

    def describe(sub: nn.Module, x: torch.Tensor, output: torch.Tensor) -> _Call:
        leaf = not any(sub.children())
        return _Call(leaf, output is x, tuple(output.shape[1:]), _macs(sub, x, output))

    calls = _calls(module, input_shape, describe, auxiliary=auxiliary)
    rows = {row.qualified_name: row for row in analysis.rows}
    missing = [name for name, call in calls.items() if call.layer and not call.identity]
    assert sorted(set(missing) - rows.keys()) == []
    for name, call in calls.items():
        if name in rows:
            assert rows[name].output_shape == call.shape, name
            if call.macs is not None:
                assert rows[name].macs == call.macs, name
    assert analysis.totals.macs == sum(call.macs or 0 for call in calls.values())
    unnamed = [name for name, row in rows.items() if row.params and name not in calls]
    assert unnamed == [], "rows with parameters but no module"


# --- Fields: the linear twin and what its units see -----------------------------------


@dataclass(frozen=True)
class Twin:
    """A module made linear and positive (see `linear_twin`), for `measure`."""

    module: nn.Module
    thin: bool


def linear_twin(module: nn.Module, *, thin: bool = False, auxiliary: bool = False) -> Twin:
    """A CPU copy of `module` (which may be on the meta device) with every floating
    parameter and buffer 1 (a frozen batch norm scales by about 1), every convolution's
    and linear layer's weight 1 / its fan-in and no bias, in eval mode (`auxiliary` as
    for `_calls`).

    `thin`: every convolution and linear layer instead reads the sum of its input's
    channels (features) and makes one, with the same geometry: the same fields for a
    fraction of the work, for networks whose channels meet only in such layers and in
    element-wise merges and concatenations (no channel slicing or shuffling). Its
    weights are then never made."""
    twin = copy.deepcopy(module).eval()
    if auxiliary:
        _with_auxiliary(twin)
    for sub in twin.modules():
        if thin and isinstance(sub, _WEIGHTED):
            continue
        sub.to_empty(device="cpu", recurse=False)
        with torch.no_grad():
            for tensor in (*sub.parameters(recurse=False), *sub.buffers(recurse=False)):
                if tensor.is_floating_point():
                    tensor.fill_(1)
            if isinstance(sub, _WEIGHTED):
                sub.weight.div_(sub.weight[0].numel())
                if sub.bias is not None:
                    sub.bias.zero_()
    # Only the input's gradient is measured.
    return Twin(twin.requires_grad_(False), thin)


_WEIGHTED = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
    nn.ConvTranspose3d, nn.Linear,
)  # fmt: skip

# Functions that keep each position's value or mix only channels: in the twin, identities.
_IDENTITIES = frozenset({
    functional.batch_norm, functional.group_norm, functional.layer_norm,
    functional.instance_norm, functional.relu, functional.relu6, functional.hardtanh,
    functional.leaky_relu, functional.gelu, functional.silu, functional.hardswish,
    functional.elu, functional.mish, functional.dropout, functional.dropout1d,
    functional.dropout2d, functional.dropout3d, torch.relu, torch.relu_, torch.tanh,
})  # fmt: skip

_AVERAGES = {
    functional.max_pool1d: functional.avg_pool1d,
    functional.max_pool2d: functional.avg_pool2d,
    functional.max_pool3d: functional.avg_pool3d,
}

_ADAPTIVE = {
    functional.adaptive_max_pool1d: functional.adaptive_avg_pool1d,
    functional.adaptive_max_pool2d: functional.adaptive_avg_pool2d,
    functional.adaptive_max_pool3d: functional.adaptive_avg_pool3d,
    functional.adaptive_avg_pool1d: functional.adaptive_avg_pool1d,
    functional.adaptive_avg_pool2d: functional.adaptive_avg_pool2d,
    functional.adaptive_avg_pool3d: functional.adaptive_avg_pool3d,
}

# Means: one over every spatial axis is a global pooling (timm's squeeze-and-excitation
# gates, ShuffleNetV2's and MNASNet's heads).
_MEANS = frozenset({torch.mean, torch.Tensor.mean})

# Reshapes: one that makes a tensor with spatial axes flat reads its whole input at once.
_FLATTENS = frozenset({
    torch.flatten, torch.reshape, torch.Tensor.flatten, torch.Tensor.reshape, torch.Tensor.view,
})  # fmt: skip

_THINNED = frozenset({
    functional.conv1d, functional.conv2d, functional.conv3d, functional.conv_transpose1d,
    functional.conv_transpose2d, functional.conv_transpose3d, functional.linear,
})  # fmt: skip


class _Linear(TorchFunctionMode):
    """Every torch function the twin calls, made linear and positive (see the module's
    docstring), its output's gradient cut back to 0 or 1; `held` gathers the outputs of
    the calls that read their whole input and the leaves handed on in their place."""

    def __init__(self, thin: bool) -> None:
        super().__init__()
        self.thin = thin
        self.held: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func in _IDENTITIES or (func is functional.softmax and _dim(args, kwargs) == 1):
            return args[0] if args else kwargs["input"]
        if func in _AVERAGES:
            output = _average(_AVERAGES[func], *args, **kwargs)
        elif func in _ADAPTIVE:
            output = _ADAPTIVE[func](*args, **kwargs)
            if all(size == 1 for size in output.shape[2:]):  # a global pooling
                output = self._hold(output)
        elif func in _MEANS:
            output = func(*args, **kwargs)
            if _spatial(args, kwargs):
                output = self._hold(output)
        elif func in _FLATTENS:
            output = func(*args, **kwargs)
            if args[0].dim() > 2 and output.dim() == 2:
                output = self._hold(output)
        elif self.thin and func in _THINNED:
            output = _thinned(func, *args, **kwargs)
        else:
            output = func(*args, **kwargs)
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(_support)  # type: ignore[no-untyped-call]
        return output

    def _hold(self, output: torch.Tensor) -> torch.Tensor:
        leaf = output.detach().requires_grad_()
        self.held.append((output, leaf))
        return leaf


def _spatial(args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Whether `torch.mean(input, dim, ...)` reduces every spatial axis of its input (all
    but the first two), and those alone."""
    input, dim = args[0], _dim(args, kwargs)
    if input.dim() <= 2 or dim is None:
        return False
    dims = {d % input.dim() for d in ((dim,) if isinstance(dim, int) else dim)}
    return dims == set(range(2, input.dim()))


def _dim(args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """The `dim` of `functional.softmax(input, dim, ...)` or `torch.mean(input, dim, ...)`."""
    return args[1] if len(args) > 1 else kwargs.get("dim")


def _average(
    pool: Callable[..., torch.Tensor],
    input: torch.Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> torch.Tensor:
    """A max pool's window, averaged (padding counted, so that every position of the
    window weighs), which is positive wherever the max pool may look."""
    if dilation not in (1, (1,), (1, 1), (1, 1, 1)) or return_indices:
        raise NotImplementedError("the twin averages max pools without dilation or indices")
    return pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad=True)


def _thinned(
    func: Callable[..., torch.Tensor],
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *geometry: Any,
    **named: Any,
) -> torch.Tensor:
    """A convolution (`functional.conv2d(input, weight, bias, stride, padding, dilation,
    groups)`, or a transposed one, whose 4th argument after the bias is `groups` too) or
    a linear layer, of one input and one output channel, reading the sum of `input`'s
    channels with an averaging kernel of the same size."""
    kernel = input.new_full((1, 1, *weight.shape[2:]), 1 / math.prod(weight.shape[2:]))
    geometry = tuple(1 if k == 3 else value for k, value in enumerate(geometry))
    named = {key: 1 if key == "groups" else value for key, value in named.items()}
    summed = input.sum(-1 if func is functional.linear else 1, keepdim=True)
    return func(summed, kernel, None, *geometry, **named)


def _support(gradient: torch.Tensor) -> torch.Tensor:
    """1 where the gradient is nonzero, else 0: only where it is nonzero matters, and 0
    or 1 stays in range however deep the network."""
    return gradient.ne(0).to(gradient.dtype)


class Seen(NamedTuple):
    """What one output unit of the twin sees: per input position (spatial axes only),
    whether its gradient is nonzero with every summary of the whole input held constant
    (the local field); and whether it also reads such a summary (global context)."""

    local: torch.Tensor
    global_context: bool


class _Reached(Exception):
    """Raised by a hook once every call asked about has run: the rest of the forward
    pass is not needed."""


def measure(
    twin: Twin, input_shape: tuple[int, ...], requests: Sequence[tuple[str, Unit]]
) -> list[Seen]:
    """What each requested unit sees. A request (name, unit) is the unit at spatial
    index `unit`, all its channels summed, of the output of a submodule's call (named
    as `call_of` reads it; "" is the module itself), or else of the module's output
    `name` (a key of the dict it returns: DeepLabV3's `out`).

    One forward and one backward pass, each request on its own sample of the batch (the
    twin mixes no samples), the input all ones (so that a gate's product passes the
    gradient to both its factors). When every name is a call's, the forward pass stops
    once they have all run, so that early rows can be measured on inputs too large for a
    whole pass; each unit is read as its call returns, so that nothing later changes it
    in place."""
    modules = dict(twin.module.named_modules())
    wanted: dict[str, dict[int, list[int]]] = {}  # submodule → call → requests (samples)
    keyed: list[int] = []  # requests read from the module's result
    for k, (name, _) in enumerate(requests):
        module, call = call_of(twin.module, name)
        if module in modules:
            wanted.setdefault(module, {}).setdefault(call, []).append(k)
        else:
            keyed.append(k)
    remaining = sum(len(calls) for calls in wanted.values())
    values: list[torch.Tensor] = []

    def read(output: torch.Tensor, k: int) -> torch.Tensor:
        index: tuple[Any, ...] = (k, slice(None), *requests[k][1])
        return output[index].sum()

    def hook(module: str) -> Callable[..., None]:
        calls = itertools.count()

        def capture(_: nn.Module, __: Any, output: torch.Tensor) -> None:
            nonlocal remaining
            probes = wanted[module].get(next(calls), [])
            values.extend(read(output, k) for k in probes)
            remaining -= bool(probes)
            if remaining == 0 and not keyed:
                raise _Reached

        return capture

    mode = _Linear(twin.thin)
    x = torch.ones(len(requests), *input_shape, requires_grad=True)
    handles = [modules[name].register_forward_hook(hook(name)) for name in wanted]
    try:
        with mode:
            result = twin.module(x)
        values.extend(read(result[requests[k][0]], k) for k in keyed)
    except _Reached:
        pass
    finally:
        for handle in handles:
            handle.remove()
    assert remaining == 0, "a call asked about never ran"
    leaves = [leaf for _, leaf in mode.held]
    local, *through = _gradients(torch.stack(values).sum(), [x, *leaves])
    # A summary is global if its own (local) field is every input position, or if it
    # reads an earlier global summary (a global pooling, then a flattening).
    reads_global = torch.zeros(len(requests), dtype=torch.bool)
    summaries: list[bool] = []
    for k, ((summary, _), grad) in enumerate(zip(mode.held, through, strict=True)):
        seen, *earlier = _gradients(summary[0].sum(), [x, *leaves[:k]])
        summaries.append(
            (seen is not None and bool(seen[0].ne(0).any(0).all()))
            or any(g is not None and bool(g.any()) and summaries[j] for j, g in enumerate(earlier))
        )
        if grad is not None and summaries[k]:
            reads_global |= grad.ne(0).flatten(1).any(1)
    sees = (local if local is not None else torch.zeros_like(x)).ne(0).any(1)
    return [Seen(sees[k], bool(reads_global[k])) for k in range(len(requests))]


def _gradients(value: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor | None]:
    return list(torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True))


def extent(seen: torch.Tensor) -> list[Span]:
    """Per axis, the first and last position where `seen` is true, or None if none is."""
    found: list[Span] = []
    for axis in range(seen.dim()):
        others = tuple(a for a in range(seen.dim()) if a != axis)
        along = seen.any(dim=others) if others else seen
        where = along.nonzero().flatten().tolist()
        found.append((where[0], where[-1]) if where else None)
    return found


def check_fields(
    analysis: Analysis, twin: Twin, probes: Sequence[tuple[str, Unit]]
) -> set[tuple[str, int]]:
    """Each probe (name, unit) is a unit of a row of `analysis` (by qualified name) or
    else of one of its outputs: the first and last input position per axis that
    convcalc's field gives it are what the twin's gradients show (`measure`), and so is
    its global context. Returns the (name, axis) pairs where a probed unit's whole field
    lay inside the input."""
    known = {output.name: (output.fields, output.global_context) for output in analysis.outputs}
    known |= {row.qualified_name: (row.fields, row.global_context) for row in analysis.rows}
    sizes = analysis.input_shape[1:]
    whole = set()
    for (name, unit), seen in zip(probes, measure(twin, analysis.input_shape, probes), strict=True):
        fields, global_context = known[name]
        assert seen.global_context == global_context, (name, unit)
        if fields is None:  # a flat row, all of whose input is read through a summary
            assert not bool(seen.local.any()), (name, unit)
            continue
        spans = extent(seen.local)
        for axis, (field, span, y, size) in enumerate(zip(fields, spans, unit, sizes, strict=True)):
            if _compare(span, field.seen(y), size, (name, unit, axis)):
                whole.add((name, axis))
    return whole


def _compare(span: Span, seen: Span, size: int, where: object) -> bool:
    """A span measured by gradients against convcalc's field of the same unit on one
    axis of `size` positions; whether the field lies inside, where they must be equal."""
    if seen is None:
        assert span is None, where
        return False
    if seen[0] >= 0 and seen[1] < size:
        assert span == seen, where
        return True
    # Cut by the border. Past the last position a layer reads (floor division drops the
    # rest), the gradient stops where a window reaches past real units, while convcalc's
    # field, as Araujo et al.'s, runs on: only the first position is exact there.
    assert span is not None and span[0] == max(seen[0], 0), where
    assert span[1] <= min(seen[1], size - 1), where
    return False


def units(shape: tuple[int, ...]) -> list[Unit]:
    """Spatial indices of an output of `shape` (channels first) to probe: the first, the
    middle and its next neighbour (their distance is the effective stride), the last."""
    sizes = shape[1:]
    middle = tuple((size - 1) // 2 for size in sizes)
    beside = tuple(min(y + 1, size - 1) for y, size in zip(middle, sizes, strict=True))
    last = tuple(size - 1 for size in sizes)
    return list(dict.fromkeys([tuple(0 for _ in sizes), middle, beside, last]))


def sample(items: Sequence[_T], count: int) -> list[_T]:
    """The first item, the last, and evenly spaced ones between: `count` in all."""
    picked = sorted({(len(items) - 1) * k // max(count - 1, 1) for k in range(count)})
    return [items[k] for k in picked]
