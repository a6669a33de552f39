"""Model-agnostic helpers shared by the generative adapters (`hf`, `deem`, ...).

Nothing here knows a model family. Four jobs:

- **yes/no token discovery** - `find_yes_no_tokens(tokenizer)` finds every *single* vocabulary token that
  decodes to "yes" / "no" in any casing, with or without the tokenizer's leading-space marker ("Yes",
  "▁yes", "ĠYES", ...), and raises `DeemEvalError` when either side has none (logit scoring would be
  meaningless for a tokenizer that spells "yes" with two tokens).
- **P(yes) from logits** - `yes_probability_from_logits(logits, tokens)`: P(yes) = sum of the softmax
  probabilities of the yes variants over (yes + no), computed stably in float32 with logsumexp, so it equals
  the renormalised two-way probability without materialising the full softmax.
- **length-grouped batching** - `length_grouped_batches(lengths, batch_size)`: indices sorted by length
  (longest first, ties by position), chunked, so padding is minimal and the worst-case memory batch runs
  first; `ordered_by_length(items, key)` reorders and returns the inverse permutation.
- **OOM backoff** - `OomBackoff`: runs a batch function over a list in chunks; on CUDA out-of-memory it
  frees the cache, halves the chunk size and retries only the failed chunk (finished chunks are kept); the
  smaller size sticks for later calls. At size 1 the error propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from deem_eval.core.errors import DeemEvalError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)

#: Leading-space markers of the common tokenizer families: SentencePiece, byte-level BPE, plain space.
SPACE_MARKERS = ("\u2581", "\u0120", " ")


# ----------------------------------------------------------------------------------------------- yes / no
@dataclass(frozen=True)
class YesNoTokens:
    """The single-token spellings of "yes" and "no" in one vocabulary (ids and their token strings)."""

    yes_ids: tuple[int, ...]
    no_ids: tuple[int, ...]
    yes_tokens: tuple[str, ...]
    no_tokens: tuple[str, ...]

    def describe(self) -> str:
        return f"yes={list(self.yes_tokens)} no={list(self.no_tokens)}"


def _bare_word(token: str) -> str:
    """`token` without one leading space marker, lower-cased."""
    for marker in SPACE_MARKERS:
        if token.startswith(marker):
            token = token[len(marker):]
            break
    return token.lower()


def find_yes_no_tokens(tokenizer: Any, *, words: tuple[str, str] = ("yes", "no"),
                       what: str = "this model") -> YesNoTokens:
    """All single tokens of `tokenizer` that spell `words[0]` / `words[1]` (any case, optional leading space).

    A candidate must (1) look like the word once one leading space marker is removed and (2) decode, on its
    own, to the word (after stripping whitespace). (2) rules out byte-fallback artefacts and continuation
    pieces such as WordPiece's "##yes". Raises `DeemEvalError` if either word has no single token.
    """
    vocab: Mapping[str, int] = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    found: dict[str, list[tuple[int, str]]] = {w: [] for w in words}
    for token, idx in vocab.items():
        bare = _bare_word(token)
        if bare not in found or idx in special:
            continue
        decoded = tokenizer.decode([idx], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if decoded.strip().lower() == bare:
            found[bare].append((idx, token))
    missing = [w for w in words if not found[w]]
    if missing:
        raise DeemEvalError(
            f"logit scoring needs single-token spellings of {' and '.join(repr(w) for w in words)}, but the "
            f"tokenizer of {what} has none for {', '.join(repr(w) for w in missing)}. "
            f"Use -M scoring=generate instead.")
    yes, no = (sorted(found[w]) for w in words)
    return YesNoTokens(tuple(i for i, _ in yes), tuple(i for i, _ in no),
                       tuple(t for _, t in yes), tuple(t for _, t in no))


def yes_probability_from_logits(logits: torch.Tensor, tokens: YesNoTokens) -> torch.Tensor:
    """P(yes | yes or no) per row of next-token `logits` (shape [batch, vocab]) as float32 [batch].

    Equals sum(softmax[yes_ids]) / (sum(softmax[yes_ids]) + sum(softmax[no_ids])); the shared softmax
    normaliser cancels, so sigmoid(logsumexp(yes) - logsumexp(no)) gives it exactly and stably.
    """
    import torch

    logits = logits.float()
    yes_ids = torch.as_tensor(tokens.yes_ids, device=logits.device)
    no_ids = torch.as_tensor(tokens.no_ids, device=logits.device)
    log_yes = torch.logsumexp(logits.index_select(-1, yes_ids), dim=-1)
    log_no = torch.logsumexp(logits.index_select(-1, no_ids), dim=-1)
    return torch.sigmoid(log_yes - log_no)


def yes_no_mass(logits: torch.Tensor, tokens: YesNoTokens) -> torch.Tensor:
    """Total next-token probability on all yes and no variants (a diagnostic: low mass = the model wanted
    to say something else, and P(yes) is a renormalisation of a small number)."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    ids = torch.as_tensor(tokens.yes_ids + tokens.no_ids, device=logits.device)
    return logp.index_select(-1, ids).exp().sum(-1)


