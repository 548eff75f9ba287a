"""The command line: parse, call the core, render. Exit status 0 on success, 2 for bad
input of any kind with one `error:` line on standard error, 1 only for a bug; killed by
SIGINT or SIGPIPE (130, 141 in the shell) on Ctrl-C or a closed pipe (`__main__`)."""

# No `from __future__ import annotations` here: Typer reads every command's annotations
# at each start, and string annotations would cost an `eval` each (about 10 ms in all).
import codecs
import contextlib
import errno
import gc
import io
import os
import re
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand

from convcalc.errors import ConvcalcError, Where
from convcalc.text import printable, quote, shorten

if TYPE_CHECKING:
    from typer._click.exceptions import NoSuchOption

    from convcalc.model.network import Model

__all__ = ["app", "main"]

app = typer.Typer(
    # --install-completion and --show-completion, for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _WordArgument(TyperArgument):
    """An argument shown by its metavar alone: `convcalc net [OPTIONS] MODEL`, and
    `MODEL  A model file…` (Typer shows `{model}` and `model <str>`)."""

    def _usage_display_name(self) -> str:
        return self.display_name_raw if self.required else f"[{self.display_name_raw}]"

    def display_type_rich(self, ctx: object) -> str | None:
        return None


class _Command(TyperCommand):
    """A command whose arguments read as words in --help (`_WordArgument`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.__class__ = _WordArgument


def _print_version(value: bool) -> None:
    if value:
        from convcalc import __version__

        print(f"convcalc {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Shapes, parameters, multiply-accumulates and receptive fields of convolutional
    networks, exactly and without a deep learning framework.

    Example: convcalc net resnet50 --input 3x320x320
    """


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class TableOrJson(StrEnum):
    """The forms of the commands whose answer is no list of layers."""

    table = "table"
    json = "json"


def _whole_number(text: str, flag: str, minimum: int) -> int:
    """A whole number given to `flag`, in plain ASCII decimal, of at least `minimum`."""
    try:
        value = flag_value(text)
    except ConvcalcError as error:
        raise error.at(Where(flag)) from None
    if not isinstance(value, int) or value < minimum:
        raise ConvcalcError(
            f"expected a whole number of at least {minimum}, got {text!r}", Where(flag)
        )
    return value


def _whole_number_option(minimum: int, help: str, *names: str) -> Any:
    """A Typer option for a whole number of at least `minimum` (which `help` says).
    Typer's own int reads "+3", " 3" and "1_0"; so it hands over the text (`parser=str`)
    for `_whole_number` to read."""

    def check(param: typer.CallbackParam, value: str | None) -> int | None:
        return None if value is None else _whole_number(value, param.opts[0], minimum)

    return typer.Option(*names, metavar="N", parser=str, callback=check, help=help)


def _text_option(metavar: str, help: str, *names: str) -> Any:
    """A Typer option that takes text (a shape, a size per axis, a name) shown as
    `metavar` in --help (Typer's own would be <str>)."""
    return typer.Option(*names, metavar=metavar, help=help)


SHAPE_HELP = "Input shape, channels first, without the batch: 3x224x224 (or 1x16000, 3x16x112x112)."
InputOption = Annotated[str | None, _text_option("SHAPE", SHAPE_HELP, "--input")]
# No default, so that --json can tell a --format given from one not given.
FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="Output form: table (default), json, csv or markdown. JSON, CSV and Markdown "
        "have every layer.",
    ),
]
TableOrJsonOption = Annotated[
    TableOrJson | None,
    typer.Option("--format", metavar="FORMAT", help="Output form: table (default) or json."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Short for --format json.")]
ExplainOption = Annotated[
    bool, typer.Option("--explain", help="Show each layer's arithmetic with its numbers.")
]
BatchOption = Annotated[
    int,
    _whole_number_option(1, "Batch size, at least 1; scales only the memory figures.", "--batch"),
]
TraceTimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--trace-timeout",
        metavar="SECONDS",
        help="For package.module:attribute: the seconds that importing, making and "
        "tracing the module may take, after importing torch (default: 60).",
    ),
]


