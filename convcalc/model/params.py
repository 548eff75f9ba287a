"""Checks for layer parameters, shared by model files and command-line flags.

Each check takes a plain value (as YAML or a flag gives it) and returns the value the
layer keeps, or raises `ConvcalcError` saying what was expected and what it got. YAML's
`true` is not an integer and `3.0` is not a kernel size: types are checked exactly.
Checks also accept what they return (a tuple where a list goes, a Fraction as a scale),
so a layer made in Python with PyTorch's tuples is checked the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import field
from fractions import Fraction
from typing import Any, TypeVar

from convcalc.errors import ConvcalcError
from convcalc.text import shorten

__all__ = [
    "MAX_INT",
    "Check",
    "accepts",
    "axis_non_negative",
    "axis_positive",
    "boolean",
    "choice",
    "describe",
    "integer",
    "non_negative_int",
    "number",
    "optional",
    "output_sizes",
    "padding_form",
    "param",
    "positive_int",
    "probability",
    "scale_factors",
    "schema_of",
]

Check = Callable[[Any], Any]
_C = TypeVar("_C", bound=Check)

# The JSON Schema fragment of the plain values each check accepts: `convcalc schema`
# builds the schema of model files from these, next to the checks they describe.
_SCHEMAS: dict[Check, dict[str, Any]] = {}


def accepts(fragment: dict[str, Any]) -> Callable[[_C], _C]:
    """Declare the JSON Schema fragment (draft 2020-12) that accepts exactly the JSON
    values the decorated check accepts."""

    def declare(check: _C) -> _C:
        _SCHEMAS[check] = fragment
        return check

    return declare


def schema_of(check: Check) -> dict[str, Any]:
    """The fragment declared for `check` with `accepts` (shared: copy it to change it)."""
    return _SCHEMAS[check]


def param(check: Check, default: Any = ..., doc: str = "") -> Any:
    """A dataclass field that is a layer parameter: `check` validates what the user gave;
    without `default` the parameter is required. `doc` says what it means (PyTorch's
    meaning), for the schema that editors show."""
    metadata = {"check": check, "doc": doc}
    if default is ...:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


def describe(value: Any) -> str:
    """A value as the user wrote it, for messages: 0, true, 3.0, "abc", [1, 2]; a long
    one shortened, to its start and its length."""
    try:
        return shorten(json.dumps(value))
    except (TypeError, ValueError):
        return shorten(repr(value))


def _fail(expected: str, value: Any) -> ConvcalcError:
    return ConvcalcError(f"expected {expected}, got {describe(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: The largest whole number a parameter or a size may be: PyTorch keeps them in int64.
MAX_INT = 2**63 - 1


def _within_int64(value: Any) -> None:
    """Refuse, in so many words, a whole number past MAX_INT in a value (a number, or
    lists of numbers)."""
    items = value if isinstance(value, list | tuple) else (value,)
    if any(_is_int(v) and abs(v) > MAX_INT for v in items):
        raise _fail("at most 2^63 − 1 (PyTorch's int64)", value)
    for item in items:
        if isinstance(item, list | tuple):
            _within_int64(item)


def _per_axis(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": 1, "maxItems": 3}


@accepts({"type": "integer", "minimum": -MAX_INT, "maximum": MAX_INT})
def integer(value: Any) -> int:
    """A whole number of either sign (an index that may count from the end)."""
    _within_int64(value)
    if not _is_int(value):
        raise _fail("an integer", value)
    return int(value)


@accepts({"type": "integer", "minimum": 1, "maximum": MAX_INT})
def positive_int(value: Any) -> int:
    _within_int64(value)
    if not _is_int(value) or value < 1:
        raise _fail("a positive integer", value)
    return int(value)


@accepts({"type": "integer", "minimum": 0, "maximum": MAX_INT})
def non_negative_int(value: Any) -> int:
    _within_int64(value)
    if not _is_int(value) or value < 0:
        raise _fail("a non-negative integer", value)
    return int(value)


@accepts({"type": "boolean"})
def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail("true or false", value)
    return value


# JSON has only finite numbers; YAML's .inf and .nan are refused here, beyond the schema.
@accepts({"type": "number"})
def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail("a number", value)
    return value


@accepts({"type": "number", "minimum": 0, "maximum": 1})
def probability(value: Any) -> float:
    checked = number(value)
    if not 0 <= checked <= 1:
        raise _fail("a number from 0 to 1", value)
    return checked


def choice(*options: str) -> Check:
    @accepts({"enum": list(options)})
    def check(value: Any) -> str:
        if value not in options:
            raise _fail("one of " + ", ".join(options), value)
        return str(value)

    return check


def optional(check: Check) -> Check:
    """`check`, or null."""
    inner = schema_of(check)

    @accepts({"anyOf": [*inner.get("anyOf", [inner]), {"type": "null"}]})
    def check_or_none(value: Any) -> Any:
        return None if value is None else check(value)

    return check_or_none


def _axis(check: Check, expected: str) -> Check:
    one = schema_of(check)

    @accepts({"anyOf": [one, _per_axis(one)]})
    def check_axes(value: Any) -> int | tuple[int, ...]:
        _within_int64(value)
        if isinstance(value, list | tuple):
            if not 1 <= len(value) <= 3:
                raise _fail(f"{expected}, or a list of 1 to 3 of them (one per axis)", value)
            try:
                return tuple(check(v) for v in value)
            except ConvcalcError:
                raise _fail(f"a list with {expected} per axis", value) from None
        try:
            return int(check(value))
        except ConvcalcError:
            raise _fail(f"{expected}, or a list of them (one per axis)", value) from None

    return check_axes


axis_positive = _axis(positive_int, "a positive integer")
axis_non_negative = _axis(non_negative_int, "a non-negative integer")


_positive_or_null = optional(positive_int)
_sizes_or_null = _axis(_positive_or_null, "a positive integer or null")


@accepts({"anyOf": [schema_of(positive_int), _per_axis(schema_of(_positive_or_null))]})
def output_sizes(value: Any) -> int | tuple[int | None, ...]:
    """Adaptive pooling's output size: a positive integer, or one per axis (null keeps
    that axis's size, as in PyTorch)."""
    sizes: int | tuple[int | None, ...] = (
        _sizes_or_null(value) if isinstance(value, list | tuple) else axis_positive(value)
    )
    return sizes


