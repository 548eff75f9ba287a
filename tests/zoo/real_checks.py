"""The checks of an imported real model against its module (issue 12's "zero wrong
numbers"), for `test_real_import.py` and `survey.py`. Each raises AssertionError saying
what differs; none computes an expected number with convcalc.

- params: `sum(p.numel())` is `params + unused_params`, and `unused_params` is what the
  modules the forward never calls hold (googlenet's and inception_v3's auxiliary
  classifiers in eval mode);
- outputs: each output's shape is the real forward's (a dict's by key, in order);
- rows: every call of a convolution or linear layer is a row of its call name with the
  multiply-accumulates torch ran, and every row with parameters is named after a call;
  the row of a module called once has its output's shape;
- MACs: 2 × the total is what `torch.utils.flop_counter.FlopCounterMode` counts, and it
  counts only convolutions and matrix products of linear layers;
- fields: those of a sample of rows are what gradients show, global paths detached.

Every forward here runs on the meta device: shapes, no arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from convcalc import ConvcalcError, analyze, from_torch
from convcalc.analysis.analyze import Analysis
from tests.zoo.real_models import RealModel, build
from tests.zoo.twin import (
    call_of,
    check_fields,
    linear_twin,
    module_macs,
    module_shapes,
    sample,
    units,
)

__all__ = [
    "CHECKS",
    "FIELD_ROWS",
    "Check",
    "check_fields_by_gradients",
    "check_macs",
    "check_outputs",
    "check_params",
    "check_rows",
    "import_model",
    "refusal",
]

#: The operators whose flops are multiply-accumulates of convolutions and linear layers
#: (2 per MAC): a linear layer is `addmm` (`mm` without a bias), on any number of
#: leading axes, which torch folds into one.
COUNTED = frozenset({"aten.convolution", "aten.addmm", "aten.mm"})

#: How many rows the fields are measured on, evenly spread, besides the last.
FIELD_ROWS = 8


def import_model(model: RealModel, library: Any) -> tuple[Analysis, nn.Module]:
    """The analysis of the model imported through `convcalc.from_torch` at its input, and
    its module, moved to the meta device afterwards. Raises what the import raises."""
    module = build(model, library)
    analysis = analyze(from_torch(module, model.input_shape))
    return analysis, module.to("meta")


def refusal(model: RealModel, library: Any) -> str | None:
    """The one-line message with which convcalc refuses the model, or None if it imports.
    Any other exception than ConvcalcError propagates."""
    try:
        import_model(model, library)
    except ConvcalcError as error:
        message = str(error)
        assert message and "\n" not in message, f"not one line: {message!r}"
        return message
    return None


def check_params(analysis: Analysis, module: nn.Module, input_shape: tuple[int, ...]) -> None:
    total = sum(p.numel() for p in module.parameters())
    calls = module_shapes(module, input_shape)
    called = {call_of(module, name)[0] for name in calls} | {""}
    unused = sum(
        p.numel()
        for name, sub in module.named_modules()
        if name not in called
        for p in sub.parameters(recurse=False)
    )
    # `unused_params` comes with issue 12 (SPEC §6.6); until then there is none.
    reported = getattr(analysis.totals, "unused_params", 0)
    assert (analysis.totals.params, reported) == (total - unused, unused), (
        f"params {analysis.totals.params:,} + unused {reported:,}; torch: "
        f"{total - unused:,} + {unused:,} in modules the forward never calls"
    )


def _forward(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[Any, dict[str, int]]:
    """The module's output for one sample, and the flops FlopCounterMode counted, by
    operator."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        output = module(torch.zeros(1, *input_shape, device="meta"))
    counts = counter.get_flop_counts()["Global"]
    return output, {str(op): flops for op, flops in counts.items()}


