"""PyTorch modules named on the command line (`convcalc net package.module:attribute`)
whose code misbehaves: it exits (sys.exit, os._exit), raises (even from a module's
`__getattr__`), crashes, loops forever (at import, in `__init__`, in `forward`), prints,
reads standard input, or is of the wrong type. The module runs in a child process: each
case ends in one `error:` line that says what the module did and in which step, within
--trace-timeout, and convcalc's own output stays clean."""

from __future__ import annotations

import json
import re
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from convcalc.imports.pytorch import TRACE_TIMEOUT
from tests.hostile.harness import Result, assert_clean_error, run_convcalc

#: A network that traces; the modules below reuse it.
NET = """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.relu(self.conv(x))
"""

#: A loop that never ends. It sleeps, to spare the machine's two cores; a busy loop is
#: killed the same way (test_signals has one).
FOREVER = "while True:\n    time.sleep(0.1)\n"

MODULES = {
    "exits_at_import": "import sys\nsys.exit(3)\n",
    "exits_hard_at_import": "import os\nos._exit(3)\n",
    "raises_at_import": "raise ValueError('no weights here')\n",
    "raising_getattr": "def __getattr__(name):\n    raise RuntimeError('lazy ' + name)\n",
    "loops_at_import": "import time\n" + FOREVER,
    "reads_input": "input()\n",
    "pkg/__init__.py": "from pkg import sub\n",
    "pkg/sub.py": NET,
    "prints": NET + "    print('imported')\n",
    "misbehaves": NET
    + """
    import os, signal, sys, time

    class ExitsInInit(Net):
        def __init__(self):
            sys.exit("not today")

    class ExitsHardInInit(Net):
        def __init__(self):
            os._exit(0)

    class LoopsInInit(Net):
        def __init__(self):
            while True:
                time.sleep(0.1)

    class LoopsInForward(Net):
        def forward(self, x):
            while True:
                time.sleep(0.1)

    class ExitsInForward(Net):
        def forward(self, x):
            sys.exit(5)

    class CrashesInForward(Net):
        def forward(self, x):
            os.kill(os.getpid(), signal.SIGSEGV)

    class NeedsArguments(Net):
        def __init__(self, width):
            super().__init__()

    def a_number():
        return 3

    number = 3
""",
}

#: What each module does, in the one line after `error: REFERENCE: `.
CASES = {
    "exits_at_import:Net": "the module called sys.exit(3) while being imported",
    "exits_hard_at_import:Net": "the module called os._exit(3) while being imported",
    "raises_at_import:Net": "importing raises_at_import raised ValueError: no weights here",
    "raising_getattr:Net": "looking up Net raised RuntimeError: lazy Net",
    "reads_input:Net": "importing reads_input raised EOFError: EOF when reading a line",
    "misbehaves:ExitsInInit": "the module called sys.exit('not today') while ExitsInInit() "
    "was called",
    "misbehaves:ExitsHardInInit": "the module called os._exit(0) while ExitsHardInInit() was "
    "called",
    "misbehaves:ExitsInForward": "the module called sys.exit(5) while being traced",
    "misbehaves:CrashesInForward": "the module's process was killed by SIGSEGV while being traced",
    "misbehaves:NeedsArguments": "calling NeedsArguments() raised TypeError: "
    "NeedsArguments.__init__() missing 1 required positional argument: 'width'",
    "misbehaves:a_number": "a_number() returned a int, not a torch.nn.Module",
    "misbehaves:number": "number is a int: expected a torch.nn.Module",
    "pkg:sub": "sub is a module: expected a torch.nn.Module, or a callable that returns one",
}

#: Seconds a looping module is given (--trace-timeout), after torch is imported: enough
#: for a small module to import and trace on a busy machine.
PATIENCE = 5

#: The same for the modules that loop.
LOOPS = {
    "loops_at_import:Net": f"the module did not finish within {PATIENCE} s while being "
    "imported (does it loop forever?); give it more time with --trace-timeout SECONDS",
    "misbehaves:LoopsInInit": f"the module did not finish within {PATIENCE} s while "
    "LoopsInInit() was called",
    "misbehaves:LoopsInForward": f"the module did not finish within {PATIENCE} s while being "
    "traced",
}


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the modules above, to run convcalc in."""
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("modules")
    for name, code in MODULES.items():
        path = folder / (name if name.endswith(".py") else name + ".py")
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(code))
    return folder


def run(modules: Path, *args: str) -> Result:
    # torch maps far more address space than the harness's default allows, and may take
    # longer than its time bound to import on a busy machine (the timeout gives it as
    # long again as the module).
    return run_convcalc(
        [*args, "--input", "3x8x8"], cwd=modules, memory=None, timeout=2 * TRACE_TIMEOUT + PATIENCE
    )


@pytest.fixture(scope="module")
def results(modules: Path) -> dict[str, Result]:
    """Every case, run side by side (each child imports torch, a second or two of CPU,
    and the loops wait out their time), the loops first."""
    patience = ("--trace-timeout", str(PATIENCE))
    with ThreadPoolExecutor(6) as pool:
        started = {
            reference: pool.submit(run, modules, "net", reference, *patience) for reference in LOOPS
        }
        started["export"] = pool.submit(
            run, modules, "export", "misbehaves:LoopsInForward", *patience
        )
        started |= {reference: pool.submit(run, modules, "net", reference) for reference in CASES}
        started["prints"] = pool.submit(run, modules, "net", "prints:Net", "--json")
        started["package"] = pool.submit(run, modules, "net", "pkg.sub:Net", "--json")
    return {name: future.result() for name, future in started.items()}


@pytest.mark.parametrize("reference", LOOPS)
def test_a_module_that_loops_is_stopped_in_time(results: dict[str, Result], reference: str) -> None:
    assert_clean_error(results[reference], f"{reference}: ", LOOPS[reference])


@pytest.mark.parametrize("reference", CASES)
def test_what_the_module_did_is_the_message(results: dict[str, Result], reference: str) -> None:
    assert_clean_error(results[reference], f"{reference}: ", CASES[reference])


def test_export_takes_the_time_limit_too(results: dict[str, Result]) -> None:
    assert_clean_error(
        results["export"],
        "misbehaves:LoopsInForward: ",
        f"the module did not finish within {PATIENCE} s while being traced",
    )


def test_what_a_module_prints_goes_to_standard_error(results: dict[str, Result]) -> None:
    result = results["prints"]
    assert (result.code, result.stderr) == (0, "imported\n")
    assert json.loads(result.stdout)["output_shape"] == [4, 6, 6]


def test_a_module_in_a_package(results: dict[str, Result]) -> None:
    result = results["package"]
    assert (result.code, result.stderr) == (0, "")
    # PyTorch: Conv2d(3, 4, 3) has 4·3·3·3 + 4 parameters.
    assert json.loads(result.stdout)["totals"]["params"] == 4 * 27 + 4


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf"])
def test_the_time_limit_is_a_positive_number(seconds: str) -> None:
    result = run_convcalc(["net", "nets:Net", "--input", "3x8x8", "--trace-timeout", seconds])
    assert_clean_error(result, "--trace-timeout: ", "expected a positive number of seconds")


def test_the_default_time_limit_is_documented() -> None:
    assert TRACE_TIMEOUT == 60
    help_text = run_convcalc(["net", "--help"]).stdout
    assert re.search(r"\(default:\s+60\)", help_text), help_text
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "--trace-timeout" in readme and "60 s" in readme
