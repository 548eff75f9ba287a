"""A catalogue of bad input, for every command and every way a model arrives (a YAML or
JSON file, standard input) and every flag: each case must end with exit status 2, nothing
on standard output, and exactly one line on standard error that begins `error:` and
names the place (`file:line: layer path`, `<stdin>`, or the flag), then says what was
expected. No traceback, and an answer within a time bound.

Cases here extend tests/test_loader.py, tests/test_cli.py and tests/test_hostile_input.py
and repeat none of theirs. Hostile ones run in a separate process under a timeout.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Seconds a case may take. Each takes well under one; this only tells slow from hung.
TIME_BOUND = 10


@dataclass(frozen=True)
class Case:
    """A command line and what must come of it.

    The error line must begin `error: {where}` and contain `says`. `model` is written
    to the file `file` (in an empty working folder) before the run; `hostile` cases run
    as a separate process.
    """

    id: str
    args: tuple[str, ...]
    where: str
    says: str
    model: str | bytes | None = None
    file: str = "model.yaml"
    stdin: str | bytes = b""
    hostile: bool = False


def model_file(
    id: str, text: str | bytes, where: str, says: str, *, file: str = "model.yaml", **more: Any
) -> Case:
    """`convcalc net FILE` on a model file with this text; `where` follows the file name."""
    return Case(id, ("net", file, "--json"), f"{file}{where}: ", says, text, file, **more)


def json_file(id: str, text: str, where: str, says: str, **more: Any) -> Case:
    return model_file(id, text, where, says, file="model.json", **more)


def stdin(id: str, text: str | bytes, where: str, says: str, **more: Any) -> Case:
    """`convcalc net -` with this text on standard input; `where` follows `<stdin>`."""
    return Case(id, ("net", "-"), f"<stdin>{where}: ", says, stdin=text, **more)


def flags(id: str, args: str, where: str, says: str, **more: Any) -> Case:
    """A command line (words split on spaces); `where` is the flag or argument."""
    return Case(id, tuple(args.split()), f"{where}: ", says, **more)


def usage(id: str, args: str, says: str) -> Case:
    """A usage error in Typer's words, which name the flag or argument first."""
    return Case(id, tuple(args.split()), says, "")


CONV = "conv: {out_channels: 4, kernel_size: 3"  # closed by each case, with what it adds
LAYER = "layer conv --input 3x8x8 --out-channels 4 --kernel-size 3"

