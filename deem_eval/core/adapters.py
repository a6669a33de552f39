"""What a benchmark asks a model, and the base class every model adapter derives from.

An adapter class has a `Config` dataclass (its typed -M options) and is built as `cls(config)`. It never
knows which benchmark it answers: everything it needs travels in the `Request`. The runner talks to an
adapter through `ModelAdapter.answer` only (with `--workers N`, `answer(batch, prepared=...)`: see
`ModelAdapter.preparer`); what an adapter can do is declared as class attributes
(`can_generate`, `can_score_yes`, `needs_images`), never probed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from deem_eval.core.errors import DeemEvalError

if TYPE_CHECKING:
    from PIL.Image import Image

Scoring = Literal["generate", "logits", "both"]
SCORING_MODES: tuple[Scoring, ...] = ("generate", "logits", "both")


@dataclass(frozen=True)
class Request:
    """One question. `image` is a loaded PIL image for adapters that need pixels, else the file's path."""

    id: str
    image: Image | Path | None
    question: str
    subject: str | None = None             # the object/class the question asks about, when known
    candidates: tuple[str, ...] = ()       # the split's class vocabulary (for CLIP-style zero-shot)


@dataclass(frozen=True)
class Reply:
    """One answer: the generated text (generate/both) and P(yes) (logits/both); None where not asked for."""

    text: str | None
    p_yes: float | None


class ModelAdapter:
    """The contract between the runner and a model.

    Subclasses set `name` (registry name) and, per instance, `label` (leaderboard row) and `scoring`; they
    implement `generate` and, if `can_score_yes`, `yes_probability`. `answer` is the one call the runner
    makes. `content_fingerprint` and `prompt_for` have neutral defaults an adapter overrides when it loads
    files or builds a prompt.
    """

    name: ClassVar[str] = ""
    needs_images: ClassVar[bool] = True       # False: the runner never opens image files for this adapter
    can_generate: ClassVar[bool] = True
    can_score_yes: ClassVar[bool] = False     # True: yes_probability() gives P(yes) from the model itself
    label: str = ""
    scoring: Scoring = "generate"
    config: Any = None
    device: Any = "cpu"                       # where it computes (recorded in the manifest)

    def generate(self, batch: Sequence[Request]) -> list[str]:
        raise NotImplementedError(f"adapter {self.name!r} cannot generate text")

    def yes_probability(self, batch: Sequence[Request]) -> list[float]:
        raise NotImplementedError(f"adapter {self.name!r} gives no P(yes)")

    def content_fingerprint(self) -> str | None:
        """A digest of what the adapter loaded (answers file, weights): it keeps a changed file at the same
        path from resuming into the old run. None when its options say everything."""
        return None

    def prompt_for(self, request: Request) -> str | None:
        """The exact text the model is given for `request` (hashed into each sample line, stored once in
        prompts.jsonl), or None when there is no prompt to show (baselines, replayed answers)."""
        return None

    def scoring_mode(self) -> Scoring:
        """The mode the runner uses, checked against what the adapter declares it can do."""
        mode = self.scoring
        if mode not in SCORING_MODES:
            raise DeemEvalError(f"adapter {self.name!r}: scoring={mode!r}; choose one of {', '.join(SCORING_MODES)}")
        if mode in ("logits", "both") and not self.can_score_yes:
            raise DeemEvalError(f"adapter {self.name!r} gives no P(yes): use -M scoring=generate")
        if mode in ("generate", "both") and not self.can_generate:
            raise DeemEvalError(f"adapter {self.name!r} cannot generate text: use -M scoring=logits")
        return mode

    # ---- optional input pipeline (--workers N) ---------------------------------------------------------
    def preparer(self) -> Callable[[Sequence[Request]], Any] | None:
        """A light, picklable callable that turns a batch of requests into the model's CPU inputs (token ids,
        uint8 pixels, processor tensors) without the model, or None (the default) when there is nothing to
        prepare. With `--workers N` the runner calls it in N worker processes (it travels there pickled under
        the spawn start method, so it holds a processor/tokenizer and plain settings, never the model) and
        hands its result to `answer(batch, prepared=...)`. It may raise: the runner then answers that batch
        the ordinary way (`answer(batch)`), so a sample that cannot be prepared fails exactly as it would
        without workers."""
        return None

    def prepare(self, batch: Sequence[Request]) -> Any:
        """The prepared inputs for `batch` in this process (None: nothing to prepare), in pinned memory when
        CUDA is available, as `answer_prepared` takes them."""
        preparer = self.preparer()
        return None if preparer is None else pin_memory(preparer(batch))

    def answer_prepared(self, batch: Sequence[Request], prepared: Any) -> list[Reply]:
        """`answer` for a batch whose inputs `prepare`/`preparer` made; adapters with a preparer override it
        to use them. Its replies must equal `answer(batch)`'s exactly: prepared inputs only move work."""
        return self._answer_modes(batch)

    def answer(self, batch: Sequence[Request], prepared: Any = None) -> list[Reply]:
        """Answer a batch in the adapter's scoring mode: one reply per request, in order. `prepared` (from
        `preparer()`; None: nothing prepared) goes to `answer_prepared`."""
        if prepared is not None:
            return self.answer_prepared(batch, prepared)
        return self._answer_modes(batch)

    def _answer_modes(self, batch: Sequence[Request]) -> list[Reply]:
        mode = self.scoring_mode()
        n = len(batch)
        texts: list[str | None] = list(self.generate(batch)) if mode in ("generate", "both") else [None] * n
        probs: list[float | None] = ([float(p) for p in self.yes_probability(batch)]
                                     if mode in ("logits", "both") else [None] * n)
        if len(texts) != n or len(probs) != n:
            raise RuntimeError(f"adapter {self.name!r} returned {len(texts)} answers and {len(probs)} "
                               f"P(yes) for {n} requests")
        return [Reply(t, p) for t, p in zip(texts, probs)]

    def config_dict(self) -> dict[str, Any]:
        """The adapter's config as JSON-able data (for the run manifest)."""
        config = self.config
        if config is None or not dataclasses.is_dataclass(config) or isinstance(config, type):
            return {}
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(config).items()}


def pin_memory(data: Any) -> Any:
    """`data` with its CPU tensors (in lists, tuples, dicts and objects with a `pin_memory()` method) in pinned
    memory, so `.to(device, non_blocking=True)` can overlap the copy; unchanged when CUDA is unavailable (the
    check does not initialise CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return data
    return _pinned(data, torch)


def _pinned(data: Any, torch: Any) -> Any:
    if isinstance(data, torch.Tensor):
        return data if data.is_pinned() or data.device.type != "cpu" else data.pin_memory()
    if isinstance(data, dict):
        return {k: _pinned(v, torch) for k, v in data.items()}
    if isinstance(data, (list, tuple)) and not hasattr(data, "_fields"):
        return type(data)(_pinned(v, torch) for v in data)
    if hasattr(data, "pin_memory"):
        return data.pin_memory()
    return data
