"""The bundled models: model files shipped inside the package, found by name."""

from __future__ import annotations

from pathlib import Path

__all__ = ["model_names", "model_path"]

_FOLDER = Path(__file__).resolve().parent


def model_names() -> list[str]:
    return sorted(path.stem for path in _FOLDER.glob("*.yaml"))


def model_path(name: str) -> Path | None:
    """The file of the bundled model `name`, or None if there is none."""
    path = _FOLDER / f"{name}.yaml"
    return path if name.isidentifier() and path.is_file() else None
