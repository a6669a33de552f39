"""Atomic file writes: a reader (or a resumed build) sees the old file or the whole new one, never half.

Write to a hidden temporary file beside the target, then `os.replace` it into place. `fsync=True` also
forces the bytes to disk first, for files whose loss after a power cut would lose finished work
(split and run metadata); rebuildable outputs skip it. An OS error (disk full, read-only) becomes a
WriteError naming the target, and the temporary file is removed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deem_eval.core.errors import WriteError


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Turn an OSError raised while writing `path` into a WriteError naming it (the CLI prints one line)."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(path, exc) from None


def atomic_write_bytes(path: Path | str, data: bytes, *, fsync: bool = False) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")   # per thread too
    with writing(path):
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise


def atomic_write_text(path: Path | str, text: str, *, fsync: bool = False) -> None:
    """UTF-8 with "\\n" line endings on every platform (the bytes are part of fingerprints)."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)
