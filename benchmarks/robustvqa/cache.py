"""On-disk cache of image embeddings, keyed by model identity and image content hash.

Layout: `<cache dir>/<model key>/shard-*.npz`, each shard holding `hashes` (sha256 hex of the image
file bytes) and `embeddings` (float32, as the model produced them, not normalised). Every encoded batch is
written as its own shard with an atomic rename, so an interrupted build keeps all finished batches and a
restart encodes only the rest; `compact()` merges shards when a build finishes. A rebuild with other
options (candidates, selection, template, seed) finds every image here and encodes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from deem_eval.core.atomic import atomic_write_bytes


class EmbeddingStore:
    def __init__(self, directory: Path, *, model_key: str, description: dict | None = None) -> None:
        self.directory = Path(directory) / model_key
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rows: dict[str, np.ndarray] = {}
        self._written = 0
        info = self.directory / "model.json"
        if description is not None and not info.exists():
            atomic_write_bytes(info, (json.dumps(description, indent=2, sort_keys=True) + "\n").encode())
        for shard in sorted(self.directory.glob("shard-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    for h, row in zip(data["hashes"].tolist(), data["embeddings"]):
                        self._rows[h] = row
            except (OSError, ValueError, KeyError, EOFError):  # a torn file from a crash: ignore it
                continue

    def __contains__(self, content_hash: str) -> bool:
        return content_hash in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, content_hash: str) -> np.ndarray:
        return self._rows[content_hash]

    def add(self, hashes: list[str], embeddings: np.ndarray) -> None:
        """Persist one batch now (atomically) and keep it in memory."""
        if not hashes:
            return
        embeddings = np.asarray(embeddings, dtype=np.float32)
        name = hashlib.sha256("".join(hashes).encode()).hexdigest()[:16]
        _atomic_npz(self.directory / f"shard-{name}.npz", hashes, embeddings)
        for h, row in zip(hashes, embeddings):
            self._rows[h] = row
        self._written += 1

    def compact(self) -> None:
        """Merge all shards into one (written before the old ones are removed, so nothing is ever lost)."""
        shards = sorted(self.directory.glob("shard-*.npz"))
        if len(shards) <= 1:
            return
        hashes = sorted(self._rows)
        name = hashlib.sha256("".join(hashes).encode()).hexdigest()[:16]
        target = self.directory / f"shard-{name}.npz"
        _atomic_npz(target, hashes, np.stack([self._rows[h] for h in hashes]))
        for shard in shards:
            if shard != target:
                shard.unlink(missing_ok=True)


def _atomic_npz(path: Path, hashes: list[str], embeddings: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
    with open(tmp, "wb") as handle:
        np.savez(handle, hashes=np.array(hashes, dtype="U64"), embeddings=embeddings)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
