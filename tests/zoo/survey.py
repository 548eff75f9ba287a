"""How many of the real CNNs of real_models.py import through PyTorch, exactly: for the
README's counts. Run from the repository's root, with torch, torchvision and timm:

    python -m tests.zoo.survey [--markdown] [NAME ...]

Each model (or those whose id contains a NAME: `timm.`, `resnet`) is imported through
`convcalc.from_torch` and checked as test_real_import.py checks it (real_checks.py; the
fields by gradients are left to the tests). A model is *exact* when every check holds,
*wrong* when a check fails (a wrong number is worse than a refusal), *refused* with
convcalc's message, or *crashed* with another exception (a bug: never a traceback).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from tests.zoo.conftest import without_meta_registrations
from tests.zoo.real_models import MODELS, REFUSED, RealModel


class Outcome(NamedTuple):
    model: RealModel
    status: str  # "exact", "wrong", "refused" or "crashed"
    detail: str  # the first failing check, the message or the exception
    seconds: float


def survey(model: RealModel, libraries: dict[str, Any]) -> Outcome:
    """Import one model and check it; whatever happens is an outcome."""
    from convcalc import ConvcalcError
    from tests.zoo.real_checks import CHECKS, import_model

    start = time.perf_counter()

    def outcome(status: str, detail: str) -> Outcome:
        return Outcome(model, status, detail, time.perf_counter() - start)

    try:
        analysis, module = import_model(model, libraries[model.library])
    except ConvcalcError as error:
        return outcome("refused", str(error))
    except Exception as error:
        return outcome("crashed", f"{type(error).__name__}: {_first_line(error)}")
    for check in CHECKS:
        try:
            check(analysis, module, model.input_shape)
        except AssertionError as error:
            return outcome("wrong", f"{check.__name__}: {_first_line(error)}")
    return outcome("exact", "")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def report(outcomes: Sequence[Outcome], markdown: bool) -> str:
    """Counts per library, then every model that is not exact, with why."""
    lines = []
    for library in ("torchvision", "timm"):
        mine = [o for o in outcomes if o.model.library == library]
        if mine:
            counts = Counter(o.status for o in mine)
            parts = ", ".join(f"{counts[s]} {s}" for s in ("wrong", "refused", "crashed"))
            lines.append(f"{library}: {counts['exact']} of {len(mine)} exact ({parts})")
    failed = [o for o in outcomes if o.status != "exact"]
    if markdown and failed:
        lines += ["", "| model | outcome | expected | why |", "|---|---|---|---|"]
        for o in failed:
            expected = "refused" if o.model.id in REFUSED else "imports"
            detail = o.detail.replace("|", "\\|")
            lines.append(f"| `{o.model.id}` | {o.status} | {expected} | {detail} |")
    else:
        lines += [f"{o.model.id}: {o.status}: {o.detail}" for o in failed]
    total = sum(o.seconds for o in outcomes)
    slowest = max(outcomes, key=lambda o: o.seconds)
    lines.append(f"{total:.0f} s in all; slowest {slowest.model.id}, {slowest.seconds:.1f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only models whose id contains one of these")
    parser.add_argument("--markdown", action="store_true", help="the failures as a table")
    arguments = parser.parse_args(argv)
    without_meta_registrations()
    import timm
    import torch
    import torchvision

    torch.set_num_threads(1)  # as the tests run (tests/zoo/conftest.py)
    warnings.simplefilter("ignore")  # the libraries' deprecations, in every model's import
    libraries = {"torchvision": torchvision, "timm": timm}
    chosen = [m for m in MODELS if not arguments.names or any(n in m.id for n in arguments.names)]
    outcomes = []
    for model in chosen:
        outcomes.append(survey(model, libraries))
        last = outcomes[-1]
        print(f"{model.id}: {last.status} {last.seconds:.1f} s {last.detail}", flush=True)
    print()
    print(report(outcomes, arguments.markdown))


if __name__ == "__main__":
    main()
