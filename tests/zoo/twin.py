"""Compare a bundled model (or any convcalc analysis) with the PyTorch module it
describes: parameters, every named row's output shape, and receptive fields measured
by gradients.

The module is the real one (torchvision's or timm's), never a hand-written copy. Shapes
come from forward hooks on every submodule, keyed by the module's qualified name, which
the bundled model's rows carry (SPEC §6.1). Fields are measured on a copy of the module
made linear and positive: every convolution and linear layer with positive weights and
no bias, max pools as average pools of the same window, batch and other norms,
activations and dropout as identities (sigmoid-like gates keep their positive value,
with the global paths that feed them detached), so that the gradient of one output unit
is positive exactly on the input positions it sees (SPEC §6.5: global paths held
constant).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from convcalc.analysis.analyze import Analysis

__all__ = ["check_params_and_shapes", "linear_twin", "module_shapes", "seen_by", "units"]


def module_shapes(module: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch) of every submodule, by qualified name, in
    one forward pass on the meta device (no memory, no arithmetic): the module is moved
    there. A module called more than once keeps its last call's shape."""
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(_: nn.Module, __: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape[1:])

        return record

    module = module.to("meta").eval()
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
    analysis: Analysis, module: nn.Module, input_shape: tuple[int, ...]
) -> int:
    """convcalc's params equal `sum(p.numel())`, and every row named like a submodule
    has its output shape; returns how many rows were compared (the caller asserts that
    every row with parameters was)."""
    assert analysis.totals.params == sum(p.numel() for p in module.parameters())
    shapes = module_shapes(module, input_shape)
    compared = 0
    for row in analysis.rows:
        if row.qualified_name in shapes:
            assert row.output_shape == shapes[row.qualified_name], row.qualified_name
            compared += 1
        else:
            assert row.params == 0, f"{row.qualified_name} has parameters but no module"
    return compared


def linear_twin(module: nn.Module) -> nn.Module:
    """A float64 copy whose output at a unit is a positive sum over exactly the input
    positions that unit sees (see the module's docstring)."""
    twin = copy.deepcopy(module).double().eval()
    for name, sub in list(twin.named_modules()):
        replacement = _linearised(sub)
        if replacement is not sub and name:
            parent, _, attribute = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, attribute, replacement)
    with torch.no_grad():
        for sub in twin.modules():
            if isinstance(sub, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.ConvTranspose1d
                          | nn.ConvTranspose2d | nn.ConvTranspose3d | nn.Linear):  # fmt: skip
                sub.weight.uniform_(0.5, 1.5)
                if sub.bias is not None:
                    sub.bias.zero_()
    return twin


def _linearised(sub: nn.Module) -> nn.Module:
    if isinstance(sub, nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d):
        pool = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d}
        if sub.dilation not in (1, (1,), (1, 1), (1, 1, 1)):
            return sub  # an average pool has no dilation: the caller must handle it
        return pool[type(sub)](sub.kernel_size, sub.stride, sub.padding, sub.ceil_mode,
                               count_include_pad=True)  # fmt: skip
    if isinstance(sub, nn.AdaptiveMaxPool1d | nn.AdaptiveMaxPool2d | nn.AdaptiveMaxPool3d):
        adaptive = {
            nn.AdaptiveMaxPool1d: nn.AdaptiveAvgPool1d,
            nn.AdaptiveMaxPool2d: nn.AdaptiveAvgPool2d,
            nn.AdaptiveMaxPool3d: nn.AdaptiveAvgPool3d,
        }
        return adaptive[type(sub)](sub.output_size)
    if isinstance(sub, _IDENTITIES):
        return nn.Identity()
    return sub


# Layers that keep each position's value or mix only channels: in the twin, identities.
_IDENTITIES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Tanh, nn.ELU,
    nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.Mish,
)  # fmt: skip


def seen_by(
    twin: nn.Module, input_shape: tuple[int, ...], name: str, unit: tuple[int, ...]
) -> list[tuple[int, int] | None]:
    """Per spatial axis, the first and last input position whose gradient is nonzero
    for the unit at spatial index `unit` (all its channels summed) of the output of
    the submodule `name`, or None if it sees nothing."""
    captured: list[torch.Tensor] = []
    handle = twin.get_submodule(name).register_forward_hook(
        lambda _, __, output: captured.append(output)
    )
    x = torch.zeros(1, *input_shape, dtype=torch.float64, requires_grad=True)
    try:
        twin(x)
    finally:
        handle.remove()
    captured[-1][(0, slice(None), *unit)].sum().backward()
    assert x.grad is not None
    seen = x.grad[0].abs().sum(0) > 0
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
