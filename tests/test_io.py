"""File plumbing: every writer is atomic, JSONL appends and reads name the bad file and line."""

import json
import os
import stat
import tempfile

import pytest
import torch

from roast_tl._io import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_text,
    read_json,
    read_jsonl,
    require,
)
from roast_tl.rollouts import save_rollouts
from roast_tl.vector import SteeringVector
from tests.tiny_model import HOOK, make_rollout


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_atomic_write_creates_folders_and_replaces(tmp_path):
    path = tmp_path / "a" / "b" / "f.bin"
    atomic_write_bytes(path, b"first")
    atomic_write_text(path, "second ✓")
    assert path.read_text(encoding="utf-8") == "second ✓"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


class _HalfWriter:
    """A file handle that writes half of its payload, then is interrupted (Ctrl-C)."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()
        return False

    def write(self, payload):
        self.handle.write(payload[: len(payload) // 2])
        self.handle.flush()
        raise KeyboardInterrupt


def _fail_fsync(fd):
    raise OSError("disk full")


def _interrupt_replace(src, dst):
    raise KeyboardInterrupt


_real_fdopen = os.fdopen
FAILURES = {
    "fsync_fails": ("fsync", _fail_fsync, OSError),
    "interrupted_mid_write": (
        "fdopen",
        lambda fd, mode: _HalfWriter(_real_fdopen(fd, mode)),
        KeyboardInterrupt,
    ),
    "interrupted_before_rename": ("replace", _interrupt_replace, KeyboardInterrupt),
}
WRITERS = {
    "atomic_write_bytes": lambda path: atomic_write_bytes(path, b"new contents"),
    "SteeringVector.save": lambda path: SteeringVector({HOOK: torch.zeros(32)}).save(path),
    "save_rollouts": lambda path: save_rollouts([make_rollout("q0", True)] * 3, path),
}


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path, monkeypatch, writer, failure
):
    path = tmp_path / "target"
    path.write_bytes(b"old contents")
    name, replacement, error = FAILURES[failure]
    monkeypatch.setattr(os, name, replacement)
    with pytest.raises(error):
        WRITERS[writer](path)
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["target"]


def test_append_jsonl_creates_then_appends_one_object_per_line(tmp_path):
    path = tmp_path / "sub" / "rows.jsonl"
    append_jsonl(path, [{"a": 1}, {"b": "x"}])
    append_jsonl(path, [{"c": None}])
    assert path.read_text().splitlines() == ['{"a": 1}', '{"b": "x"}', '{"c": null}']


def test_read_jsonl_skips_blank_lines_and_keeps_line_numbers(tmp_path):
    path = _write(tmp_path / "r.jsonl", ['{"a": 1}', "", "   ", '{"a": 2}'])
    assert read_jsonl(path) == [(1, {"a": 1}), (4, {"a": 2})]
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b'\xef\xbb\xbf{"a": 3}\n')
    assert read_jsonl(bom) == [(1, {"a": 3})]
    with pytest.raises(FileNotFoundError, match="no JSONL file at"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_read_jsonl_names_file_and_line_of_a_bad_row(tmp_path):
    path = _write(tmp_path / "r.jsonl", ['{"a": 1}', "{not json", '{"a": 2}'])
    with pytest.raises(ValueError, match=r"r\.jsonl:2: invalid JSON"):
        read_jsonl(path)
    with pytest.raises(ValueError, match=r"r\.jsonl:2: invalid JSON"):
        read_jsonl(path, torn_tail_ok=True)  # only the last line may be torn
    path = _write(tmp_path / "r.jsonl", ['{"a": 1}', "[1, 2]"])
    with pytest.raises(ValueError, match=r"r\.jsonl:2: expected a JSON object, got list"):
        read_jsonl(path)


def test_read_jsonl_drops_a_torn_last_line_only_when_asked(tmp_path):
    row = json.dumps({"a": 1})
    path = tmp_path / "r.jsonl"
    path.write_text(row + "\n" + row[:5])
    assert read_jsonl(path, torn_tail_ok=True) == [(1, {"a": 1})]
    with pytest.raises(ValueError, match=r"r\.jsonl:2: invalid JSON"):
        read_jsonl(path)


def test_require_names_the_place_and_the_missing_key():
    assert require({"a": 1}, "a", "f.jsonl:3") == 1
    with pytest.raises(ValueError, match=r"f\.jsonl:3: missing key 'b' \(row has \['a'\]\)"):
        require({"a": 1}, "b", "f.jsonl:3")


@pytest.fixture
def umask_027():
    before = os.umask(0o027)
    yield
    os.umask(before)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_get_the_umask_mode_and_overwrites_keep_the_old_mode(tmp_path, umask_027):
    """L1: mkstemp made every saved file 0600, and an overwrite dropped the file's mode."""
    vector = SteeringVector({HOOK: torch.zeros(32)})
    for name, write in [
        ("a.bin", lambda p: atomic_write_bytes(p, b"x")),
        ("v.safetensors", vector.save),
        ("r.jsonl", lambda p: append_jsonl(p, [{"a": 1}])),
    ]:
        path = tmp_path / name
        write(path)
        assert _mode(path) == 0o640  # 0o666 minus the umask 0o027
        if name != "r.jsonl":
            os.chmod(path, 0o444)
            write(path)
            assert _mode(path) == 0o444