@accepts({"type": "number", "exclusiveMinimum": 0})
def _scale(value: Any) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction) or not value > 0:
        raise _fail("a positive number", value)
    if not math.isfinite(value):
        raise _fail("a finite positive number", value)
    # The decimal the user wrote (1.5, 0.1), not the binary float nearest to it.
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


@accepts({"anyOf": [schema_of(_scale), _per_axis(schema_of(_scale))]})
def scale_factors(value: Any) -> Fraction | tuple[Fraction, ...]:
    if isinstance(value, list | tuple):
        if not 1 <= len(value) <= 3:
            raise _fail("a positive number, or a list of 1 to 3 of them (one per axis)", value)
        return tuple(_scale(v) for v in value)
    return _scale(value)


_PADDING = (
    "a non-negative integer, a list with one per axis, a list of [before, after] pairs, "
    '"same" or "valid"'
)


_PAIR = {"type": "array", "items": schema_of(non_negative_int), "minItems": 2, "maxItems": 2}


@accepts(
    {
        "anyOf": [
            schema_of(non_negative_int),
            _per_axis({"anyOf": [schema_of(non_negative_int), _PAIR]}),
            {"enum": ["same", "valid"]},
        ]
    }
)
def padding_form(value: Any) -> int | str | tuple[int | tuple[int, int], ...]:
    if value in ("same", "valid"):
        return str(value)
    _within_int64(value)
    if _is_int(value) and value >= 0:
        return int(value)
    if isinstance(value, list | tuple) and 1 <= len(value) <= 3:
        axes: list[int | tuple[int, int]] = []
        for item in value:
            if _is_int(item) and item >= 0:
                axes.append(int(item))
            elif (
                isinstance(item, list | tuple)
                and len(item) == 2
                and all(_is_int(p) and p >= 0 for p in item)
            ):
                axes.append((int(item[0]), int(item[1])))
            else:
                raise _fail(_PADDING, value)
        return tuple(axes)
    raise _fail(_PADDING, value)