def _number(part: str, text: str) -> int | float | None:
    """One number of a flag's `text`, in plain ASCII decimal; None if `part` is no number
    at all (left for the checks of the value to refuse)."""
    from convcalc.source import plain_decimal, plain_number

    value = plain_number(part)
    if value is None and plain_decimal(_ascii_digits(part).strip()):
        raise _misspelled(text)
    return value


def _ascii_digits(text: str) -> str:
    """The text with every decimal digit of another script (３, ٣) made ASCII."""
    return "".join(str(int(char)) if char.isdecimal() else char for char in text)


def _misspelled(text: str) -> ConvcalcError:
    """A flag's numbers written otherwise than in plain ASCII decimal, and how to write
    them: Python's int() would read "３", "+3", " 3" and "1_0", so convcalc reads none."""
    from convcalc.source import plain_decimal

    # Each part as it may be meant (010: 10, or octal 8), separators kept.
    meant = [
        [part] if part in ("x", ",") else plain_decimal(part.strip()) or [part]
        for part in re.split("([x,])", _ascii_digits(text))
    ]
    write = " or ".join(dict.fromkeys("".join(forms[i] for forms in meant) for i in (0, -1)))
    odd = next((char for char in text if not char.isascii()), None)
    if odd is not None:
        what = "digit" if odd.isdecimal() else "character"
        why = f" (it has the non-ASCII {what} {odd!r} U+{ord(odd):04X})"
    else:
        why = " (it has spaces)" if any(char.isspace() for char in text) else ""
    return ConvcalcError(
        f"expected numbers in plain ASCII decimal, got {text!r}{why}; write {write}"
    )


def flag_value(text: str) -> Any:
    """A flag's text as the plain value a model file would hold: "3" → 3, "3x5" → [3, 5],
    "0,1x1,1" → [[0, 1], [1, 1]] (before,after per axis), "same" → "same". Numbers are
    plain ASCII decimal; ConvcalcError (without a place) for one written otherwise."""
    if not any(char.isdigit() for char in text):
        return text  # a word: same, valid, nearest-exact
    axes = [
        [_number(part, text) for part in axis.split(",")] if "," in axis else _number(axis, text)
        for axis in text.split("x")
    ]
    if None in axes or any(isinstance(axis, list) and None in axis for axis in axes):
        return text  # not numbers: the value's checks say what was expected
    # One axis with a pair ("0,1") is still a list of pairs: [[0, 1]].
    return axes if len(axes) > 1 or "," in text else axes[0]


def parse_shape(text: str) -> tuple[int, ...]:
    from convcalc.loader import check_shape

    try:
        value = flag_value(text)
    except ConvcalcError as error:
        raise error.at(Where("--input")) from None
    try:
        return check_shape(value if isinstance(value, list) else [value])
    except ConvcalcError as error:
        raise ConvcalcError(
            "expected a shape like 3x224x224 (channels, then 1 to 3 spatial sizes), "
            f"got {quote(text)}",
            Where("--input"),
        ) from error


def _flag(name: str) -> str:
    """The flag of a parameter: kernel_size → --kernel-size."""
    return "--" + name.replace("_", "-")


def _format(format: StrEnum | None, json: bool) -> Format:
    """The output form: --json is --format json, and contradicts any other --format."""
    if json and format not in (None, Format.json):
        raise ConvcalcError(
            f"--json asks for json, --format for {format}; give one of them", Where("--format")
        )
    return Format.json if json else Format(format or Format.table)


def _depth(text: str | None) -> int | None:
    """--depth: a level of the names (None: every layer, `all`); 2 when not given."""
    from convcalc.render.network import DEFAULT_DEPTH

    if text is None:
        return DEFAULT_DEPTH
    if text == "all":
        return None
    try:
        return _whole_number(text, "--depth", 1)
    except ConvcalcError:
        raise ConvcalcError(
            f"expected a whole number of at least 1, or all, got {text!r}", Where("--depth")
        ) from None


