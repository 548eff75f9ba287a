"""Hostile or careless model files get a clear error quickly, never a hang or a
traceback; deep but legitimate nesting works. Each case runs in its own process with a
timeout that only guards against hangs (it is no performance measurement)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HANG_GUARD = 60  # seconds


def run(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "convcalc", "net", "-", "--json"],
        input=text,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )


def nested(depth: int, block: str) -> str:
    layers = "[relu]"
    for _ in range(depth):
        layers = block.replace("LAYERS", layers)
    return f"input: [4, 8]\nlayers: {layers}\n"


def alias_bomb(levels: int) -> str:
    lines = [
        "input: [1, 8]",
        "x-0: &l0 [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]",
    ]
    for level in range(1, levels):
        items = ", ".join([f"{{sequential: *l{level - 1}}}"] * 10)
        lines.append(f"x-{level}: &l{level} [{items}]")
    lines.append(f"layers: *l{levels - 1}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (alias_bomb(8), "the document expands to more than 5,000,000 values"),
        (
            "input: [1, 8]\nlayers:\n  - repeat: {times: 1000000000000, layers: [relu]}\n",
            "<stdin>:3: layers[0]: the model expands to more than 1,000,000 layers",
        ),
        (
            "input: [1, 8]\nlayers:\n  - repeat: {times: 2000, layers: "
            "[{repeat: {times: 2000, layers: [relu]}}]}\n",
            "<stdin>:3: layers[0]: the model expands to more than 1,000,000 layers",
        ),
        (nested(3000, "[{sequential: LAYERS}]"), "the document nests more than 4,000 levels"),
        ("input: [1, 8]\nlayers: " + "[" * 100_000 + "]" * 100_000 + "\n", "nests more than 4,000"),
    ],
    # Short ids: pytest puts the id in the environment of the child process.
    ids=["alias-bomb", "huge-repeat", "nested-repeats", "deep-blocks", "deep-brackets"],
)
def test_refused_quickly_and_cleanly(text: str, message: str) -> None:
    result = run(text)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_blocks_nested_1000_deep_work() -> None:
    result = run(nested(1000, "[{residual: {body: LAYERS}}]"))
    assert result.returncode == 0, result.stderr[-300:]
    assert result.stdout.count('"kind": "add"') == 1000
