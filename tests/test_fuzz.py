"""Random input of every kind, hostile or careless, gets an answer or convcalc's own
error: `ConvcalcError` with one line that names where (from the library), or exit status
2 with one `error:` line (from the command line). Never another exception, a traceback, a
second line or a hang.

Documents are drawn from the real vocabulary (kinds, parameter and block names, padding
words) mixed with junk, and from scalars of every type and size; text is the bundled and
example models, mutated. Each example runs under an alarm, so a hang fails the test.
"""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytest.importorskip("hypothesis")

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from convcalc.analysis.analyze import analyze
from convcalc.errors import ConvcalcError
from convcalc.loader import BLOCKS, build_model
from convcalc.model.layers import KINDS
from convcalc.source import parse
from tests.helpers import ROOT
from tests.hostile.harness import CONTROL

#: Seconds one example may take before it counts as a hang (none comes near it).
HANG_GUARD = 10

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # `cli` only redirects; nothing carries over
    ],
}


class Hang(Exception):
    """An example ran past HANG_GUARD."""


@contextmanager
def hang_guard() -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {HANG_GUARD} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_GUARD)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------
# The vocabulary, and junk

KIND_NAMES = sorted(KINDS)
PARAMETERS = {
    kind: sorted(f.name for f in dataclasses.fields(cls) if "check" in f.metadata)
    for kind, cls in KINDS.items()
}
ALL_PARAMETERS = sorted({name for names in PARAMETERS.values() for name in names})
BLOCK_KEYS = ["times", "layers", "body", "shortcut", "name"]
WORDS = [
    "same", "valid", "nearest", "nearest-exact", "linear", "bilinear", "trilinear",
    "bicubic", "zeros", "reflect", "replicate", "circular", "none", "tanh", "relu",
    "conv", "layers", "input", "x-", "", " ", "3x3", "1e400", "~", "null", "yes",
]  # fmt: skip
HUGE = [2**31, 2**63, 10**30, 10**400, -(10**30), 10**4000]

numbers = st.one_of(
    st.integers(-2, 9),
    st.integers(-2, 9),
    st.integers(),
    st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.5, 2.0, -0.0, 1e-300, 1e300]),
)
# Text a YAML file may hold, and text of any characters (which YAML refuses).
strings = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8),
    st.text(max_size=8),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(WORDS), strings)
junk_keys = st.one_of(st.sampled_from(WORDS), strings)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(junk_keys, inner, max_size=4)
    ),
    max_leaves=12,
)
small = st.integers(1, 6)
# Mostly what a parameter could be (a size, one per axis, [before, after] pairs), then junk.
values = st.one_of(
    small,
    small,
    st.lists(small, min_size=1, max_size=3),
    st.lists(st.lists(st.integers(0, 3), min_size=2, max_size=2), min_size=1, max_size=3),
    scalars,
    junk,
)
shapes = st.one_of(
    st.lists(st.integers(1, 24), min_size=1, max_size=4),
    st.lists(st.integers(1, 24), min_size=2, max_size=4),
    st.lists(st.integers(1, 24), min_size=3, max_size=3),
    st.lists(numbers, max_size=5),
    junk,
)


@st.composite
def leaves(draw: st.DrawFn) -> Any:
    """A leaf layer as a model file writes it: a bare kind, or {kind: parameters}, with
    parameters drawn mostly from the kind's own."""
    kind = draw(st.one_of(st.sampled_from(KIND_NAMES), st.sampled_from(KIND_NAMES), junk_keys))
    own = PARAMETERS.get(kind) or ALL_PARAMETERS
    names = st.one_of(st.sampled_from(own), st.sampled_from(own), st.sampled_from(ALL_PARAMETERS))
    form = draw(st.integers(0, 4))
    if form == 0:
        return kind
    if form == 1:
        return {kind: draw(st.one_of(st.none(), junk))}
    return {kind: draw(st.dictionaries(st.one_of(names, junk_keys), values, max_size=5))}


