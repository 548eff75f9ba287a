"""A PyTorch module → a convcalc model, by running it once (`torch_trace`).

torch is imported only here, and only when a module is imported. A module named on the
command line (`package.module:attribute`) is imported, made and traced in a child
process, under a time limit, so that whatever its code does ends in a message
(`read_reference`).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import importlib
import json
import os
import re
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from convcalc.errors import ConvcalcError, Where
from convcalc.imports.torch_trace import trace
from convcalc.model.layers import Shape

if TYPE_CHECKING:
    from convcalc.model.network import Model

__all__ = ["REFERENCE", "TRACE_TIMEOUT", "from_torch", "read_reference", "torch_document"]

INSTALL = (
    "pip install 'convcalc[torch]' (on these machines install torch==2.13.0 first: "
    "pip install torch==2.13.0; an unpinned torch pulls gigabytes)"
)

#: `package.module:attribute` on the command line: a module to import and trace.
REFERENCE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

#: Seconds that importing, making and tracing such a module may take (`--trace-timeout`),
#: since its code may loop forever; and that importing torch before it may take (a
#: second or two, far longer on a busy machine), which takes none of the module's time.
TRACE_TIMEOUT = 60.0


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ConvcalcError(f"importing PyTorch modules needs torch: {INSTALL}") from None
    return torch


def from_torch(module: Any, input_shape: Sequence[int]) -> Model:
    """The convcalc model of a `torch.nn.Module`, run once in eval mode on an input of
    `input_shape` (channels first, without the batch: (3, 224, 224)). Needs
    `convcalc[torch]`. Raises `ConvcalcError` naming the module and the operation it
    cannot follow."""
    from convcalc.loader import build_model
    from convcalc.source import Document

    return build_model(Document(torch_document(module, input_shape)))


def torch_document(
    module: Any, input_shape: Sequence[int], label: str | None = None
) -> dict[str, Any]:
    """The model document (`{"name", "input", "layers"}`) of a traced module; `label`
    names where the module came from, in messages."""
    from convcalc.loader import check_shape

    torch = _torch()
    where = Where("", label)
    if not isinstance(module, torch.nn.Module):
        raise ConvcalcError(f"expected a torch.nn.Module, got {type(module).__name__}", where)
    try:
        shape = check_shape(list(input_shape))
    except ConvcalcError as error:
        raise ConvcalcError(error.message, Where("input_shape", label)) from None
    return trace(torch, module, shape, label)


def read_reference(
    reference: str, input_shape: Shape | None, timeout: float | None = None
) -> dict[str, Any]:
    """The model document of `package.module:attribute`, a torch.nn.Module or a callable
    that returns one, imported with the current directory on the path.

    The module's code may do anything: exit, loop forever, crash. So it is imported,
    made and traced in a child process (`_apart`), killed after `timeout` seconds (None:
    TRACE_TIMEOUT) of the module's code, and each way it can end becomes a message."""
    where = Where("", reference)
    if input_shape is None:
        raise ConvcalcError(
            "a PyTorch module has no input shape of its own: give --input, such as 3x224x224",
            where,
        )
    seconds = TRACE_TIMEOUT if timeout is None else timeout
    return _apart(functools.partial(_import_and_trace, reference, input_shape), seconds, where)


def _import_and_trace(
    reference: str, input_shape: Shape, doing: Callable[[str], None]
) -> dict[str, Any]:
    """What `read_reference` does in the child; `doing` tells the parent each step, in
    the words of its messages ("while being imported")."""
    torch = _torch()
    where = Where("", reference)
    module_name, _, attribute = reference.partition(":")
    sys.path.insert(0, os.getcwd())
    doing("while being imported")
    try:
        found: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise ConvcalcError(
                f"no such file, and no Python module {missing!r} (looked in the current "
                "directory and on sys.path)",
                where,
            ) from None
        raise ConvcalcError(f"importing {module_name} failed: {error}", where) from None
    # The module's own code may fail in any way; the message is what matters.
    except Exception as error:
        raise ConvcalcError(
            f"importing {module_name} raised {type(error).__name__}: {_first_line(error)}", where
        ) from None
    doing(f"while {attribute} was looked up")
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ConvcalcError(f"{module_name} has no attribute {attribute!r}", where) from None
        except Exception as error:  # a module's __getattr__, a property
            raise ConvcalcError(
                f"looking up {attribute} raised {type(error).__name__}: {_first_line(error)}",
                where,
            ) from None
    if not isinstance(found, torch.nn.Module):
        if not callable(found):
            raise ConvcalcError(
                f"{attribute} is a {type(found).__name__}: expected a torch.nn.Module, or a "
                "callable that returns one",
                where,
            )
        doing(f"while {attribute}() was called")
        try:
            found = found()
        except Exception as error:
            raise ConvcalcError(
                f"calling {attribute}() raised {type(error).__name__}: {_first_line(error)}",
                where,
            ) from None
        if not isinstance(found, torch.nn.Module):
            raise ConvcalcError(
                f"{attribute}() returned a {type(found).__name__}, not a torch.nn.Module", where
            )
    doing("while being traced")
    return torch_document(found, input_shape, reference)


