"""The real torchvision and timm model definitions, for the zoo's tests."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest


def without_meta_registrations() -> None:
    """Lets `import torchvision` succeed beside the CPU build of torch.

    The torchvision wheel that installs beside the CPU build of torch on these machines
    is a CUDA build: its `torchvision._meta_registrations` registers kernels for
    operators this torch lacks, and `import torchvision` fails with "operator
    torchvision::nms does not exist". The models are pure Python and need none of
    them, so an empty module in its place lets them load. This is the one place that
    does it (tests/zoo/survey.py, outside pytest, calls it too).
    """
    if "torchvision" not in sys.modules:
        name = "torchvision._meta_registrations"
        sys.modules.setdefault(name, types.ModuleType(name))


@pytest.fixture(scope="session")
def torchvision() -> Any:
    """torchvision (see `without_meta_registrations`), or a clean skip without torch."""
    pytest.importorskip("torch")
    without_meta_registrations()
    return pytest.importorskip("torchvision")


@pytest.fixture(scope="session")
def timm(torchvision: Any) -> Any:
    """timm (which imports torchvision), or a clean skip."""
    return pytest.importorskip("timm")


@pytest.fixture(autouse=True, scope="module")
def one_thread(torchvision: Any) -> Iterator[None]:
    """One intra-op thread: the twins' small passes gain nothing from more, and spinning
    threads slow down badly (tenfold) when the cores are shared, as under CI."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
