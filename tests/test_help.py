"""Help that helps: a suggestion for a misspelt kind, model, parameter or option, and
--help texts that describe every option truly, with metavars that read as words."""

from __future__ import annotations

import re

import pytest

from convcalc.suggest import suggest

KINDS = ["adaptive_avg_pool", "avg_pool", "batch_norm", "conv", "conv_transpose", "linear",
         "max_pool", "pad", "relu", "relu6", "leaky_relu", "upsample", "silu"]  # fmt: skip
MODELS = ["alexnet", "efficientnet_b0", "r3d_18", "resnet18", "resnet34", "resnet50",
          "resnet101", "resnet152", "vgg16", "vgg16_bn", "yolov5s"]  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "known", "meant"),
    [
        # PyTorch's module and function names, with their dimensions and prefixes.
        ("conv2d", KINDS, ["conv"]),
        ("Conv2d", KINDS, ["conv"]),
        ("nn.Conv1d", KINDS, ["conv"]),
        ("BatchNorm2d", KINDS, ["batch_norm"]),
        ("MaxPool2d", KINDS, ["max_pool"]),
        ("max_pool2d", KINDS, ["max_pool"]),
        ("ConvTranspose3d", KINDS, ["conv_transpose"]),
        ("AdaptiveAvgPool2d", KINDS, ["adaptive_avg_pool"]),
        ("LeakyReLU", KINDS, ["leaky_relu"]),
        ("ZeroPad2d", KINDS, ["pad"]),
        # Keras's words, and other frameworks'.
        ("Dense", KINDS, ["linear"]),
        ("Conv2DTranspose", KINDS, ["conv_transpose"]),
        ("swish", KINDS, ["silu"]),
        ("convolution", KINDS, ["conv"]),  # begins with a known name
        ("relu66", KINDS, ["relu6", "relu"]),  # both begin it; the closer first
        ("upsmaple", KINDS, ["upsample"]),  # spelling
        # Models: a name it begins, other punctuation, all that begin with it.
        ("resnet5", MODELS, ["resnet50"]),
        ("ResNet-50", MODELS, ["resnet50"]),
        ("vgg", MODELS, ["vgg16", "vgg16_bn"]),
        ("r3d", MODELS, ["r3d_18"]),  # r3d is no 3-D module
        ("alexnt", MODELS, ["alexnet"]),
        # Parameters, and flags as the command line spells them.
        ("kernel", ["kernel_size", "stride", "padding"], ["kernel_size"]),
        ("out_channel", ["out_channels", "kernel_size"], ["out_channels"]),
        ("filters", ["out_channels", "kernel_size"], ["out_channels"]),
        ("--inptu", ["--input", "--plot", "--format"], ["--input"]),
        ("--kernel_size", ["--kernel-size", "--stride"], ["--kernel-size"]),
        # Nothing close: no guess.
        ("foo", KINDS, []),
        ("frobnicate", MODELS, []),
        ("", KINDS, []),
        ("x" * 10_000, KINDS, []),
    ],
)
def test_suggestions(typed: str, known: list[str], meant: list[str]) -> None:
    assert suggest(typed, known) == meant


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["layer", "conv2d"], "error: KIND: unknown layer kind 'conv2d'; did you mean 'conv'?"),
        (["layer", "batchnorm2d"], "error: KIND: unknown layer kind 'batchnorm2d'; did you mean "
         "'batch_norm'?"),
        (["layer", "maxpool"], "error: KIND: unknown layer kind 'maxpool'; did you mean "
         "'max_pool'?"),
        (["net", "resnet5"], "error: resnet5: no such file or bundled model; did you mean "
         "'resnet50'?"),
        (["net", "vgg"], "error: vgg: no such file or bundled model; did you mean 'vgg16' or "
         "'vgg16_bn'?"),
        (["net", "resnet50", "--inptu", "3x8x8"], "error: --inptu: no such option; did you mean "
         "--input?"),
        (["layer", "conv", "--kernel", "3"], "error: --kernel: no such option; did you mean "
         "--kernel-size?"),
        (["layer", "conv", "--filters", "3"], "error: --filters: no such option; did you mean "
         "--out-channels?"),
        (["net", "resnet50", "--zzz"], "error: --zzz: no such option; convcalc net --help lists "
         "the options"),
        # A layer's parameter given as a flag it does not take.
        (["layer", "max_pool", "--kernel-size", "2", "--out-channels", "3"],
         "error: --out-channels: unknown parameter 'out_channels' for max_pool; known: "
         "ceil_mode, dilation, kernel_size, padding, stride"),
    ],
)  # fmt: skip
def test_suggestions_on_the_command_line(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    args = [*args, "--input", "3x8x8"] if args[0] == "layer" else args
    result = cli(*args)
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == message + "\n"


def test_no_guess_lists_what_there_is(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("net", "frobnicate")
    assert result.stderr.startswith("error: frobnicate: no such file or bundled model (bundled: ")
    assert "resnet50" in result.stderr
    # A path is no misspelt model's name.
    assert "did you mean" not in cli("net", "resnet5.yaml").stderr
    result = cli("layer", "foo", "--input", "3x8x8")
    assert result.stderr.startswith("error: KIND: unknown layer kind 'foo'; known: ")
    assert result.stderr.rstrip().endswith("or a PyTorch module as print(model) shows it, such "
                                           "as Conv2d(3, 64, kernel_size=(3, 3))")  # fmt: skip


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("layers:\n  - conv2d: {out_channels: 4, kernel_size: 3}\n",
         "model.yaml:3: layers[0]: unknown layer kind 'conv2d'; did you mean 'conv'?"),
        ("layers:\n  - conv: {out_channels: 4, kernel: 3}\n",
         "model.yaml:3: layers[0].conv.kernel: unknown parameter 'kernel' for conv; did you "
         "mean 'kernel_size'?"),
        ("layer: [relu]\n", "model.yaml:2: layer: unknown key 'layer'; did you mean 'layers'?"),
        ("layers:\n  - repeat: {time: 2, layers: [relu]}\n",
         "model.yaml:3: layers[0].repeat.time: unknown key 'time' in repeat; did you mean "
         "'times'?"),
        ("define: {block: {args: {width: null}, layers: [relu]}}\nlayers: [block: {widht: 4}]\n",
         "model.yaml:3: layers[0].block.widht: unknown argument 'widht' for block; did you mean "
         "'width'?"),
        ("define: {block: {args: {width: 4}, layers: [conv: {out_channels: $widht, "
         "kernel_size: 1}]}}\nlayers: [block]\n",
         "no argument 'widht'; did you mean 'width'?"),
        # A definition's name is a kind too.
        ("define: {bottleneck: {layers: [relu]}}\nlayers: [bottlenek]\n",
         "model.yaml:3: layers[0]: unknown layer kind 'bottlenek'; did you mean 'bottleneck'?"),
    ],
)  # fmt: skip
def test_suggestions_in_model_files(cli, tmp_path, monkeypatch, model: str, message: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.yaml").write_text("input: [3, 8, 8]\n" + model)
    result = cli("net", "model.yaml")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and result.stderr.isascii()
    assert message in result.stderr, result.stderr


# --- --help ---


def _commands() -> list[str]:
    from typer.main import get_command

    from convcalc.cli import app

    group = get_command(app)
    return ["", *group.commands]  # type: ignore[attr-defined]


#: An entry's name in --help: an argument (MODEL), or an option with its value's word
#: (--input SHAPE, --range LO..HI, -o, --output FILE) or its negation (--bias / --no-bias).
_ARGUMENT = re.compile(r"[A-Z][A-Z_]*")
_OPTION = re.compile(r"(-[a-z], )?--[a-z][a-z-]*( [A-Z][A-Z_.]*| / --[a-z][a-z-]*)?")


def _entries(text: str, section: str) -> list[tuple[str, str]]:
    """(name, description) of each entry of a --help section ("Options")."""
    found = re.search(rf"^{section}:\n((?:  .*\n?)+)", text, re.MULTILINE)
    if found is None:
        return []
    entries: list[list[str]] = []
    for line in found[1].splitlines():
        if re.match(r"  \S", line):  # an entry's first line; more indented: its description
            name, _, description = line.strip().partition("  ")
            entries.append([name, description.strip()])
        else:
            entries[-1][1] += " " + line.strip()
    return [(name, description.strip()) for name, description in entries]


@pytest.mark.parametrize("command", _commands())
def test_help_describes_every_option_in_words(cli, monkeypatch, command: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "200")  # one line per entry, as far as can be
    result = cli(*[command] if command else [], "--help")
    assert result.code == 0, result.stderr
    text = result.stdout
    # Typer's own metavars and its way of showing a default given as text.
    for placeholder in ("{", "}", "<", ">", "(table)"):
        assert placeholder not in text.split("\n\n", 1)[0] + "".join(
            name for name, _ in _entries(text, "Options") + _entries(text, "Arguments")
        ), placeholder
    usage = text.splitlines()[0]
    assert re.fullmatch(
        r"Usage: convcalc( [a-z]+)? \[OPTIONS\]( [A-Z]+| COMMAND \[ARGS\]\.\.\.)?", usage
    ), usage
    arguments, options = _entries(text, "Arguments"), _entries(text, "Options")
    assert options, text
    for name, description in arguments:
        assert _ARGUMENT.fullmatch(name), name
        assert description and not description.startswith("["), name
    for name, description in options:
        assert _OPTION.fullmatch(name), name
        # A description of its own, not just Typer's [default: …] or [required].
        assert description and not description.startswith("["), name


def test_every_choice_of_an_option_is_in_its_description() -> None:
    """`Output form: table or json.` where there were four formats: each --format names
    the forms its command takes, no more and no fewer."""
    import typer
    from typer.main import get_command

    from convcalc.cli import app

    group = get_command(app)
    checked = 0
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        context = typer.Context(command, info_name=name)
        for param in command.params:
            if param.name != "format":
                continue
            record = param.get_help_record(context)
            assert record is not None
            choices = [str(choice) for choice in param.type_descriptor.choices]
            words = set(re.findall(r"[a-z]+", record[1]))
            assert {"table", "json"} <= set(choices)
            assert words & {"table", "json", "csv", "markdown"} == set(choices), name
            checked += 1
    assert checked >= 5  # layer, net, solve, sizes, models


# --- long answers ---


def _layer_rows(table: str) -> list[list[str]]:
    """The cells of a field plan's rows (Layer, Dilation, Field)."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in table.splitlines()
        if line.startswith("│")
    ]


def test_solve_shows_the_first_and_last_layers_of_a_long_plan(cli) -> None:  # type: ignore[no-untyped-def]
    # Kernel 3, stride 1: each layer widens the field by 2, so layer n sees 2n + 1 and
    # a field of 500 takes 250 layers (501).
    result = cli("solve", "--field", "500")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "250 layers of kernel 3, stride 1 reach a field of 500:"
    assert lines[-1] == "… 230 of the 250 layers left out (--limit 0 shows all)"
    rows = _layer_rows(result.stdout)
    shown = [*range(1, 11), *range(241, 251)]
    assert rows == [
        *[[str(n), "1", str(2 * n + 1)] for n in shown[:10]],
        ["…", "…", "…"],
        *[[str(n), "1", str(2 * n + 1)] for n in shown[10:]],
    ]
    everything = cli("solve", "--field", "500", "--limit", "0").stdout
    assert len(_layer_rows(everything)) == 250 and "left out" not in everything
    assert _layer_rows(cli("solve", "--field", "500", "--limit", "1").stdout) == [
        ["…", "…", "…"],
        ["250", "1", "501"],
    ]
    # A plan within the limit is shown whole.
    short = cli("solve", "--field", "21").stdout
    assert len(_layer_rows(short)) == 10 and "left out" not in short


def test_solve_json_keeps_every_row(cli) -> None:  # type: ignore[no-untyped-def]
    import json

    plan = json.loads(cli("solve", "--field", "500", "--json").stdout)["field_target"]
    assert plan["layers"] == 250 and plan["sizes"] == [2 * n + 1 for n in range(1, 251)]
    solutions = json.loads(
        cli("solve", "--input", "224", "--output", "112", "--limit", "1", "--json").stdout
    )["solutions"]
    assert len(solutions) > 1
