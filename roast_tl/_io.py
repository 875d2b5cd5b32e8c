"""File plumbing: atomic writes, fsynced JSONL appends, and JSONL reads that name the bad line."""

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write `payload` to `path` via a temp file in the same folder, fsync, then rename.

    A crash or Ctrl-C at any moment leaves either the old file or the new one, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def append_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Append one JSON object per line to `path` (created if missing), flushed and fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(
    path: str | os.PathLike[str], *, torn_tail_ok: bool = False
) -> list[tuple[int, dict[str, Any]]]:
    """Return (1-based line number, row) for each non-blank line; errors name file and line.

    With `torn_tail_ok`, an unparseable *last* line (the interrupted final write of a killed
    run) is dropped instead of raising.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no JSONL file at {path}; pass the path of an existing .jsonl file"
        )
    with open(path, encoding="utf-8-sig") as handle:  # -sig: tolerate a byte-order mark
        lines = handle.read().splitlines()
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if torn_tail_ok and number == len(lines):
                break
            raise ValueError(
                f"{path}:{number}: invalid JSON ({err.msg}); each line must be one JSON object"
            ) from err
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def require(row: dict[str, Any], key: str, where: str) -> Any:
    """Return row[key], or raise a ValueError naming the place and the missing key."""
    if key not in row:
        raise ValueError(f"{where}: missing key {key!r} (row has {sorted(row)})")
    return row[key]
