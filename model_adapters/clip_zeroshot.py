"""The `clip` adapter: CLIP zero-shot classification turned into yes/no answers (the paper's CLIP rows).

For "Is {class} the main object in this image?" / "Is there a {object} in the image?" the answer is "yes"
iff the asked class (`Request.subject`) scores highest among the candidate classes, by cosine similarity
of the image embedding with the text embedding of `template` filled with each class name.

Candidates, in order of precedence:
1. `-M candidates=a,b,c` or `-M candidates_file=classes.txt` (one name per line), if given;
2. the split's vocabulary (`Request.candidates`, e.g. the 1000 ImageNet classes or the 80 COCO ones).
There is deliberately no fallback to "the subjects seen in the batch": answers would then depend on
`--batch-size` and on which samples happen to share a batch. Without candidates the request fails with a
message saying how to supply them. The subject is always added to its own candidate set (a class missing
from the vocabulary can still win), and names match case- and whitespace-insensitively.

With `-M scoring=logits|both` the adapter also reports P(yes) = the softmax probability of the subject over
its candidates at CLIP's learned temperature (logit_scale), so AUROC / AP / ECE can be computed; note that
"ranked first" and "P >= 0.5" can disagree when no class dominates.

Text embeddings are cached per class name (a class's embedding does not depend on the other candidates),
so a 1000-class vocabulary is encoded once per run; images are encoded in batches of the runner's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from deem_eval.core.adapters import ModelAdapter, Request
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.fingerprint import directory_fingerprint, file_sha256
from deem_eval.core.images import load_rgb
from deem_eval.model_adapters.generation import OomBackoff, dedupe


@dataclass(frozen=True)
class CLIPConfig:
    """Options of `--model clip`."""

    path: str = "openai/clip-vit-large-patch14-336"   # hub id or local dir (the RobustVQA miner's CLIP)
    template: str = "a photo of a {}."
    candidates: tuple[str, ...] = ()       # overrides the split's vocabulary
    candidates_file: Path | None = None    # one class name per line; overrides the split's vocabulary
    dtype: Literal["auto", "checkpoint", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    scoring: Literal["generate", "logits", "both"] = "generate"
    text_batch: int = 256                  # class prompts encoded per forward pass
    label: str | None = None

    def __post_init__(self) -> None:
        if "{}" not in self.template and "{c}" not in self.template:
            raise ValueError(f"template {self.template!r} needs a {{}} (or {{c}}) where the class name goes")
        if self.text_batch < 1:
            raise ValueError("text_batch must be >= 1")


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


class CLIPZeroShot(ModelAdapter):
    """Yes iff the asked class ranks first among the candidates (CLIP zero-shot)."""

    name = "clip"
    needs_images = True
    can_score_yes = True                  # yes_probability(): softmax share of the subject among the classes
    Config = CLIPConfig

    def __init__(self, config: CLIPConfig | None = None):
        import torch
        from transformers import AutoModel, AutoProcessor

        from deem_eval.model_adapters.hf import loading

        self.config = config or CLIPConfig()
        self._torch = torch
        self.scoring = self.config.scoring
        self.fixed_candidates = self._configured_candidates()
        self.device = loading.resolve_device(self.config.device)
        self.dtype = loading.resolve_dtype(self.config.dtype, self.device)
        self._text_cache: dict[str, Any] = {}   # normalised class name -> unit text embedding (float32, cpu)
        self._backoff = OomBackoff()
        self._probs: dict[str, float] = {}       # scoring=both: P(yes) computed by generate()
        self._loaded: Any = None                 # the micro-CLIP directory or hf Checkpoint (for the fingerprint)
        if self._load_micro_clip():
            return
        checkpoint = loading.resolve_checkpoint(self.config.path)
        try:
            self.processor = AutoProcessor.from_pretrained(checkpoint.source)
            self.model = AutoModel.from_pretrained(checkpoint.source, dtype=self.dtype).to(self.device).eval()
        except OSError as exc:
            if not checkpoint.local:
                raise loading.not_available_error(checkpoint.source, str(exc).splitlines()[0]) from None
            raise DeemEvalError(f"{checkpoint.source}: cannot load a CLIP model: {exc}") from None
        if not hasattr(self.model, "get_text_features") or not hasattr(self.model, "get_image_features"):
            raise DeemEvalError(f"{checkpoint.source}: {type(self.model).__name__} is not a CLIP-style dual encoder")
        self._loaded = checkpoint
        self.dtype = self.model.dtype
        self.label = self.config.label or f"clip:{checkpoint.display_name}"

    def content_fingerprint(self) -> str | None:
        """Digest of the loaded model (snapshot commit or files) and of candidates_file: either changing at the
        same path is a new run, not a resume into the old one."""
        from deem_eval.model_adapters.hf import loading

        parts = []
        if isinstance(self._loaded, Path):
            parts.append(directory_fingerprint(self._loaded))
        elif self._loaded is not None:
            parts.append(loading.checkpoint_fingerprint(self._loaded) or "")
        if self.config.candidates_file is not None and Path(self.config.candidates_file).is_file():
            parts.append("candidates:" + file_sha256(Path(self.config.candidates_file)))
        return "+".join(parts) if any(parts) else None

    def _load_micro_clip(self) -> bool:
        """`-M path=micro-clip` (the shipped one) or a micro-CLIP directory: the project's own dual encoder."""
        from deem_eval.model_adapters.deem.micro.clip import (
            DualEncoder,
            Processor,
            is_micro_clip,
            load_micro_clip,
            shipped_micro_clip,
        )

        path = shipped_micro_clip() if self.config.path == "micro-clip" else Path(self.config.path).expanduser()
        if not is_micro_clip(path):
            if self.config.path == "micro-clip":
                raise DeemEvalError(f"the shipped micro-CLIP is missing ({path}); rebuild it with "
                                    "`deem-eval train-micro --out runs/micro --ship`")
            return False
        model, tokenizer = load_micro_clip(path, device=self.device)
        self.model, self.processor = DualEncoder(model).eval(), Processor(tokenizer, model.config)
        self._loaded = path
        self.dtype = self.model.dtype
        self.label = self.config.label or f"clip:{path.name}"
        return True

    def _configured_candidates(self) -> tuple[str, ...]:
        if self.config.candidates_file is not None:
            try:
                lines = self.config.candidates_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise DeemEvalError(f"-M candidates_file={self.config.candidates_file}: {exc}") from None
            names = tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
            if not names:
                raise DeemEvalError(f"{self.config.candidates_file}: no class names in it")
            return names
        return tuple(self.config.candidates)

    # ---- embeddings -----------------------------------------------------------------------------------
    @staticmethod
    def _features(out: Any) -> Any:
        return out if hasattr(out, "norm") else out.pooler_output   # transformers 4 (tensor) / 5 (output)

    def prompt(self, name: str) -> str:
        return self.config.template.replace("{c}", "{}").format(name)

    def text_embeddings(self, names: Sequence[str]) -> Any:
        """Unit text embeddings [len(names), dim] (float32, cpu), encoding only names not cached yet."""
        torch = self._torch
        missing = dedupe([_norm(n) for n in names if _norm(n) not in self._text_cache])
        for start in range(0, len(missing), self.config.text_batch):
            part = missing[start:start + self.config.text_batch]
            tokens = self.processor.tokenizer([self.prompt(n) for n in part], padding=True, truncation=True,
                                              return_tensors="pt").to(self.device)
            with torch.inference_mode():
                feats = self._features(self.model.get_text_features(**tokens)).float()
            feats = torch.nn.functional.normalize(feats, dim=-1).cpu()
            self._text_cache.update(zip(part, feats))
        return torch.stack([self._text_cache[_norm(n)] for n in names])

    def image_embeddings(self, batch: Sequence[Request]) -> Any:
        torch = self._torch

        def encode(chunk: Sequence[Request]) -> list[Any]:
            images = [self._image(r) for r in chunk]
            pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device, self.dtype)
            with torch.inference_mode():
                feats = self._features(self.model.get_image_features(pixel_values=pixels)).float()
            return list(torch.nn.functional.normalize(feats, dim=-1).cpu())

        return torch.stack(self._backoff.run(list(batch), encode))

    @staticmethod
    def _image(request: Request) -> Any:
        if request.image is None:
            raise DeemEvalError(f"{request.id}: the clip adapter needs an image")
        return load_rgb(request.image)   # paths are opened here; 16-bit images scaled, not clipped

    # ---- answers --------------------------------------------------------------------------------------
    def candidates_for(self, request: Request) -> tuple[list[str], int]:
        """The request's candidate names (subject included) and the subject's index among them."""
        if not request.subject:
            raise DeemEvalError(f"{request.id}: the clip adapter needs the asked class (the split's group "
                                "'object' or 'class' field)")
        given = self.fixed_candidates or request.candidates
        if not given:
            raise DeemEvalError(f"{request.id}: no candidate classes; this split has no 'candidates' vocabulary, "
                                "pass -M candidates=a,b,c or -M candidates_file=classes.txt")
        unique: dict[str, str] = {}                 # normalised name -> first spelling seen
        for name in (*given, request.subject):
            unique.setdefault(_norm(name), name)
        return list(unique.values()), list(unique).index(_norm(request.subject))

    def scores(self, batch: Sequence[Request]) -> list[tuple[Any, int]]:
        """Per request: logit_scale * cosine similarities over its candidates, and the subject's index."""
        image = self.image_embeddings(batch)
        scale = float(self.model.logit_scale.detach().exp()) if hasattr(self.model, "logit_scale") else 100.0
        out = []
        for i, request in enumerate(batch):
            names, subject_index = self.candidates_for(request)
            sims = self.text_embeddings(names) @ image[i]
            out.append((sims * scale, subject_index))
        return out

    def generate(self, batch: Sequence[Request]) -> list[str]:
        answers = []
        for request, (logits, subject) in zip(batch, self.scores(batch)):
            # an exact tie with another class counts as first
            answers.append("yes" if float(logits[subject]) >= float(logits.max()) else "no")
            if self.scoring == "both":             # yes_probability for the same batch reuses these scores
                self._probs[request.id] = self._probability(logits, subject)
        return answers

    def yes_probability(self, batch: Sequence[Request]) -> list[float]:
        if batch and all(r.id in self._probs for r in batch):
            return [self._probs.pop(r.id) for r in batch]
        return [self._probability(logits, subject) for logits, subject in self.scores(batch)]

    def _probability(self, logits: Any, subject: int) -> float:
        return float(self._torch.softmax(logits, dim=-1)[subject])
