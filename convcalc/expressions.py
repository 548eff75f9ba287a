"""Integer arithmetic on a definition's arguments: the `${…}` of SPEC §6.2.

`+ − * // %`, unary minus, parentheses, `min(…)` and `max(…)`, whole numbers and
argument names, and nothing else. The text is parsed here by recursive descent and
evaluated on Python integers; it is never handed to Python's own parser or `eval`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from convcalc.errors import ConvcalcError

__all__ = ["MAX_LENGTH", "evaluate"]

#: Longest expression accepted (characters): a bound on the parser's work and depth.
MAX_LENGTH = 1000

#: Deepest nesting of parentheses and signs: the parser recurses once per level.
_MAX_NESTING = 100

#: Values stay within 64-bit integers, as every count in a model does.
_LIMIT = 2**63 - 1

_TOKEN = re.compile(
    r"\s*(?:(?P<number>[0-9]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>//|[-+*%(),]))"
)


def _tokens(text: str) -> list[str]:
    tokens, at = [], 0
    while at < len(text):
        if text[at:].isspace():
            break
        found = _TOKEN.match(text, at)
        if found is None:
            raise ConvcalcError(
                f"cannot read {text[at : at + 10].strip()!r} in the expression {text!r}: it "
                "takes whole numbers, argument names, + - * // %, parentheses, min(…) and max(…)"
            )
        tokens.append(found.group(found.lastgroup or ""))
        at = found.end()
    return tokens


class _Parser:
    def __init__(self, text: str, value_of: Callable[[str], int]) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.value_of = value_of
        self.depth = 0

    def fail(self, message: str) -> ConvcalcError:
        return ConvcalcError(f"{message} in the expression {self.text!r}")

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, token: str | None = None) -> str:
        found = self.peek()
        if found is None or (token is not None and found != token):
            raise self.fail(f"expected {token or 'more'}, got {found or 'the end'}")
        self.at += 1
        return found

    def whole(self) -> int:
        value = self.sum()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return value

    def sum(self) -> int:
        value = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            value = self.checked(value + self.product() if op == "+" else value - self.product())
        return value

    def product(self) -> int:
        value = self.unary()
        while self.peek() in ("*", "//", "%"):
            op, right = self.take(), self.unary()
            if op != "*" and right == 0:
                raise self.fail("division by zero")
            value = self.checked(
                value * right if op == "*" else value // right if op == "//" else value % right
            )
        return value

    def unary(self) -> int:
        self.depth += 1  # every nesting (a parenthesis, a minus) passes here
        if self.depth > _MAX_NESTING:
            raise self.fail(f"more than {_MAX_NESTING} levels of nesting")
        try:
            return self.signed()
        finally:
            self.depth -= 1

    def signed(self) -> int:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        return self.atom()

    def atom(self) -> int:
        token = self.take()
        if token == "(":
            value = self.sum()
            self.take(")")
            return value
        if token.isdigit():
            return self.checked(int(token))
        if token in ("min", "max") and self.peek() == "(":
            self.take("(")
            values = [self.sum()]
            while self.peek() == ",":
                self.take(",")
                values.append(self.sum())
            self.take(")")
            return min(values) if token == "min" else max(values)
        if token[0].isalpha() or token[0] == "_":
            return self.value_of(token)
        raise self.fail(f"unexpected {token!r}")

    def checked(self, value: int) -> int:
        if abs(value) > _LIMIT:
            raise self.fail("a value past 2^63 − 1")
        return value


def evaluate(text: str, value_of: Callable[[str], int]) -> int:
    """The value of the integer expression `text`; `value_of(name)` gives an argument's
    value (and raises for an unknown name or one that is no whole number)."""
    if len(text) > MAX_LENGTH:
        raise ConvcalcError(f"an expression of {len(text):,} characters; at most {MAX_LENGTH:,}")
    return _Parser(text, value_of).whole()