# ----------------------------------------------------------------------------------------------- batching
def length_grouped_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices into `lengths` grouped into batches of similar length, longest batch first.

    Sorting is stable (equal lengths keep their order), so the grouping is deterministic. Running the
    longest batch first surfaces an out-of-memory error at the start rather than mid-run.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def ordered_by_length(items: Sequence[T], key: Callable[[T], int]) -> tuple[list[T], list[int]]:
    """`items` sorted longest-first by `key` (stable) and the permutation `order` with
    sorted_items[k] == items[order[k]]; use `restore_order(results, order)` to undo it."""
    order = sorted(range(len(items)), key=lambda i: (-key(items[i]), i))
    return [items[i] for i in order], order


def restore_order(results: Sequence[R], order: Sequence[int]) -> list[R]:
    """Inverse of `ordered_by_length`: results computed on the sorted items, back in input order."""
    out: list[Any] = [None] * len(order)
    for k, i in enumerate(order):
        out[i] = results[k]
    return out


HashableT = TypeVar("HashableT", bound=Hashable)


def dedupe(values: Sequence[HashableT]) -> list[HashableT]:
    """Unique values in first-seen order (e.g. a batch's candidate sets)."""
    return list(dict.fromkeys(values))


# ----------------------------------------------------------------------------------------------- OOM
def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA (or MPS / XPU) out-of-memory errors, whichever exception type torch raised."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


class OomBackoff:
    """Run `fn` over `items` in chunks of at most `max_batch`; halve the chunk on out-of-memory.

    The reduced size persists across calls (one instance per adapter), so a run that hit OOM once does not
    pay for it on every later batch. Results of chunks that finished are never recomputed. `is_oom` and
    `on_oom` are injectable for tests (a fake OOM) and for freeing model-specific caches.
    """

    def __init__(self, max_batch: int | None = None, *, is_oom: Callable[[BaseException], bool] = is_out_of_memory,
                 on_oom: Callable[[], None] = _free_accelerator_memory) -> None:
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        self.is_oom = is_oom
        self.on_oom = on_oom
        self.halvings = 0

    def run(self, items: Sequence[T], fn: Callable[[Sequence[T]], Sequence[R]]) -> list[R]:
        """fn(chunk) must return one result per item of chunk, in order."""
        out: list[R] = []
        start = 0
        while start < len(items):
            size = min(self.max_batch or len(items), len(items) - start)
            chunk = items[start:start + size]
            try:
                results = list(fn(chunk))
            except BaseException as exc:
                if not self.is_oom(exc) or size <= 1:
                    raise
                self.max_batch = max(1, size // 2)
                self.halvings += 1
                log.warning("out of memory with a batch of %d; retrying with %d", size, self.max_batch)
                del exc
                self.on_oom()
                continue
            if len(results) != len(chunk):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(chunk)} items")
            out.extend(results)
            start += size
        return out
