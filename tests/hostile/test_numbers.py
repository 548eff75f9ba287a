"""Numbers: a number is written in plain ASCII decimal, in a model file and in a flag,
and convcalc guesses at no other spelling. YAML 1.1 reads 010 as 8 and YAML 1.2 as 10;
Python's int() reads "３", "+3", " 3" and "1_0": each is refused with one `error:` line
that names the place and says how to write the number. Along with them, the other
silent guesses of the same family: a .json file read as YAML, --json against another
--format, a keyword given twice, an --input of the wrong rank, a kind with a Greek letter
in it, and an export with nothing to check the model on.

Most cases run in this process (the `cli` fixture), checked as `assert_clean_error`
checks a child; one of each kind runs as a child under the harness's bounds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.harness import assert_clean_error, run_convcalc

CONV = "layer conv --input 3x8x8 --out-channels 4 --kernel-size 3"


def model(text: str, tmp_path: Path, name: str = "model.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- A .json file is JSON: none of YAML's numbers, and its errors keep their lines.

JSON_MODEL = '{{\n  "input": [3, 8, 8],\n  "layers": [\n    {{"conv": {{"out_channels": 4, "kernel_size": {}}}}}\n  ]\n}}\n'  # noqa: E501


@pytest.mark.parametrize(
    ("spelling", "write"),
    [("010", "write 10 or 8 in plain decimal"), ("0x3", "write 3 in plain decimal")],
)
def test_a_json_file_takes_only_json_numbers(spelling: str, write: str, tmp_path: Path) -> None:
    file = model(JSON_MODEL.format(spelling), tmp_path, "model.json")
    result = run_convcalc(["net", file])
    assert_clean_error(result, f"{file}:4: layers[0].conv.kernel_size: ", write)
    assert f"{spelling} is not a JSON number" in result.stderr


def test_a_json_files_other_errors_keep_their_lines(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    file = model(JSON_MODEL.format("3").replace('"conv"', '"cnv"'), tmp_path, "model.json")
    assert_clean_error(cli("net", file), f"{file}:4: layers[0]: ", "unknown layer kind 'cnv'")
    file = model('{\n  "input": [3, 8, 8],\n  "layers": [relu]\n}\n', tmp_path, "bare.json")
    assert_clean_error(cli("net", file), f"{file}:3: ", "invalid JSON")


def test_standard_input_is_yaml_and_refuses_the_same_numbers(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "-", stdin=JSON_MODEL.format("010"))
    assert_clean_error(result, "<stdin>:4: layers[0].conv.kernel_size: ", "write 10 or 8")


# --- YAML: every spelling of a number but plain decimal is refused, saying how to write it.

YAML_MODEL = "input: [3, 64, 64]\nlayers:\n  - conv: {{out_channels: 4, kernel_size: {}}}\n"


@pytest.mark.parametrize(
    ("spelling", "says"),
    [
        ("010", "010 is not a plain decimal number (YAML 1.1 reads it as 8, YAML 1.2 as 10); "
         "write 10 or 8 in plain decimal"),
        ("0b11", "write 3 in plain decimal"),
        ("0o17", "write 15 in plain decimal"),
        ("0x1F", "write 31 in plain decimal"),
        ("1_000", "write 1000 in plain decimal"),
        ("1_0", "write 10 in plain decimal"),
        ("1:30", "YAML 1.1 reads it as 90, YAML 1.2 as text"),
        ("+3", "write 3 in plain decimal"),
        ("09", "write 9 in plain decimal"),
        ("1e3", "expected a positive integer, or a list of them (one per axis), got 1000.0"),
        ("3.0", "got 3.0"),
    ],
)  # fmt: skip
def test_yaml_numbers_are_plain_decimal(cli, tmp_path: Path, spelling: str, says: str) -> None:  # type: ignore[no-untyped-def]
    file = model(YAML_MODEL.format(spelling), tmp_path)
    assert_clean_error(cli("net", file), f"{file}:3: layers[0].conv.kernel_size: ", says)


def test_plain_decimal_is_read_as_written(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """1e-3 is a string to YAML 1.1 (PyYAML wants 1.0e-3); plain decimal means the number."""
    text = "input: [3, 8]\nlayers:\n  - batch_norm: {eps: 1e-3, momentum: 0.5}\n  - relu\n"
    assert cli("net", model(text, tmp_path), "--json").code == 0


def test_a_yaml_number_far_too_long_is_refused_briefly(tmp_path: Path) -> None:
    file = model(YAML_MODEL.format("1_" * 50_000 + "1"), tmp_path)
    result = run_convcalc(["net", file])
    assert_clean_error(result, f"{file}:3: layers[0].conv.kernel_size: ", "1_1_1_1_")
    assert len(result.stderr) < 300


# --- Flags: plain ASCII decimal only, for every numeric flag of every command.

BAD_FLAG_NUMBERS = [
    ("3x2_24x224", "write 3x224x224"),
    ("３x２２４", "the non-ASCII digit '３' U+FF13); write 3x224"),
    ("٣x٢٢٤", "the non-ASCII digit '٣' U+0663); write 3x224"),
    ("+3x8", "write 3x8"),
    (" 3x8", "(it has spaces); write 3x8"),
]


@pytest.mark.parametrize(("text", "says"), BAD_FLAG_NUMBERS)
def test_input_takes_plain_ascii_decimal(cli, text: str, says: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("layer", "relu", f"--input={text}")
    assert_clean_error(result, "--input: expected numbers in plain ASCII decimal", says)


SOLVE_SIZES = "input output kernel-size stride dilation max-kernel max-stride max-dilation limit"

#: Every numeric flag: a command line with `{}` where the flag's number goes.
NUMERIC_FLAGS = [
    *(
        f"{CONV} --{flag}={{}}"
        for flag in ("out-channels", "kernel-size", "stride", "padding", "dilation", "groups")
    ),
    "layer conv_transpose --input 3x8x8 --out-channels 4 --kernel-size 3 --output-padding={}",
    "layer adaptive_avg_pool --input 3x8x8 --output-size={}",
    "layer upsample --input 3x8x8 --scale-factor={}",
    "layer upsample --input 3x8x8 --size={}",
    "layer linear --input 8 --out-features={}",
    "layer group_norm --input 4x8x8 --num-groups={}",
    f"{CONV} --in-channels={{}}",
    "layer linear --input 8 --out-features 2 --in-features={}",
    f"{CONV} --batch={{}}",
    "net resnet18 --input=3x{}x32",
    "net resnet18 --batch={}",
    "sizes resnet18 --min --input=3x{}x1",
    "export resnet18 --input=3x{}x32",
    *(f"solve --input 9 --output 3 --{flag}={{}}" for flag in SOLVE_SIZES.split()),
    "solve --field={}",
    "solve --field 9 --dilation-growth={}",
]


@pytest.mark.parametrize("spelling", ["+3", " 3", "３", "3_0"])
@pytest.mark.parametrize("line", NUMERIC_FLAGS)
def test_every_numeric_flag_takes_plain_ascii_decimal(cli, line: str, spelling: str) -> None:  # type: ignore[no-untyped-def]
    *args, last = line.split()
    flag = re.sub("=.*", "", last)
    result = cli(*args, last.format(spelling))
    assert_clean_error(result, f"{flag}: expected numbers in plain ASCII decimal", "; write 3")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["sizes", "resnet18", "--range=+3..9"], "--range"),
        (["sizes", "resnet18", "--range=３..9"], "--range"),
        (["net", "resnet18", "--plot=unit.svg", "--field-of=１,0"], "--field-of"),
        (["net", "resnet18", "--plot=unit.svg", "--field-of= 1,0"], "--field-of"),
        (["net", "resnet18", "--plot=unit.svg", "--field-of=²,0"], "--field-of"),
    ],
)
def test_range_and_unit_flags_take_ascii_digits(
    cli, args: list[str], flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert_clean_error(cli(*args), f"{flag}: expected")
    assert not (tmp_path / "unit.svg").exists()


def test_a_whole_number_flag_is_checked_in_a_child() -> None:
    result = run_convcalc(["solve", "--input", "２２４", "--output", "112"])
    assert_clean_error(result, "--input: ", "(it has the non-ASCII digit '２' U+FF12); write 224")


# --- Output flags that contradict each other.


@pytest.mark.parametrize("form", ["csv", "table", "markdown"])
def test_json_and_another_format_contradict(cli, form: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "resnet18", "--format", form, "--json")
    assert_clean_error(result, "--format: ", f"--json asks for json, --format for {form}")


def test_json_twice_is_json(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "resnet18", "--format", "json", "--json")
    assert result.code == 0
    assert json.loads(result.stdout)["name"] == "resnet18"


# --- A keyword argument twice in a module's printed form.


def test_a_printed_keyword_given_twice(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("layer", "Conv2d(3, 8, kernel_size=3, kernel_size=5)", "--input", "3x8x8")
    assert_clean_error(result, "Conv2d.kernel_size: ", "kernel_size is given twice")


# --- --input of another rank than the model declares.


@pytest.mark.parametrize("command", ["net", "sizes", "export"])
def test_input_has_the_models_spatial_axes(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    more = ["--min"] if command == "sizes" else []
    result = cli(command, "vgg16", "--input", "3x224", *more)
    assert_clean_error(
        result,
        "--input: ",
        "expected channels and 2 spatial axes, as vgg16 declares (3x224x224), got 3x224, "
        "with 1 spatial axis",
    )


@pytest.mark.parametrize("command", ["net", "sizes", "export"])
def test_a_batched_input_is_told_to_drop_the_batch(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    more = ["--min"] if command == "sizes" else []
    result = cli(command, "vgg16", "--input", "1x3x224x224", *more)
    assert_clean_error(result, "--input: ", "which looks batched")
    assert "give --input 3x224x224" in result.stderr


def test_a_model_without_an_input_takes_any_rank(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    file = model("layers:\n  - conv: {out_channels: 2, kernel_size: 3}\n", tmp_path)
    for shape, output in (("1x9", [2, 7]), ("1x9x9", [2, 7, 7]), ("1x9x9x9", [2, 7, 7, 7])):
        result = cli("net", file, "--input", shape, "--json")
        assert json.loads(result.stdout)["output_shape"] == output


# --- Names with a letter from another alphabet.


@pytest.mark.parametrize(
    ("layer", "where", "says"),
    [
        (
            "cοnv: {out_channels: 4, kernel_size: 3}",  # a Greek ο
            "layers[0]",
            "unknown layer kind 'cοnv' (it contains the non-ASCII letter 'ο' U+03BF); "
            "did you mean 'conv'?",
        ),
        (
            "conv: {out_channels: 4, kernеl_size: 3}",  # a Cyrillic е
            "layers[0].conv.kernеl_size",
            "unknown parameter 'kernеl_size' for conv (it contains the non-ASCII letter 'е' "
            "U+0435); did you mean 'kernel_size'?",
        ),
    ],
)
def test_a_name_with_a_letter_of_another_alphabet(
    cli, tmp_path: Path, layer: str, where: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    file = model(f"input: [3, 8, 8]\nlayers:\n  - {layer}\n", tmp_path)
    assert_clean_error(cli("net", file), f"{file}:3: {where}: ", says)


def test_a_layer_kind_with_a_greek_letter(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("layer", "cοnv", "--input", "3x8x8", "--out-channels", "4", "--kernel-size", "3")
    assert_clean_error(result, "KIND: ", "'ο' U+03BF); did you mean 'conv'?")


# --- export writes a model only once it runs.


@pytest.mark.parametrize(
    ("text", "args", "says"),
    [
        ("layers:\n  - relu\n", [], "the model declares no input"),
        ("layers:\n  - conv: {out_channels: 2, kernel_size: 5}\n", ["--input", "1x3x3"], "empty"),
        (
            "input: [1, 3, 3]\nlayers:\n  - conv: {out_channels: 2, kernel_size: 5}\n",
            [],
            "the output would be empty",
        ),
    ],
)
def test_export_writes_nothing_for_a_model_that_does_not_run(
    cli, tmp_path: Path, text: str, args: list[str], says: str
) -> None:  # type: ignore[no-untyped-def]
    file = model(text, tmp_path)
    written = tmp_path / "written.yaml"
    for to_file in ([], ["-o", str(written)]):
        assert_clean_error(cli("export", file, *args, *to_file), says=says)
        assert not written.exists()


# --- Any spelling of an integer: either the very number, or one line of error.

DIGITS = {
    "ascii": "0123456789",
    "full-width": "０１２３４５６７８９",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "devanagari": "०१२३४५६७८९",
}


@st.composite
def integer_spellings(draw: st.DrawFn) -> str:
    """An integer as people and programs write it: signs, prefixes, leading zeros,
    underscores, digits of other scripts, spaces."""
    value = draw(st.integers(0, 20))
    base, prefix = draw(st.sampled_from([(10, ""), (16, "0x"), (8, "0o"), (8, "0"), (2, "0b")]))
    digits = format(value, {10: "d", 16: "x", 8: "o", 2: "b"}[base])
    if draw(st.booleans()):
        digits = "0" * draw(st.integers(1, 2)) + digits
    if draw(st.booleans()) and len(digits) > 1:
        cut = draw(st.integers(1, len(digits) - 1))
        digits = digits[:cut] + "_" + digits[cut:]
    script = DIGITS[draw(st.sampled_from(sorted(DIGITS)))]
    digits = "".join(script[int(char)] if char.isdigit() else char for char in digits)
    sign = draw(st.sampled_from(["", "", "+", "-"]))
    space = draw(st.sampled_from(["", "", " ", "\u3000"]))
    return space + sign + prefix + digits + draw(st.sampled_from(["", "", " "]))


def plain_value(text: str) -> int | None:
    """The value of a positive integer written in plain ASCII decimal, None otherwise."""
    return int(text) if re.fullmatch("[1-9][0-9]*", text) else None


FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(integer_spellings())
def test_any_spelling_of_a_yaml_kernel_size(cli, spelling: str) -> None:  # type: ignore[no-untyped-def]
    text = "input: [1, 32]\nlayers:\n  - conv: {out_channels: 1, kernel_size: " + spelling + "}\n"
    result = cli("net", "-", "--json", stdin=text)
    # YAML drops spaces around a value (but not U+3000, which is no YAML space).
    value = plain_value(spelling.strip(" "))
    if value is None:
        assert_clean_error(result, "<stdin>:")
    else:
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)["receptive_field"]["size"] == [value]


@FUZZ
@given(integer_spellings())
def test_any_spelling_of_a_kernel_size_flag(cli, spelling: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "layer", "conv", "--input=1x32", "--out-channels=1", f"--kernel-size={spelling}", "--json"
    )
    value = plain_value(spelling)
    if value is None:
        assert_clean_error(result, "--kernel-size: ")
    else:
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)["receptive_field"]["size"] == [value]