def _check_input(shape: tuple[int, ...] | None, model: "Model") -> None:
    """--input against the model's own input: the same number of spatial axes, lest a
    2-D network run at 3x224 as a 1-D one, or at 1x3x224x224 as a 3-D one. A model that
    declares no input takes any shape."""
    declared = model.input_shape
    if shape is None or declared is None or len(shape) == len(declared):
        return

    def axes(shape: tuple[int, ...]) -> str:
        count = len(shape) - 1
        return f"{count} spatial {'axis' if count == 1 else 'axes'}" if count else "no spatial axes"

    def spelled(shape: tuple[int, ...]) -> str:
        return "x".join(map(str, shape))

    expected = (
        f"expected channels and {axes(declared)}, as {model.name or 'the model'} declares "
        f"({spelled(declared)}), got {spelled(shape)}"
    )
    if len(shape) == len(declared) + 1:
        raise ConvcalcError(
            f"{expected}, which looks batched: shapes are without the batch (--batch sets it); "
            f"give --input {spelled(shape[1:])}",
            Where("--input"),
        )
    raise ConvcalcError(f"{expected}, with {axes(shape)}", Where("--input"))


def _seconds(trace_timeout: float | None) -> float | None:
    if trace_timeout is not None and not 0 < trace_timeout < float("inf"):
        raise ConvcalcError(
            f"expected a positive number of seconds, got {trace_timeout:g}",
            Where("--trace-timeout"),
        )
    return trace_timeout


@app.command(cls=_Command)
def layer(
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND",
            help="The layer kind: conv, conv_transpose, max_pool, avg_pool, linear, relu, … "
            "(a misspelt one gets a suggestion); or a PyTorch module as print(model) shows "
            'it: "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2))".',
            show_default=False,
        ),
    ],
    input: Annotated[str, _text_option("SHAPE", SHAPE_HELP, "--input")],
    out_channels: Annotated[
        str | None, _text_option("N", "Output channels (conv, conv_transpose).")
    ] = None,
    kernel_size: Annotated[
        str | None, _text_option("SIZE", "Kernel size: 3, or 3x5 per axis (convs, pools).")
    ] = None,
    stride: Annotated[
        str | None, _text_option("STRIDE", "Stride: 2, or 2x1 per axis (convs, pools).")
    ] = None,
    padding: Annotated[
        str | None,
        _text_option(
            "PADDING",
            "Padding: 1, 1x2 per axis, 0,1x0,1 (before,after per axis), same or valid "
            "(convs, pools, pad).",
        ),
    ] = None,
    dilation: Annotated[
        str | None, _text_option("DILATION", "Dilation: 2, or 2x1 per axis (convs, max_pool).")
    ] = None,
    groups: Annotated[
        str | None, _text_option("N", "Groups of channels (convs, channel_shuffle).")
    ] = None,
    bias: Annotated[
        bool | None,
        typer.Option("--bias/--no-bias", help="With or without a bias (default: with)."),
    ] = None,
    output_padding: Annotated[
        str | None,
        _text_option("PADDING", "Output padding: 1, or 1x0 per axis (conv_transpose)."),
    ] = None,
    ceil_mode: Annotated[
        bool | None, typer.Option("--ceil-mode", help="Round the output size up (pools).")
    ] = None,
    output_size: Annotated[
        str | None, _text_option("SIZE", "Output size: 1, or 7x7 per axis (adaptive pools).")
    ] = None,
    scale_factor: Annotated[
        str | None, _text_option("FACTOR", "Scale factor: 2, or 2x1 per axis (upsample).")
    ] = None,
    size: Annotated[
        str | None, _text_option("SIZE", "Output size instead of a scale factor (upsample).")
    ] = None,
    mode: Annotated[
        str | None,
        _text_option(
            "MODE",
            "Interpolation mode: nearest, nearest-exact, linear, bilinear, bicubic, trilinear "
            "(upsample); constant, reflect, replicate, circular (pad).",
        ),
    ] = None,
    align_corners: Annotated[
        bool | None,
        typer.Option("--align-corners", help="Align the corner pixels (upsample, linear modes)."),
    ] = None,
    out_features: Annotated[str | None, _text_option("N", "Output features (linear).")] = None,
    num_groups: Annotated[
        str | None, _text_option("N", "Groups the channels are normalised in (group_norm).")
    ] = None,
    in_channels: Annotated[
        str | None,
        _text_option("N", "Input channels; only checked against the input (convs)."),
    ] = None,
    in_features: Annotated[
        str | None,
        _text_option("N", "Input features; only checked against the input (linear)."),
    ] = None,
    batch: BatchOption = 1,
    format: TableOrJsonOption = None,
    json: JsonOption = False,
    explain: ExplainOption = False,
) -> None:
    """One layer: output shape, params, MACs and receptive field.

    Example: convcalc layer conv --input 3x224x224 --out-channels 64 --kernel-size 7
    --stride 2 --padding 3; or convcalc layer "Conv2d(3, 64, kernel_size=(7, 7),
    stride=(2, 2), padding=(3, 3), bias=False)" --input 3x224x224 (flags given too
    override the printed values)
    """
    from convcalc.analysis.analyze import analyze_layer
    from convcalc.loader import build_layer
    from convcalc.model.layers import KINDS

    shape = parse_shape(input)
    label, printed = kind, dict[str, Any]()
    if kind not in KINDS:
        from convcalc.imports.printed import looks_printed, read_printed

        if not looks_printed(kind):
            from convcalc.source import name_hint
            from convcalc.suggest import suggest

            module = (
                "; or a PyTorch module as print(model) shows it, such as "
                "Conv2d(3, 64, kernel_size=(3, 3))"
                # Not after a guess, nor for a look-alike of a kind (a Greek ο, a Cyrillic е).
                if kind.isascii() and not suggest(kind, KINDS)
                else ""
            )
            raise ConvcalcError(
                f"unknown layer kind {quote(kind)}{name_hint(kind, KINDS)}{module}", Where("KIND")
            )
        label, kind, printed = read_printed(kind, shape)
    flags = {
        "out_channels": out_channels, "kernel_size": kernel_size, "stride": stride,
        "padding": padding, "dilation": dilation, "groups": groups, "bias": bias,
        "output_padding": output_padding, "ceil_mode": ceil_mode, "output_size": output_size,
        "scale_factor": scale_factor, "size": size, "mode": mode, "align_corners": align_corners,
        "out_features": out_features, "num_groups": num_groups, "in_channels": in_channels,
        "in_features": in_features,
    }  # fmt: skip
    given: dict[str, Any] = {}
    for name, value in flags.items():
        if value is None:
            continue
        try:
            given[name] = flag_value(value) if isinstance(value, str) else value
        except ConvcalcError as error:
            raise error.at(Where(_flag(name))) from None

    def place(name: str | None) -> Where:
        if name in given:
            return Where(_flag(name))
        return Where(f"{label}.{name}" if name else label)

    analysis = analyze_layer(build_layer(kind, printed | given, place), shape, batch)
    if _format(format, json) is Format.json:
        from convcalc.render.data import to_layer_json

        print(to_layer_json(analysis, explain))
    else:
        from convcalc.render.table import print_layer

        print_layer(analysis, explain)


