"""Negative miners: for each image, the wrong class that the "no" question asks about.

A miner is a class built as `cls(options)` with `name`, `uses_clip`, `params()` (recorded in split.json),
`start(sources, candidates_mode)` and `mine(batch, pool) -> list[Mined | str]` (a str is the reason an
image is skipped). Built in: `clip` (the paper's: the wrong class CLIP rates highest) and `random`
(seeded, needs no model). Others can be added under the entry-point group `deem_eval.robustvqa_miners`.

Shared rule: a negative is never the true class nor a class with the same name (ImageNet has two
"crane"s and two "maillot"s in DEEM's names: "Is crane the main object?" would be true for either).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deem_eval.core.benchmark import deem_eval_home
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.registry import Registry
from deem_eval.core.rng import derive_rng

from .cache import EmbeddingStore
from .imagefile import CorruptImage, LoadedImage, decode_image
from .sources import Source

if TYPE_CHECKING:
    from .options import BuildOptions

MINERS = Registry("deem_eval.robustvqa_miners", "negative miner")


@dataclass(frozen=True)
class Mined:
    negative: int                  # index into the source's class table
    clip_rank: int | None = None   # rank of the true class among the candidates (1 = CLIP is right)


def eligible_negatives(source: Source, candidates: tuple[int, ...], label: int) -> np.ndarray:
    true_name = source.table.classes[label].name.casefold()
    out = np.array([c for c in candidates if c != label and source.table.classes[c].name.casefold() != true_name],
                   dtype=np.int64)
    if out.size == 0:
        raise DeemEvalError(f"{source.describe()}: class {source.table.classes[label].name!r} has no possible "
                            "negative (a source needs at least two differently named classes)")
    return out


class RandomMiner:
    """A uniformly random wrong class among the candidates, drawn from derive_rng(seed, subset, key)."""

    name = "random"
    uses_clip = False

    def __init__(self, options: BuildOptions) -> None:
        self.seed = options.seed
        self._sources: dict[str, tuple[Source, tuple[int, ...]]] = {}

    def params(self) -> dict[str, Any]:
        return {"miner": "random"}

    def start(self, sources: list[Source], candidates_mode: str) -> None:
        self._sources = {s.subset: (s, s.candidates(candidates_mode)) for s in sources}

    def mine(self, batch: list[LoadedImage], pool: ThreadPoolExecutor) -> list[Mined | str]:
        checks = list(pool.map(_check_decodes, batch))
        out: list[Mined | str] = []
        for loaded, error in zip(batch, checks):
            if error is not None:
                out.append(error)
                continue
            source, candidates = self._sources[loaded.item.subset]
            pool_ = eligible_negatives(source, candidates, loaded.item.label)
            rng = derive_rng(self.seed, "robustvqa-negative", loaded.item.subset, loaded.item.key)
            out.append(Mined(int(pool_[int(rng.integers(pool_.size))])))
        return out


def _check_decodes(loaded: LoadedImage) -> str | None:
    try:
        decode_image(loaded.data)  # type: ignore[arg-type]
        return None
    except CorruptImage as exc:
        return f"corrupt ({exc})"


class ClipMiner:
    """The wrong class with the highest CLIP image-text similarity among the candidates.

    Prompts are "A photo of a {class}" (DEEM's); text embeddings of every candidate are computed once;
    image embeddings come from the on-disk cache or are encoded in batches; both are L2-normalised.
    """

    name = "clip"
    uses_clip = True

    def __init__(self, options: BuildOptions) -> None:
        from .clip_model import load_clip

        self.options = options
        cache_root = Path(options.cache_dir) if options.cache_dir else deem_eval_home() / "robustvqa" / "clip-cache"
        self.deem = options.protocol == "deem"
        self.encoder = load_clip(options.clip_model, device=options.device, dtype=options.clip_dtype,
                                 memo_dir=cache_root, resize="squash" if self.deem else "crop")
        self.store = EmbeddingStore(cache_root, model_key=self.encoder.cache_key,
                                    description=self.encoder.describe())
        self.encoded = 0       # images encoded by the model in this run (the rest came from the cache)
        self._text: dict[str, np.ndarray] = {}
        self._sources: dict[str, tuple[Source, tuple[int, ...]]] = {}
        self._matrices: dict[str, tuple[np.ndarray, np.ndarray, dict[int, int]]] = {}
        self._masks: dict[tuple[str, int], np.ndarray] = {}

    def params(self) -> dict[str, Any]:
        return {"miner": "clip", "clip_model": self.options.clip_model, "clip_weights": self.encoder.identity,
                "clip_dtype": self.encoder.dtype, "clip_cache_key": self.encoder.cache_key,
                "prompt": self.options.prompt, **({"clip_scoring": DEEM_SCORING} if self.deem else {})}

    def start(self, sources: list[Source], candidates_mode: str) -> None:
        self._sources = {s.subset: (s, s.candidates(candidates_mode)) for s in sources}
        for source in sources:
            if source.table.name in self._text:
                continue
            prompts = [self.options.prompt.replace("{class}", name) for name in source.table.names()]
            text = self.encoder.encode_texts(prompts)
            # DEEM's script does not normalise its text embeddings: their norms weigh into the ranking
            self._text[source.table.name] = np.asarray(text, np.float32) if self.deem else _normalise(text)

    def _prepare(self, loaded: LoadedImage):
        if loaded.sha256 in self.store:
            return None
        try:
            return self.encoder.preprocess(decode_image(loaded.data))  # type: ignore[arg-type]
        except CorruptImage as exc:
            return f"corrupt ({exc})"
        except Exception as exc:  # noqa: BLE001 - the processor rejects some odd images (e.g. 1-pixel)
            return f"cannot preprocess ({exc})"

    def mine(self, batch: list[LoadedImage], pool: ThreadPoolExecutor) -> list[Mined | str]:
        prepared = list(pool.map(self._prepare, batch))
        todo = [(lo, px) for lo, px in zip(batch, prepared) if isinstance(px, np.ndarray)]
        seen: set[str] = set()
        unique = [(lo, px) for lo, px in todo if not (lo.sha256 in seen or seen.add(lo.sha256))]  # type: ignore[func-returns-value]
        if unique:
            embeddings = self.encoder.encode_pixels([px for _, px in unique])
            self.store.add([lo.sha256 for lo, _ in unique], embeddings)
            self.encoded += len(unique)
        ok = [lo for lo, px in zip(batch, prepared) if not isinstance(px, str)]
        mined = dict(zip((id(lo) for lo in ok), self._score(ok)))
        return [px if isinstance(px, str) else mined[id(lo)] for lo, px in zip(batch, prepared)]

    def _subset_matrix(self, subset: str) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
        """(candidate indices, their text embeddings, class index -> column) for a subset, built once."""
        if subset not in self._matrices:
            source, candidates = self._sources[subset]
            cand = np.asarray(candidates, dtype=np.int64)
            self._matrices[subset] = (cand, np.ascontiguousarray(self._text[source.table.name][cand]),
                                      {int(c): i for i, c in enumerate(cand)})
        return self._matrices[subset]

    def _eligible_mask(self, subset: str, label: int) -> np.ndarray:
        key = (subset, label)
        if key not in self._masks:
            source, candidates = self._sources[subset]
            cand, _, column = self._subset_matrix(subset)
            mask = np.zeros(len(cand), dtype=bool)
            mask[[column[int(c)] for c in eligible_negatives(source, candidates, label)]] = True
            self._masks[key] = mask
        return self._masks[key]

    def _score(self, batch: list[LoadedImage]) -> list[Mined]:
        """Score each image of a batch against its subset's candidates."""
        out: dict[int, Mined] = {}
        for subset in sorted({lo.item.subset for lo in batch}):
            group = [lo for lo in batch if lo.item.subset == subset]
            source, _ = self._sources[subset]
            cand, text, column = self._subset_matrix(subset)
            full_text = self._text[source.table.name]
            for lo in group:
                # one matrix-vector product per image: the result cannot depend on batch size or order
                emb = _normalise(self.store.get(lo.sha256)[None, :])[0]
                scores = text @ emb
                label = lo.item.label
                true_score = scores[column[label]] if label in column else float(full_text[label] @ emb)
                rank = 1 + int(np.sum(scores > true_score))
                masked = np.where(self._eligible_mask(subset, label), scores, -np.inf)
                out[id(lo)] = _deem_rule(cand, scores, label) if self.deem else \
                    Mined(int(cand[int(np.argmax(masked))]), rank)
        return [out[id(lo)] for lo in batch]

    def finish(self) -> None:
        self.store.compact()
        print(f"clip miner: {self.encoded} image(s) encoded, the rest from the cache "
              f"({self.store.directory})", file=sys.stderr)


DEEM_SCORING = "softmax(100*normalised_image@raw_text) fp32; negative = top-1 if wrong else top-2"


def _deem_rule(cand: np.ndarray, scores: np.ndarray, label: int) -> Mined:
    """DEEM's rule over softmax(100 * logits) in fp32: top-1 if it is wrong, else top-2 (same names allowed).

    Ties (equal fp32 probabilities) go to the lower class index."""
    logits = np.float32(100.0) * scores.astype(np.float32)
    probs = np.exp(logits - logits.max(), dtype=np.float32)
    probs = probs / probs.sum(dtype=np.float32)
    order = np.argsort(-probs, kind="stable")
    true_col = np.flatnonzero(cand == label)
    rank = 1 + int(np.sum(probs > probs[true_col[0]])) if true_col.size else None
    top = int(cand[order[0]])
    return Mined(top if top != label else int(cand[order[1]]), rank)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


MINERS.register("clip", ClipMiner)
MINERS.register("random", RandomMiner)
