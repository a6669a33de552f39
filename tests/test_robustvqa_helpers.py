"""Helpers for the RobustVQA tests: ImageNet-style folders and a tiny CLIP with planted embeddings.

The tiny CLIP is a real `CLIPModel` saved with save_pretrained and loaded by the miner with
from_pretrained; its forward passes run. Planting wraps `get_text_features` / `get_image_features`: the
real method runs, then its output is replaced by vectors chosen by the test (prompts are recognised by
decoding their token ids, images by their colour in the preprocessed pixels), so the top wrong class is
known in advance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deem_eval.core.rng import derive_rng

DIM = 16      # projection_dim of tests/hf_tiny.build_tiny_clip
SPECIAL = 6   # planted classes use basis vectors e0..e5; every other prompt lives in dims 6..15
MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])


class SimulatedCrash(RuntimeError):
    pass


def solid_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (36, 30)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def make_folder(root: Path, layout: dict[str, list[tuple[int, int, int]]], *, prefix: str = "img") -> Path:
    """`layout`: class folder -> colours of its images (one PNG each)."""
    for folder, colours in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, colour in enumerate(colours):
            solid_png(root / folder / f"{prefix}{i}.png", colour)
    return root


def basis(i: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = 1.0
    return v


@dataclass
class Planted:
    """Planted text vectors by prompt text and image vectors by colour; counts what was encoded."""

    tokenizer: object
    text: dict[str, np.ndarray]
    images: dict[tuple[int, int, int], np.ndarray]
    images_encoded: int = 0
    image_calls: int = 0
    fail_after_calls: int | None = None
    prompts_seen: list[str] = field(default_factory=list)

    def text_vector(self, prompt: str) -> np.ndarray:
        if prompt in self.text:
            return self.text[prompt]
        rng = derive_rng(0, "planted-text", prompt)
        v = np.zeros(DIM, np.float32)
        v[SPECIAL:] = rng.normal(size=DIM - SPECIAL)
        return v

    def image_vector(self, rgb: np.ndarray) -> np.ndarray:
        colours = list(self.images)
        dist = [float(np.abs(np.array(c) - rgb).sum()) for c in colours]
        best = int(np.argmin(dist))
        assert dist[best] < 12, f"unplanted image colour {rgb}"
        return self.images[colours[best]]


def plant_clip(monkeypatch, planted: Planted) -> Planted:
    import torch
    from transformers import CLIPModel

    real_text = getattr(CLIPModel.get_text_features, "original", CLIPModel.get_text_features)
    real_image = getattr(CLIPModel.get_image_features, "original", CLIPModel.get_image_features)

    def _replace(out, values):
        tensor = torch.tensor(np.stack(values), dtype=torch.float32)
        if hasattr(out, "dim"):
            return tensor.to(out.dtype)
        out.pooler_output = tensor.to(out.pooler_output.dtype)
        return out

    def get_text_features(self, input_ids, attention_mask=None, **kwargs):
        out = real_text(self, input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        prompts = planted.tokenizer.batch_decode(input_ids, skip_special_tokens=True)
        planted.prompts_seen.extend(prompts)
        return _replace(out, [planted.text_vector(p) for p in prompts])

    def get_image_features(self, pixel_values, **kwargs):
        planted.image_calls += 1
        if planted.fail_after_calls is not None and planted.image_calls > planted.fail_after_calls:
            raise SimulatedCrash("simulated crash in the middle of a build")
        out = real_image(self, pixel_values=pixel_values, **kwargs)
        rgb = (pixel_values.float().mean(dim=(2, 3)).cpu().numpy() * STD + MEAN) * 255.0
        planted.images_encoded += len(rgb)
        return _replace(out, [planted.image_vector(c) for c in rgb])

    get_text_features.original = real_text  # type: ignore[attr-defined]  # a second plant wraps the real one
    get_image_features.original = real_image  # type: ignore[attr-defined]
    monkeypatch.setattr(CLIPModel, "get_text_features", get_text_features)
    monkeypatch.setattr(CLIPModel, "get_image_features", get_image_features)
    return planted
