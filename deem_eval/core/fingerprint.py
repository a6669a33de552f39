"""Content fingerprints of what an adapter loads, so a changed file at the same path is a different run.

The run key hashes option values; `-M path=answers.jsonl` or `-M checkpoint=DIR` stay the same when the file
or the weights behind them change. Adapters expose `content_fingerprint() -> str | None` built from these
helpers, and the runner puts it into the run key and the manifest.

Weights: a small file is hashed whole; a large safetensors file by its header (names, dtypes, shapes,
offsets, metadata), its size and the first and last bytes of every tensor - retraining changes (nearly) every
value of a trained tensor, so this catches it without reading gigabytes at every start. Sizes and mtimes
alone are not used: a copy keeps neither, and a retrained checkpoint often has the same size.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path

FULL_HASH_MAX = 256 * 2**20            # files up to this size are hashed whole
SAMPLE_BYTES = 4096                    # per tensor (head and tail) or per block of large non-safetensors files
SAMPLE_BLOCKS = 64                     # evenly spaced blocks of large files that are not safetensors
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".npz", ".msgpack", ".h5")
CONFIG_SUFFIXES = (".json", ".model", ".txt", ".tiktoken", ".jinja", ".py", ".yaml", ".yml")
_COMMIT = re.compile(r"[0-9a-f]{40}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(path: Path) -> str:
    """Whole-file sha256 when small; header + size + sampled tensor bytes when large (see module doc)."""
    size = path.stat().st_size
    if size <= FULL_HASH_MAX:
        return file_sha256(path)
    digest = hashlib.sha256(f"size={size}".encode())
    with open(path, "rb") as handle:
        spans = _safetensors_spans(handle, size) if path.suffix == ".safetensors" else None
        if spans is None:              # another format: evenly spaced blocks and the tail
            step = max(1, size // SAMPLE_BLOCKS)
            spans = [(offset, min(size, offset + SAMPLE_BYTES)) for offset in range(0, size, step)]
            spans.append((max(0, size - SAMPLE_BYTES), size))
        for start, end in spans:
            for offset in sorted({start, max(start, end - SAMPLE_BYTES)}):
                handle.seek(offset)
                digest.update(handle.read(min(SAMPLE_BYTES, end - offset)))
    return "sampled:" + digest.hexdigest()


def _safetensors_spans(handle, size: int) -> list[tuple[int, int]] | None:
    """Byte spans to read: the whole header in SAMPLE_BYTES pieces, then (start, end) of every tensor's data
    (head and tail of each are read); None if this is not a valid safetensors file."""
    handle.seek(0)
    raw = handle.read(8)
    if len(raw) < 8:
        return None
    (n,) = struct.unpack("<Q", raw)
    if n > min(size - 8, 100 * 2**20):
        return None
    try:
        header = json.loads(handle.read(n))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    base = 8 + n
    spans = [(offset, min(base, offset + SAMPLE_BYTES)) for offset in range(0, base, SAMPLE_BYTES)]
    for name in sorted(header):
        offsets = header[name].get("data_offsets") if isinstance(header[name], dict) else None
        if (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= size - base):
            spans.append((base + int(offsets[0]), base + int(offsets[1])))
    return spans


def directory_fingerprint(root: Path, *, recursive: bool = True,
                          suffixes: Iterable[str] = WEIGHT_SUFFIXES + CONFIG_SUFFIXES) -> str:
    """One digest over the weight and config files of a checkpoint directory (relative path + content digest
    each); hidden entries (.git, .cache) are skipped, and subdirectories unless `recursive` (transformers
    loads only the top level; checkpoint-N folders of a training run beside it are not the model)."""
    root = Path(root)
    wanted = tuple(suffixes)
    lines = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or not name.endswith(wanted) or not path.is_file():
                continue
            digest = weights_digest(path) if name.endswith(WEIGHT_SUFFIXES) else file_sha256(path)
            lines.append(f"{path.relative_to(root).as_posix()}\t{digest}")
    return "dir:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def hub_snapshot_commit(path: Path) -> str | None:
    """The commit of a Hugging Face cache snapshot directory (.../snapshots/<40 hex>), else None."""
    path = Path(path)
    if path.parent.name == "snapshots" and _COMMIT.fullmatch(path.name):
        return path.name
    return None


def checkpoint_fingerprint(path: Path) -> str:
    """A hub snapshot by its commit (immutable, nothing to read), any other directory by its top-level files."""
    commit = hub_snapshot_commit(path)
    return f"hub:{commit}" if commit else directory_fingerprint(path, recursive=False)
