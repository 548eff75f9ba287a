"""The JSON Schema of model files (`convcalc schema`) against the loader.

Every example and bundled model validates; invalid documents are refused by both the
schema and the loader; and the two agree (what one refuses, the other refuses) on every
place of a document with every value of a list of edges and wrong types, and on random
documents built from the real kinds and parameters, except for the loader-time refusals
listed in BEYOND_SCHEMA. Errors found only when a model is analysed (a kernel larger than
its input, branches that do not merge, groups that do not divide the channels, upsample
without exactly one of scale_factor and size) are not the loader's, nor the schema's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import MISSING
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import convcalc
from convcalc.errors import ConvcalcError
from convcalc.loader import BLOCKS, build_model, check_shape, parameters
from convcalc.model.layers import KINDS
from convcalc.model.params import positive_int, schema_of
from convcalc.render.schema import DIALECT, model_schema
from convcalc.source import format_path, parse
from convcalc.zoo import model_names

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schema" / "convcalc-model.schema.json"
ZOO = Path(convcalc.__file__).resolve().parent / "zoo"
MODEL_FILES = [*sorted(ROOT.glob("examples/*.yaml")), *sorted(ZOO.glob("*.yaml"))]
SCHEMA_LINE = "# yaml-language-server: $schema="
REGENERATE = (
    "regenerate it: convcalc schema > schema/convcalc-model.schema.json "
    "(or pytest tests/render/test_schema.py --update-snapshots)"
)

SCHEMA = model_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def loader_refusal(text: str) -> str | None:
    """The loader's error for a model file's text, or None if it loads."""
    try:
        build_model(parse(text, "model.yaml"))
    except ConvcalcError as error:
        return str(error)
    return None


def loads(data: Any) -> bool:
    """Whether the loader takes plain data as a model file (JSON) holding it."""
    return loader_refusal(json.dumps(data)) is None


def test_the_committed_schema_is_what_convcalc_schema_prints(cli, request) -> None:  # type: ignore[no-untyped-def]
    result = cli("schema")
    assert result.code == 0
    assert result.stderr == ""
    if request.config.getoption("--update-snapshots"):
        SCHEMA_FILE.parent.mkdir(exist_ok=True)
        SCHEMA_FILE.write_text(result.stdout)
    assert SCHEMA_FILE.exists(), REGENERATE
    assert SCHEMA_FILE.read_text() == result.stdout, f"{SCHEMA_FILE} is stale; {REGENERATE}"
    assert json.loads(result.stdout) == SCHEMA


def test_convcalc_schema_prints_the_same_in_a_fresh_process_without_jsonschema() -> None:
    program = (
        "import sys; sys.argv = ['convcalc', 'schema']\n"
        "from convcalc.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'jsonschema' not in sys.modules, 'convcalc schema imported jsonschema'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == SCHEMA_FILE.read_text(), REGENERATE


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == DIALECT
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_kind_and_parameter_is_described_for_editors() -> None:
    layer = SCHEMA["$defs"]["layer"]
    kinds = layer["anyOf"][1]["properties"]
    assert list(kinds) == [*KINDS, *BLOCKS]
    for kind in KINDS:
        # Each kind names its PyTorch equivalent (torch.nn.Conv2d, torch.split, …).
        assert "torch." in kinds[kind]["description"], kind
        graph = {"name", "from", *(["like"] if kind == "upsample" else [])}
        assert set(kinds[kind]["properties"]) == {*parameters(kind), *graph}
        for name, entry in kinds[kind]["properties"].items():
            assert len(entry["description"]) > 20, f"{kind}.{name} needs a doc"
    for block in BLOCKS:
        forms = kinds[block].get("anyOf", [kinds[block]])
        assert all(form["description"] for form in forms), block
    # The kinds that may stand alone are those without required parameters.
    bare = [alternative["const"] for alternative in layer["anyOf"][0]["anyOf"]]
    assert "relu" in bare and "conv" not in bare and "residual" not in bare
    for kind in KINDS:
        stands_alone = loader_refusal(f"layers: [{kind}]") is None
        assert (kind in bare) == stands_alone, kind


def test_parameter_defaults_are_the_layers_defaults() -> None:
    kinds = SCHEMA["$defs"]["layer"]["anyOf"][1]["properties"]
    conv = kinds["conv"]["properties"]
    # SPEC §2: stride=1, padding=0, dilation=1, groups=1, bias=true.
    defaults = [conv[name]["default"] for name in ("stride", "padding", "dilation", "groups")]
    assert defaults == [1, 0, 1, 1]
    assert conv["bias"]["default"] is True
    assert kinds["conv"]["required"] == ["out_channels", "kernel_size"]
    assert "default" not in kinds["max_pool"]["properties"]["stride"]  # kernel_size, not null
    assert kinds["batch_norm"]["properties"]["eps"]["default"] == 1e-5


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda path: path.name)
def test_every_example_and_bundled_model_names_the_schema_and_validates(path: Path) -> None:
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith(SCHEMA_LINE)
    assert (path.parent / first.removeprefix(SCHEMA_LINE)).resolve() == SCHEMA_FILE
    document = parse(text, str(path))
    VALIDATOR.validate(document.data)
    build_model(document)


def test_the_model_files_are_every_bundled_model() -> None:
    assert [path.stem for path in MODEL_FILES if path.parent == ZOO] == model_names()
    assert len(MODEL_FILES) > len(model_names())  # and the examples


CONV = "conv: {out_channels: 8, kernel_size: 3"

# Refused by both the schema and the loader: one mistake each, at every level.
INVALID = {
    "not-a-mapping": "- relu\n",
    "no-layers": "input: [3, 8, 8]\n",
    "unknown-top-key": "layers: [relu]\nlayer: []\n",
    "name-number": "name: 3\nlayers: [relu]\n",
    "input-null": "input:\nlayers: [relu]\n",
    "input-empty": "input: []\nlayers: [relu]\n",
    "input-5-axes": "input: [1, 2, 3, 4, 5]\nlayers: [relu]\n",
    "input-zero": "input: [3, 0, 8]\nlayers: [relu]\n",
    "input-bool": "input: [3, true]\nlayers: [relu]\n",
    "layers-string": "layers: relu\n",
    "layer-number": "layers: [3]\n",
    "layer-two-keys": "layers: [{relu: {}, tanh: {}}]\n",
    "layer-empty-mapping": "layers: [{}]\n",
    "unknown-kind": "layers: [convolution]\n",
    "bare-conv": "layers: [conv]\n",
    "bare-residual": "layers: [residual]\n",
    "conv-null": "layers: [conv: null]\n",
    "missing-kernel": "layers: [conv: {out_channels: 8}]\n",
    "unknown-parameter": "layers: [max_pool: {kernel_size: 2, groups: 2}]\n",
    "x-parameter": "layers: [relu: {x-note: 1}]\n",
    "parameters-list": "layers: [relu: [true]]\n",
    "layer-name-number": "layers: [relu: {name: 7}]\n",
    "stride-zero": f"layers: [{CONV}, stride: 0}}]\n",
    "channels-bool": "layers: [conv: {out_channels: true, kernel_size: 3}]\n",
    "kernel-string": 'layers: [conv: {out_channels: 8, kernel_size: "3"}]\n',
    "kernel-4-axes": "layers: [conv: {out_channels: 8, kernel_size: [3, 3, 3, 3]}]\n",
    "kernel-no-axes": "layers: [conv: {out_channels: 8, kernel_size: []}]\n",
    "kernel-fraction": "layers: [conv: {out_channels: 8, kernel_size: 2.5}]\n",
    "padding-negative": f"layers: [{CONV}, padding: -1}}]\n",
    "padding-triple": f"layers: [{CONV}, padding: [[1, 2, 3]]}}]\n",
    "padding-word": f"layers: [{CONV}, padding: full}}]\n",
    "padding-mode": f"layers: [{CONV}, padding_mode: mirror}}]\n",
    "bias-string": f"layers: [{CONV}, bias: 'no'}}]\n",
    "in-channels-zero": f"layers: [{CONV}, in_channels: 0}}]\n",
    "output-padding-negative": (
        "layers: [conv_transpose: {out_channels: 8, kernel_size: 3, output_padding: -1}]\n"
    ),
    "dropout-p-above-1": "layers: [dropout: {p: 1.5}]\n",
    "momentum-negative": "layers: [batch_norm: {momentum: -0.1}]\n",
    "eps-string": "layers: [group_norm: {num_groups: 2, eps: small}]\n",
    "scale-zero": "layers: [upsample: {scale_factor: 0}]\n",
    "size-fraction": "layers: [upsample: {size: [2.5, 3]}]\n",
    "mode-unknown": "layers: [upsample: {scale_factor: 2, mode: area}]\n",
    "align-corners-string": "layers: [upsample: {size: 4, align_corners: 'yes'}]\n",
    "approximate-unknown": "layers: [gelu: {approximate: erf}]\n",
    "output-size-null": "layers: [adaptive_avg_pool: {output_size: null}]\n",
    "output-size-4-axes": "layers: [adaptive_max_pool: {output_size: [1, 1, 1, 1]}]\n",
    "repeat-zero": "layers: [repeat: {times: 0, layers: [relu]}]\n",
    "repeat-no-times": "layers: [repeat: {layers: [relu]}]\n",
    "repeat-extra-key": "layers: [repeat: {times: 2, layers: [relu], body: []}]\n",
    "repeat-list": "layers: [repeat: [relu]]\n",
    "repeat-bad-inner": "layers: [repeat: {times: 2, layers: [conv: {kernel_size: 3}]}]\n",
    "residual-no-body": "layers: [residual: {shortcut: []}]\n",
    "residual-shortcut-false": "layers: [residual: {body: [relu], shortcut: false}]\n",
    "residual-name-list": "layers: [residual: {body: [relu], name: [a]}]\n",
    "add-one-branch": "layers: [add: [[relu]]]\n",
    "concat-branch-not-list": "layers: [concat: [relu, [relu]]]\n",
    "concat-bad-inner": "layers: [concat: [[], [linear: {out_features: 0}]]]\n",
    "sequential-mapping": "layers: [sequential: {layers: [relu], times: 2}]\n",
    "sequential-null": "layers: [sequential: null]\n",
}


def _error_paths(errors: Any) -> list[tuple[str | int, ...]]:
    """Where each schema error is, with the errors of the alternatives it tried."""
    found = []
    for error in errors:
        found.append(tuple(error.absolute_path))
        found.extend(_error_paths(error.context))
    return found


@pytest.mark.parametrize("text", INVALID.values(), ids=INVALID.keys())
def test_invalid_documents_are_refused_by_the_schema_and_the_loader(text: str) -> None:
    with pytest.raises(ConvcalcError) as refused:
        build_model(parse(text, "model.yaml"))
    assert refused.value.where is not None
    place = refused.value.where.path
    paths = _error_paths(VALIDATOR.iter_errors(parse(text).data))
    assert paths, f"the schema accepts what the loader refuses: {refused.value}"
    # The same place, or one within the other: the schema reports an unknown key at its
    # mapping, the loader at the key; the schema a bad item, the loader its list.
    deepest = format_path(max(paths, key=len))
    inner, outer = sorted((place, deepest), key=len, reverse=True)
    assert inner == outer or inner.startswith((f"{outer}.", f"{outer}[")) or not outer, (
        f"the loader refuses {place}, the schema {deepest}"
    )


def test_there_are_at_least_25_invalid_documents() -> None:
    assert len(INVALID) >= 25


# What the loader refuses at load time and no JSON Schema can: (document, why).
BEYOND_SCHEMA = {
    "integral-float": (
        "layers: [conv: {out_channels: 8, kernel_size: 3.0}]\n",
        "JSON Schema's integer is any number without a fraction, 3.0 too (draft 2020-12 "
        "validation, 'type'); convcalc checks types exactly, as PyTorch wants int sizes",
    ),
    "infinity": (
        "layers: [batch_norm: {eps: .inf}]\n",
        "JSON has no infinities, so JSON Schema's number cannot exclude them; YAML has .inf",
    ),
    "infinite-scale": (
        "layers: [upsample: {scale_factor: .inf}]\n",
        "the same: 'exclusiveMinimum: 0' lets .inf through",
    ),
    "nan": (
        "layers: [leaky_relu: {negative_slope: .nan}]\n",
        "JSON has no NaN; YAML's .nan compares false with every bound",
    ),
    "too-many-layers": (
        "layers: [repeat: {times: 1000, layers: [repeat: {times: 1001, layers: [relu]}]}]\n",
        "the count of layers with repeats counted out (loader.MAX_LAYERS) is a product over "
        "the nesting, which a schema cannot compute",
    ),
    "duplicate-name": (
        "layers: [relu: {name: a}, relu: {name: a}]\n",
        "qualified names are unique (SPEC §6.1): a schema cannot compare values across places",
    ),
    "unknown-from": (
        "layers: [relu: {name: a}, relu: {from: b}]\n",
        "from names an earlier layer: a schema cannot look names up",
    ),
    "unknown-output": (
        "layers: [relu: {name: a}]\noutputs: [b]\n",
        "the same for outputs",
    ),
    "dead-node": (
        "layers: [relu: {name: a}, relu: {from: input}]\n",
        "a layer no output depends on: a property of the whole graph",
    ),
    "missing-argument": (
        "define: {block: {args: {width: null}, layers: [relu]}}\nlayers: [block]\n",
        "which arguments a use needs depends on its definition, elsewhere in the file",
    ),
}

#: How the loader words the refusals of BEYOND_SCHEMA that random documents run into.
BEYOND_WORDS = ("is given twice", "no earlier layer or block is named", "no output depends on")


@pytest.mark.parametrize(("text", "why"), BEYOND_SCHEMA.values(), ids=BEYOND_SCHEMA.keys())
def test_loader_refusals_beyond_a_schema_are_only_these(text: str, why: str) -> None:
    assert loader_refusal(text) is not None
    assert VALIDATOR.is_valid(parse(text).data), f"the schema refuses it now: drop it ({why})"


# Random documents: a valid document built from the real kinds, blocks and parameters
# (values from each check's fragment), then, in two cases out of three, one change at a
# random place: a value replaced, a key or an item added, or one removed. One change at a
# time, so that a disagreement is not hidden by another mistake elsewhere.


def _enums(fragment: Any) -> set[str]:
    """Every word the schema names in an enum (padding "same", choices)."""
    if isinstance(fragment, dict):
        words = set(fragment.get("enum", []))
        return words.union(*(_enums(value) for value in fragment.values()))
    if isinstance(fragment, list):
        return set().union(*(_enums(item) for item in fragment))
    return set()


KIND_NAMES = sorted(KINDS)
PARAMETER_NAMES = sorted({name for kind in KINDS for name in parameters(kind)} | {"name"})
WORDS = sorted(_enums(SCHEMA) | {"", "3", "x-note"})
KEYS = sorted(
    {*PARAMETER_NAMES, *KIND_NAMES, *BLOCKS, *SCHEMA["properties"], "times", "layers"}
    | {"body", "shortcut", "x-note", "layer"}
)


def _accepted(fragment: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a check's fragment accepts (integers kept small, as sizes are)."""
    if "anyOf" in fragment:
        return st.one_of([_accepted(option) for option in fragment["anyOf"]])
    if "enum" in fragment:
        return st.sampled_from(fragment["enum"])
    kind = fragment["type"]
    if kind == "integer":
        return st.integers(fragment["minimum"], fragment["minimum"] + 4) | st.just(2**40)
    if kind == "number":
        return st.floats(
            fragment.get("minimum", fragment.get("exclusiveMinimum")),
            fragment.get("maximum"),
            exclude_min="exclusiveMinimum" in fragment,
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "array":
        items = _accepted(fragment["items"])
        return st.lists(items, min_size=fragment["minItems"], max_size=fragment["maxItems"])
    return {"boolean": st.booleans(), "null": st.none()}[kind]


_names = st.one_of(st.text(max_size=3), st.none())


@st.composite
def _valid_layer(draw: st.DrawFn, depth: int) -> Any:
    if depth == 0 or draw(st.integers(0, 2)) < 2:
        kind = draw(st.sampled_from(KIND_NAMES))
        fields = parameters(kind)
        required = [name for name, field in fields.items() if field.default is MISSING]
        if not required and draw(st.integers(0, 3)) == 3:
            return draw(st.sampled_from([kind, {kind: None}, {kind: {}}]))
        chosen = (
            draw(st.lists(st.sampled_from(list(fields)), unique=True, max_size=3)) if fields else []
        )
        values = {
            name: draw(_accepted(schema_of(fields[name].metadata["check"])))
            for name in dict.fromkeys([*required, *chosen])
        }
        if draw(st.booleans()):
            values["name"] = draw(_names)
        return {kind: values}
    block = draw(st.sampled_from(BLOCKS))
    inner = st.lists(_valid_layer(depth - 1), max_size=3)
    if block == "sequential":
        return {block: draw(inner)}
    if block in ("add", "concat"):
        return {block: draw(st.lists(inner, min_size=2, max_size=3))}
    if block == "repeat":
        fields = {"times": draw(st.integers(1, 3)), "layers": draw(inner)}
    else:
        fields = {"body": draw(inner)}
        if draw(st.booleans()):
            fields["shortcut"] = draw(inner | st.none())
    if draw(st.booleans()):
        fields["name"] = draw(_names)
    return {block: fields}


@st.composite
def _valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = {"layers": draw(st.lists(_valid_layer(2), max_size=4))}
    if draw(st.booleans()):
        document["input"] = draw(_accepted(schema_of(check_shape)))
    if draw(st.booleans()):
        document["name"] = draw(_names)
    if draw(st.integers(0, 3)) == 3:
        document["x-anchors"] = draw(st.lists(_valid_layer(1), max_size=2))
    return document


# No integral floats, infinities or NaN, and no `times` so large that the model expands
# past loader.MAX_LAYERS: BEYOND_SCHEMA.
_scalars = st.one_of(
    st.integers(-2, 9),
    st.floats(-1e15, 1e15).map(lambda x: x + 0.5 if x.is_integer() else x),
    st.booleans(),
    st.none(),
    st.sampled_from([*WORDS, *KIND_NAMES, *BLOCKS]),
    st.text(max_size=3),
)
_replacements = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=4),
    st.lists(st.lists(st.integers(-1, 3), max_size=3), max_size=3),
    st.dictionaries(st.sampled_from(KEYS), _scalars, max_size=2),
    _valid_layer(1),
    st.lists(_valid_layer(1), max_size=2),
)


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value in a document, the document itself first."""
    found = [path]
    if isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            found.extend(_places(item, (*path, key)))
    return found


def _near_misses(fragment: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values at and just past the edges of what a check's fragment accepts."""
    if "anyOf" in fragment:
        return st.one_of([_near_misses(option) for option in fragment["anyOf"]])
    if "enum" in fragment:
        return st.sampled_from([*WORDS, *(word.upper() for word in fragment["enum"])])
    kind = fragment["type"]
    if kind == "integer":
        least, most = fragment["minimum"], fragment.get("maximum", 2**70)
        return st.sampled_from([least - 1, least, least + 0.5, most, most + 1, True, str(least)])
    if kind == "number":
        low = fragment.get("minimum", fragment.get("exclusiveMinimum", -1e300))
        high = fragment.get("maximum", 1e300)
        return st.sampled_from([low, low - 0.5, low + 1e-9, high, high + 0.5, True, "1"])
    if kind == "array":
        fewest, most = fragment["minItems"], fragment["maxItems"]
        items = _accepted(fragment["items"])
        return st.one_of(
            st.lists(items, min_size=most + 1, max_size=most + 1),
            st.lists(items, max_size=max(fewest - 1, 0)),
            st.lists(_near_misses(fragment["items"]), min_size=fewest, max_size=most),
        )
    return st.sampled_from([0, 1, "true", "", [], {}])