def test_writing_to_a_symlink_updates_its_target_and_keeps_the_link(tmp_path):
    """L2: the link was replaced by a regular file and its target left stale."""
    target = tmp_path / "run3" / "v.bin"
    atomic_write_bytes(target, b"old")
    link = tmp_path / "latest.bin"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    rows = tmp_path / "rows.jsonl"
    rows.symlink_to(tmp_path / "run3" / "rows.jsonl")  # dangling until the first write
    append_jsonl(rows, [{"a": 1}])
    assert rows.is_symlink() and read_jsonl(tmp_path / "run3" / "rows.jsonl") == [(1, {"a": 1})]
    assert sorted(p.name for p in (tmp_path / "run3").iterdir()) == ["rows.jsonl", "v.bin"]


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    """L4: without it the rename may not survive a power loss."""
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    atomic_write_bytes(tmp_path / "f.bin", b"x")
    assert synced == [False, True]  # the file's data, then the folder's entry
    synced.clear()
    append_jsonl(tmp_path / "r.jsonl", [{"a": 1}])  # a new file: its folder entry too
    append_jsonl(tmp_path / "r.jsonl", [{"a": 2}])
    assert synced == [False, True, False]


def test_write_errors_name_the_target_not_the_temp_file(tmp_path, monkeypatch):
    """U5: saving to a folder, or into a folder we may not write, named `.x.tmp`."""
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a folder; pass the path of a file.*adir'"):
        atomic_write_bytes(folder, b"x")
    with pytest.raises(IsADirectoryError, match="adir"):
        SteeringVector({HOOK: torch.zeros(32)}).save(folder)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".v.bin.abc123.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as caught:
        atomic_write_bytes(tmp_path / "v.bin", b"x")
    assert caught.value.filename == str(tmp_path / "v.bin")
    assert str(caught.value) == f"[Errno 13] Permission denied: '{tmp_path / 'v.bin'}'"


def test_an_append_cuts_a_torn_last_line_and_completes_an_unterminated_row(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b"')  # a killed write left half a row
    append_jsonl(path, [{"a": 3}])
    assert path.read_text() == '{"a": 1}\n{"a": 3}\n'
    path.write_text('{"a": 1}\n{"a": 2}')  # a whole row, only its newline missing: kept
    append_jsonl(path, [{"a": 3}])
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n{"a": 3}\n'
    path.write_text('{"a": 1, "long": "' + "x" * 70000)  # torn, longer than one read block
    append_jsonl(path, [{"a": 3}])
    assert path.read_text() == '{"a": 3}\n'


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_two_processes_appending_at_once_never_interleave_rows(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [{"writer": 0, "pad": "x" * 5000, "i": i} for i in range(4)]
    pids = []
    for writer in (1, 2):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                for batch in range(100):
                    append_jsonl(path, [{**r, "writer": writer, "batch": batch} for r in rows])
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    read = [row for _, row in read_jsonl(path)]
    assert len(read) == 2 * 100 * 4
    for writer in (1, 2):  # each writer's rows arrive whole and in its own order
        mine = [(r["batch"], r["i"]) for r in read if r["writer"] == writer]
        assert mine == [(b, i) for b in range(100) for i in range(4)]


def test_json_and_jsonl_files_that_are_not_utf8_or_truncated_name_the_file(tmp_path):
    """U2: a truncated cells.json or a non-UTF-8 byte gave messages without the file name."""
    path = tmp_path / "cells.json"
    path.write_text(json.dumps({"config": {"a": 1}, "cells": {}}, indent=1)[:20])
    with pytest.raises(
        ValueError, match=r"cells\.json: invalid JSON at line 3 .* may be truncated"
    ):
        read_json(path)
    path.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(
        ValueError, match=r"cells\.json:1: not UTF-8 text \(byte 0xe9 at offset 7\)"
    ):
        read_json(path)
    bom = tmp_path / "bom.json"
    bom.write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert read_json(bom) == {"a": 1}
    rows = tmp_path / "r.jsonl"
    rows.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl:2: not UTF-8 text \(byte 0xff at offset 19\)"):
        read_jsonl(rows)