@app.command(cls=_Command)
def net(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A model file (YAML or JSON), an ONNX file (.onnx), - for standard input, "
            "a bundled model (convcalc models lists them), or package.module:attribute (a "
            "PyTorch module, traced at --input).",
            show_default=False,
        ),
    ],
    input: InputOption = None,
    batch: BatchOption = 1,
    format: FormatOption = None,
    json: JsonOption = False,
    explain: ExplainOption = False,
    chart: Annotated[
        bool,
        typer.Option(
            "--chart", help="Instead of the table: a bar chart of the receptive field per layer."
        ),
    ] = False,
    plot: Annotated[
        str | None,
        _text_option(
            "FILE",
            "Also draw the receptive field and feature-map size per layer to FILE (.svg or "
            ".png; needs convcalc[plot]); says on standard error what it wrote.",
            "--plot",
        ),
    ] = None,
    field_of: Annotated[
        str | None,
        _text_option(
            "UNIT",
            "With --plot: draw instead the input positions that output unit UNIT sees, one "
            "index per spatial axis (y,x for 2-D).",
            "--field-of",
        ),
    ] = None,
    field_layer: Annotated[
        str | None,
        _text_option(
            "NAME",
            "With --field-of: the layer, by the name the table shows (or its path); default: "
            "the last layer with a field.",
            "--layer",
        ),
    ] = None,
    depth: Annotated[
        str | None,
        typer.Option(
            "--depth",
            metavar="N",
            help="Table rows down to level N of the names (1: layer1; 2: layer1.0; 3: "
            "layer1.0.conv1), deeper layers folded into their block's row; all: every "
            "layer. Default: 2, stages and their blocks.",
        ),
    ] = None,
    trace_timeout: TraceTimeoutOption = None,
) -> None:
    """A whole network: one row per layer, totals, the receptive field, warnings.

    Example: convcalc net examples/vgg_style.yaml --input 3x64x64 --json
    """
    from convcalc.analysis.analyze import analyze
    from convcalc.opening import open_model

    shape = parse_shape(input) if input else None
    loaded = open_model(model, shape, _seconds(trace_timeout))
    _check_input(shape, loaded)
    analysis = analyze(loaded, shape, batch)
    chosen = _format(format, json)
    if chart and (chosen is not Format.table or explain):
        raise ConvcalcError(
            "prints instead of the table; leave out --format, --json and --explain",
            Where("--chart"),
        )
    if explain and chosen in (Format.csv, Format.markdown):  # before any file is written
        raise ConvcalcError("--explain goes with a table or json", Where("--explain"))
    if depth is not None and (chosen is not Format.table or chart):
        raise ConvcalcError(
            "folds the table's rows; json, csv and markdown keep every row", Where("--depth")
        )
    levels = _depth(depth)
    if plot is not None:
        from convcalc.render.plot import write_plot

        # On standard error, which stays free of the answer (JSON, CSV) on standard output.
        _say(f"wrote {printable(plot)} ({write_plot(analysis, plot, field_of, field_layer)})")
    elif field_of is not None or field_layer is not None:
        option = "--field-of" if field_of is not None else "--layer"
        raise ConvcalcError("draws a picture: give --plot FILE too", Where(option))
    if chart:
        from convcalc.render.chart import print_chart

        print_chart(analysis)
        return
    if chosen is Format.table:
        from convcalc.render.table import print_network

        print_network(analysis, explain, depth=levels)
        return
    from convcalc.render import data

    if chosen is Format.json:
        text = data.to_json(analysis, explain)
    else:
        text = (data.to_csv if chosen is Format.csv else data.to_markdown)(analysis)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command(cls=_Command)