_LISTS = ("layers", "body", "shortcut", "sequential")
_list_misses = st.sampled_from([None, False, 0, "", {}, [], "relu", [[]], [[], 3]])
_layer_misses = st.one_of(
    st.sampled_from([*KIND_NAMES, *BLOCKS, "convolution", 3, None, [], {}]),
    st.builds(dict.fromkeys, st.sets(st.sampled_from([*KIND_NAMES, *BLOCKS]), min_size=1)),
    st.builds(dict, st.lists(st.tuples(st.sampled_from(KIND_NAMES), _scalars), max_size=1)),
)


def _misses_at(path: tuple[Any, ...], parent: Any) -> st.SearchStrategy[Any]:
    """Likely mistakes for the value at `path`: near misses of a parameter's check, the
    wrong thing where a list of layers or a layer goes."""
    key, owner = path[-1], path[-2] if len(path) > 1 else None
    if owner in KINDS and key in parameters(owner):
        return _near_misses(schema_of(parameters(owner)[key].metadata["check"]))
    if path == ("input",):
        return _near_misses(schema_of(check_shape))
    if key == "times":
        return _near_misses(schema_of(positive_int))
    if key in _LISTS or key in ("add", "concat"):
        return _list_misses
    return _layer_misses if isinstance(parent, list) else _replacements


