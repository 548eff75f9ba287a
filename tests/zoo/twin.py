"""Compare a bundled model (or any convcalc analysis) with the PyTorch module it
describes: parameters, every named row's output shape, and receptive fields measured
by gradients.

The module is the real one (torchvision's or timm's), never a hand-written copy. Shapes
come from forward hooks on every submodule, keyed by the module's qualified name, which
the bundled model's rows carry (SPEC §6.1). Fields are measured on a copy of the module
with positive weights and no bias, run under a torch function mode that makes it linear
and positive whether a layer is a module or a functional call: max pools average the
same window, norms, activations and dropout are identities, sigmoid-like gates keep their
positive value, and every global pooling (an adaptive pooling to 1) is detached, so that
the gradient of one output unit is positive exactly on the input positions it sees
through local paths (SPEC §6.5: global paths held constant). Gradients are cut back to
0 or 1 after every operation, so that neither a deep network's products of weights nor
its long chains of averages leave float32's range.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional
from torch.overrides import TorchFunctionMode

from convcalc.analysis.analyze import Analysis

__all__ = [
    "check_fields",
    "check_params_and_shapes",
    "linear_twin",
    "module_shapes",
    "seen_by_units",
    "units",
]


def module_shapes(
    module: nn.Module, input_shape: tuple[int, ...], *, auxiliary: bool = False
) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch) of every submodule, by qualified name, in
    one forward pass on the meta device (no memory, no arithmetic): the module is moved
    there. A module called more than once keeps its last call's shape. `auxiliary`: run
    the heads the module runs only in training (see `_with_auxiliary`)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(_: nn.Module, __: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape[1:])

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
    return shapes


def check_params_and_shapes(
    analysis: Analysis, module: nn.Module, input_shape: tuple[int, ...], *, auxiliary: bool = False
) -> int:
    """convcalc's params equal `sum(p.numel())`, and every row named like a submodule
    has its output shape; returns how many rows were compared (the caller asserts that
    every row with parameters was)."""
    assert analysis.totals.params == sum(p.numel() for p in module.parameters())
    shapes = module_shapes(module, input_shape, auxiliary=auxiliary)
    compared = 0
    for row in analysis.rows:
        if row.qualified_name in shapes:
            assert row.output_shape == shapes[row.qualified_name], row.qualified_name
            compared += 1
        else:
            assert row.params == 0, f"{row.qualified_name} has parameters but no module"
    return compared


def _with_auxiliary(module: nn.Module) -> None:
    """The root module in training mode, every submodule in eval mode: the root's forward
    then runs the heads it runs only in training (Inception's AuxLogits, GoogLeNet's aux1
    and aux2), while its layers behave as at inference."""
    module.training = True


def linear_twin(module: nn.Module, *, auxiliary: bool = False) -> nn.Module:
    """A copy with positive weights and no bias, whose output at a unit is, run under
    `_Linear` (as `seen_by_units` does), a positive sum over exactly the input positions
    that unit sees (see the module's docstring). `auxiliary` as for `module_shapes`."""
    twin = copy.deepcopy(module).float().eval()
    if auxiliary:
        _with_auxiliary(twin)
    with torch.no_grad():
        for sub in twin.modules():
            if isinstance(sub, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.ConvTranspose1d
                          | nn.ConvTranspose2d | nn.ConvTranspose3d | nn.Linear):  # fmt: skip
                # Near the mean of its inputs: values stay in range however deep.
                sub.weight.uniform_(0.5, 1.5).div_(sub.weight[0].numel())
                if sub.bias is not None:
                    sub.bias.zero_()
    # Only the input's gradient is measured.
    twin.requires_grad_(False)
    return twin


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


class _Linear(TorchFunctionMode):
    """Every torch function the twin calls, made linear and positive (see the module's
    docstring), its output's gradient cut back to 0 or 1."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func in _IDENTITIES:
            return args[0] if args else kwargs["input"]
        if func in _AVERAGES:
            output = _average(_AVERAGES[func], *args, **kwargs)
        elif func in _ADAPTIVE:
            output = _ADAPTIVE[func](*args, **kwargs)
            if all(size == 1 for size in output.shape[2:]):
                output = output.detach()  # a global pooling: held constant (SPEC §6.5)
        else:
            output = func(*args, **kwargs)
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(_support)
        return output


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


def _support(gradient: torch.Tensor) -> torch.Tensor:
    """1 where the gradient is nonzero, else 0: only where it is nonzero matters, and 0
    or 1 stays in range however deep the network."""
    return gradient.sign()  # never negative: a sum of positive terms


class _Reached(Exception):
    """Raised by the hook on the probed module: the rest of the forward is not needed."""


def seen_by_units(
    twin: nn.Module, input_shape: tuple[int, ...], name: str, units: Sequence[tuple[int, ...]]
) -> list[list[tuple[int, int] | None]]:
    """For each unit (a spatial index) of the output of the submodule `name`, all its
    channels summed: per spatial axis, the first and last input position whose gradient
    is nonzero, or None if it sees nothing. One forward and backward pass, each unit on
    its own sample of the batch (the twin mixes no samples), the forward stopped at the
    module (so that nothing after it changes its output in place)."""
    captured: list[torch.Tensor] = []

    def capture(_: nn.Module, __: Any, output: torch.Tensor) -> None:
        captured.append(output)
        raise _Reached

    handle = twin.get_submodule(name).register_forward_hook(capture)
    # A positive input: a gate's gradient is then nonzero unless it is held constant.
    x = torch.ones(len(units), *input_shape, requires_grad=True)
    try:
        with _Linear():
            twin(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    (output,) = captured
    torch.stack(
        [output[(k, slice(None), *unit)].sum() for k, unit in enumerate(units)]
    ).sum().backward()
    assert x.grad is not None
    return [_extent(grad.abs().sum(0) > 0) for grad in x.grad]


def check_fields(analysis: Analysis, twin: nn.Module, names: Iterable[str]) -> int:
    """The rows named `names` (each named after a submodule of `twin`, with a field):
    at a few units of each (`units`), the first and last input position per axis that
    convcalc's field gives, within the input, are what the twin's gradients show.
    Returns how many units were compared."""
    rows = {row.qualified_name: row for row in analysis.rows}
    compared = 0
    for name in names:
        row = rows[name]
        assert row.fields is not None, name
        probes = list(units(row.output_shape))
        measured = seen_by_units(twin, analysis.input_shape, name, probes)
        for unit, seen in zip(probes, measured, strict=True):
            expected = [
                None
                if (span := field.seen(y)) is None
                else (max(span[0], 0), min(span[1], size - 1))
                for field, y, size in zip(row.fields, unit, analysis.input_shape[1:], strict=True)
            ]
            assert seen == expected, (name, unit)
            compared += 1
    return compared


def _extent(seen: torch.Tensor) -> list[tuple[int, int] | None]:
    """Per axis, the first and last index where `seen` is true anywhere, or None."""
    found: list[tuple[int, int] | None] = []
    for axis in range(seen.dim()):
        others = tuple(a for a in range(seen.dim()) if a != axis)
        along = seen.any(dim=others) if others else seen
        where = along.nonzero().flatten().tolist()
        found.append((where[0], where[-1]) if where else None)
    return found


def units(shape: tuple[int, ...], count: int = 3) -> Iterable[tuple[int, ...]]:
    """A few spatial indices of an output of `shape`: the first, the middle, the last."""
    sizes = shape[1:]
    for k in range(count):
        yield tuple(min(size - 1, (size - 1) * k // max(count - 1, 1)) for size in sizes)
