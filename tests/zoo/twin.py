"""Compare a bundled model (or any convcalc analysis) with the PyTorch module it
describes: parameters, every named row's output shape, and receptive fields measured
by gradients.

The module is the real one (torchvision's or timm's), never a hand-written copy. Shapes
come from forward hooks on every submodule, keyed by the module's qualified name, which
the bundled model's rows carry (SPEC §6.1); a module called more than once (ResNet's one
`relu`) names its first call so and its later ones `relu_1`, `relu_2`, as torch.fx and
convcalc's importer do. Fields are measured on a copy of the module made linear and
positive: every convolution and linear layer with positive weights (about 1 / its
fan-in, so that deep networks neither overflow nor underflow) and no bias, max pools as
average pools of the same window, batch and other norms, activations and dropout as
identities (sigmoid-like gates keep their positive value, with the global paths that
feed them detached), so that the gradient of one output unit is positive exactly on the
input positions it sees (SPEC §6.5: global paths held constant).
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
from torch import nn

from convcalc.analysis.analyze import Analysis

__all__ = [
    "call_of",
    "check_params_and_shapes",
    "linear_twin",
    "module_macs",
    "module_shapes",
    "seen_by",
    "seen_by_each",
    "units",
]

_T = TypeVar("_T")


def module_shapes(module: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch) of every call of a submodule, by call name
    (see `call_of`), in one forward pass on the meta device (no memory, no arithmetic):
    the module is moved there."""
    return _calls(module, input_shape, lambda _, __, output: tuple(output.shape[1:]))