@st.composite
def documents(draw: st.DrawFn) -> Any:
    document = draw(_valid_documents())
    if draw(st.integers(0, 3)) == 0:
        return document
    path = draw(st.sampled_from(_places(document)))
    if not path:
        return draw(_replacements)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    target = parent[path[-1]]
    change = draw(st.sampled_from(["near", "near", "replace", "add", "remove"]))
    if change == "near":
        parent[path[-1]] = draw(_misses_at(path, parent))
    elif change == "replace":
        parent[path[-1]] = draw(_replacements)
    elif change == "remove":
        del parent[path[-1]]
    elif isinstance(target, dict):
        target[draw(st.sampled_from(KEYS))] = draw(_replacements)
    elif isinstance(target, list):
        target.insert(draw(st.integers(0, len(target))), draw(_replacements))
    return document


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(documents())
def test_the_schema_and_the_loader_agree_on_random_documents(document: Any) -> None:
    loaded = loads(document)
    event("valid" if loaded else "invalid")
    if loaded != VALIDATOR.is_valid(document):
        text = json.dumps(document)
        refusal = loader_refusal(text) or ""
        if any(words in refusal for words in BEYOND_WORDS):
            return  # refused for one of the reasons of BEYOND_SCHEMA
        error = jsonschema.exceptions.best_match(VALIDATOR.iter_errors(document))
        raise AssertionError(f"{text}\nloader: {loader_refusal(text)}\nschema: {error}")