def solve(
    input: Annotated[
        int | None, _whole_number_option(1, "Input size on one axis (with --output).", "--input")
    ] = None,
    output: Annotated[
        int | None, _whole_number_option(1, "Wanted output size on that axis.", "--output")
    ] = None,
    transpose: Annotated[
        bool,
        typer.Option("--transpose", help="Solve for conv_transpose (upsampling) instead of conv."),
    ] = False,
    kernel_size: Annotated[
        int | None,
        _whole_number_option(
            1, "Hold the kernel size at N; with --field, every layer's (default: 3)."
        ),
    ] = None,
    stride: Annotated[
        int | None,
        _whole_number_option(1, "Hold the stride at N; with --field, every layer's (default: 1)."),
    ] = None,
    dilation: Annotated[
        int | None,
        _whole_number_option(
            1, "Hold the dilation at N; with --field, the first layer's (default: 1)."
        ),
    ] = None,
    max_kernel: Annotated[int, _whole_number_option(1, "Largest kernel size to try.")] = 11,
    max_stride: Annotated[int, _whole_number_option(1, "Largest stride to try.")] = 4,
    max_dilation: Annotated[int, _whole_number_option(1, "Largest dilation to try.")] = 4,
    field: Annotated[
        int | None,
        _whole_number_option(
            1, "Instead: how many layers of one pattern reach a receptive field of N."
        ),
    ] = None,
    dilation_growth: Annotated[
        int,
        _whole_number_option(
            1, "With --field: each layer's dilation is the one before's times N (2: 1, 2, 4, …)."
        ),
    ] = 1,
    limit: Annotated[
        int,
        _whole_number_option(
            0,
            "Rows the table shows: the best settings, or with --field the first and last "
            "layers; 0 shows all. JSON always has every row.",
        ),
    ] = 20,
    format: TableOrJsonOption = None,
    json: JsonOption = False,
) -> None:
    """Inverse questions on one axis: every layer setting that maps --input to --output
    (best first), or with --field how many layers of a pattern reach a receptive field.

    Examples: convcalc solve --input 224 --output 112 --kernel-size 3;
    convcalc solve --field 500 --kernel-size 3 --dilation-growth 2
    """
    from convcalc.analysis import solve as solver
    from convcalc.render import data, table

    chosen = _format(format, json)
    if field is not None:
        if input is not None or output is not None or transpose:
            raise ConvcalcError(
                "--field asks for a number of layers; leave out --input, --output and --transpose",
                Where("--field"),
            )
        try:
            plan = solver.layers_for_field(
                field, kernel_size or 3, stride or 1, dilation or 1, dilation_growth
            )
        except ConvcalcError as error:
            raise error.at(Where("--field")) from None
        if chosen is Format.json:
            print(data.to_field_plan_json(plan))
        else:
            table.print_field_plan(plan, limit)
        return
    if input is None or output is None:
        raise ConvcalcError(
            "give --input and --output (sizes on one axis), or --field", Where("solve")
        )

    def bounds(fixed: int | None, largest: int) -> range:
        return range(fixed, fixed + 1) if fixed is not None else range(1, largest + 1)

    try:
        settings = solver.solve(
            input,
            output,
            transpose=transpose,
            kernel_sizes=bounds(kernel_size, max_kernel),
            strides=bounds(stride, max_stride),
            dilations=bounds(dilation, max_dilation),
        )
    except ConvcalcError as error:
        raise error.at(Where("solve")) from None
    if chosen is Format.json:
        print(data.to_solutions_json(input, output, transpose, settings))
    else:
        table.print_solutions(input, output, transpose, settings, limit)


