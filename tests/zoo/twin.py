"""Compare a bundled model (or any convcalc analysis) with the PyTorch module it
describes: parameters, every named row's output shape, and receptive fields measured
by gradients.

The module is the real one (torchvision's or timm's; where a package cannot be installed,
a transcription of its published source, kept beside the test that uses it), never a
copy of the bundled model. Shapes come from forward hooks on every submodule, keyed by
the module's qualified name, which the bundled model's rows carry (SPEC §6.1). Fields
are measured on a copy of the module made linear and positive: every convolution and
linear layer with positive weights and no bias, max pools as average pools of the same
window, batch and other norms, activations and dropout as identities (sigmoid-like
gates keep their positive value), so that the gradient of one output unit is positive
exactly on the input positions it sees. `measure` holds the output of every global
pooling constant (SPEC §6.5: the local field) and tells apart the units that also read
such a pooled summary (global context).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from convcalc.analysis.analyze import Analysis

__all__ = [
    "Seen",
    "check_params_and_shapes",
    "extent",
    "linear_twin",
    "measure",
    "module_shapes",
    "seen_by",
    "units",
]


def module_shapes(module: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch) of every submodule, by qualified name, in
    one forward pass on the meta device (no memory, no arithmetic): the module is moved
    there. A module called more than once names its later calls as torch.fx and
    convcalc's importer do: `relu`, then `relu_1`, `relu_2`."""
    shapes: dict[str, tuple[int, ...]] = {}
    calls: dict[str, int] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(_: nn.Module, __: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                call = calls.get(name, 0)
                calls[name] = call + 1
                shapes[f"{name}_{call}" if call else name] = tuple(output.shape[1:])

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
    twin.requires_grad_(False)  # gradients are taken for the input only
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


class Seen(NamedTuple):
    """What one output unit of the twin sees: per input position (spatial axes only),
    whether its gradient is nonzero with every global pooling's output held constant
    (the local field, SPEC §6.5); and whether it also reads a global pooling's output
    that itself sees every input position (global context)."""

    local: torch.Tensor
    global_context: bool


class _Enough(Exception):
    """Raised by a hook once every submodule asked about has run: the rest of the
    forward pass is not needed."""


def measure(
    twin: nn.Module, input_shape: tuple[int, ...], requests: Sequence[tuple[str, tuple[int, ...]]]
) -> list[Seen]:
    """For each request (a name, a unit), what the unit at spatial index `unit` (all its
    channels summed) of that output sees, from one forward pass. The name is a
    submodule's (its first call), or else a key of the twin's own output (a dict such as
    DeepLabV3's `out` or a detection backbone's `pool`). When every name is a
    submodule's, the forward pass stops once they have all run, so that early rows can be
    measured on inputs too large for a whole pass.

    Every global pooling (an adaptive pooling to 1 on every axis, which is what convcalc
    calls global) hands on its output as a new leaf: the gradient with respect to the
    input stops there, and the gradient with respect to the leaf tells whether the unit
    reads that pooled summary."""
    submodules = dict(twin.named_modules())
    names = {name for name, _ in requests}
    early = names <= submodules.keys()
    captured: dict[str, torch.Tensor] = {}
    pooled: list[tuple[torch.Tensor, torch.Tensor]] = []  # (the pooling's output, its leaf)

    def capture(name: str) -> Callable[..., None]:
        def record(_: nn.Module, __: Any, output: torch.Tensor) -> None:
            captured.setdefault(name, output)
            if early and len(captured) == len(names):
                raise _Enough

        return record

    def hold(_: nn.Module, __: Any, output: torch.Tensor) -> torch.Tensor:
        leaf = output.detach().requires_grad_()
        pooled.append((output, leaf))
        return leaf

    handles = [
        submodules[name].register_forward_hook(capture(name))
        for name in names
        if name in submodules
    ]
    handles += [sub.register_forward_hook(hold) for sub in twin.modules() if _global_pooling(sub)]
    x = torch.zeros(1, *input_shape, dtype=torch.float64, requires_grad=True)
    try:
        result = twin(x)
    except _Enough:
        result = None
    finally:
        for handle in handles:
            handle.remove()
    for name in names - captured.keys():
        captured[name] = result[name]
    whole = [bool(_sees(_gradient(output.sum(), x)).all()) for output, _ in pooled]
    leaves = [leaf for _, leaf in pooled]
    found = []
    for name, unit in requests:
        value = captured[name][(0, slice(None), *unit)].sum()
        local, *through = _gradients(value, [x, *leaves])
        reads_global = any(
            grad is not None and bool(grad.any()) and sees_all
            for grad, sees_all in zip(through, whole, strict=True)
        )
        found.append(Seen(_sees(local if local is not None else torch.zeros_like(x)), reads_global))
    return found


def _global_pooling(sub: nn.Module) -> bool:
    adaptive = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)  # fmt: skip
    if not isinstance(sub, adaptive):
        return False
    size = sub.output_size
    return all(s == 1 for s in (size if isinstance(size, tuple) else (size,)))


def _gradients(value: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor | None]:
    return list(torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True))


def _gradient(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    (grad,) = _gradients(value, [x])
    return grad if grad is not None else torch.zeros_like(x)


def _sees(grad: torch.Tensor) -> torch.Tensor:
    """The input positions (spatial) where a gradient is nonzero in any channel."""
    return grad[0].abs().sum(0) > 0


def extent(seen: torch.Tensor) -> list[tuple[int, int] | None]:
    """Per spatial axis, the first and last position seen, or None if none is."""
    found: list[tuple[int, int] | None] = []
    for axis in range(seen.dim()):
        others = tuple(a for a in range(seen.dim()) if a != axis)
        along = seen.any(dim=others) if others else seen
        where = along.nonzero().flatten().tolist()
        found.append((where[0], where[-1]) if where else None)
    return found


def seen_by(
    twin: nn.Module, input_shape: tuple[int, ...], name: str, unit: tuple[int, ...]
) -> list[tuple[int, int] | None]:
    """Per spatial axis, the first and last input position in the local field of the
    unit at spatial index `unit` of the output `name` (see `measure`), or None if it
    sees nothing."""
    return extent(measure(twin, input_shape, [(name, unit)])[0].local)


def units(shape: tuple[int, ...], count: int = 3) -> Iterable[tuple[int, ...]]:
    """A few spatial indices of an output of `shape`: the first, the middle, the last."""
    sizes = shape[1:]
    for k in range(count):
        yield tuple(min(size - 1, (size - 1) * k // max(count - 1, 1)) for size in sizes)
