"""Names and other text with control characters: an escape sequence, a newline, a
carriage return, DEL, a C1 control, a bidirectional override, a line separator.

Such text from a model file or the command line never reaches standard output, standard
error or a written file as it is: it is shown escaped (\\x1b, \\n, \\u202e), in every
command and every form (table, JSON, CSV, Markdown, --explain, --chart, pictures,
export). A model file that names a layer or the model with it is refused, at the line
of the name. Every error is one line, however long or strange the value it quotes.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.hostile.harness import Result, assert_clean_error, run_convcalc

#: What no output may hold: C0 but the newline that ends a line, DEL and C1, the line
#: and paragraph separators, the bidirectional embeddings, overrides and isolates, and
#: half surrogate pairs.
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

#: Hostile text that a command line and a file name can carry (no NUL, no slash).
HOSTILE = "a\x1b[31mb\nc\rd\x7fe\x9bf\u202eg\u2066h\u2028i\x85j\tk"


#: Every form of `net`'s output.
FORMS = [[], ["--json"], ["--format=csv"], ["--format=markdown"], ["--explain"], ["--chart"]]


def assert_clean(text: str, what: str = "output") -> None:
    found = UNSAFE.search(text)
    assert found is None, f"{what} holds {found[0]!r}: {text[-2000:]!r}"


def assert_clean_run(result: Result, *files: Path) -> None:
    """Success, nothing on standard error, and no unsafe character in standard output
    or in the files written."""
    assert (result.code, result.stderr) == (0, ""), result.stderr[-2000:]
    assert_clean(result.stdout)
    for file in files:
        assert_clean(file.read_bytes().decode("utf-8"), str(file))


def assert_clean_failure(result: Result, where: str = "", says: str = "") -> None:
    """The harness's clean error, and no bidirectional control or separator either."""
    assert_clean_error(result, where, says)
    assert_clean(result.stderr[:-1], "the error")


# ---------------------------------------------------------------------------------------
# Names with control characters are refused, at the name's line


REFUSED = [
    # (model text, where, what), the text on standard input
    (
        'name: "m\\e[2J"\ninput: [3, 8, 8]\nlayers: [relu]\n',
        "<stdin>:1: name",
        "the model's name may not contain control characters, got 'm\\x1b[2J'",
    ),
    (
        'input: [3, 8, 8]\nlayers:\n  - relu\n  - conv: {name: "a\\x1bb", out_channels: 4, '
        "kernel_size: 3}\n",
        "<stdin>:4: layers[1].conv.name",
        "a layer name may not contain control characters, got 'a\\x1bb'",
    ),
    (
        "input: [3, 8, 8]\nlayers:\n  - relu:\n      name: |\n        two\n        lines\n",
        "<stdin>:4: layers[0].relu.name",
        "got 'two\\nlines\\n'",
    ),
    (
        "input: [3, 8, 8]\nlayers:\n  - relu: {name: 'tab\there'}\n",
        "<stdin>:3: layers[0].relu.name",
        "got 'tab\\there'",
    ),
    (
        'input: [3, 8, 8]\nlayers:\n  - relu: {name: "left\u202eright"}\n',
        "<stdin>:3: layers[0].relu.name",
        "got 'left\\u202eright'",
    ),
    (
        'input: [3, 8, 8]\nlayers:\n  - relu: {name: "next\\Nline\\Lsep\\x9b"}\n',
        "<stdin>:3: layers[0].relu.name",
        "got 'next\\x85line\\u2028sep\\x9b'",
    ),
    (
        'input: [3, 8, 8]\nlayers:\n  - repeat:\n      times: 2\n      name: "r\\a"\n'
        "      layers: [relu]\n",
        "<stdin>:5: layers[0].repeat.name",
        "a layer name may not contain control characters, got 'r\\x07'",
    ),
    (
        'input: [3, 8, 8]\nlayers:\n  - residual: {body: [relu], name: "\\x00"}\n',
        "<stdin>:3: layers[0].residual.name",
        "got '\\x00'",
    ),
    (
        '{"input": [3, 8, 8],\n "layers": [\n  {"relu": {"name": "a\\u001b]0;title\\u0007"}}\n]}\n',
        "<stdin>:3: layers[0].relu.name",
        "got 'a\\x1b]0;title\\x07'",
    ),
    (
        '{"name": "line\\nbreak", "layers": ["relu"]}',
        "<stdin>:1: name",
        "the model's name may not contain control characters, got 'line\\nbreak'",
    ),
    (
        # JSON takes them as they are; YAML, which finds a JSON document's lines, does not.
        '{"layers": [{"relu": {"name": "raw \x7f and \x9b"}}]}',
        "<stdin>: layers[0].relu.name",
        "got 'raw \\x7f and \\x9b'",
    ),
]


