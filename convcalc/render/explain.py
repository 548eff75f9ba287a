"""`--explain`: each layer's arithmetic with its numbers put in, the way the seed
article teaches it: `(224 + 3 + 3 − 7) / 2 + 1 = 112`, and the field step
`7 = 1 + (7 − 1)·1` (Araujo et al. 2019: r grows by (k − 1)·d·S, S multiplies by the
stride, P grows by the padding before times S)."""

from __future__ import annotations

from convcalc.analysis.analyze import ReceptiveField, Row
from convcalc.model.axes import AXIS_NAMES
from convcalc.model.layers import SizeRule
from convcalc.render.columns import format_number

__all__ = ["explain"]


def _sliding(rule: SizeRule) -> str:
    span = (rule.kernel - 1) * rule.dilation + 1
    reach = rule.size + rule.before + rule.after - span
    inner = f"({rule.size} + {rule.before} + {rule.after} − {span}) / {rule.stride}"
    if reach % rule.stride:
        inner = f"⌈{inner}⌉" if rule.ceil_mode else f"⌊{inner}⌋"
    text = f"{inner} + 1 = {rule.output}"
    if rule.ceil_mode and rule.output != -(-reach // rule.stride) + 1:
        text += " (one less: the last window would start in the right padding)"
    if rule.dilation > 1:
        text += f"; span ({rule.kernel} − 1)·{rule.dilation} + 1 = {span}"
    return text


def _size(rule: SizeRule) -> str:
    if rule.rule == "sliding":
        return _sliding(rule)
    if rule.rule == "transposed":
        return (
            f"({rule.size} − 1)·{rule.stride} − {rule.before} − {rule.after} + "
            f"{rule.dilation}·({rule.kernel} − 1) + {rule.output_padding} + 1 = {rule.output}"
        )
    if rule.rule == "scale":
        assert rule.scale is not None
        return f"⌊{rule.size}·{format_number(rule.scale)}⌋ = {rule.output}"
    if rule.rule == "adaptive":
        return (
            f"{rule.size} → {rule.output}: bin i pools ⌊i·{rule.size}/{rule.output}⌋ … "
            f"⌈(i + 1)·{rule.size}/{rule.output}⌉ − 1"
        )
    return f"{rule.size} → {rule.output} (the size given)"


def _field(rule: SizeRule | None, before: ReceptiveField, after: ReceptiveField, axis: int) -> str:
    size, stride, padding = (
        after.size[axis],
        after.effective_stride[axis],
        after.effective_padding[axis],
    )
    r, s, p = before.size[axis], before.effective_stride[axis], before.effective_padding[axis]
    n = format_number
    if (size, stride, padding) == (r, s, p):
        return f"field {size}, stride {n(stride)}, padding {n(padding)} (kept)"
    if rule is not None and rule.rule == "sliding" and s.denominator == 1:
        span = (rule.kernel - 1) * rule.dilation + 1
        grown = r + (span - 1) * int(s)  # s is whole here
        if (size, stride, padding) == (grown, s * rule.stride, p + rule.before * s):
            return (
                f"field {size} = {r} + ({span} − 1)·{n(s)}, stride {n(stride)} = "
                f"{n(s)}·{rule.stride}, padding {n(padding)} = {n(p)} + {rule.before}·{n(s)}"
            )
    return (
        f"field {size}, stride {n(stride)}, padding {n(padding)} (from {r}, {n(s)}, {n(p)}; "
        "exact over the units, the largest field shown)"
    )


def _group(lines: list[tuple[str, str]]) -> list[str]:
    """Axes with the same text share one line: "H, W: …"."""
    grouped: dict[str, list[str]] = {}
    for axis, text in lines:
        grouped.setdefault(text, []).append(axis)
    return [f"{', '.join(axes)}: {text}" for text, axes in grouped.items()]


def explain(row: Row) -> list[str]:
    """The arithmetic behind one row, a line per step (axes that agree share a line)."""
    if row.kind in ("add", "concat"):
        merged = (
            "element-wise sum of the branches"
            if row.kind == "add"
            else "channels of the branches side by side"
        )
        lines = [f"shape: {merged}"]
        if row.receptive_field is not None:
            lines.append("field: the union of the branches' fields")
        return lines
    if not row.rules:
        if len(row.output_shape) == 1:
            return ["no spatial axes: every unit sees the whole input"]
        return ["shape and field kept"]
    names = AXIS_NAMES[len(row.rules)]
    lines = _group([(axis, _size(rule)) for axis, rule in zip(names, row.rules, strict=True)])
    before, after = row.input_field, row.receptive_field
    if before is not None and after is not None:
        lines += _group(
            [
                (axis, _field(rule, before, after, i))
                for i, (axis, rule) in enumerate(zip(names, row.rules, strict=True))
            ]
        )
    elif after is None and len(row.output_shape) > 1:
        lines.append("a global pooling: every unit sees the whole input")
    return lines
