"""File plumbing: atomic writes, fsynced JSONL appends, and JSONL reads that name the bad line.

Writes go through a symlink to its target (the link stays a link), give a new file the normal
umask mode (an existing file keeps its own), and fsync the folder after the rename so the new
name survives a power loss. Errors name the file the caller asked for, never a temp file.
"""

import codecs
import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

try:  # POSIX only; elsewhere appends are not locked against a second writer
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (no race with threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename or a new file in it is durable; a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and Windows) cannot fsync a directory
    finally:
        os.close(fd)


def _target(path: str | os.PathLike[str]) -> Path:
    """The real file a write to `path` should change: symlinks followed, folders made."""
    given = Path(path)
    if given.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, "is a folder; pass the path of a file to write", str(given)
        )
    real = Path(os.path.realpath(given))
    real.parent.mkdir(parents=True, exist_ok=True)
    return real


@contextlib.contextmanager
def _naming(path: str | os.PathLike[str]) -> Iterator[None]:
    """Re-raise an OSError (e.g. from the temp file) as the same error naming `path`."""
    try:
        yield
    except OSError as err:
        if err.errno is None or err.filename == str(path):
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write `payload` to `path` via a temp file in the same folder, fsync, rename, fsync folder.

    A crash or Ctrl-C at any moment leaves either the old file or the new one, never half.
    A new file gets the normal mode (0o666 minus the umask), an existing one keeps its mode,
    and writing to a symlink replaces the file it points to.
    """
    with _naming(path):
        real = _target(path)
        try:
            mode = real.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, real)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_dir(real.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _read_at(fd: int, size: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)  # O_APPEND writes still go to the end
    return os.read(fd, size)


def _torn_tail(fd: int) -> tuple[int, bool]:
    """Return (size to keep, whether a newline must be added) for an appendable JSONL file.

    A last line without its newline is either a complete JSON object (kept, newline added) or
    the torn write of a killed run (cut off: it is not a row, and appending after it would glue
    the next row to it).
    """
    size = os.fstat(fd).st_size
    if size == 0 or _read_at(fd, 1, size - 1) == b"\n":
        return size, False
    start = size
    while start > 0:  # find the last newline, reading backwards
        chunk = min(65536, start)
        block = _read_at(fd, chunk, start - chunk)
        cut = block.rfind(b"\n")
        if cut >= 0:
            start = start - chunk + cut + 1
            break
        start -= chunk
    tail = _read_at(fd, size - start, start)
    try:
        complete = isinstance(json.loads(tail.decode("utf-8-sig")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        complete = False
    return (size, True) if complete else (start, False)


def append_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Append one JSON object per line to `path` (created if missing), fsynced.

    All rows go out in one `write` under an exclusive lock, so two processes appending to one
    file never interleave. A torn last line left by a killed run is cut off first.
    """
    payload = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
    with _naming(path):
        real = _target(path)
        created = not real.exists()
        fd = os.open(real, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            keep, newline = _torn_tail(fd)
            if keep < os.fstat(fd).st_size:
                os.ftruncate(fd, keep)
            data = (b"\n" if newline else b"") + payload
            while data:
                written = os.write(fd, data)
                data = data[written:]
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock
        if created:
            _fsync_dir(real.parent)


def _decode(path: Path, fix: str) -> str:
    """The file's text; a byte-order mark is dropped, a non-UTF-8 byte is a ValueError naming
    the file, line and byte offset."""
    raw = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        line_number = raw.count(b"\n", 0, offset) + 1
        raise ValueError(
            f"{path}:{line_number}: not UTF-8 text (byte 0x{raw[offset]:02x} at offset "
            f"{offset}); {fix}"
        ) from err


def read_jsonl(
    path: str | os.PathLike[str], *, torn_tail_ok: bool = False
) -> list[tuple[int, dict[str, Any]]]:
    """Return (1-based line number, row) for each non-blank line; errors name file and line.

    With `torn_tail_ok`, an unparseable *last* line (the interrupted final write of a killed
    run) is dropped instead of raising. A byte-order mark and CRLF line ends are accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no JSONL file at {path}; pass the path of an existing .jsonl file"
        )
    text = _decode(path, "save the file as UTF-8")
    lines = text.splitlines()
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if torn_tail_ok and number == len(lines) and not text.endswith("\n"):
                break
            raise ValueError(
                f"{path}:{number}: invalid JSON ({err.msg}); each line must be one JSON object"
            ) from err
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; a truncated or non-UTF-8 file is a ValueError naming the file."""
    path = Path(path)
    text = _decode(path, "it is damaged: move it away or use another output folder")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: invalid JSON at line {err.lineno} column {err.colno} ({err.msg}); it may "
            "be truncated: move it away or use another output folder"
        ) from err


def require(row: dict[str, Any], key: str, where: str) -> Any:
    """Return row[key], or raise a ValueError naming the place and the missing key."""
    if key not in row:
        raise ValueError(f"{where}: missing key {key!r} (row has {sorted(row)})")
    return row[key]