def blocks(layer_lists: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Repeat counts stay small or far past the limit: 1,000,000 relus are valid, only slow.
    times = st.one_of(st.integers(-1, 3), st.sampled_from([10**7, 10**400]), scalars)
    branches = st.lists(layer_lists, max_size=3)
    return st.one_of(
        st.builds(lambda items: {"sequential": items}, layer_lists),
        st.builds(lambda n, items: {"repeat": {"times": n, "layers": items}}, times, layer_lists),
        st.builds(lambda b, s: {"residual": {"body": b, "shortcut": s}}, layer_lists, layer_lists),
        st.builds(lambda b: {"add": b}, branches),
        st.builds(lambda b: {"concat": b}, branches),
        st.builds(
            lambda kind, fields: {kind: fields},
            st.sampled_from(BLOCKS),
            st.dictionaries(st.sampled_from(BLOCK_KEYS), st.one_of(layer_lists, junk), max_size=3),
        ),
    )


layer_lists = st.recursive(
    st.lists(st.one_of(leaves(), junk), max_size=4),
    lambda inner: st.lists(st.one_of(leaves(), leaves(), blocks(inner)), max_size=4),
    max_leaves=12,
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """A model document: mostly {input, layers}, sometimes with junk keys, sometimes junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(junk)
    document = {"layers": draw(st.one_of(layer_lists, layer_lists, layer_lists, junk))}
    if draw(st.integers(0, 3)):
        document["input"] = draw(shapes)
    if draw(st.integers(0, 4)) == 0:
        keys = st.one_of(st.sampled_from(["name", "x-a"]), junk_keys)
        document = {**draw(st.dictionaries(keys, junk, max_size=2)), **document}
    return document


def as_text(document: Any, form: str) -> str:
    if form == "json":
        return json.dumps(document, indent=1)
    return yaml.safe_dump(document, default_flow_style=form == "flow", allow_unicode=True)


def check_error(error: ConvcalcError, file: str) -> None:
    """convcalc's own error: one line without control characters, naming the place (the
    file, at least)."""
    text = str(error)
    assert not CONTROL.search(text) and "\n" not in text, repr(text)
    assert text.startswith(file), text


def load_and_analyze(text: str, file: str) -> None:
    with hang_guard():
        try:
            analyze(build_model(parse(text, file)))
        except ConvcalcError as error:
            check_error(error, file)


# ---------------------------------------------------------------------------------------
# The library: text → model → analysis


@settings(max_examples=400, **SETTINGS)
@given(documents(), st.sampled_from(["json", "block", "flow"]))
def test_random_documents(document: Any, form: str) -> None:
    load_and_analyze(as_text(document, form), "model.yaml")


SOURCES = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("convcalc/zoo/*.yaml")])
SNIPPETS = [
    "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "!!python/object:os.system ",
    "!!binary ", "\t", "'", '"', "#", "---\n", "...\n", "? ", "|\n", ">\n", "%YAML 1.1\n",
    "\x00", "\ufeff", "0x10", "1e400", "9" * 40, "9" * 4400, "-1", "true", "null", ".nan",
]  # fmt: skip


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """A bundled or example model with a few random cuts, copies and insertions."""
    text = draw(st.sampled_from(SOURCES)).read_text()
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = min(len(text), start + draw(st.integers(0, 40)))
        action = draw(st.integers(0, 2))
        if action == 0:
            text = text[:start] + text[end:]
        elif action == 1:
            text = text[:start] + text[start:end] * 2 + text[end:]
        else:
            insert = draw(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=4)))
            text = text[:start] + insert + text[start:]
    return text


@settings(max_examples=250, **SETTINGS)
@given(mutated_text())
def test_mutated_model_files(text: str) -> None:
    load_and_analyze(text, "model.yaml")


# ---------------------------------------------------------------------------------------
# The command line

Run = Callable[..., Any]


@pytest.fixture
def run(cli: Callable[..., Any]) -> Callable[..., Any]:
    """`cli` under the hang guard."""

    def once(*args: str, stdin: str | bytes = b"") -> Any:
        with hang_guard():
            return cli(*args, stdin=stdin)

    return once


def check_run(result: Any) -> None:
    """Success, or exit status 2 with one `error:` line (no control characters) and
    nothing on standard output."""
    assert result.code in (0, 2), result
    if result.code == 2:
        assert result.stderr.startswith("error: "), result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
        assert not CONTROL.search(result.stderr[:-1]), repr(result.stderr)
        assert result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr


LAYER_FLAGS = [
    "--out-channels", "--kernel-size", "--stride", "--padding", "--dilation", "--groups",
    "--output-padding", "--output-size", "--scale-factor", "--size", "--mode",
    "--out-features", "--num-groups", "--in-channels", "--in-features",
]  # fmt: skip
SWITCHES = ["--no-bias", "--bias", "--ceil-mode", "--align-corners", "--json", "--explain"]

# Flag text: mostly numbers the way flags write them (3, 3x5, 0,1x1,1, 1.5), then anything.
number_text = st.one_of(
    st.integers(-2, 12).map(str),
    st.sampled_from(["0", "00", "+3", "1.5", "3.0", "1e400", "inf", "nan", "-0", "9" * 4400]),
    st.sampled_from([str(n) for n in HUGE]),
)
flag_text = st.one_of(
    number_text,
    st.lists(number_text, min_size=1, max_size=4).map("x".join),
    st.lists(
        st.lists(number_text, min_size=1, max_size=3).map(",".join), min_size=1, max_size=3
    ).map("x".join),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)
shape_text = st.one_of(
    st.lists(st.integers(1, 20).map(str), min_size=2, max_size=4).map("x".join), flag_text
)


# KIND may also be a PyTorch module as print(model) shows it.
PRINTED = [
    "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2))", "Conv2d(", "MaxPool2d(kernel_size=2)",
    "Linear(in_features=4, out_features=2, bias=True)", "Conv1d(1, 1, 3, padding='same')",
    "BatchNorm2d(3, eps=1e-05)", "ReLU(inplace=True)", "Conv2d(3, 8, kernel_size=10**400)",
]  # fmt: skip


@settings(max_examples=300, **SETTINGS)
@given(
    st.one_of(st.sampled_from(KIND_NAMES), st.sampled_from(PRINTED), strings),
    shape_text,
    st.dictionaries(st.sampled_from(LAYER_FLAGS), flag_text, max_size=5),
    st.lists(st.sampled_from(SWITCHES), max_size=2, unique=True),
)
def test_layer_flags(
    run: Run, kind: str, shape: str, flags: dict[str, str], switches: list[str]
) -> None:
    # `--flag=value`, so that a value that starts with a dash stays a value, and the
    # kind after `--`, so that it stays the kind.
    args = [f"--input={shape}", *(f"{flag}={text}" for flag, text in flags.items()), *switches]
    check_run(run("layer", *args, "--", kind))


@settings(max_examples=150, **SETTINGS)
@given(
    documents(),
    st.sampled_from(["json", "block", "flow"]),
    st.lists(
        st.one_of(
            shape_text.map(lambda text: f"--input={text}"),
            st.sampled_from(["--json", "--format=csv", "--format=markdown", "--explain"]),
        ),
        max_size=2,
    ),
)
# Found by this test: a key that is a newline made a two-line error.
@example({"\n": None, "layers": []}, "json", [])
def test_net_on_standard_input(run: Run, document: Any, form: str, args: list[str]) -> None:
    check_run(run("net", "-", *args, stdin=as_text(document, form)))


SOLVE_FLAGS = [
    "--input", "--output", "--kernel-size", "--stride", "--dilation", "--max-kernel",
    "--max-stride", "--max-dilation", "--field", "--dilation-growth", "--limit",
]  # fmt: skip
solve_values = st.one_of(
    st.integers(-1, 40).map(str),
    st.integers(1, 10**6).map(str),
    st.sampled_from([str(n) for n in HUGE] + ["1.5", "x", ""]),
)


@settings(max_examples=150, **SETTINGS)
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(SOLVE_FLAGS), solve_values, max_size=5),
        # Mostly a question solve answers: sizes in and out, perhaps a fixed setting.
        st.fixed_dictionaries(
            {"--input": solve_values, "--output": solve_values},
            optional={flag: solve_values for flag in SOLVE_FLAGS[2:8]},
        ),
    ),
    st.lists(st.sampled_from(["--transpose", "--json"]), max_size=2, unique=True),
)
def test_solve_flags(run: Run, flags: dict[str, str], switches: list[str]) -> None:
    check_run(run("solve", *(f"{flag}={text}" for flag, text in flags.items()), *switches))


BUNDLED = ["alexnet", "resnet18", "unet", "wavenet", "mobilenet_v2"]


@settings(max_examples=60, **SETTINGS)
@given(
    st.sampled_from([*BUNDLED, "-"]),
    documents(),
    st.one_of(
        st.none(),
        st.tuples(st.integers(1, 80), st.integers(0, 20)).map(lambda r: f"{r[0]}..{r[0] + r[1]}"),
        st.sampled_from(["1..99999999999", f"{10**30}..{10**30 + 2}", "0..3", "3..1", ".."]),
        flag_text,
    ),
    st.booleans(),
    st.one_of(st.none(), shape_text),
)
def test_sizes_flags(
    run: Run, model: str, document: Any, sizes: str | None, smallest: bool, shape: str | None
) -> None:
    args = [f"--range={sizes}"] if sizes is not None else []
    args += ["--min"] if smallest else []
    args += [f"--input={shape}"] if shape is not None else []
    check_run(run("sizes", model, *args, "--json", stdin=as_text(document, "flow")))