#: With neither --range nor --min, `sizes` tries the model's own size ± this much.
NEAR = 32


def parse_range(text: str) -> range:
    from convcalc.analysis.sizes import MAX_SEARCH

    found = re.fullmatch(r"([0-9]{1,30})\.\.([0-9]{1,30})", text)
    low, high = (int(found[1]), int(found[2])) if found else (0, 0)
    if not 1 <= low <= high:
        raise ConvcalcError(
            f"expected LO..HI with 1 ≤ LO ≤ HI, such as 32..256; got {quote(text)}",
            Where("--range"),
        )
    if high - low >= MAX_SEARCH:
        raise ConvcalcError(
            f"the range holds {high - low + 1:,} sizes; at most {MAX_SEARCH:,} are tried at once",
            Where("--range"),
        )
    return range(low, high + 1)


@app.command(cls=_Command)
def sizes(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A model file (YAML, JSON or .onnx), - for standard input, a bundled model, "
            "or package.module:attribute (a PyTorch module, traced at --input).",
            show_default=False,
        ),
    ],
    range_: Annotated[
        str | None,
        _text_option(
            "LO..HI",
            "Input sizes to try, such as 200..260 (every spatial axis that size). With "
            "neither --range nor --min: --min, and the model's own size ± 32.",
            "--range",
        ),
    ] = None,
    smallest: Annotated[
        bool, typer.Option("--min", help="Find the smallest valid input size.")
    ] = False,
    input: Annotated[
        str | None,
        _text_option(
            "SHAPE",
            "Channels and spatial axes to try the sizes with, as a shape (3x1x1); default: "
            "the model's own input.",
            "--input",
        ),
    ] = None,
    format: TableOrJsonOption = None,
    json: JsonOption = False,
) -> None:
    """Which input sizes the network accepts: valid (it runs) and clean (no layer drops
    input pixels), the output shape, what breaks where; the smallest valid size (--min)
    and the period of validity over the range. Alone, it answers the common question:
    the smallest valid size, and which sizes near the model's own input work.

    Examples: convcalc sizes vgg16; convcalc sizes unet --range 200..260;
    convcalc sizes alexnet --min
    """
    from convcalc.analysis import sizes as checks
    from convcalc.opening import open_model
    from convcalc.render import data, table

    chosen = _format(format, json)
    given = parse_shape(input) if input else None
    loaded = open_model(model, given)
    _check_input(given, loaded)
    template = given or loaded.input_shape
    if template is None or len(template) < 2:
        raise ConvcalcError(
            "sizes needs an input with spatial axes: give --input 3x1x1 (channels and axes)",
            Where("--input"),
        )
    if range_ is None and not smallest:
        # The common question: the smallest valid input, and which sizes near the
        # model's own work (its size ± NEAR on every spatial axis).
        smallest = True
        size = template[1]
        range_ = f"{max(1, size - NEAR)}..{size + NEAR}"
    found = [checks.check_size(loaded, template, n) for n in parse_range(range_)] if range_ else []
    report = data.SizesReport(
        found,
        checks.smallest_valid(loaded, template) if smallest else None,
        smallest,
        checks.period(found, lambda check: check.valid),
        checks.period(found, lambda check: check.clean),
    )
    if chosen is Format.json:
        print(data.to_sizes_json(report))
    else:
        table.print_sizes(report)


