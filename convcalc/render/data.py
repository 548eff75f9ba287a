"""Analysis → JSON (SPEC §5, schema_version 1), CSV and Markdown."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from convcalc.analysis.analyze import Analysis, ReceptiveField, Row
from convcalc.render.columns import (
    Column,
    cells,
    field_size,
    format_axes,
    format_bytes,
    format_count,
    format_si,
    summary_lines,
)
from convcalc.text import printable

if TYPE_CHECKING:  # `layer` and `net` need neither; importing them costs start-up time
    from convcalc.analysis.sizes import Period, SizeCheck
    from convcalc.analysis.solve import FieldPlan, Setting

__all__ = [
    "SCHEMA_VERSION",
    "to_csv",
    "to_field_plan_json",
    "to_json",
    "to_layer_json",
    "to_markdown",
    "to_models_json",
    "to_solutions_json",
]

SCHEMA_VERSION = 1


def _number(value: int | Fraction) -> int | float:
    """Integers where exact, otherwise decimals (SPEC §5)."""
    return value.numerator if value.denominator == 1 else float(value)


def _field(field: ReceptiveField | None) -> dict[str, list[int | float]] | None:
    if field is None:
        return None
    return {
        "size": list(field.size),
        "effective_stride": [_number(s) for s in field.effective_stride],
        "effective_padding": [_number(p) for p in field.effective_padding],
    }


def _row(
    row: Row, explained: bool = False, rendered: dict[int, Any] | None = None
) -> dict[str, Any]:
    field = row.receptive_field
    if rendered is None:
        receptive_field = _field(field)
    elif id(field) in rendered:
        receptive_field = rendered[id(field)]
    else:
        receptive_field = rendered[id(field)] = _field(field)
    fields: dict[str, Any] = {
        "path": row.path,
        "kind": row.kind,
        "name": row.name,
        "input_shape": list(row.input_shape),
        "output_shape": list(row.output_shape),
        "params": row.params,
        "macs": row.macs,
        "receptive_field": receptive_field,
        "qualified_name": row.qualified_name,
        "inputs": list(row.inputs),
        "global_context": row.global_context,
    }
    if explained:
        from convcalc.render.explain import explain

        fields["explain"] = explain(row)
    return fields


def _warnings(analysis: Analysis) -> list[dict[str, str]]:
    return [
        {"path": w.path, "qualified_name": w.name, "code": w.code, "message": w.message}
        for w in analysis.warnings
    ]


def to_json(analysis: Analysis, explained: bool = False) -> str:
    totals = analysis.totals
    # Rows of shape-keeping layers share their field object: render each once.
    fields: dict[int, Any] = {}
    rows = [_row(row, explained, fields) for row in analysis.rows]
    document = {
        "schema_version": SCHEMA_VERSION,
        "name": analysis.name,
        "input_shape": list(analysis.input_shape),
        "output_shape": list(analysis.output_shape),
        "layers": rows,
        "totals": {
            "params": totals.params,
            "trainable_params": totals.trainable_params,
            "unused_params": totals.unused_params,
            "macs": totals.macs,
            "flops": totals.flops,
            "batch": totals.batch,
            "activations": totals.activations,
            "activation_bytes": totals.activation_bytes,
            "param_bytes": totals.param_bytes,
        },
        "receptive_field": _field(analysis.receptive_field),
        "outputs": [
            {
                "name": output.name,
                "shape": list(output.shape),
                "receptive_field": _field(output.receptive_field),
                "global_context": output.global_context,
            }
            for output in analysis.outputs
        ],
        "warnings": _warnings(analysis),
    }
    # A tree made just above, so no cycles to look for: that check costs a sixth of the
    # time on a 100,000-layer model.
    return json.dumps(document, check_circular=False)


def to_layer_json(analysis: Analysis, explained: bool = False) -> str:
    """`convcalc layer --json`: the fields of its one row, plus warnings (SPEC §5); a
    layer on its own has no name and reads only its input, so no graph fields."""
    (row,) = analysis.rows
    fields = {k: v for k, v in _row(row, explained).items() if k not in _GRAPH_ONLY}
    return json.dumps({**fields, "warnings": _warnings(analysis)})


#: Row fields that say where a row stands in a graph (SPEC §6).
_GRAPH_ONLY = ("qualified_name", "inputs")


def to_models_json(analyses: list[tuple[str, Analysis]]) -> str:
    """`convcalc models --json`: each bundled model at its default input."""
    models = [
        {
            "name": name,
            "title": analysis.name,
            "input_shape": list(analysis.input_shape),
            "output_shape": list(analysis.output_shape),
            "params": analysis.totals.params,
            "macs": analysis.totals.macs,
            "receptive_field": _field(analysis.receptive_field),
            "global_context": analysis.global_context,
        }
        for name, analysis in analyses
    ]
    return json.dumps({"schema_version": SCHEMA_VERSION, "models": models})


def to_solutions_json(input: int, output: int, transpose: bool, settings: list[Setting]) -> str:
    """`convcalc solve --json`."""
    solutions = []
    for setting in settings:
        solution: dict[str, Any] = {
            "kernel_size": setting.kernel_size,
            "stride": setting.stride,
            "dilation": setting.dilation,
            "padding": list(setting.padding),
        }
        if transpose:
            solution["output_padding"] = setting.output_padding
            solution["checkerboard"] = setting.checkerboard
        solution["dropped"] = setting.dropped
        solutions.append(solution)
    document = {
        "schema_version": SCHEMA_VERSION,
        "input": input,
        "output": output,
        "transpose": transpose,
        "solutions": solutions,
    }
    return json.dumps(document)


def to_field_plan_json(plan: FieldPlan) -> str:
    """`convcalc solve --field … --json`."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "field_target": {
            "target": plan.target,
            "layers": len(plan.sizes),
            "kernel_size": plan.kernel_size,
            "stride": plan.stride,
            "dilations": list(plan.dilations),
            "sizes": list(plan.sizes),
        },
    }
    return json.dumps(document)


