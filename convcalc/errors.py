"""The one error type of convcalc: bad input, with the place it came from.

The core raises `ConvcalcError` with a message that says what was expected; the loader
and the analysis add where (file, line, layer path) as the error travels up; the CLI
alone turns it into an `error:` line and exit status 2.

`str()` of an error is one line, whatever it quotes: control characters from the input
(a newline in a key, an escape in a file name) are escaped there (convcalc.text).
"""

from __future__ import annotations

from dataclasses import dataclass

from convcalc.text import printable

__all__ = ["ConvcalcError", "Where"]


@dataclass(frozen=True)
class Where:
    """A place in a model: its file and line when it came from one, and its path."""

    path: str = ""
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}")
        if self.path:
            parts.append(self.path)
        return ": ".join(parts)


class ConvcalcError(ValueError):
    """Bad input of any kind; `str()` gives the place, then what was expected."""

    def __init__(self, message: str, where: Where | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def at(self, where: Where) -> ConvcalcError:
        """This error placed at `where`, unless it already has a place."""
        return self if self.where is not None else ConvcalcError(self.message, where)

    def __str__(self) -> str:
        place = str(self.where) if self.where is not None else ""
        return printable(f"{place}: {self.message}" if place else self.message)