@pytest.mark.parametrize(("text", "where", "says"), REFUSED)
def test_a_name_with_control_characters_is_refused(text: str, where: str, says: str) -> None:
    for args in (["net", "-"], ["net", "-", "--json"], ["export", "-"], ["sizes", "-", "--min"]):
        assert_clean_failure(run_convcalc(args, stdin=text), where, says)


def test_your_own_keys_may_hold_control_characters(tmp_path: Path) -> None:
    model = 'x-note: {name: "a\\e[31mb", text: "\\u202e"}\ninput: [3, 8, 8]\nlayers: [relu]\n'
    written = tmp_path / "out.yaml"
    assert_clean_run(run_convcalc(["net", "-", "--json"], stdin=model))
    assert_clean_run(run_convcalc(["export", "-", "-o", str(written)], stdin=model), written)
    # What export wrote reads back, escaped: the text is its own now.
    assert_clean_run(run_convcalc(["net", str(written), "--json"]))
    assert "a\\x1b[31mb" in written.read_text()


# ---------------------------------------------------------------------------------------
# Hostile text that is legal: escaped wherever it shows


GOOD = """\
name: "quiet [bold]model[/] :smile: $\\\\frac$"
input: [3, 12, 12]
x-hostile: "\\e[31m\\n\\u202e"
layers:
  - conv: {name: "stem|[/]", out_channels: 4, kernel_size: 3, dilation: 2}
  - conv: {out_channels: 4, kernel_size: 3, dilation: 2}
  - residual:
      name: "[red]block"
      body: [relu]
  - linear_by_pool: null
"""


@pytest.fixture
def hostile_file(tmp_path: Path) -> Path:
    """A valid model in a folder and a file whose names hold the hostile text."""
    folder = tmp_path / HOSTILE
    folder.mkdir()
    path = folder / f"{HOSTILE}.yaml"
    path.write_text(GOOD.replace("  - linear_by_pool: null\n", ""))
    return path


def test_every_form_of_output_is_clean(hostile_file: Path) -> None:
    model = str(hostile_file)
    outputs = {}
    for form in [*FORMS, ["--json", "--explain"]]:
        result = run_convcalc(["net", model, *form])
        assert_clean_run(result)
        outputs[" ".join(form)] = result.stdout
    # Rich reads no markup or emoji codes in a name.
    assert "quiet [bold]model[/] :smile: $\\frac$ · input" in outputs[""]
    assert "stem|[/]" in outputs[""] and "stem|[/]" in outputs["--chart"]
    assert "gridding" in outputs[""]  # a warning, which quotes the layers' paths
    assert "| stem\\|[/] | conv |" in outputs["--format=markdown"]