# Every place a value goes, with every value of a fixed list: the edges of each check
# and the wrong types, one at a time in an otherwise valid document.
ODD_VALUES = [
    *(None, True, False, -1, 0, 1, 2, 2**40, 2**63 - 1, 2**63, 0.5, 1.5, -0.5, 1e-5, 1e300),
    *("", "3", "relu", "convolution", "area", "full", "mirror", "erf", *WORDS),
    *([], [0], [1], [2, 3], [1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1, 1], [None], [None, 2]),
    *([0.5], [True], ["same"], [[1, 2]], [[1, 2, 3]], [[0, 0], 1], [[-1, 0]], [[1], [2]]),
    *([2**63], [[0, 2**63]], [3, 2**63 - 1]),
    *([[]], [[], []], [[], [], []], [["relu"], []], ["relu"], [{"relu": None}], {}),
    *({"relu": None}, {"a": 1}, {"times": 1, "layers": []}, {"body": []}),
]


def _example(fragment: dict[str, Any]) -> Any:
    """The simplest value a fragment accepts."""
    if "anyOf" in fragment:
        return _example(fragment["anyOf"][0])
    if fragment.get("type") == "array":
        return [_example(fragment["items"])] * fragment["minItems"]
    return fragment["enum"][0] if "enum" in fragment else fragment["minimum"]


