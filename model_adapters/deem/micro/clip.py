"""micro-CLIP: the project's ConvNeXt image encoder and a small text transformer, trained contrastively.

It plays the role CLIP ConvNeXt-B plays for DEEM: DEEM-micro's trunk starts from its image tower, and
micro-SD is conditioned on its text tower's token states (as Stable Diffusion is on CLIP's). Captions that
are the same text are positives of each other (a batch of 128 over 32 categories repeats captions), so the
loss is a multi-positive InfoNCE in both directions rather than CLIP's one-hot one.

Saved as a directory: `micro_clip.json` (config + provenance), `model.safetensors`, `tokenizer/`. The
`clip` adapter loads it with `-M path=DIR` (or `-M path=micro-clip` for the shipped copy).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deem_eval.core.errors import DeemEvalError

from ..model.config import CLIP_MEAN, CLIP_STD, ConvNeXtConfig, to_jsonable
from ..model.convnext import ConvNeXt

CONFIG_FILE = "micro_clip.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = 1


@dataclass(frozen=True)
class MicroClipConfig:
    convnext: ConvNeXtConfig = field(default_factory=lambda: ConvNeXtConfig(
        depths=(1, 1, 2, 1), dims=(24, 48, 96, 192), stem_stride=4, layer_scale_init=1e-6))
    image_size: int = 64
    embed_dim: int = 128
    vocab_size: int = 1024
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    max_text_tokens: int = 32

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MicroClipConfig:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.get("convnext", {}).items()}
        return cls(**{**data, "convnext": ConvNeXtConfig(**fields)})


class TextTower(nn.Module):
    """Token + learned position embeddings -> pre-norm transformer -> per-token states; pooled at the EOS."""

    def __init__(self, c: MicroClipConfig):
        super().__init__()
        self.token_embed = nn.Embedding(c.vocab_size, c.text_width)
        self.pos_embed = nn.Parameter(torch.zeros(c.max_text_tokens, c.text_width))
        layer = nn.TransformerEncoderLayer(c.text_width, c.text_heads, 4 * c.text_width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.text_width)
        nn.init.normal_(self.pos_embed, std=0.01)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.token_embed(input_ids) + self.pos_embed[: input_ids.shape[1]]
        return self.norm(self.blocks(x, src_key_padding_mask=mask == 0))


class MicroClip(nn.Module):
    pixel_mean: torch.Tensor  # (non-persistent) buffers
    pixel_std: torch.Tensor

    def __init__(self, config: MicroClipConfig):
        super().__init__()
        self.config = config
        self.trunk = ConvNeXt(config.convnext)
        self.image_proj = nn.Linear(config.convnext.dims[-1], config.embed_dim)
        self.text = TextTower(config)
        self.text_proj = nn.Linear(config.text_width, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.register_buffer("pixel_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, S, S] in [0, 1] -> unit embeddings [B, embed_dim]."""
        _, pooled = self.trunk((pixels - self.pixel_mean) / self.pixel_std)
        return F.normalize(self.image_proj(pooled), dim=-1)

    def text_states(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-token states [B, L, text_width]: micro-SD's condition."""
        return self.text(input_ids, mask)

    def encode_text(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states = self.text(input_ids, mask)
        last = mask.long().sum(1) - 1                      # the EOS of each right-padded row
        pooled = states[torch.arange(states.shape[0], device=states.device), last]
        return F.normalize(self.text_proj(pooled), dim=-1)


def tokenize(tokenizer, texts: list[str], max_tokens: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """BOS + text + EOS rows, right-padded with the pad id, cut to `max_tokens` (EOS kept)."""
    rows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False).input_ids[: max_tokens - 2]
        rows.append([tokenizer.bos_token_id, *ids, tokenizer.eos_token_id])
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, groups: torch.Tensor
                     ) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE: rows with the same `groups` id (same caption) are all positives."""
    logits = scale.exp().clamp(max=100) * image @ text.T
    target = (groups[:, None] == groups[None, :]).float()
    target = target / target.sum(1, keepdim=True)
    return 0.5 * (-(target * logits.log_softmax(1)).sum(1).mean() - (target * logits.log_softmax(0)).sum(0).mean())


# ---- persistence ----------------------------------------------------------------------------------------

def save_micro_clip(model: MicroClip, tokenizer, directory: Path, provenance: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    from deem_eval.core.atomic import atomic_write_text

    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": str(FORMAT)})
    tokenizer.save_pretrained(str(directory / "tokenizer"))
    meta = {"format": FORMAT, "config": to_jsonable(asdict(model.config)), **provenance}
    atomic_write_text(directory / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return directory


def is_micro_clip(directory: Path) -> bool:
    return (Path(directory) / CONFIG_FILE).is_file()


def load_micro_clip(directory: Path, device: str | torch.device = "cpu") -> tuple[MicroClip, Any]:
    """(model in eval mode, tokenizer); errors name the file and how to rebuild it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    directory = Path(directory)
    try:
        meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        model = MicroClip(MicroClipConfig.from_dict(meta["config"]))
        state = load_file(str(directory / WEIGHTS_FILE))
        model.load_state_dict(state, strict=True)
        tokenizer = AutoTokenizer.from_pretrained(str(directory / "tokenizer"))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        raise DeemEvalError(f"{directory}: not a readable micro-CLIP checkpoint ({exc}); rebuild it with "
                            "`deem-eval train-micro --out DIR` (it is written to DIR/micro-clip)") from None
    return model.to(device).eval(), tokenizer


# ---- the `clip` adapter's view -----------------------------------------------------------------------------

class DualEncoder(nn.Module):
    """micro-CLIP behind the two calls the `clip` adapter makes of a transformers CLIP model."""

    def __init__(self, model: MicroClip):
        super().__init__()
        self.inner = model
        self.logit_scale = model.logit_scale

    @property
    def dtype(self) -> torch.dtype:
        return self.logit_scale.dtype

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.inner.encode_text(input_ids, attention_mask)

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.inner.encode_image(pixel_values)


class Processor:
    """Tokenizer (BOS + text + EOS, right-padded) and image preprocessing (square bicubic resize, [0, 1])."""

    def __init__(self, tokenizer, config: MicroClipConfig):
        self._tokenizer, self.config = tokenizer, config

    def tokenizer(self, texts: list[str], **_: Any):
        from transformers import BatchEncoding

        ids, mask = tokenize(self._tokenizer, list(texts), self.config.max_text_tokens)
        return BatchEncoding({"input_ids": ids, "attention_mask": mask})

    def __call__(self, *, images: list[Any], return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        from ..model.images import to_pixels

        return {"pixel_values": to_pixels(images, self.config.image_size, min_side=1)}


def shipped_micro_clip() -> Path:
    from ..model.checkpoint import WEIGHTS_DIR

    return WEIGHTS_DIR / "micro-clip"