@app.command(cls=_Command)
def models(
    format: TableOrJsonOption = None,
    json: JsonOption = False,
) -> None:
    """The bundled models, each with its params, MACs and field at its default input.

    Example: convcalc models; then convcalc net resnet50 --input 3x320x320
    """
    from convcalc.analysis.analyze import analyze
    from convcalc.opening import open_model
    from convcalc.zoo import model_names

    analyses = [(name, analyze(open_model(name))) for name in model_names()]
    chosen = _format(format, json)
    if chosen is Format.json:
        from convcalc.render.data import to_models_json

        print(to_models_json(analyses))
    else:
        from convcalc.render.table import print_models

        print_models(analyses)


@app.command(cls=_Command)
def schema() -> None:
    """The JSON Schema (draft 2020-12) of model files, for editors to check and complete them.

    Example: convcalc schema > convcalc-model.schema.json, then start a model file with
    # yaml-language-server: $schema=convcalc-model.schema.json
    """
    from convcalc.render.schema import to_schema_json

    print(to_schema_json())


@app.command(cls=_Command)
def export(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A model file, an ONNX file (.onnx), - for standard input, a bundled model, "
            "or package.module:attribute (a PyTorch module).",
            show_default=False,
        ),
    ],
    input: InputOption = None,
    output: Annotated[
        str | None,
        _text_option("FILE", "Write to this file instead of standard output.", "--output", "-o"),
    ] = None,
    trace_timeout: TraceTimeoutOption = None,
) -> None:
    """Write the model as a convcalc YAML model file, which `convcalc net` reads to the
    same analysis: how an ONNX model looks in convcalc's terms, to read or edit.

    Example: convcalc export model.onnx -o model.yaml; then convcalc net model.yaml
    """
    from convcalc.analysis.analyze import analyze
    from convcalc.loader import build_model
    from convcalc.opening import open_document
    from convcalc.render.model_file import to_yaml

    shape = parse_shape(input) if input else None
    document = open_document(model, shape, _seconds(trace_timeout))
    loaded = build_model(document)
    _check_input(shape, loaded)
    if shape is None and loaded.input_shape is None:
        raise ConvcalcError(
            "the model declares no input, and a model file is written only once it runs: "
            "give --input (such as 3x224x224)",
            Where("--input"),
        )
    analyze(loaded, shape)  # a model that does not run is not written
    data = dict(document.data)
    if shape is not None:
        data["input"] = list(shape)
    # name, input, define, layers and outputs first, as model files are written; then x- keys.
    data = {
        key: data[key] for key in ("name", "input", "define", "layers", "outputs") if key in data
    } | data
    text = to_yaml(data, f"Written by convcalc export from {document.file or model}.")
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as error:
        raise ConvcalcError(
            f"cannot write {quote(output)}: {error.strerror}", Where("--output")
        ) from None


def main() -> None:
    """The console script: run the app and turn bad input into `error:` and exit 2.

    Ctrl-C and a reader that goes away (`| head`) end the program as they end any Unix
    tool, killed by the signal (`convcalc.__main__`, the program, sees to that); what
    else can go wrong with the standard streams (closed, a full disk, an encoding
    without ×) ends in an answer or an `error:` line too, never a traceback."""
    from typer._click.exceptions import NoSuchOption
    from typer.exceptions import TyperException

    # A run builds no reference cycles worth collecting and then exits; the cyclic
    # collector would only rescan the growing list of rows again and again, which made
    # a 100,000-layer model take twice as long.
    gc.disable()
    # Blocks may nest thousands deep (up to source.MAX_DEPTH); the loader and the walk
    # recurse once or twice per level, which Python 3.11 does without the C stack.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    _guard_standard_streams()

    # Typer's own errors (unknown option, missing argument, bad choice) are usage errors;
    # standalone mode would print them as a multi-line panel, so they are caught here.
    status = 0
    try:
        app(sys.argv[1:] or ["--help"], prog_name="convcalc", standalone_mode=False)
    except ConvcalcError as error:
        status = _fail(str(error))
    except (typer.Exit, typer.Abort) as stop:
        status = getattr(stop, "exit_code", 2)
    except NoSuchOption as error:
        status = _fail(_no_such_option(error))
    except TyperException as error:
        # Click quotes the bad value as it was typed: escape it, keep to one line, and
        # cut a long one short (its own messages take at most 100 characters).
        status = _fail(printable(shorten(error.format_message(), 200)))
    except OSError as error:
        # Every file the core opens turns its own errors into messages: what is left
        # is standard output that cannot be written (closed, /dev/full).
        status = _output_failed(error)
    try:
        sys.stdout.flush()  # here, not at exit, where a failure would go unreported
    except OSError as error:
        status = _output_failed(error)
    sys.exit(status)