@dataclass(frozen=True)
class SizesReport:
    """What `convcalc sizes` found: the checks over the range, the smallest valid size
    (if asked for: `searched`), and the periods of validity and cleanliness."""

    checks: list[SizeCheck]
    smallest: int | None
    searched: bool
    valid_when: Period | None
    clean_when: Period | None


def _period(period: Period | None) -> dict[str, Any] | None:
    if period is None:
        return None
    return {"from": period.start, "period": period.period, "residues": list(period.residues)}


def to_sizes_json(report: SizesReport) -> str:
    """`convcalc sizes --json`."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "sizes": [
            {
                "input": check.size,
                "input_shape": list(check.input_shape),
                "valid": check.valid,
                "clean": check.clean,
                "output_shape": list(check.output_shape) if check.output_shape else None,
                "issues": [
                    {"path": i.path, "code": i.code, "message": i.message} for i in check.issues
                ],
            }
            for check in report.checks
        ],
        "valid_when": _period(report.valid_when),
        "clean_when": _period(report.clean_when),
    }
    if report.searched:
        document["smallest_valid"] = report.smallest
    return json.dumps(document)


def to_csv(analysis: Analysis) -> str:
    """Every row, named as the table names it (`name`: the qualified name), with the
    path in the model file last, as JSON keeps it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(column.key for column in Column), "path"])
    for row in analysis.rows:
        writer.writerow([*cells(row, exact=True).values(), printable(row.path)])
    return out.getvalue()


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(analysis: Analysis) -> str:
    totals = analysis.totals
    lines = [
        "| " + " | ".join(column.title for column in Column) + " |",
        "|" + "|".join("---:" if column.numeric else "---" for column in Column) + "|",
    ]
    for row in analysis.rows:
        lines.append("| " + " | ".join(map(_markdown_cell, cells(row).values())) + " |")
    lines.append("")
    lines.append(
        f"**Totals**: {format_count(totals.params)} params, {format_si(totals.macs)} MACs, "
        f"{format_si(totals.flops)} FLOPs, activations {format_bytes(totals.activation_bytes)} "
        f"(batch {totals.batch})"
    )
    field = analysis.receptive_field
    if field is not None:
        lines.append(
            f"**Receptive field**: size {field_size(field, analysis.global_context)}, "
            "effective stride "
            f"{format_axes(field.effective_stride)}, effective padding "
            f"{format_axes(field.effective_padding)}"
        )
    lines.extend(f"**{line}**" for line in summary_lines(analysis))
    for warning in analysis.warnings:
        at = f" at `{warning.name}`" if warning.name else ""  # or about the whole model
        lines.append(printable(f"- warning `{warning.code}`{at}: {warning.message}"))
    return "\n".join(lines) + "\n"
