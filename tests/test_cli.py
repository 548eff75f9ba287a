"""The command line: exit codes, one `error:` line for bad input, JSON per SPEC §5."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

STEM = [
    "layer", "conv", "--input", "3x224x224", "--out-channels", "64", "--kernel-size", "7",
    "--stride", "2", "--padding", "3",
]  # fmt: skip


def test_layer_json_of_the_issue(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(*STEM, "--json")
    assert result.code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row == {
        "path": "layer",
        "kind": "conv",
        "name": None,
        "input_shape": [3, 224, 224],
        "output_shape": [64, 112, 112],
        "params": 9472,
        "macs": 118013952,
        "receptive_field": {
            "size": [7, 7],
            "effective_stride": [2, 2],
            "effective_padding": [3, 3],
        },
        "global_context": False,
        "warnings": [],
    }


def test_layer_table(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(*STEM)
    assert result.code == 0
    for text in ("64×112×112", "9,472", "118,013,952", "Effective stride"):
        assert text in result.stdout


def test_layer_flags_per_axis_and_pairs(cli) -> None:  # type: ignore[no-untyped-def]
    # H: 10 + 0 + 1 − 3 + 1 = 9 (pair 0,1); W: kernel 5 with 2 on each side: 10.
    result = cli(
        "layer", "conv", "--input", "1x10x10", "--out-channels", "2", "--kernel-size", "3x5",
        "--padding", "0,1x2,2", "--no-bias", "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["output_shape"] == [2, 9, 10]
    assert row["params"] == 2 * 15


def test_flag_values() -> None:
    from convcalc.cli import flag_value

    assert flag_value("3") == 3
    assert flag_value("3x5") == [3, 5]
    assert flag_value("0,1") == [[0, 1]]  # one axis, padded 0 before and 1 after
    assert flag_value("0,1x2,2") == [[0, 1], [2, 2]]
    assert flag_value("1.5") == 1.5
    assert flag_value("same") == "same"
    assert flag_value("nearest-exact") == "nearest-exact"


def test_layer_same_padding_and_warnings(cli) -> None:  # type: ignore[no-untyped-def]
    same = json.loads(
        cli("layer", "conv", "--input", "3x224x224", "--out-channels", "8", "--kernel-size", "3",
            "--stride", "2", "--padding", "same", "--json").stdout
    )  # fmt: skip
    assert same["output_shape"] == [8, 112, 112]
    # TensorFlow's "same" pads 224 by 0 before and 1 after at stride 2: asymmetric.
    assert [w["code"] for w in same["warnings"]] == ["asymmetric-padding"] * 2
    dropped = json.loads(
        cli("layer", "max_pool", "--input", "8x7x7", "--kernel-size", "2", "--json").stdout
    )
    assert [w["code"] for w in dropped["warnings"]] == ["dropped-input", "dropped-input"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["layer", "conv", "--input", "3x8x8", "--out-channels", "4", "--kernel-size", "3",
          "--stride", "0"], "error: --stride: expected a positive integer"),
        (["layer", "conv", "--input", "3x8x8", "--out-channels", "4", "--kernel-size", "3.0"],
         "error: --kernel-size: expected a positive integer"),
        (["layer", "conv", "--input", "3x8x8", "--kernel-size", "3"],
         "error: conv: conv needs out_channels"),
        (["layer", "max_pool", "--input", "3x8x8", "--kernel-size", "2", "--groups", "2"],
         "error: --groups: unknown parameter 'groups' for max_pool"),
        (["layer", "convolution", "--input", "3x8x8"], "error: KIND: unknown layer kind"),
        (["layer", "conv", "--input", "3x8", "--out-channels", "4", "--kernel-size", "9"],
         "error: layer: the output would be empty on axis L"),
        (["layer", "relu", "--input", "3xax8"], "error: --input: expected a shape like 3x224x224"),
        (["layer", "relu"], "error: Missing option '--input'"),
        (["layer", "relu", "--input", "3x8", "--bogus"],
         "error: --bogus: no such option; convcalc layer --help lists the options"),
        (["net", "no-such-model.yaml"], "error: no-such-model.yaml: no such file or bundled"),
        (["net", "-", "--format", "xml"], "error: Invalid value for '--format'"),
        (["frobnicate"], "error: No such command 'frobnicate'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_error_line_and_status_2(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "error: <stdin>: empty"),
        (b"\xff\xfe\x00", "error: <stdin>: not UTF-8 text"),
        ("layers: [relu]\n", "error: <stdin>: no input shape"),
        ("input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: 4, kernel_size: 9}\n",
         "error: <stdin>:3: layers[0]: the output would be empty on axis H"),
        ('{"input": [3, 8, 8],\n "layers": [\n  "relu",\n'
         '  {"conv": {"out_channels": 4, "kernel_size": 9}}]}\n',
         "error: <stdin>:4: layers[1]: the output would be empty on axis H"),
        ("input: [3, 8, 8]\nlayers:\n  - residual:\n      body:\n"
         "        - conv: {out_channels: 4, kernel_size: 1}\n",
         "error: <stdin>:3: layers[0]: residual needs every branch to give the same shape; "
         "got [4, 8, 8] (body), [3, 8, 8] (shortcut)"),
    ],
)  # fmt: skip
def test_bad_models_from_standard_input(cli, stdin: str | bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "-", stdin=stdin)
    assert result.code == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1


def test_a_directory_is_not_a_model(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", str(tmp_path))
    assert result.code == 2
    assert result.stderr == f"error: {tmp_path}: is a directory, not a model file\n"


def test_input_flag_overrides_the_model(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", str(ROOT / "examples/seed_three_3x3.yaml"), "--input", "1x9x9", "--json")
    assert json.loads(result.stdout)["output_shape"] == [1, 3, 3]


def test_no_arguments_shows_help(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli()
    assert result.code == 0
    assert "layer" in result.stdout and "net" in result.stdout


def test_real_pipe_gets_plain_text_from_the_console_script() -> None:
    # A separate process, its output a pipe: no escape codes, and `python -m` works too.
    process = subprocess.run(
        [sys.executable, "-m", "convcalc", "net", str(ROOT / "examples/vgg_style.yaml")],
        capture_output=True,
        text=True,
        env={"FORCE_COLOR": "", "TERM": "xterm-256color", "PATH": ""},
        check=True,
    )
    assert "\x1b" not in process.stdout
    assert "classifier" in process.stdout