def _no_such_option(error: "NoSuchOption") -> str:
    """An unknown option, and the command's options it was likely meant as: --inptu,
    --kernel, --kernel_size, --filters (Keras) each find theirs. (Click's own guess
    lists whatever is a little alike: --plot for --inptu.)"""
    from convcalc.suggest import did_you_mean, suggest

    typed, context = error.option_name, error.ctx
    params = context.command.params if context is not None else []
    flags = [flag for param in params for flag in (*param.opts, *param.secondary_opts)]
    meant = suggest(typed, [flag for flag in flags if flag.startswith("--")])
    path = context.command_path if context is not None else "convcalc"
    hint = did_you_mean(meant, quoted=False) if meant else f"{path} --help lists the options"
    return f"{printable(shorten(typed))}: no such option; {hint}"


def _output_failed(error: OSError) -> int:
    """Standard output cannot be written: say so, and let what is still buffered go to
    /dev/null, or Python would try again at exit and print a warning of its own."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: closed, no descriptor
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return _fail(f"cannot write standard output: {error.strerror}")


def _fail(message: str) -> int:
    """Print the one `error:` line (if standard error can take it); exit status 2."""
    _say(f"error: {message}")
    return 2


def _say(line: str) -> None:
    """One line on standard error, if it can take it."""
    try:
        sys.stderr.write(f"{line}\n")
        sys.stderr.flush()
    except (OSError, AttributeError):  # standard error closed (None) or full: nowhere to say it
        pass


class _ClosedOutput(io.TextIOBase):
    """Standard output when the program was started with it closed: writing fails, as
    it fails for any Unix tool (`ls >&-`), and the failure becomes an `error:` line."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "it is closed")


def _guard_standard_streams() -> None:
    """Descriptors 0, 1 and 2 that were closed at start are opened on /dev/null, so that
    no file or pipe opened later takes their number (a child process redirects them);
    the Python streams stay None for stdin (`source.read` refuses it) and stderr, and a
    closed stdout refuses writes. Text that an output's encoding cannot take (×, …
    under PYTHONIOENCODING=ascii) is spelled in ASCII (`_spell`)."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
    if sys.stdout is None:
        sys.stdout = _ClosedOutput()
    codecs.register_error("convcalc-ascii", _spell)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="convcalc-ascii")


#: How the characters convcalc prints are spelled where the encoding lacks them.
_ASCII = {
    "×": "x", "−": "-", "…": "...", "→": "->", "≤": "<=", "≥": ">=", "—": "-", "–": "-",
    "⌊": "floor(", "⌋": ")", "⌈": "ceil(", "⌉": ")", "½": "1/2", "≡": "==", "·": "*",
    "█": "#", "▉": "#", "▊": "#", "▋": "#", "▌": "#", "▍": "", "▎": "", "▏": "",
}  # fmt: skip


def _spell(error: UnicodeError) -> tuple[str, int]:
    """An encoding error handler: convcalc's own characters in ASCII (a separator ` · `
    as ` - `, a product `(k − 1)·d` as `(k - 1)*d`), anything else escaped (\\u00e9)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text, spelled = error.object, []
    for index in range(error.start, error.end):
        char = text[index]
        if char == "·" and text[index - 1 : index] == text[index + 1 : index + 2] == " ":
            spelled.append("-")
        elif char in _ASCII:
            spelled.append(_ASCII[char])
        else:
            spelled.append(char.encode("ascii", "backslashreplace").decode("ascii"))
    return "".join(spelled), error.end