def _with_required(kind: str) -> dict[str, Any]:
    fields = parameters(kind)
    return {
        name: _example(schema_of(field.metadata["check"]))
        for name, field in fields.items()
        if field.default is MISSING
    }


def _places_for(value: Any) -> list[Any]:
    """Documents that put `value` in each place of a layer, a block or the top level."""
    layer = [
        *(
            {kind: {**_with_required(kind), name: value}}
            for kind in KINDS
            for name in parameters(kind)
        ),
        *({kind: {**_with_required(kind), "name": value}} for kind in KINDS),
        *({kind: value} for kind in (*KINDS, *BLOCKS)),
        {"repeat": {"times": value, "layers": []}},
        {"repeat": {"times": 1, "layers": value}},
        {"repeat": {"times": 1, "layers": [], "name": value}},
        {"residual": {"body": value}},
        {"residual": {"body": [], "shortcut": value}},
        {"residual": {"body": [], "name": value}},
        {"add": [[], value]},
        {"concat": [[], [value]]},
        value,
    ]
    top = [{"layers": value}, {"layers": [], "input": value}, {"layers": [], "name": value}]
    return [*({"layers": [item]} for item in layer), *top, value]


def test_the_schema_and_the_loader_agree_on_every_place_and_edge() -> None:
    unknown = [
        {"layers": [{kind: {**_with_required(kind), name: 1}}]}
        for kind in KINDS
        for name in PARAMETER_NAMES
        if name not in parameters(kind) and name != "name"
    ]
    bare = [{"layers": [kind]} for kind in (*KINDS, *BLOCKS)]
    documents = [*unknown, *bare, *(doc for value in ODD_VALUES for doc in _places_for(value))]
    disagreements = []
    for document in documents:
        if loads(document) != VALIDATOR.is_valid(document):
            text = json.dumps(document)
            disagreements.append(f"{text}: loader {loader_refusal(text) or 'accepts'}")
    assert not disagreements, "\n".join(disagreements[:20])
    assert len(documents) > 4000
