"""Phase 2 of train-micro: micro-SD, a pixel-space text-conditioned diffusion model (the SD-2.1 role).

A diffusers `UNet2DConditionModel` on 32 px images in [-1, 1] (no VAE: at this size pixel space is cheaper
than training an autoencoder), DDPM noise schedule, epsilon prediction, conditioned on micro-CLIP's frozen
text-token states; 10 % of captions are dropped to the empty caption so samples can use classifier-free
guidance. Saved like a diffusers pipeline (`unet/`, `scheduler/`) plus `micro_sd.json`; the CSR teacher
loads it with `DiffusionConfig(source=DIR)`.

Teacher checks (written to the phase's `teacher_checks.json`):
- the denoising loss on held-out training-stream pictures with the right caption vs a wrong one (another
  category's caption) at the same noise and timesteps, over DEEM's CSR range 200..799. If the condition
  did not matter the two would be equal and CSR would have no signal to give;
- a grid of DDIM samples from captions (PNG).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deem_eval.core.rng import derive_rng, derive_torch_generator

from .clip import MicroClip, tokenize
from .loop import LoopConfig, run_loop, seeded
from .world import World

MARKER = "micro_sd.json"
UNET = {"sample_size": 32, "in_channels": 3, "out_channels": 3, "layers_per_block": 1, "block_out_channels": [32, 64, 64],
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "cross_attention_dim": 128,
            "attention_head_dim": 8, "norm_num_groups": 8}
SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
                 "prediction_type": "epsilon", "clip_sample": False}
IMAGE_PX = 32


def teacher_pixels(world: World, indices: np.ndarray) -> torch.Tensor:
    """[-1, 1] images at the teacher's size, by the same preprocessing CSR applies (to_pixels)."""
    from ..model.images import to_pixels
    from .world import image

    return to_pixels([image(world, int(i)) for i in indices], IMAGE_PX, min_side=1, value_range=(-1.0, 1.0))


@torch.no_grad()
def caption_states(clip: MicroClip, tokenizer, captions: list[str]) -> torch.Tensor:
    ids, mask = tokenize(tokenizer, captions, clip.config.max_text_tokens)
    return clip.text_states(ids, mask)


def build_unet(seed: int, cross_attention_dim: int):
    # (the concrete modules: diffusers' top-level names type-check as its torch-less placeholder classes)
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

    return seeded(lambda: UNet2DConditionModel(**{**UNET, "cross_attention_dim": cross_attention_dim}), seed, "micro-sd")


def train_sd(directory: Path, world: World, clip: MicroClip, tokenizer, *, loop: LoopConfig, batch_size: int,
             seed: int, progress: bool = True):
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    unet = build_unet(seed, clip.config.text_width)
    scheduler = DDPMScheduler(**SCHEDULER)
    clip.requires_grad_(False)
    train_idx = held_out_split(world)[0]
    captions = [it.caption for it in world.items]
    states_cache: dict[str, torch.Tensor] = {}
    empty = caption_states(clip, tokenizer, [""])[0]

    def states_for(texts: list[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in states_cache]
        if missing:
            for t, s in zip(missing, caption_states(clip, tokenizer, missing)):
                states_cache[t] = s
        return _stack_padded([states_cache[t] for t in texts], empty)

    def step(step: int) -> dict[str, Any]:
        rng = derive_rng(seed, "micro-sd", "batch", step)
        idx = train_idx[rng.choice(len(train_idx), size=batch_size, replace=False)]
        gen = derive_torch_generator(seed, "micro-sd", "noise", step)
        x0 = teacher_pixels(world, idx)
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=gen)
        drop = torch.rand(batch_size, generator=gen) < 0.1
        texts = ["" if d else captions[int(i)] for i, d in zip(idx, drop)]
        cond = states_for(texts)
        pred = unet(scheduler.add_noise(x0, noise, t), t, encoder_hidden_states=cond).sample
        return {"loss": F.mse_loss(pred, noise)}

    history = run_loop(directory, unet, loop, step, what="micro-SD", progress=progress)
    unet.requires_grad_(False)
    return unet, scheduler, history


def _stack_padded(states: list[torch.Tensor], pad: torch.Tensor) -> torch.Tensor:
    width = max(s.shape[0] for s in states)
    out = pad[:1].expand(len(states), width, -1).clone()
    for i, s in enumerate(states):
        out[i, : s.shape[0]] = s
    return out


