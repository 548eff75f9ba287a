"""A PyTorch module's printed form → a convcalc layer.

`print(model)` shows each module as a call, `Conv2d(3, 64, kernel_size=(7, 7), stride=(2,
2), padding=(3, 3), bias=False)`, and people copy it from there, sometimes with the
`(conv1): ` in front. The text is parsed as a Python expression (`ast`) and only literals
are read from it: numbers, strings, True/False/None, tuples and lists, and bare words,
which is how the printed form shows some strings (`padding=same`, `padding_mode=reflect`).
Nothing is evaluated.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from convcalc.errors import ConvcalcError, Where
from convcalc.imports.torch_modules import MODULES, bind, translate
from convcalc.model.layers import Shape
from convcalc.source import name_hint

__all__ = ["looks_printed", "read_printed"]

#: Longer texts are no module's printed form; the parser is spared them.
MAX_LENGTH = 2_000

_EXAMPLE = "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2))"
_LABEL = re.compile(r"\s*\([\w.-]*\):\s*")  # "(conv1): " as print(model) shows it
_START = re.compile(r"\s*(\([\w.-]*\):\s*)?([A-Za-z_]\w*\.)*[A-Z]\w*\s*(\(|$)")


def looks_printed(text: str) -> bool:
    """Whether a layer KIND is meant as a module's printed form: a capitalised name
    (`ReLU`, `nn.Conv2d`), with its arguments in parentheses or none."""
    return _START.match(text) is not None


def read_printed(text: str, shape: Shape) -> tuple[str, str, dict[str, Any]]:
    """The module's type name, and the convcalc layer (kind and parameters) for the
    printed module `text` on an input of `shape`; errors name the argument at fault
    (`Conv2d.stride`)."""
    if len(text) > MAX_LENGTH:
        raise ConvcalcError(
            f"a module's printed form is at most {MAX_LENGTH:,} characters, got {len(text):,}"
        )
    source = _LABEL.sub("", text, count=1).strip()
    call = _parse(source)
    name = _type_name(call.func)
    module = MODULES.get(name)
    if module is None:
        if not name.isascii():  # Cοnv2d, with a Greek ο
            raise ConvcalcError(f"unknown PyTorch module{name_hint(name, MODULES)}", Where(name))
        raise ConvcalcError(
            "convcalc does not follow this PyTorch module; it follows "
            + ", ".join(sorted(MODULES)),
            Where(name),
        )
    names = [parameter for parameter, _ in module.parameters]
    positional = [
        _literal(argument, source, f"{name}.{names[index]}" if index < len(names) else name)
        for index, argument in enumerate(call.args)
    ]
    keywords = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise ConvcalcError("**arguments cannot be read; write each one", Where(name))
        if keyword.arg in keywords:  # Python refuses this call; ast.parse does not
            raise ConvcalcError(
                f"{keyword.arg} is given twice; give it once", Where(f"{name}.{keyword.arg}")
            )
        keywords[keyword.arg] = _literal(keyword.value, source, f"{name}.{keyword.arg}")
    try:
        kind, params = translate(module, bind(module, positional, keywords), shape)
    except ConvcalcError as error:
        parameter = error.where.path if error.where is not None else ""
        raise ConvcalcError(
            error.message, Where(f"{name}.{parameter}" if parameter else name)
        ) from None
    return name, kind, params


def _parse(source: str) -> ast.Call:
    expected = f"expected a PyTorch module as print(model) shows it, such as {_EXAMPLE}"
    try:
        tree = ast.parse(source if "(" in source else source + "()", mode="eval")
    # Null bytes (ValueError), nesting too deep for the parser (RecursionError, MemoryError).
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ConvcalcError(f"{expected}; got {source!r}", Where("KIND")) from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name | ast.Attribute):
        raise ConvcalcError(f"{expected}; got {source!r}", Where("KIND"))
    return call


def _type_name(func: ast.expr) -> str:
    """`Conv2d` from `Conv2d`, `nn.Conv2d` or `torch.nn.Conv2d`."""
    return func.attr if isinstance(func, ast.Attribute) else ast.unparse(func)


def _literal(node: ast.expr, source: str, where: str) -> Any:
    """The value of a literal: a number, a string, True/False/None, a bare word (as a
    string), or a tuple or list of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | None):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        number = node.operand.value if isinstance(node.operand, ast.Constant) else None
        if isinstance(number, int | float) and not isinstance(number, bool):
            return -number if isinstance(node.op, ast.USub) else number
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_literal(item, source, where) for item in node.elts)
    text = ast.get_source_segment(source, node) or ast.dump(node)
    raise ConvcalcError(
        f"expected a literal (a number, a string, a tuple), got {text!r}: the printed form is "
        "read, never run",
        Where(where),
    )