def check_outputs(analysis: Analysis, module: nn.Module, input_shape: tuple[int, ...]) -> None:
    output, _ = _forward(module, input_shape)
    got = [(out.name, out.shape) for out in analysis.outputs]
    if isinstance(output, Mapping):  # segmentation models: `out`, and `aux` if trained so
        expected = [(name, tuple(value.shape[1:])) for name, value in output.items()]
        assert got == expected, f"outputs {got}; torch: {expected}"
    else:
        expected_shape = tuple(output.shape[1:])
        assert [shape for _, shape in got] == [expected_shape], (
            f"outputs {got}; torch: {expected_shape}"
        )
        assert analysis.output_shape == expected_shape


def check_rows(analysis: Analysis, module: nn.Module, input_shape: tuple[int, ...]) -> None:
    shapes = module_shapes(module, input_shape)
    macs = module_macs(module, input_shape)
    rows = {row.qualified_name: row for row in analysis.rows}
    missing = sorted(macs.keys() - rows.keys())
    assert missing == [], f"convolutions or linear layers without a row: {_few(missing)}"
    wrong_macs = [
        f"{name} {rows[name].macs:,} (torch: {count:,})"
        for name, count in macs.items()
        if rows[name].macs != count
    ]
    assert wrong_macs == [], f"rows' MACs: {_few(wrong_macs)}"
    # A row with parameters is named after a module call, or after its parameter (a
    # layer scale that its block multiplies by, among the block's other operations).
    known = shapes.keys() | dict(module.named_parameters()).keys()
    unnamed = [name for name, row in rows.items() if row.params and name not in known]
    assert unnamed == [], (
        f"rows with parameters named after no module call or parameter: {_few(unnamed)}"
    )
    wrong_shapes = [
        f"{name} {row.output_shape} (torch: {shapes[name]})"
        for name, row in rows.items()
        if name in shapes
        and f"{name}_1" not in shapes
        and not _same(row.output_shape, shapes[name])
    ]
    assert wrong_shapes == [], f"rows' output shapes: {_few(wrong_shapes)}"


def _few(items: list[str]) -> str:
    """The first few of a list of names, and how many there are: one readable line."""
    shown = ", ".join(items[:4])
    return f"{shown}, … ({len(items)} in all)" if len(items) > 4 else shown


def _same(shape: tuple[int, ...], torch_shape: tuple[int, ...]) -> bool:
    """Whether a row's shape is the module's output shape; or, for a module that works
    channels last (ConvNeXt's LayerNorm and Linear between permutes), which convcalc
    describes channels first, that shape with the channels moved last."""
    return torch_shape in (shape, (*shape[1:], shape[0]))


def check_macs(analysis: Analysis, module: nn.Module, input_shape: tuple[int, ...]) -> None:
    _, flops = _forward(module, input_shape)
    assert flops.keys() <= COUNTED, f"FlopCounterMode counted other operators: {sorted(flops)}"
    counted = sum(flops.values())
    assert 2 * analysis.totals.macs == counted, (
        f"MACs {analysis.totals.macs:,}; FlopCounterMode: {counted // 2:,} ({flops})"
    )


def check_fields_by_gradients(analysis: Analysis, module: nn.Module, *, thin: bool = True) -> None:
    """The fields and global context of a sample of the rows that are a module's call
    (the first, `FIELD_ROWS` evenly spread, the last with a field, and the very last), at
    a few units each, against gradients on a linear twin (`thin`: one that sums channels,
    for networks that neither slice nor shuffle them; see twin.py). A row is a call's when
    it bears the call's name and its shape: not a call that works channels last."""
    calls = module_shapes(module, analysis.input_shape)
    named = [row for row in analysis.rows if calls.get(row.qualified_name) == row.output_shape]
    with_field = [row for row in named if row.fields is not None]
    picked = dict.fromkeys(
        row.qualified_name for row in [*sample(with_field, FIELD_ROWS), named[-1]]
    )
    shapes = {row.qualified_name: row.output_shape for row in named}
    probes = [(name, unit) for name in picked for unit in units(shapes[name])]
    check_fields(analysis, linear_twin(module, thin=thin), probes)


#: A check of an analysis against the module at the same input.
Check = Callable[[Analysis, nn.Module, tuple[int, ...]], None]

#: The checks of every imported model, in the order they are run.
CHECKS: tuple[Check, ...] = (check_params, check_outputs, check_rows, check_macs)