CASES = [
    # --- Wrong types in a YAML model file: each names file, line and parameter path.
    model_file(
        "stride-true",
        f"input: [3, 8, 8]\nlayers:\n  - relu\n  - {CONV}, stride: true}}\n",
        ":4: layers[1].conv.stride",
        "expected a positive integer, or a list of them (one per axis), got true",
    ),
    model_file(
        "kernel-string",
        'input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: 4, kernel_size: "3"}\n',
        ":3: layers[0].conv.kernel_size",
        'got "3"',
    ),
    model_file(
        "kernel-float-in-list",
        "input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: 4, kernel_size: [3, 3.5]}\n",
        ":3: layers[0].conv.kernel_size",
        "got [3, 3.5]",
    ),
    model_file(
        "channels-list",
        "input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: [64], kernel_size: 3}\n",
        ":3: layers[0].conv.out_channels",
        "expected a positive integer, got [64]",
    ),
    model_file(
        "channels-nested-mapping",
        "input: [3, 8, 8]\nlayers:\n  - conv:\n      out_channels: {n: 64}\n      kernel_size: 3\n",
        ":4: layers[0].conv.out_channels",
        'got {"n": 64}',
    ),
    model_file(
        "kernel-four-axes",
        "input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: 4, kernel_size: [3, 3, 3, 3]}\n",
        ":3: layers[0].conv.kernel_size",
        "a list of 1 to 3 of them",
    ),
    model_file(
        "padding-short-pair",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, padding: [1, [2]]}}\n",
        ":3: layers[0].conv.padding",
        "a list of [before, after] pairs",
    ),
    model_file(
        "bias-number",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, bias: 1}}\n",
        ":3: layers[0].conv.bias",
        "expected true or false, got 1",
    ),
    model_file(
        "bias-string",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, bias: 'false'}}\n",
        ":3: layers[0].conv.bias",
        'expected true or false, got "false"',
    ),
    model_file(
        "ceil-mode-null",
        "input: [3, 8, 8]\nlayers:\n  - max_pool: {kernel_size: 2, ceil_mode: null}\n",
        ":3: layers[0].max_pool.ceil_mode",
        "expected true or false, got null",
    ),
    model_file(
        "groups-float",
        f"input: [4, 8, 8]\nlayers:\n  - {CONV}, groups: 2.0}}\n",
        ":3: layers[0].conv.groups",
        "expected a positive integer, got 2.0",
    ),
    model_file(
        "name-number",
        "input: [3, 8, 8]\nlayers:\n  - relu: {name: 3}\n",
        ":3: layers[0].relu.name",
        "expected a string, got 3",
    ),
    model_file(
        "model-name-list",
        "name: [a, b]\ninput: [3, 8, 8]\nlayers: [relu]\n",
        ":1: name",
        'expected a string, got ["a", "b"]',
    ),
    model_file(
        "name-date",  # YAML 1.1 reads 2001-12-14 as a timestamp, an object
        "name: 2001-12-14\ninput: [3, 8, 8]\nlayers: [relu]\n",
        ":1: name",
        "the tag tag:yaml.org,2002:timestamp is not allowed",
    ),
    model_file(
        "layer-number",
        "input: [3, 8, 8]\nlayers:\n  - relu\n  - 3\n",
        ":4: layers[1]",
        "expected a layer: a kind (relu) or a mapping with one key",
    ),
    model_file(
        "layer-null",
        "input: [3, 8, 8]\nlayers:\n  - relu\n  -\n  - relu\n",
        ":4: layers[1]",
        "got null",
    ),
    model_file(
        "layer-empty-mapping",
        "input: [3, 8, 8]\nlayers:\n  - {}\n",
        ":3: layers[0]",
        "expected a layer",
    ),
    model_file(
        "layer-list",
        "input: [3, 8, 8]\nlayers:\n  - [relu, relu]\n",
        ":3: layers[0]",
        'got ["relu", "relu"]',
    ),
    model_file(
        "document-scalar",
        "hello\n",
        ":1",
        "expected a mapping with define, dropped, input, layers, name",
    ),
    # --- Signs and zeros.
    model_file(
        "padding-negative",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, padding: -1}}\n",
        ":3: layers[0].conv.padding",
        "got -1",
    ),
    model_file(
        "padding-negative-pair",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, padding: [[1, -1], 0]}}\n",
        ":3: layers[0].conv.padding",
        "got [[1, -1], 0]",
    ),
    model_file(
        "dilation-zero",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, dilation: 0}}\n",
        ":3: layers[0].conv.dilation",
        "expected a positive integer",
    ),
    model_file(
        "groups-zero",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, groups: 0}}\n",
        ":3: layers[0].conv.groups",
        "expected a positive integer, got 0",
    ),
    model_file(
        "channels-negative",
        "input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: -4, kernel_size: 3}\n",
        ":3: layers[0].conv.out_channels",
        "expected a positive integer, got -4",
    ),
    model_file(
        "features-zero",
        "input: [12]\nlayers:\n  - linear: {out_features: 0}\n",
        ":3: layers[0].linear.out_features",
        "expected a positive integer, got 0",
    ),
    model_file(
        "output-size-zero",
        "input: [3, 8, 8]\nlayers:\n  - adaptive_avg_pool: {output_size: [0, 1]}\n",
        ":3: layers[0].adaptive_avg_pool.output_size",
        "got [0, 1]",
    ),
    model_file(
        "scale-negative",
        "input: [3, 8, 8]\nlayers:\n  - upsample: {scale_factor: -2}\n",
        ":3: layers[0].upsample.scale_factor",
        "expected a positive number, got -2",
    ),
    model_file(
        "dropout-over-one",
        "input: [3, 8, 8]\nlayers:\n  - dropout: {p: 1.5}\n",
        ":3: layers[0].dropout.p",
        "expected a number from 0 to 1, got 1.5",
    ),
    model_file(
        "momentum-over-one",
        "input: [3, 8, 8]\nlayers:\n  - batch_norm: {momentum: 2}\n",
        ":3: layers[0].batch_norm.momentum",
        "expected a number from 0 to 1, got 2",
    ),
    model_file(
        "slope-nan",
        "input: [3, 8, 8]\nlayers:\n  - leaky_relu: {negative_slope: .nan}\n",
        ":3: layers[0].leaky_relu.negative_slope",
        "expected a number, got NaN",
    ),
    model_file(
        "eps-infinite",
        "input: [3, 8, 8]\nlayers:\n  - batch_norm: {eps: .inf}\n",
        ":3: layers[0].batch_norm.eps",
        "expected a number, got Infinity",
    ),
    model_file(
        "repeat-times-negative",
        "input: [3, 8, 8]\nlayers:\n  - repeat: {times: -2, layers: [relu]}\n",
        ":3: layers[0].repeat.times",
        "expected a positive integer, got -2",
    ),
    model_file(
        "repeat-times-true",
        "input: [3, 8, 8]\nlayers:\n  - repeat: {times: true, layers: [relu]}\n",
        ":3: layers[0].repeat.times",
        "expected a positive integer, got true",
    ),
    model_file(
        "input-zero-channels",
        "input: [0, 8, 8]\nlayers: [relu]\n",
        ":1: input",
        "expected a shape: a list of 1 to 4 positive integers",
    ),
    # --- Missing and unknown keys and kinds: the error lists the known ones.
    model_file(
        "unknown-kind-in-body",
        "input: [3, 8, 8]\nlayers:\n  - residual:\n      body:\n        - relu\n"
        "        - convolution: {out_channels: 3}\n",
        ":6: layers[0].residual.body[1]",
        "unknown layer kind 'convolution'; did you mean 'conv'?",
    ),
    model_file(
        "unknown-kind-upper-case",
        "input: [3, 8, 8]\nlayers: [ReLU]\n",
        ":2: layers[0]",
        "unknown layer kind 'ReLU'; did you mean 'relu'?",
    ),
    model_file(
        "unknown-parameter-relu",
        "input: [3, 8, 8]\nlayers:\n  - relu: {in_place: true}\n",
        ":3: layers[0].relu.in_place",
        "unknown parameter 'in_place' for relu; did you mean 'inplace'?",
    ),
    model_file(
        "unknown-parameter-flatten",
        "input: [3, 8, 8]\nlayers:\n  - flatten: {start_dim: 1}\n",
        ":3: layers[0].flatten.start_dim",
        "unknown parameter 'start_dim' for flatten; known: none",
    ),
    model_file(
        "unknown-key-repeat",
        "input: [3, 8, 8]\nlayers:\n  - repeat: {times: 2, layers: [relu], count: 3}\n",
        ":3: layers[0].repeat.count",
        "unknown key 'count' in repeat; known: from, layers, name, times",
    ),
    model_file(
        "missing-out-features",
        "input: [3, 8, 8]\nlayers:\n  - flatten\n  - linear: {bias: false}\n",
        ":4: layers[1].linear",
        "linear needs out_features",
    ),
    model_file(
        "missing-num-groups",
        "input: [4, 8, 8]\nlayers:\n  - group_norm\n",
        ":3: layers[0].group_norm",
        "group_norm needs num_groups",
    ),
    model_file(
        "residual-without-body",
        "input: [3, 8, 8]\nlayers:\n  - residual: {shortcut: [relu]}\n",
        ":3: layers[0].residual",
        "residual needs body",
    ),
    model_file(
        "residual-as-list",
        "input: [3, 8, 8]\nlayers:\n  - residual: [relu]\n",
        ":3: layers[0].residual",
        "expected the residual block as a mapping with body",
    ),
    model_file(
        "add-as-mapping",
        "input: [3, 8, 8]\nlayers:\n  - add: {a: [relu], b: []}\n",
        ":3: layers[0].add.a",
        "unknown key 'a' in add; known: from, name",
    ),
    model_file(
        "sequential-as-mapping",
        "input: [3, 8, 8]\nlayers:\n  - sequential: {layers: relu}\n",
        ":3: layers[0].sequential.layers",
        'expected a list of layers, got "relu"',
    ),
    model_file(
        "repeat-layers-not-list",
        "input: [3, 8, 8]\nlayers:\n  - repeat: {times: 2, layers: relu}\n",
        ":3: layers[0].repeat.layers",
        'expected a list of layers, got "relu"',
    ),
    model_file(
        "upsample-mode",
        "input: [3, 8, 8]\nlayers:\n  - upsample: {scale_factor: 2, mode: cubic}\n",
        ":3: layers[0].upsample.mode",
        'expected one of nearest, nearest-exact, linear, bilinear, trilinear, bicubic, got "cubic"',
    ),
    model_file(
        "padding-mode",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, padding_mode: mirror}}\n",
        ":3: layers[0].conv.padding_mode",
        'expected one of zeros, reflect, replicate, circular, got "mirror"',
    ),
    # --- Impossible geometry: named at the layer's line and path.
    model_file(
        "pool-kernel-past-input",
        "input: [3, 8, 8]\nlayers:\n  - max_pool: {kernel_size: 4}\n"
        "  - max_pool: {kernel_size: 3}\n",
        ":4: layers[1]",
        "the output would be empty on axis H: (2 + 0 + 0 − 3) / 3 + 1 = 0",
    ),
    model_file(
        "kernel-axes-mismatch",
        "input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: 4, kernel_size: [3, 3, 3]}\n",
        ":3: layers[0]",
        "kernel_size has 3 values, but the input has 2 spatial axes",
    ),
    model_file(
        "padding-axes-mismatch",
        "input: [3, 16]\nlayers:\n  - " + CONV + ", padding: [1, 1]}\n",
        ":3: layers[0]",
        "padding has 2 values, but the input has 1 spatial axis",
    ),
    model_file(
        "linear-on-image",
        "input: [3, 8, 8]\nlayers:\n  - relu\n  - linear: {out_features: 10}\n",
        ":4: layers[1]",
        "linear needs a flat input [N]; got [3, 8, 8]",
    ),
    model_file(
        "conv-after-flatten",
        "input: [3, 8, 8]\nlayers:\n  - flatten\n  - " + CONV + "}\n",
        ":4: layers[1]",
        "conv needs spatial axes",
    ),
    model_file(
        "groups-not-dividing",
        "input: [6, 8, 8]\nlayers:\n  - conv: {out_channels: 4, kernel_size: 1, groups: 3}\n",
        ":3: layers[0]",
        "groups (3) must divide out_channels (4)",
    ),
    model_file(
        "num-groups-not-dividing",
        "input: [6, 8, 8]\nlayers:\n  - group_norm: {num_groups: 4}\n",
        ":3: layers[0]",
        "num_groups (4) must divide the channels (6)",
    ),
    model_file(
        "in-channels-disagree",
        "input: [3, 8, 8]\nlayers:\n  - conv: {in_channels: 4, out_channels: 4, kernel_size: 3}\n",
        ":3: layers[0]",
        "in_channels is 4, but the input has 3",
    ),
    model_file(
        "reflect-padding-too-large",
        f"input: [3, 8, 8]\nlayers:\n  - {CONV}, padding: 8, padding_mode: reflect}}\n",
        ":3: layers[0]",
        "reflect padding (8) must be smaller than the input (8)",
    ),
    model_file(
        "circular-padding-too-large",
        f"input: [3, 4]\nlayers:\n  - {CONV}, padding: 5, padding_mode: circular}}\n",
        ":3: layers[0]",
        "circular padding (5) may not exceed the input (4)",
    ),
    model_file(
        "pool-padding-over-half",
        "input: [3, 8, 8]\nlayers:\n  - avg_pool: {kernel_size: 3, padding: 2}\n",
        ":3: layers[0]",
        "padding 2 is more than half the kernel size 3",
    ),
    model_file(
        "output-padding-not-below-stride",
        "input: [3, 8, 8]\nlayers:\n"
        "  - conv_transpose: {out_channels: 4, kernel_size: 3, stride: 2, output_padding: 2}\n",
        ":3: layers[0]",
        "output_padding (2) must be smaller than the stride (2) or the dilation (1) on axis H",
    ),
    model_file(
        "transposed-same",
        "input: [3, 8, 8]\nlayers:\n"
        "  - conv_transpose: {out_channels: 4, kernel_size: 3, padding: same}\n",
        ":3: layers[0]",
        'padding "same" is not defined for conv_transpose',
    ),
    model_file(
        "upsample-both-sizes",
        "input: [3, 8, 8]\nlayers:\n  - upsample: {scale_factor: 2, size: 16}\n",
        ":3: layers[0]",
        "give exactly one of scale_factor and size",
    ),
    model_file(
        "bilinear-on-1d",
        "input: [3, 8]\nlayers:\n  - upsample: {scale_factor: 2, mode: bilinear}\n",
        ":3: layers[0]",
        "mode bilinear works on 2 spatial axes, but the input has 1",
    ),
    model_file(
        "avg-pool-3d-smaller-than-kernel",
        "input: [1, 2, 8, 8]\nlayers:\n  - avg_pool: {kernel_size: 3, padding: 1}\n",
        ":3: layers[0]",
        "smaller than the kernel [3, 3, 3]",
    ),
    model_file(
        "repeat-shrinks-to-nothing",
        "input: [3, 8, 8]\nlayers:\n  - repeat:\n      times: 4\n      layers:\n"
        "        - max_pool: {kernel_size: 2}\n",
        ":6: layers[0].repeat[3].layers[0]",
        "the output would be empty on axis H",
    ),
    # --- Mismatched merges: named at the block's line and path, with each branch's shape.
    model_file(
        "add-channels-differ",
        "input: [3, 8, 8]\nlayers:\n  - relu\n  - add:\n"
        "      - [{conv: {out_channels: 4, kernel_size: 1}}]\n      - []\n",
        ":4: layers[1]",
        "add needs every branch to give the same shape; got [4, 8, 8] (0), [3, 8, 8] (1)",
    ),
    model_file(
        "residual-shortcut-stride",
        "input: [3, 8, 8]\nlayers:\n  - residual:\n      body: [relu]\n"
        "      shortcut: [{max_pool: {kernel_size: 2}}]\n",
        ":3: layers[0]",
        "got [3, 8, 8] (body), [3, 4, 4] (shortcut)",
    ),
    model_file(
        "concat-spatial-differ",
        "input: [3, 8, 8]\nlayers:\n  - concat:\n      - [{max_pool: {kernel_size: 2}}]\n"
        "      - [relu]\n",
        ":3: layers[0]",
        "concat needs every branch to give the same spatial size; got [3, 4, 4] (0), [3, 8, 8] (1)",
    ),
    model_file(
        "concat-flat-and-spatial",
        "input: [3, 8, 8]\nlayers:\n  - concat: [[flatten], []]\n",
        ":3: layers[0]",
        "got [192] (0), [3, 8, 8] (1)",
    ),
    # --- Source-level trouble in YAML files: tags, keys, syntax, characters.
    model_file(
        "python-object-tag",
        "input: [3, 8, 8]\nlayers:\n  - relu: !!python/object:os.system {}\n",
        ":3: layers[0].relu",
        "the tag tag:yaml.org,2002:python/object:os.system is not allowed",
    ),
    model_file(
        "python-name-tag",
        "name: !!python/name:os.system\ninput: [3, 8, 8]\nlayers: [relu]\n",
        ":1: name",
        "the tag tag:yaml.org,2002:python/name:os.system is not allowed",
    ),
    model_file(
        "binary-tag",
        "name: !!binary aGVsbG8=\ninput: [3, 8, 8]\nlayers: [relu]\n",
        ":1: name",
        "the tag tag:yaml.org,2002:binary is not allowed",
    ),
    model_file(
        "set-tag",
        "input: [3, 8, 8]\nlayers: !!set {relu: null}\n",
        ":2: layers",
        "the tag tag:yaml.org,2002:set is not allowed",
    ),
    model_file(
        "duplicate-top-key",
        "input: [3, 8, 8]\nlayers: [relu]\nlayers: [relu]\n",
        ":3",
        "duplicate key 'layers'",
    ),
    model_file(
        "key-not-string",
        "input: [3, 8, 8]\nlayers:\n  - conv: {1: 4, kernel_size: 3}\n",
        ":3: layers[0].conv",
        "keys must be names (strings)",
    ),
    model_file(
        "merge-key-not-mapping",
        "input: [3, 8, 8]\nlayers:\n  - relu: {<<: [1, 2]}\n",
        ":3: layers[0].relu",
        "a merge key (<<) takes a mapping",
    ),
    model_file(
        "undefined-alias",
        "input: [3, 8, 8]\nlayers:\n  - relu\n  - *missing\n",
        ":4",
        "invalid YAML: found undefined alias",
    ),
    model_file(
        "tab-indent",
        "input: [3, 8, 8]\nlayers:\n\t- relu\n",
        ":3",
        "invalid YAML: while scanning for the next token, found character that cannot start",
    ),
    model_file(
        "two-documents",
        "input: [3, 8, 8]\nlayers: [relu]\n---\nlayers: [relu]\n",
        ":3",
        "invalid YAML: expected a single document in the stream, but found another document",
    ),
    model_file(
        "control-character",
        "input: [3, 8, 8]\nlayers:\n  - relu\x07\n",
        ":3",
        "invalid YAML: control characters are not allowed (U+0007)",
    ),
    model_file(
        "huge-integer-digits",
        "input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: " + "9" * 5000 + ", kernel_size: 3}\n",
        ":3: layers[0].conv.out_channels",
        "expected a number of at most 4,300 digits, got one of 5,000",
        hostile=True,
    ),
    model_file(
        "float-overflow",
        "input: [3, 8, 8]\nlayers:\n  - conv: {out_channels: 4, kernel_size: 1.0e+400}\n",
        ":3: layers[0].conv.kernel_size",
        "got Infinity",
    ),
    model_file(
        "kernel-past-int64",
        f"input: [3, 8, 8]\nlayers:\n  - conv: {{out_channels: 4, kernel_size: {10**400}}}\n",
        ":3: layers[0].conv.kernel_size",
        "expected at most 2^63 − 1 (PyTorch's int64), got 1000",
        hostile=True,
    ),
    model_file(
        "kernel-near-int64",
        f"input: [3, 8, 8]\nlayers:\n  - conv: {{out_channels: 4, kernel_size: {2**63 - 1}}}\n",
        ":3: layers[0]",
        "the output would be empty on axis H",
        hostile=True,
    ),
    model_file(
        "input-past-int64",
        f"input: [3, {2**63}]\nlayers: [relu]\n",
        ":1: input",
        "positive integers (at most 2^63 − 1)",
    ),
    model_file(
        "tensor-too-large",
        f"input: [3, 8, 8]\nlayers:\n  - conv: {{out_channels: {2**62}, kernel_size: 1}}\n",
        ":3: layers[0]",
        "the output would have at least 2^68 elements, more than 2^63 − 1",
    ),
    model_file(
        "weights-too-large",
        f"input: [{2**40}, 1]\nlayers:\n  - conv: {{out_channels: {2**40}, kernel_size: 1}}\n",
        ":3: layers[0]",
        "the weights would have at least 2^80 elements",
    ),
    model_file(
        "field-too-far",  # each pool doubles the effective stride; the padding keeps it going
        "input: [1, 8]\nlayers:\n  - repeat:\n      times: 5000\n"
        "      layers: [{max_pool: {kernel_size: 2, padding: 1}}]\n",
        ":5: layers[0].repeat[1000].layers[0]",
        "the receptive field reaches past 2^1000 input positions",
        hostile=True,
    ),
    model_file(
        "huge-repeat-inside-block",
        "input: [3, 8, 8]\nlayers:\n  - residual:\n      body:\n"
        f"        - repeat: {{times: {10**15}, layers: [relu]}}\n",
        ":5: layers[0].residual.body[0]",
        "the model expands to more than 1,000,000 layers",
        hostile=True,
    ),
    model_file(
        "aliased-repeats",
        "x-r: &r [{repeat: {times: 1001, layers: [relu]}}]\ninput: [3, 8, 8]\n"
        "layers:\n  - repeat: {times: 1000, layers: *r}\n",
        ":4: layers[0]",
        "the model expands to more than 1,000,000 layers (repeat: 1,000 times 1,001)",
        hostile=True,
    ),
    # --- The same troubles in JSON files: lines come from the JSON text.
    json_file(
        "json-kernel-true",
        '{\n  "input": [3, 8, 8],\n  "layers": [\n    {"conv": {"out_channels": 4, '
        '"kernel_size": true}}\n  ]\n}\n',
        ":4: layers[0].conv.kernel_size",
        "got true",
    ),
    json_file(
        "json-duplicate-key",
        '{\n  "input": [3, 8, 8],\n  "layers": ["relu"],\n  "input": [3, 4, 4]\n}\n',
        ":4",
        "duplicate key 'input'",
    ),
    json_file(
        "json-syntax",
        '{\n  "input": [3, 8, 8],\n  "layers": ["relu",]\n  "name": "x"\n}\n',
        ":3",  # a .json file is read as JSON, which has no trailing commas
        "invalid JSON",
    ),
    json_file(
        "json-lone-surrogate",
        '{"input": [3, 8, 8], "name": "a\\ud800", "layers": ["relu"]}\n',
        ": name",
        "expected text, got a string with \\ud800, half of a surrogate pair",
    ),
    json_file(
        "json-emoji-escape-keeps-error",  # YAML reads no surrogate pairs; the error stands
        '{"name": "\\ud83d\\ude00", "input": [3, 8, 8], "layers": ["bogus"]}\n',
        ": layers[0]",
        "unknown layer kind 'bogus'",
    ),
    json_file(
        "json-concat-spatial",
        '{"input": [3, 8, 8],\n "layers": [\n  {"concat": [[{"avg_pool": {"kernel_size": 2}}],'
        " []]}\n ]}\n",
        ":3: layers[0]",
        "concat needs every branch to give the same spatial size",
    ),
    json_file(
        "json-deep-nesting",
        '{"input": [3, 8, 8], "layers": '
        + '[{"add": [[], ' * 1500
        + '["relu"]'
        + "]}]" * 1500
        + "}",
        "",
        "the document nests more than 4,000 levels deep",
        hostile=True,
    ),
    json_file(
        "json-huge-integer",
        '{"input": [3, 8, 8],\n "layers": [{"linear": {"out_features": ' + "7" * 4400 + "}}]}\n",
        ":2: layers[0].linear.out_features",
        "expected a number of at most 4,300 digits",
        hostile=True,
    ),
    # --- Files that are no model: each gets its own message.
    model_file("empty-file", "", "", "empty; a model file needs at least a 'layers' list"),
    model_file("blank-file", " \n\t\n", "", "empty"),
    model_file("comments-only", "# nothing here\n", "", "empty"),
    model_file(
        "not-utf8", b"input: [3, 8]\nname: \xe9t\xe9\n", "", "not UTF-8 text (byte 20 is 0xe9)"
    ),
    model_file("utf16", "layers: [relu]\n".encode("utf-16"), "", "not UTF-8 text (byte 0 is 0xff)"),
    Case(
        "missing-file",
        ("net", "nothing/here.yaml"),
        "nothing/here.yaml: ",
        "no such file or bundled model",
    ),
    Case(
        "directory-for-sizes",
        ("sizes", ".", "--min"),
        ".: ",
        "is a directory, not a model file",
    ),
    # --- Standard input.
    stdin("stdin-blank", " \n \n", "", "empty"),
    stdin(
        "stdin-null-document",
        "null\n",
        ":1",
        "expected a mapping with define, dropped, input, layers, name, outputs, unused_params, "
        "got null",
    ),
    stdin("stdin-nul-byte", "input: [3, 8]\x00\nlayers: [relu]\n", ":1", "U+0000"),
    stdin(
        "stdin-json-unknown-key",
        '{"input": [3, 8],\n "layer": ["relu"]}\n',
        ":2: layer",
        "unknown key 'layer'; did you mean 'layers'?\n",
    ),
    stdin(
        "stdin-alias-merge-bad",
        "input: [3, 8, 8]\nx-a: &a {kernel_size: 3}\nlayers:\n  - conv: {<<: *a, out_channel: 4}\n",
        ":4: layers[0].conv.out_channel",
        "unknown parameter 'out_channel' for conv; did you mean 'out_channels'?",
    ),
    Case(
        "stdin-empty-for-sizes",
        ("sizes", "-", "--range", "8..9"),
        "<stdin>: ",
        "empty",
    ),
    # --- Flags of `layer`: named by the flag.
    flags("flag-kernel-true", f"{LAYER} --stride true", "--stride", 'got "true"'),
    flags("flag-stride-four-axes", f"{LAYER} --stride 2x2x2x2", "--stride", "a list of 1 to 3"),
    flags(
        "flag-padding-triple",
        f"{LAYER} --padding 1,2,3",
        "--padding",
        'a list of [before, after] pairs, "same" or "valid", got [[1, 2, 3]]',
    ),
    flags("flag-padding-negative", f"{LAYER} --padding=-1", "--padding", "got -1"),
    flags(
        "flag-kernel-pair-list",
        "layer conv --input 3x8x8 --out-channels 4 --kernel-size 3,3",
        "--kernel-size",
        "a list with a positive integer per axis, got [[3, 3]]",
    ),
    flags("flag-dilation-zero", f"{LAYER} --dilation 0", "--dilation", "got 0"),
    flags(
        "flag-channels-float",
        "layer conv --input 3x8x8 --out-channels 1e3 --kernel-size 3",
        "--out-channels",
        "expected a positive integer, got 1000.0",
    ),
    flags("flag-groups", f"{LAYER} --groups 3", "layer", "groups (3) must divide out_channels (4)"),
    flags(
        "flag-output-padding",
        "layer conv_transpose --input 3x8x8 --out-channels 4 --kernel-size 3 --stride 2 "
        "--output-padding 3",
        "layer",
        "output_padding (3) must be smaller than the stride (2)",
    ),
    flags(
        "flag-scale-zero",
        "layer upsample --input 3x8x8 --scale-factor 0",
        "--scale-factor",
        "expected a positive number, got 0",
    ),
    flags(
        "flag-scale-nan",
        "layer upsample --input 3x8x8 --scale-factor nan",
        "--scale-factor",
        'got "nan"',
    ),
    flags(
        "flag-mode",
        "layer upsample --input 3x8x8 --scale-factor 2 --mode area",
        "--mode",
        'got "area"',
    ),
    flags(
        "flag-align-corners-nearest",
        "layer upsample --input 3x8x8 --scale-factor 2 --align-corners",
        "layer",
        "align_corners applies only to the linear and cubic modes",
    ),
    flags(
        "flag-output-size",
        "layer adaptive_avg_pool --input 3x8x8 --output-size 0x2",
        "--output-size",
        "got [0, 2]",
    ),
    flags(
        "flag-num-groups",
        "layer group_norm --input 8x4x4 --num-groups 3",
        "layer",
        "num_groups (3) must divide the channels (8)",
    ),
    flags(
        "flag-linear-on-image",
        "layer linear --input 3x8 --out-features 4",
        "layer",
        "linear needs a flat input [N]; got [3, 8]",
    ),
    flags(
        "flag-in-features",
        "layer linear --input 10 --out-features 4 --in-features 9",
        "layer",
        "in_features is 9, but the input has 10",
    ),
    flags(
        "flag-unknown-for-kind",
        "layer flatten --input 3x8 --stride 2",
        "--stride",
        "unknown parameter 'stride' for flatten; known: none",
    ),
    flags(
        "flag-groups-zero", f"{LAYER} --groups 0", "--groups", "expected a positive integer, got 0"
    ),
    flags(
        "flag-pool-padding",
        "layer max_pool --input 3x8x8 --kernel-size 2 --padding 2",
        "layer",
        "padding 2 is more than half the kernel size 2",
    ),
    flags(
        "flag-huge-padding-dilated",  # a number of any size, and dilation: no hang
        f"{LAYER} --dilation 2 --padding {2**62} --stride {2**61}x{2**61 + 1} --format csv",
        "Invalid value for '--format'",
        "'csv' is not one of 'table', 'json'",
        hostile=True,
    ),
    flags(
        "flag-huge-stride-transposed",
        "layer conv_transpose --input 3x8x8 --out-channels 4 --kernel-size 3 "
        f"--stride {2**62} --output-padding {2**62}",
        "layer",
        "output_padding",
        hostile=True,
    ),
    flags("flag-input-5d", "layer relu --input 3x8x8x8x8", "--input", "got '3x8x8x8x8'"),
    flags("flag-input-zero", "layer relu --input 0x8", "--input", "got '0x8'"),
    flags("flag-input-fraction", "layer relu --input 3x8.5", "--input", "got '3x8.5'"),
    flags("flag-input-trailing-x", "layer relu --input 3x", "--input", "got '3x'"),
    flags("flag-input-negative", "layer relu --input=-3x8", "--input", "got '-3x8'"),
    flags(
        "flag-input-huge-digits",
        f"layer relu --input 3x{'9' * 5000}",
        "--input",
        "expected a number of at most 4,300 digits",
    ),
    flags(
        "flag-batch-zero",
        "layer relu --input 3x8 --batch 0",
        "--batch",
        "expected a whole number of at least 1",
    ),
    flags("flag-batch-text", "layer relu --input 3x8 --batch x", "--batch", "got 'x'"),
    flags(
        "flag-format-csv",
        "layer relu --input 3x8 --format csv",
        "Invalid value for '--format'",
        "'csv' is not one of 'table', 'json'",
    ),
    usage("flag-kind-missing", "layer --input 3x8", "Missing argument 'KIND'."),
    # --- Flags of `net`.
    flags("net-input-bad", "net resnet18 --input 3x", "--input", "expected a shape like"),
    Case(
        "net-input-too-small",
        ("net", "alexnet", "--input", "3x8x8"),
        "alexnet.yaml:21: features.2: ",
        "the output would be empty on axis H",
    ),
    flags(
        "net-batch-negative",
        "net resnet18 --batch=-1",
        "--batch",
        "expected a whole number of at least 1",
    ),
    flags("net-explain-csv", "net resnet18 --explain --format markdown", "--explain", "table"),
    flags("net-unknown-model-name", "net resnet", "resnet", "no such file or bundled model"),
    usage("net-no-model", "net", "Missing argument 'MODEL'."),
    # --- Flags of `solve`.
    flags("solve-nothing", "solve", "solve", "give --input and --output"),
    flags("solve-output-only", "solve --output 5", "solve", "give --input and --output"),
    flags("solve-field-with-input", "solve --field 9 --input 5", "--field", "leave out --input"),
    flags("solve-field-kernel-1", "solve --field 9 --kernel-size 1", "--field", "a kernel of 1"),
    flags(
        "solve-field-unreachable",
        f"solve --field {10**18} --kernel-size 2",
        "--field",
        "the field reaches only 10001 after 10,000 layers",
    ),
    flags("solve-field-past-int64", f"solve --field {10**400}", "--field", "at most 2^63 − 1"),
    flags(
        "solve-size-past-int64",
        f"solve --input {10**4000} --output 1 --transpose",
        "solve",
        "sizes must be positive integers of at most 2^63 − 1",
        hostile=True,
    ),
    flags(
        "solve-search-too-large",
        "solve --input 224 --output 112 --max-stride 1000",
        "solve",
        "the search would try more than 200,000 settings",
    ),
    flags(
        "solve-stride-huge-transposed",
        f"solve --input 9 --output 20 --transpose --stride {2**40}",
        "solve",
        "the search would try more than 200,000 settings",
        hostile=True,
    ),
    flags(
        "solve-input-zero",
        "solve --input 0 --output 5",
        "--input",
        "expected a whole number of at least 1",
    ),
    flags("solve-input-text", "solve --input x --output 5", "--input", "got 'x'"),
    flags(
        "solve-limit-negative",
        "solve --input 9 --output 3 --limit=-1",
        "--limit",
        "expected a whole number of at least 0",
    ),
    flags(
        "solve-max-kernel-zero",
        "solve --input 9 --output 3 --max-kernel 0",
        "--max-kernel",
        "expected a whole number of at least 1",
    ),
    flags(
        "solve-format",
        "solve --input 9 --output 3 --format markdown",
        "Invalid value for '--format'",
        "'table', 'json'",
    ),
    # --- Flags of `sizes`.
    flags("sizes-range-reversed", "sizes resnet18 --range 9..3", "--range", "got '9..3'"),
    flags("sizes-range-zero", "sizes resnet18 --range 0..3", "--range", "1 ≤ LO ≤ HI"),
    flags("sizes-range-words", "sizes resnet18 --range a..b", "--range", "got 'a..b'"),
    flags("sizes-range-unicode-digits", "sizes resnet18 --range ²..³", "--range", "got '²..³'"),
    flags(
        "sizes-range-huge-digits",
        f"sizes resnet18 --range 1..{'9' * 5000}",
        "--range",
        "such as 32..256",
    ),
    flags(
        "sizes-range-too-long",
        "sizes resnet18 --range 1..99999999999",
        "--range",
        "at most 4,096",
        hostile=True,
    ),
    flags("sizes-input-flat", "sizes resnet18 --min --input 3", "--input", "spatial axes"),
    flags(
        "sizes-format",
        "sizes resnet18 --min --format csv",
        "Invalid value for '--format'",
        "'table', 'json'",
    ),
    # --- Flags of `models`.
    flags(
        "models-format",
        "models --format markdown",
        "Invalid value for '--format'",
        "'table', 'json'",
    ),
    usage("models-extra-argument", "models resnet18", "Got unexpected extra argument"),
    usage("models-unknown-flag", "models --input 3x8", "--input: no such option"),
]


