"""Files: paths that cannot be read (too long, a loop of links, a broken link, a
directory), files that are empty or not UTF-8, and inputs without end or far too large
(/dev/zero, /dev/urandom, an endless FIFO or pipe, 100 MB). Each ends in one `error:`
line naming the path, within the harness's time bound and address-space limit: the
byte limit stops the read, never the memory."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from convcalc import loader
from convcalc.errors import ConvcalcError
from convcalc.loader import build_model
from convcalc.source import MAX_BYTES, Document
from tests.hostile.harness import TIME_BOUND, assert_clean_error, run_convcalc

#: The limit as its message gives it.
LIMIT = "more than 67,108,864 bytes (64 MiB)"


def test_the_limit_is_64_mib() -> None:
    assert MAX_BYTES == 64 * 1024 * 1024


def test_a_name_too_long_for_the_system(tmp_path: Path) -> None:
    name = "m" * 300 + ".yaml"  # NAME_MAX is 255 bytes
    assert_clean_error(
        run_convcalc(["net", name], cwd=tmp_path), name, "cannot read: File name too long"
    )


def test_a_loop_of_symbolic_links(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    assert_clean_error(
        run_convcalc(["net", "a.yaml"], cwd=tmp_path),
        "a.yaml: ",
        "cannot read: Too many levels of symbolic links",
    )


def test_a_broken_symbolic_link(tmp_path: Path) -> None:
    # Not taken for a bundled model's name either: something is there.
    (tmp_path / "resnet18").symlink_to("gone.yaml")
    assert_clean_error(
        run_convcalc(["net", "resnet18"], cwd=tmp_path),
        "resnet18: ",
        "a symbolic link to gone.yaml, which does not exist",
    )


def test_a_directory(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").mkdir()
    assert_clean_error(
        run_convcalc(["net", "model.yaml"], cwd=tmp_path), "model.yaml: ", "is a directory"
    )


def test_a_file_that_cannot_be_read() -> None:
    # Root reads any file it may open; this one opens, and then every read fails.
    assert_clean_error(
        run_convcalc(["net", "/proc/self/mem"]),
        "/proc/self/mem: ",
        "cannot read: Input/output error",
    )


def test_a_path_through_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("layers: [relu]\n")
    assert_clean_error(
        run_convcalc(["net", "file/model.yaml"], cwd=tmp_path),
        "file/model.yaml: ",
        "no such file or bundled model",
    )


def test_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_bytes(b"")
    assert_clean_error(run_convcalc(["net", "empty.yaml"], cwd=tmp_path), "empty.yaml: ", "empty")


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("layers: [relu]  # caf\xe9\n".encode("latin-1"))
    assert_clean_error(
        run_convcalc(["net", "latin1.yaml"], cwd=tmp_path),
        "latin1.yaml: ",
        "not UTF-8 text (byte 21 is 0xe9)",
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_without_end(device: str) -> None:
    # Without the limit, reading either would run into the address-space limit.
    assert_clean_error(run_convcalc(["net", device]), f"{device}: ", LIMIT)


def test_a_100_mb_list_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as file:
        file.write("input: [1, 8]\nlayers:\n")
        file.write("  - relu\n" * (100_000_000 // 9))
    assert path.stat().st_size > 100_000_000
    assert_clean_error(run_convcalc(["net", "huge.yaml"], cwd=tmp_path), "huge.yaml: ", LIMIT)


def test_a_model_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    # The limit itself is allowed: a model file padded with a comment to MAX_BYTES.
    model = b"input: [1, 8]\nlayers: [relu]\n#"
    path = tmp_path / "padded.yaml"
    path.write_bytes(model + b"x" * (MAX_BYTES - len(model) - 1) + b"\n")
    assert path.stat().st_size == MAX_BYTES
    result = run_convcalc(["net", "padded.yaml", "--json"], cwd=tmp_path, memory=None)
    assert result.code == 0, result.stderr
    path.write_bytes(path.read_bytes() + b"\n")  # one byte more
    assert_clean_error(run_convcalc(["net", "padded.yaml"], cwd=tmp_path), "padded.yaml: ", LIMIT)


def feed(path: str | int) -> threading.Thread:
    """A thread that writes a YAML list of layers to `path` (a FIFO, or a descriptor)
    until the reader goes away."""

    def write() -> None:
        try:
            with open(path, "wb") as out:
                out.write(b"input: [1, 8]\nlayers:\n")
                while True:
                    out.write(b"  - relu\n" * 10_000)
        except BrokenPipeError:  # the reader went away
            pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_a_fifo_fed_without_end(tmp_path: Path) -> None:
    fifo = tmp_path / "model.yaml"
    os.mkfifo(fifo)
    thread = feed(str(fifo))
    assert_clean_error(run_convcalc(["net", "model.yaml"], cwd=tmp_path), "model.yaml: ", LIMIT)
    thread.join(TIME_BOUND)
    assert not thread.is_alive()


def test_standard_input_without_end() -> None:
    # `yes` never stops; the read does, at the limit.
    yes = subprocess.Popen(["yes", "--", "- relu"], stdout=subprocess.PIPE)
    assert yes.stdout is not None
    try:
        result = run_convcalc(["net", "-"], stdin=yes.stdout.fileno())
    finally:
        yes.kill()
        yes.wait()
    assert_clean_error(result, "<stdin>: ", LIMIT)


def test_too_many_layers_stop_the_build_where_they_pass_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bad layer after the limit: had every node been built first, its error would come.
    monkeypatch.setattr(loader, "MAX_LAYERS", 10)
    document = Document({"input": [1, 8], "layers": ["relu"] * 11 + [{"conv": "bad"}]})
    with pytest.raises(
        ConvcalcError, match=r"^layers\[10\]\.relu: the model expands to more than 10 "
    ):
        build_model(document)
