"""Which input sizes a network accepts: run it at each size (every spatial axis that
size), and find the smallest valid size and the period with which validity repeats."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from convcalc.analysis.analyze import Diagnostic, analyze
from convcalc.errors import ConvcalcError
from convcalc.model.layers import Shape
from convcalc.model.network import Model

__all__ = ["MAX_SEARCH", "Period", "SizeCheck", "check_size", "period", "smallest_valid"]

#: How far `smallest_valid` searches upward before it gives up.
MAX_SEARCH = 4096

#: Warnings that mean some input pixels are never read: the size is valid, not clean.
_DROPPING = ("dropped-input", "uncovered-input")


@dataclass(frozen=True)
class SizeCheck:
    """The network at one input size: does it run at all (`valid`: every output at
    least 1, every merge fits), does it run cleanly (`clean`: valid, and no layer drops
    input pixels), what comes out, and what breaks or drops where."""

    size: int
    input_shape: Shape
    valid: bool
    clean: bool
    output_shape: Shape | None
    issues: tuple[Diagnostic, ...]


def check_size(model: Model, template: Shape, size: int) -> SizeCheck:
    """Run `model` with every spatial axis of `template` set to `size`."""
    shape = (template[0], *(size,) * (len(template) - 1))
    try:
        analysis = analyze(model, shape)
    except ConvcalcError as error:
        path = error.where.path if error.where is not None else ""
        return SizeCheck(
            size, shape, False, False, None, (Diagnostic(path, "invalid", error.message),)
        )
    dropping = tuple(w for w in analysis.warnings if w.code in _DROPPING)
    return SizeCheck(size, shape, True, not dropping, analysis.output_shape, dropping)


def smallest_valid(model: Model, template: Shape, start: int = 1) -> int | None:
    """The smallest size from `start` up (to MAX_SEARCH) at which the network runs."""
    for size in range(start, MAX_SEARCH + 1):
        if check_size(model, template, size).valid:
            return size
    return None


@dataclass(frozen=True)
class Period:
    """From `start` on, a size is in the set exactly when size % period is a residue."""

    start: int
    period: int
    residues: tuple[int, ...]


def period(checks: Iterable[SizeCheck], test: Callable[[SizeCheck], bool]) -> Period | None:
    """The shortest period with which `test` repeats over the checked sizes, counted
    from the first size that passes: every pair of sizes that far apart agrees, and at
    least one passing size passes again a period on. None if the range shows none."""
    passed = {check.size: test(check) for check in checks}
    start = next((size for size in sorted(passed) if passed[size]), None)
    if start is None:
        return None
    sizes = [size for size in sorted(passed) if size >= start]
    for length in range(1, len(sizes)):
        pairs = [(passed[s], passed[s + length]) for s in sizes if s + length in passed]
        if all(a == b for a, b in pairs) and (True, True) in pairs:
            residues = sorted({s % length for s in sizes if passed[s]})
            return Period(start, length, tuple(residues))
    return None