def held_out_split(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Single-object pictures: the last 5 % are kept out of micro-SD training for the teacher checks."""
    singles = world.indices("single")
    cut = int(len(singles) * 0.95)
    held = singles[cut:]
    train = np.setdiff1d(np.arange(len(world)), held)
    return train, held


def save_sd(directory: Path, unet, scheduler, provenance: dict[str, Any]) -> Path:
    from deem_eval.core.atomic import atomic_write_text

    unet.save_pretrained(str(directory / "unet"))
    scheduler.save_pretrained(str(directory / "scheduler"))
    atomic_write_text(directory / MARKER, json.dumps({"format": 1, "image_size": IMAGE_PX, **provenance},
                                                     indent=1, sort_keys=True) + "\n")
    return directory


@torch.no_grad()
def conditioning_gap(unet, scheduler, clip: MicroClip, tokenizer, world: World, *, seed: int,
                     repeats: int = 4) -> dict[str, float]:
    """Mean denoising MSE on held-out pictures with the right caption, a wrong category's caption and the
    empty caption, same noise and timesteps (squeezed to 200..799 as CSR draws them)."""
    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES

    from ..model.tiny_tokenizer import article
    from ..training.diffusion import squeeze_timesteps

    held = held_out_split(world)[1]
    right: list[torch.Tensor] = []
    wrong: list[torch.Tensor] = []
    empty: list[torch.Tensor] = []
    for r in range(repeats):
        gen = derive_torch_generator(seed, "micro-sd", "gap", r)
        x0 = teacher_pixels(world, held)
        noise = torch.randn(x0.shape, generator=gen)
        t = squeeze_timesteps(torch.randint(0, 1000, (len(held),), generator=gen), 1000, 200, 799)
        noisy = scheduler.add_noise(x0, noise, t)
        rng = derive_rng(seed, "micro-sd", "gap-wrong", r)
        mains = [world.items[int(i)].main for i in held]
        others = [[c for c in CATEGORY_NAMES if c != m][int(rng.integers(len(CATEGORY_NAMES) - 1))] for m in mains]
        for texts, sink in (([world.items[int(i)].caption for i in held], right),
                            ([f"a photo of {article(o)} {o}." for o in others], wrong), ([""] * len(held), empty)):
            pred = unet(noisy, t, encoder_hidden_states=caption_states(clip, tokenizer, texts)).sample
            sink.append(F.mse_loss(pred, noise, reduction="none").flatten(1).mean(1))
    r_, w_, e_ = (torch.cat(v) for v in (right, wrong, empty))
    diff = w_ - r_
    return {"right_caption_mse": float(r_.mean()), "wrong_caption_mse": float(w_.mean()),
            "empty_caption_mse": float(e_.mean()), "gap": float(diff.mean()),
            "gap_se": float(diff.std() / len(diff) ** 0.5), "relative_gap": float(diff.mean() / r_.mean()),
            "share_right_better": float((diff > 0).float().mean()), "n": len(diff)}


@torch.no_grad()
def sample_grid(unet, scheduler_config: dict, clip: MicroClip, tokenizer, captions: list[str], path: Path, *,
                seed: int, per_caption: int = 4, steps: int = 50, guidance: float = 3.0, upscale: int = 3) -> None:
    """DDIM samples with classifier-free guidance: one row per caption, captions written on the left."""
    from diffusers import DDIMScheduler
    from PIL import Image, ImageDraw

    sched = DDIMScheduler.from_config(scheduler_config)
    sched.set_timesteps(steps)
    n = len(captions) * per_caption
    texts = [c for c in captions for _ in range(per_caption)]
    cond, uncond = caption_states(clip, tokenizer, texts), caption_states(clip, tokenizer, [""] * n)
    width = max(cond.shape[1], uncond.shape[1])
    cond, uncond = (F.pad(c, (0, 0, 0, width - c.shape[1])) for c in (cond, uncond))
    gen = derive_torch_generator(seed, "micro-sd", "samples")
    x = torch.randn((n, 3, IMAGE_PX, IMAGE_PX), generator=gen)
    for t in sched.timesteps:
        eps = unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([uncond, cond])).sample
        e_u, e_c = eps.chunk(2)
        x = sched.step(e_u + guidance * (e_c - e_u), t, x).prev_sample
    imgs = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    cell, label_w = IMAGE_PX * upscale, 240
    grid = Image.new("RGB", (label_w + per_caption * (cell + 4), len(captions) * (cell + 4)), "white")
    draw = ImageDraw.Draw(grid)
    for row, caption in enumerate(captions):
        draw.text((4, row * (cell + 4) + cell // 2 - 6), caption, fill="black")
        for col in range(per_caption):
            tile = Image.fromarray(imgs[row * per_caption + col]).resize((cell, cell), Image.Resampling.NEAREST)
            grid.paste(tile, (label_w + col * (cell + 4), row * (cell + 4)))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