def test_pictures_and_exports_are_clean(hostile_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    picture = tmp_path / f"{HOSTILE}.svg"
    unit = tmp_path / "unit.svg"
    written = tmp_path / "exported.yaml"
    model = str(hostile_file)
    assert_clean_run(run_convcalc(["net", model, "--plot", str(picture)]), picture)
    assert_clean_run(
        run_convcalc(
            ["net", model, "--plot", str(unit), "--field-of", "2,2", "--layer", "stem|[/]"]
        ),
        unit,
    )
    assert "quiet [bold]model[/] :smile: $\\frac$" in picture.read_text()
    assert_clean_run(run_convcalc(["export", model]))
    assert_clean_run(run_convcalc(["export", model, "-o", str(written)]), written)
    assert_clean_run(run_convcalc(["sizes", model, "--range", "10..14", "--min"]))
    assert_clean_run(run_convcalc(["sizes", model, "--range", "10..14", "--json"]))


def test_errors_quoting_hostile_text_are_one_clean_line(hostile_file: Path, tmp_path: Path) -> None:
    model = str(hostile_file)
    broken = hostile_file.with_name(f"{HOSTILE}-broken.yaml")
    broken.write_text(GOOD)
    escaped = "a\\x1b[31mb\\nc\\rd\\x7fe\\x9bf\\u202eg\\u2066h\\u2028i\\x85j\\tk"
    cases: list[tuple[list[str], str, str]] = [
        # The file name, escaped, in the place of an error in the file.
        (["net", str(broken)], f"{tmp_path}/{escaped}/{escaped}-broken.yaml:10: layers[3]",
         "unknown layer kind 'linear_by_pool'"),
        # A bundled model's name typed wrong.
        (["net", f"resnet{HOSTILE}"], f"resnet{escaped}: no such file or bundled model", ""),
        (["net", model, "--plot", str(tmp_path / "u.svg"), "--field-of", "0,0", "--layer",
          HOSTILE], "--layer", f"no layer or block with the name or path '{escaped}'"),
        (["net", model, "--plot", str(tmp_path / "u.svg"), "--field-of", HOSTILE], "--field-of",
         f"got '{escaped}'"),
        (["net", model, "--plot", str(tmp_path / f"{HOSTILE}.pdf")], "--plot", escaped),
        (["net", model, "--input", HOSTILE], "--input", f"got '{escaped}'"),
        (["net", model, "--format", HOSTILE], "Invalid value for '--format'", ""),
        (["net", model, f"--bogus{HOSTILE}"], "No such option", ""),
        (["layer", HOSTILE, "--input", "3x8x8"], "KIND: unknown layer kind", escaped),
        (["layer", f"Conv2d(3, 8, kernel_size=(3, 3)){HOSTILE}", "--input", "3x8x8"], "KIND",
         ""),
        (["layer", "upsample", "--input", "3x8x8", "--scale-factor", "2", "--mode", HOSTILE],
         "--mode", "expected one of"),
        (["layer", "conv", "--input", "3x8x8", "--out-channels", "2", "--kernel-size", "3",
          "--padding", HOSTILE], "--padding", ""),
        (["sizes", model, "--range", HOSTILE], "--range", f"got '{escaped}'"),
        (["export", model, "-o", str(tmp_path / HOSTILE / "missing" / "x.yaml")], "--output",
         escaped),
    ]  # fmt: skip
    for args, where, says in cases:
        assert_clean_failure(run_convcalc(args), where, says)


MODELS_WITH_HOSTILE_TEXT = [
    # (model text, where, what): keys, kinds and values that hold control characters
    ('{"\\n": null, "layers": []}', "<stdin>:1: \\n", "unknown key '\\n'"),
    ("input: [3, 8, 8]\nlayers:\n  - \"re\\elu\"\n", "<stdin>:3: layers[0]",
     "unknown layer kind 're\\x1blu'"),
    ("input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: 4, \"kernel\\u202esize\": 3}\n",
     "<stdin>:3: layers[0].conv.kernel\\u202esize", "unknown parameter 'kernel\\u202esize'"),
    ("input: [3, 8, 8]\nlayers:\n  - repeat: {times: 2, layers: [relu], \"\\ttimes\": 1}\n",
     "<stdin>:3: layers[0].repeat.\\ttimes", "unknown key '\\ttimes' in repeat"),
    ("input: [3, 8, 8]\nlayers:\n  - upsample: {scale_factor: 2, mode: \"ne\\x1bar\"}\n",
     "<stdin>:3: layers[0].upsample.mode", 'got "ne\\u001bar"'),
    ("input: [3, \"8\\n\"]\nlayers: [relu]\n", "<stdin>:1: input", 'got [3, "8\\n"]'),
    ("{\"input\": [3, 8, 8], \"layers\": [\"relu\"], \"input\": [\"\\u2028\"]}",
     "<stdin>:1", "duplicate key 'input'"),
    ("input: [3, 8, 8]\nlayers:\n  - relu\n\"\\e\": 1\n\"\\e\": 2\n", "<stdin>:5",
     "duplicate key '\\x1b'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "where", "says"), MODELS_WITH_HOSTILE_TEXT)
def test_errors_about_hostile_keys_and_values_are_one_clean_line(
    text: str, where: str, says: str
) -> None:
    assert_clean_failure(run_convcalc(["net", "-"], stdin=text), where, says)


def test_long_values_are_shortened() -> None:
    long = "k" * 5000
    result = run_convcalc(["net", "-"], stdin=f'{{"{long}": 1, "layers": []}}')
    # (No line: YAML, which finds the lines of a JSON document, reads no key this long.)
    assert_clean_failure(result, f"<stdin>: {'k' * 100}… (5,000 characters)")
    assert f"unknown key '{'k' * 100}…' (5,000 characters)" in result.stderr
    assert len(result.stderr) < 500
    result = run_convcalc(["layer", long, "--input", "3x8x8"])
    assert_clean_failure(result, "KIND", f"'{'k' * 100}…' (5,000 characters)")
    result = run_convcalc(["net", "-", "--input", "3x8x8"], stdin=f"layers: [{{conv: {long}}}]")
    assert_clean_failure(result, "<stdin>:1: layers[0].conv", "(5,002 characters)")


# ---------------------------------------------------------------------------------------
# An imported model's names may hold anything: shown escaped


def test_an_onnx_model_with_hostile_names(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    name = f"conv{HOSTILE}"
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name=name, kernel_shape=[3, 3])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{HOSTILE}.onnx"
    path.write_bytes(model.SerializeToString())
    for form in FORMS:
        result = run_convcalc(["net", str(path), *form])
        assert_clean_run(result)
        if not form:
            assert "conva\\x1b[31mb\\nc" in result.stdout
    written = tmp_path / "exported.yaml"
    assert_clean_run(run_convcalc(["export", str(path), "-o", str(written)]), written)
    # The export reads back: its names are the escaped ones, which a model file may hold.
    again = run_convcalc(["net", str(written), "--json"])
    assert_clean_run(again)
    assert json.loads(again.stdout)["layers"][0]["name"] == "conva\\x1b[31mb\\nc\\rd\\x7fe" + (
        "\\x9bf\\u202eg\\u2066h\\u2028i\\x85j\\tk"
    )
    if importlib.util.find_spec("matplotlib") is not None:
        picture = tmp_path / "p.svg"
        assert_clean_run(run_convcalc(["net", str(path), "--plot", str(picture)]), picture)
        assert "conva\\x1b[31mb" in picture.read_text()


# ---------------------------------------------------------------------------------------
# Random text anywhere, in this process: one clean error line, or clean output

text = st.text(max_size=12)  # any characters, control characters and newlines among them
layers = st.one_of(
    st.builds(lambda name: {"relu": {"name": name}}, text),
    st.builds(lambda kind: {kind: None}, text),
    st.builds(lambda key: {"conv": {"out_channels": 2, "kernel_size": 1, key: 1}}, text),
    st.builds(lambda mode: {"upsample": {"scale_factor": 2, "mode": mode}}, text),
    st.just({"conv": {"name": "c", "out_channels": 2, "kernel_size": 3}}),
)
models = st.builds(
    lambda layers, extra: {"input": [1, 6, 6], "layers": layers, **extra},
    st.lists(layers, min_size=1, max_size=3),
    st.dictionaries(st.one_of(st.sampled_from(["name", "x-note"]), text), text, max_size=2),
)


def commands(output: list[str], flag: str, value: str) -> list[list[str]]:
    """The model on standard input in one form of output; then a flag given the text."""
    if flag == "KIND":
        return [["net", "-", *output], ["layer", "--input=3x8x8", "--", value]]
    if flag == "--mode":
        upsample = ["layer", "upsample", "--input=3x8x8", "--scale-factor=2", f"--mode={value}"]
        return [["net", "-", *output], upsample]
    if flag in ("--layer", "--field-of"):
        other = "--field-of=0,0" if flag == "--layer" else "--layer=c"
        return [["net", "-", *output], ["net", "-", "--plot=/nonexistent/p.svg", other,
                                       f"{flag}={value}"]]  # fmt: skip
    return [["net", "-", *output], ["net", "-", f"{flag}={value}"]]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    models,
    st.sampled_from(["json", "yaml"]),
    st.sampled_from(FORMS),
    st.sampled_from(["--input", "--layer", "--field-of", "--format", "KIND", "--mode"]),
    text,
)
@example({"\n": None, "layers": []}, "json", [], "--input", "3x\x1b[31m8")
def test_random_text_anywhere(
    cli: Callable[..., Any], model: Any, form: str, output: list[str], flag: str, value: str
) -> None:
    as_text = json.dumps(model) if form == "json" else yaml.safe_dump(model, allow_unicode=True)
    for args in commands(output, flag, value):
        result = cli(*args, stdin=as_text)
        assert result.code in (0, 2), result
        if result.code == 2:
            assert result.stdout == ""
            assert result.stderr.startswith("error: "), result.stderr
            assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
            assert_clean(result.stderr[:-1], "the error")
        else:
            assert_clean(result.stdout)
            assert_clean(result.stderr)