def module_macs(module: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """The multiply-accumulates of every call of a convolution or linear layer as torch
    ran it (batch 1; SPEC §3's convention), by call name, as `module_shapes` works."""
    return {
        name: macs for name, macs in _calls(module, input_shape, _macs).items() if macs is not None
    }


def call_of(twin: nn.Module, name: str) -> tuple[str, int]:
    """The submodule and the call (0 for the first) that a call name stands for: a
    module called more than once (ResNet's one `relu`) names its first call by the
    module's qualified name and the later ones `relu_1`, `relu_2`, as torch.fx and
    convcalc's importer name them."""
    repeated = re.fullmatch(r"(.+)_([1-9][0-9]*)", name)
    if repeated and name not in dict(twin.named_modules()):
        return repeated[1], int(repeated[2])
    return name, 0


def _calls(
    module: nn.Module,
    input_shape: tuple[int, ...],
    measure: Callable[[nn.Module, torch.Tensor, torch.Tensor], _T],
) -> dict[str, _T]:
    """`measure(submodule, its input, its output)` of every call of a submodule that
    reads and returns a tensor, by call name, in one forward pass on the meta device."""
    measured: dict[str, _T] = {}
    calls: dict[str, int] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(sub: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            call = calls[name] = calls.get(name, -1) + 1
            if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
                measured[f"{name}_{call}" if call else name] = measure(sub, inputs[0], output)

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
    return measured


def _macs(sub: nn.Module, x: torch.Tensor, output: torch.Tensor) -> int | None:
    if isinstance(sub, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        return x.numel() * sub.out_channels // sub.groups * math.prod(sub.kernel_size)
    if isinstance(sub, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return output.numel() * sub.in_channels // sub.groups * math.prod(sub.kernel_size)
    if isinstance(sub, nn.Linear):
        return output.numel() * sub.in_features
    return None


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


def linear_twin(module: nn.Module, thin: bool = False) -> nn.Module:
    """A float64 copy whose output at a unit is a positive sum over exactly the input
    positions that unit sees (see the module's docstring).

    `thin`: every convolution and linear layer also sums the channels (features) it reads
    and makes one, with the same geometry: the same fields for a fraction of the work
    (big networks at inputs their whole field fits in), for networks whose channels meet
    only in such layers and element-wise merges (no channel slicing or shuffling). A
    thin twin does not read the module's weights: the module may be on the meta device.
    """
    twin = copy.deepcopy(module)
    for name, sub in list(twin.named_modules()):
        replacement = _thinned(sub) if thin else sub
        replacement = _linearised(replacement)
        if replacement is not sub and name:
            parent, _, attribute = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, attribute, replacement)
    twin = twin.double().eval().requires_grad_(False)
    with torch.no_grad():
        for sub in twin.modules():
            if isinstance(sub, _WEIGHTED):
                sub.weight.uniform_(0.5, 1.5).div_(sub.weight[0].numel())
                if sub.bias is not None:
                    sub.bias.zero_()
    return twin


_CONVOLUTIONS = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)  # fmt: skip
_WEIGHTED = (*_CONVOLUTIONS, nn.Linear)


class _Thin(nn.Module):
    """A layer of one input and one output channel (feature) that reads the sum of its
    input's channels (features)."""

    def __init__(self, layer: nn.Module, dim: int) -> None:
        super().__init__()
        self.layer = layer
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.sum(self.dim, keepdim=True))  # type: ignore[no-any-return]


def _thinned(sub: nn.Module) -> nn.Module:
    """A thin copy of a convolution or linear layer (on the CPU), or `sub` itself."""
    if isinstance(sub, nn.Linear):
        return _Thin(nn.Linear(1, 1, bias=False), dim=-1)
    if not isinstance(sub, _CONVOLUTIONS):
        return sub
    # The torch class itself, not a subclass with its own constructor (Conv3DSimple).
    base: Any = next(kind for kind in _CONVOLUTIONS if isinstance(sub, kind))
    geometry = {
        "stride": sub.stride,
        "padding": sub.padding,
        "dilation": sub.dilation,
        "padding_mode": sub.padding_mode,
    }
    if isinstance(sub, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        geometry["output_padding"] = sub.output_padding
    return _Thin(base(1, 1, sub.kernel_size, bias=False, device="cpu", **geometry), dim=1)


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
    if isinstance(sub, _IDENTITIES) or (isinstance(sub, nn.Softmax) and sub.dim == 1):
        return nn.Identity()  # a softmax over the channels mixes only channels
    return sub


# Layers that keep each position's value or mix only channels: in the twin, identities.
_IDENTITIES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Tanh, nn.ELU,
    nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.Mish,
)  # fmt: skip


class _Reached(Exception):
    """Raised by a hook to end a forward pass at the output it wanted."""


def seen_by(
    twin: nn.Module, input_shape: tuple[int, ...], name: str, unit: tuple[int, ...]
) -> list[tuple[int, int] | None]:
    """Per spatial axis, the first and last input position whose gradient is nonzero
    for the unit at spatial index `unit` (all its channels summed) of the output of
    the submodule call `name` (as `module_shapes` names calls), or None if it sees
    nothing."""
    return seen_by_each(twin, input_shape, {name: [unit]})[name][0]


def seen_by_each(
    twin: nn.Module, input_shape: tuple[int, ...], probes: dict[str, list[tuple[int, ...]]]
) -> dict[str, list[list[tuple[int, int] | None]]]:
    """`seen_by` for several units of several calls (`{call name: units}`), from one
    forward pass, which ends at the last of them: what follows is never computed."""
    wanted: dict[str, dict[int, str]] = {}  # submodule → call → call name
    for name in probes:
        module, call = call_of(twin, name)
        wanted.setdefault(module, {})[call] = name
    captured: dict[str, torch.Tensor] = {}

    def hook(module: str) -> Callable[..., None]:
        calls = itertools.count()

        def capture(_: nn.Module, __: Any, output: torch.Tensor) -> None:
            name = wanted[module].get(next(calls))
            if name is not None:
                captured[name] = output
                if len(captured) == len(probes):
                    raise _Reached

        return capture

    handles = [twin.get_submodule(m).register_forward_hook(hook(m)) for m in wanted]
    x = torch.zeros(1, *input_shape, dtype=torch.float64, requires_grad=True)
    try:
        twin(x)
    except _Reached:
        pass
    finally:
        for handle in handles:
            handle.remove()
    found: dict[str, list[list[tuple[int, int] | None]]] = {}
    for name, probed in probes.items():
        found[name] = []
        for unit in probed:
            output = captured[name][(0, slice(None), *unit)].sum()
            (grad,) = torch.autograd.grad(output, x, retain_graph=True)
            found[name].append(_spans(grad[0]))
    return found


def _spans(grad: torch.Tensor) -> list[tuple[int, int] | None]:
    """Per spatial axis, the first and last position where `grad` (C, *spatial) is not
    zero in some channel, or None."""
    seen = grad.ne(0).any(0)
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