class Hang(Exception):
    """A case ran past TIME_BOUND."""


@contextmanager
def time_bound() -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {TIME_BOUND} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_BOUND)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_apart(case: Case) -> tuple[int, str, str]:
    data = case.stdin.encode() if isinstance(case.stdin, str) else case.stdin
    done = subprocess.run(
        [sys.executable, "-m", "convcalc", *case.args],
        input=data,
        capture_output=True,
        timeout=TIME_BOUND,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_the_catalogue_is_large_and_ids_are_unique() -> None:
    assert len(CASES) >= 70
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    if case.model is not None:
        path = tmp_path / case.file
        if isinstance(case.model, bytes):
            path.write_bytes(case.model)
        else:
            path.write_text(case.model)
    started = time.perf_counter()
    if case.hostile:
        code, out, err = run_apart(case)
    else:
        with time_bound():
            result = cli(*case.args, stdin=case.stdin)
        code, out, err = result.code, result.stdout, result.stderr
    elapsed = time.perf_counter() - started
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"error: {case.where}"), err
    assert case.says in err, err
    assert "Traceback" not in err
    assert elapsed < TIME_BOUND


def test_nothing_repeated_any_number_of_times_is_quick() -> None:
    # Not bad input, but hostile: a count of 2^63 − 1 over lists that hold no layer.
    case = Case(
        "empty-repeats",
        ("net", "-", "--json"),
        "",
        "",
        stdin="input: [3, 8]\nlayers:\n  - repeat:\n      times: 9223372036854775807\n"
        "      layers: [{repeat: {times: 9223372036854775807, layers: [{sequential: []}]}}]\n"
        "  - relu\n",
    )
    code, out, err = run_apart(case)
    assert (code, err) == (0, "")
    assert '"path": "layers[1]"' in out
