"""Helpers for tests: analyse a model written inline."""

from __future__ import annotations

import textwrap
from pathlib import Path

from convcalc.analysis.analyze import Analysis, analyze
from convcalc.loader import build_model
from convcalc.source import parse

ROOT = Path(__file__).resolve().parent.parent


def analyze_yaml(text: str, input_shape: tuple[int, ...] | None = None) -> Analysis:
    """Analyse a model written inline (indentation is removed first)."""
    return analyze(build_model(parse(textwrap.dedent(text), "model.yaml")), input_shape)
