"""Phase 1 of train-micro: micro-CLIP on the training world's image-caption pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from deem_eval.core.rng import derive_rng, derive_torch_generator

from .clip import MicroClip, MicroClipConfig, contrastive_loss, tokenize
from .loop import LoopConfig, run_loop, seeded
from .world import World


def pixels_of(world: World, indices: np.ndarray) -> torch.Tensor:
    """[B, 3, S, S] float in [0, 1], exactly what the adapters' to_pixels gives for these images."""
    return torch.from_numpy(world.pixels[indices]).permute(0, 3, 1, 2).float() / 255.0


def train_clip(directory: Path, world: World, tokenizer, *, config: MicroClipConfig, loop: LoopConfig,
               batch_size: int, seed: int, progress: bool = True) -> tuple[MicroClip, list[dict[str, Any]]]:
    model = seeded(lambda: MicroClip(config), seed, "micro-clip")
    captions = [it.caption for it in world.items]
    caption_ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    groups_all = torch.tensor([caption_ids[c] for c in captions])
    ids_all, mask_all = tokenize(tokenizer, captions, config.max_text_tokens)

    def step(step: int) -> dict[str, Any]:
        rng = derive_rng(seed, "micro-clip", "batch", step)
        idx = rng.choice(len(world), size=batch_size, replace=False)
        pixels = pixels_of(world, idx)
        flip = torch.rand(batch_size, generator=derive_torch_generator(seed, "micro-clip", "flip", step)) < 0.5
        pixels = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
        t = torch.from_numpy(idx)
        width = int(mask_all[t].sum(1).max())
        image = model.encode_image(pixels)
        text = model.encode_text(ids_all[t, :width], mask_all[t, :width])
        loss = contrastive_loss(image, text, model.logit_scale, groups_all[t])
        return {"loss": loss}

    history = run_loop(directory, model, loop, step, what="micro-CLIP", progress=progress)
    return model, history


@torch.no_grad()
def zero_shot_accuracy(model: MicroClip, tokenizer, world: World, names: list[str]) -> float:
    """Share of the world's single-object pictures whose category ranks first among `names` (a sanity
    figure on training-stream images; the benchmark number comes from the `clip` adapter on the mini)."""
    singles = world.indices("single")
    text = model.encode_text(*tokenize(tokenizer, [f"a photo of a {n}." for n in names], model.config.max_text_tokens))
    correct = 0
    for start in range(0, len(singles), 256):
        idx = singles[start:start + 256]
        pred = (model.encode_image(pixels_of(world, idx)) @ text.T).argmax(1)
        correct += sum(names[int(p)] == world.items[int(i)].main for p, i in zip(pred, idx))
    return correct / max(1, len(singles))
