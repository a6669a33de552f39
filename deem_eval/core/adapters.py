"""What a benchmark asks a model, and the protocol every model adapter follows.

An adapter class has a `Config` dataclass (its typed -M options) and is built as `cls(config)`. It never
knows which benchmark it answers: everything it needs travels in the `Request`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL.Image import Image

Scoring = Literal["generate", "logits", "both"]


@dataclass(frozen=True)
class Request:
    """One question. `image` is a loaded PIL image for adapters that need pixels, else the file's path."""

    id: str
    image: Image | Path | None
    question: str
    subject: str | None = None             # the object/class the question asks about, when known
    candidates: tuple[str, ...] = ()       # the split's class vocabulary (for CLIP-style zero-shot)


@runtime_checkable
class ModelAdapter(Protocol):
    name: str            # registry name, e.g. "hf"
    label: str           # row name in leaderboards, e.g. "hf:llava-1.5-7b"
    needs_images: bool   # False: the runner never opens image files for this adapter

    def generate(self, batch: Sequence[Request]) -> list[str]: ...

    # optional: `content_fingerprint() -> str | None`, a digest of the files it loaded (see content_fingerprint)
    # optional: `prompt_for(request) -> str | None`, the exact text the model is given (see rendered_prompt)


@runtime_checkable
class YesProbabilityAdapter(ModelAdapter, Protocol):
    """Optional capability: P(yes) from the model's next-token distribution."""

    def yes_probability(self, batch: Sequence[Request]) -> list[float]: ...


def scoring_mode(adapter: Any) -> Scoring:
    """Which of generate / yes_probability the runner calls (adapters opt in with a `scoring` attribute)."""
    mode = getattr(adapter, "scoring", "generate")
    if mode in ("logits", "both") and not hasattr(adapter, "yes_probability"):
        raise TypeError(f"adapter {adapter.name!r} asks for scoring={mode!r} but has no yes_probability()")
    return mode


def content_fingerprint(adapter: Any) -> str | None:
    """A digest of what the adapter loaded (answers file, weights), from its optional
    `content_fingerprint()` method or attribute: it keeps a changed file at the same path from resuming
    into the old run. None when the adapter has none (its options say everything)."""
    value = getattr(adapter, "content_fingerprint", None)
    if callable(value):
        value = value()
    return None if value is None else str(value)


def rendered_prompt(adapter: Any, request: Request) -> str | None:
    """The exact text the adapter gives its model for `request`, from its optional `prompt_for(request)`: it is
    hashed into each sample line (and stored once in prompts.jsonl) so a run shows what the model saw. None
    when the adapter has no prompt to show (baselines, replayed answers)."""
    method = getattr(adapter, "prompt_for", None)
    if not callable(method):
        return None
    text = method(request)
    return None if text is None else str(text)


def config_dict(adapter: Any) -> dict[str, Any]:
    """The adapter's config as JSON-able data (for the run manifest)."""
    import dataclasses

    config = getattr(adapter, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return {}
    return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(config).items()}
