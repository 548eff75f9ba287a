"""Where a model comes from, to its plain data and its graph: a model file at a path,
standard input ("-"), a bundled model by name, an ONNX file, or a PyTorch module
(`package.module:attribute`). This sits above the readers of each (`source`,
`imports.onnx`, `imports.pytorch`) and the loader, so that imports point one way:
the importers use the loader's checks, and nothing below imports this.
"""

from __future__ import annotations

import os
import re

from convcalc.errors import ConvcalcError
from convcalc.loader import build_model
from convcalc.model.layers import Shape
from convcalc.model.network import Model
from convcalc.source import Document
from convcalc.text import shorten

__all__ = ["open_document", "open_model"]


def open_model(
    source: str, input_shape: Shape | None = None, trace_timeout: float | None = None
) -> Model:
    """A model from a file path, "-" for standard input, or a bundled model's name;
    see `open_document`."""
    return build_model(open_document(source, input_shape, trace_timeout))


def open_document(
    source: str, input_shape: Shape | None = None, trace_timeout: float | None = None
) -> Document:
    """The plain data of a model file at a path, "-" for standard input, a bundled
    model's name, an ONNX file (`.onnx`, imported at `input_shape` if given: its
    input may have symbolic sizes), or a PyTorch module (`package.module:attribute`,
    traced at `input_shape`, which it needs, within `trace_timeout` seconds; None:
    `imports.pytorch.TRACE_TIMEOUT`)."""
    from convcalc.source import parse, read

    if source.lower().endswith(".onnx"):
        from convcalc.imports.onnx import read_onnx

        return Document(read_onnx(source, input_shape), source)
    label = None
    if source != "-" and _nothing_at(source):
        if ":" in source:
            from convcalc.imports.pytorch import REFERENCE, read_reference

            if REFERENCE.fullmatch(source):  # package.module:attribute, a PyTorch module
                return Document(read_reference(source, input_shape, trace_timeout), source)
        from convcalc.zoo import model_path

        bundled = model_path(source)
        if bundled is None:
            raise ConvcalcError(f"{shorten(source)}: no such file or bundled model{_hint(source)}")
        source, label = str(bundled), bundled.name
    file, text = read(source)
    return parse(text, label or file)


def _hint(source: str) -> str:
    """The bundled models a missing name was likely meant as (not for a path: a file
    name is no misspelt model), or else all of them."""
    from convcalc.suggest import did_you_mean, suggest
    from convcalc.zoo import model_names

    names = model_names()
    meant = [] if re.search(r"[/\\.]", source) else suggest(source, names)
    return f"; {did_you_mean(meant)}" if meant else f" (bundled: {', '.join(names)})"


def _nothing_at(path: str) -> bool:
    """Whether no file, directory or link is at `path`, which may then name a module or
    a bundled model. A path that cannot be looked up (too long, a loop of links) is
    left to `read`, which says why."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL byte
        return True
    except OSError:
        return False
    return False
