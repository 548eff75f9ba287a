"""Checks for layer parameters, shared by model files and command-line flags.

Each check takes a plain value (as YAML or a flag gives it) and returns the value the
layer keeps, or raises `ConvcalcError` saying what was expected and what it got. YAML's
`true` is not an integer and `3.0` is not a kernel size: types are checked exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import field
from fractions import Fraction
from typing import Any

from convcalc.errors import ConvcalcError

__all__ = [
    "Check",
    "axis_non_negative",
    "axis_positive",
    "boolean",
    "choice",
    "describe",
    "non_negative_int",
    "number",
    "optional",
    "output_sizes",
    "padding_form",
    "param",
    "positive_int",
    "probability",
    "scale_factors",
]

Check = Callable[[Any], Any]


def param(check: Check, default: Any = ...) -> Any:
    """A dataclass field that is a layer parameter: `check` validates what the user gave;
    without `default` the parameter is required."""
    if default is ...:
        return field(metadata={"check": check})
    return field(default=default, metadata={"check": check})


def describe(value: Any) -> str:
    """A value as the user wrote it, for messages: 0, true, 3.0, "abc", [1, 2]."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _fail(expected: str, value: Any) -> ConvcalcError:
    return ConvcalcError(f"expected {expected}, got {describe(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise _fail("a positive integer", value)
    return int(value)


def non_negative_int(value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise _fail("a non-negative integer", value)
    return int(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail("true or false", value)
    return value


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail("a number", value)
    return value


def probability(value: Any) -> float:
    checked = number(value)
    if not 0 <= checked <= 1:
        raise _fail("a number from 0 to 1", value)
    return checked


def choice(*options: str) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            raise _fail("one of " + ", ".join(options), value)
        return str(value)

    return check


def optional(check: Check) -> Check:
    """`check`, or null."""

    def check_or_none(value: Any) -> Any:
        return None if value is None else check(value)

    return check_or_none


def _axis(check: Check, expected: str) -> Check:
    def check_axes(value: Any) -> int | tuple[int, ...]:
        if isinstance(value, list):
            if not 1 <= len(value) <= 3:
                raise _fail(f"{expected}, or a list of 1 to 3 of them (one per axis)", value)
            try:
                return tuple(check(v) for v in value)
            except ConvcalcError:
                raise _fail(f"a list of {expected}s, one per axis", value) from None
        try:
            return int(check(value))
        except ConvcalcError:
            raise _fail(f"{expected}, or a list of them (one per axis)", value) from None

    return check_axes


axis_positive = _axis(positive_int, "a positive integer")
axis_non_negative = _axis(non_negative_int, "a non-negative integer")


def output_sizes(value: Any) -> int | tuple[int | None, ...]:
    """Adaptive pooling's output size: a positive integer, or one per axis (null keeps
    that axis's size, as in PyTorch)."""
    return _axis(optional(positive_int), "a positive integer or null")(value)  # type: ignore[no-any-return]


def _scale(value: Any) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _fail("a positive number", value)
    if not math.isfinite(value):
        raise _fail("a finite positive number", value)
    # The decimal the user wrote (1.5, 0.1), not the binary float nearest to it.
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def scale_factors(value: Any) -> Fraction | tuple[Fraction, ...]:
    if isinstance(value, list):
        if not 1 <= len(value) <= 3:
            raise _fail("a positive number, or a list of 1 to 3 of them (one per axis)", value)
        return tuple(_scale(v) for v in value)
    return _scale(value)


_PADDING = (
    "a non-negative integer, a list with one per axis, a list of [before, after] pairs, "
    '"same" or "valid"'
)


def padding_form(value: Any) -> int | str | tuple[int | tuple[int, int], ...]:
    if value in ("same", "valid"):
        return str(value)
    if _is_int(value) and value >= 0:
        return int(value)
    if isinstance(value, list) and 1 <= len(value) <= 3:
        axes: list[int | tuple[int, int]] = []
        for item in value:
            if _is_int(item) and item >= 0:
                axes.append(int(item))
            elif (
                isinstance(item, list)
                and len(item) == 2
                and all(_is_int(p) and p >= 0 for p in item)
            ):
                axes.append((int(item[0]), int(item[1])))
            else:
                raise _fail(_PADDING, value)
        return tuple(axes)
    raise _fail(_PADDING, value)
