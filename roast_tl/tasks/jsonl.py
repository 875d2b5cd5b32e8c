"""Read JSONL rows with their line numbers, so loaders can name the bad line."""

import json
import os
from pathlib import Path
from typing import Any


def read_jsonl_rows(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """Return (1-based line number, row) for each non-blank line; bad JSON names file and line.

    Loaders report their own row errors as `file:line: problem`, so a user can jump to the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no JSONL file at {path}; pass the path of an existing .jsonl file")
    rows: list[tuple[int, dict[str, Any]]] = []
    with open(path, encoding="utf-8-sig") as handle:  # -sig: tolerate a byte-order mark
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
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