def _apart(
    work: Callable[[Callable[[str], None]], dict[str, Any]], timeout: float, where: Where
) -> dict[str, Any]:
    """`work(doing)` run in a forked child process, which sends back its plain result
    (JSON) through a pipe, or the error it raised: what the work does (exit, loop,
    crash, print) cannot reach convcalc itself. The child is killed once it has taken
    `timeout` seconds from its first step (`doing`), or TRACE_TIMEOUT to reach it (to
    import torch); how it ended, and the last step it had begun, make the message."""
    if not hasattr(os, "fork"):  # Windows: in this process, without a time limit
        return work(lambda step: None)
    for stream in (sys.stdout, sys.stderr):  # or the child would write their buffers again
        if stream is not None:
            stream.flush()
    reader, writer = os.pipe()
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        os.close(reader)
        _child(work, writer, parent)
    os.close(writer)
    try:
        data, status = _wait(child, reader, TRACE_TIMEOUT, timeout)
    finally:
        os.close(reader)
    step, began = "while torch was imported", False
    for line in data.split(b"\n")[:-1]:  # whole lines: the last is cut short, or empty
        message = json.loads(line)
        if "doing" in message:
            step, began = message["doing"], True
        if "document" in message:
            document: dict[str, Any] = message["document"]
            return document
        if "error" in message:
            raise ConvcalcError(
                message["error"], Where(**message["where"]) if message["where"] else None
            )
        if "exit" in message:
            raise ConvcalcError(f"the module called sys.exit({message['exit']}) {step}", where)
        if "raised" in message:
            raise ConvcalcError(f"the module raised {message['raised']} {step}", where)
        if "bug" in message:
            raise RuntimeError(f"convcalc failed {step} (the traceback above is the child's)")
    if status is None and not began:
        raise ConvcalcError(f"importing torch did not finish within {TRACE_TIMEOUT:g} s", where)
    if status is None:
        raise ConvcalcError(
            f"the module did not finish within {timeout:g} s {step} (does it loop forever?); "
            "give it more time with --trace-timeout SECONDS",
            where,
        )
    if os.WIFSIGNALED(status):
        killer = signal.Signals(os.WTERMSIG(status)).name
        raise ConvcalcError(f"the module's process was killed by {killer} {step}", where)
    raise ConvcalcError(
        f"the module called os._exit({os.waitstatus_to_exitcode(status)}) {step}", where
    )


def _wait(child: int, reader: int, first: float, then: float) -> tuple[bytes, int | None]:
    """What the child sent until it closed the pipe, and its wait status; None if it
    was still running `first` seconds before its first message, or `then` seconds
    after, when it is killed."""
    deadline = time.monotonic() + first
    data = bytearray()
    status = None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([reader], [], [], left)[0]:
                break
            chunk = os.read(reader, 1 << 16)
            if not chunk:  # closed: the child is ending
                break
            if b"\n" in chunk and b"\n" not in data:  # the first message
                deadline = time.monotonic() + then
            data += chunk
        while time.monotonic() < deadline:
            ended, code = os.waitpid(child, os.WNOHANG)
            if ended:
                status = code
                break
            time.sleep(0.01)
    finally:
        if status is None:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
    return bytes(data), status


def _child(
    work: Callable[[Callable[[str], None]], dict[str, Any]], writer: int, parent: int
) -> NoReturn:
    """The child's side of `_apart`: it never returns."""
    try:
        if sys.platform.startswith("linux"):
            # Die with the parent: it kills the child on a timeout, but if it is killed
            # itself (Ctrl-C, kill), the child would go on looping.
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)
        gc.enable()  # the command line turns it off for its own short run
        os.dup2(2, 1)  # what the module prints goes to standard error, not into convcalc's output
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)  # and it reads nothing
        with open(writer, "w", encoding="utf-8") as pipe:

            def send(message: dict[str, Any]) -> None:
                pipe.write(json.dumps(message) + "\n")
                pipe.flush()

            try:
                send({"document": work(lambda step: send({"doing": step}))})
            except ConvcalcError as error:
                where = dataclasses.asdict(error.where) if error.where is not None else None
                send({"error": error.message, "where": where})
            except SystemExit as exit:
                send({"exit": repr(exit.code) if exit.code is not None else ""})
            except Exception:
                # The module's own exceptions are messages already: this is a bug of
                # convcalc's, whose traceback goes to standard error (the parent's).
                traceback.print_exc()
                send({"bug": True})
            except BaseException as error:  # KeyboardInterrupt, raised by the module's code
                send({"raised": f"{type(error).__name__}: {_first_line(error)}"})
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    finally:
        os._exit(0)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
