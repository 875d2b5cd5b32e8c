"""File plumbing: every writer is atomic, JSONL appends and reads name the bad file and line."""

import json
import os

import pytest
import torch

from roast_tl._io import append_jsonl, atomic_write_bytes, atomic_write_text, read_jsonl, require
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
