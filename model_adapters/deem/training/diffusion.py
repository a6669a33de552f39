"""The frozen diffusion teacher of CSR: a Stable Diffusion UNet + VAE + DDPM noise schedule.

`DiffusionTeacher.loss(images, condition, generator)` is DEEM's encoder loss: encode the image to latents,
add noise at a timestep drawn uniformly from 0..T-1 and squeezed into [t_min, t_max] the way the official
code does (t = round(t_min + t0 * (t_max - t_min + 1) / T): 200..799 for SD), and return the MSE between
the UNet's prediction - conditioned on the encoder's tokens - and the noise (or v, for v-prediction
UNets). Teacher weights never receive gradients (requires_grad False); the graph still runs through the
UNet, so the condition (and whatever produced it) does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from deem_eval.core.errors import DeemEvalError

from ..model.config import DiffusionConfig

if TYPE_CHECKING:
    # (the concrete modules: diffusers' top-level names type-check as its torch-less placeholder classes)
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel


def squeeze_timesteps(t0: torch.Tensor, total: int, t_min: int, t_max: int) -> torch.Tensor:
    """DEEM's map of uniform timesteps 0..total-1 into [t_min, t_max]: round(t_min + t0 * span / total).
    With SD's 1000 steps this is the official round((t - 500) * 0.6 + 500): 0 -> 200, 999 -> 799."""
    span = t_max - t_min + 1
    return torch.round(t_min + t0.double() * span / total).long().clamp(t_min, t_max)


class DiffusionTeacher(nn.Module):
    """`vae` None: a pixel-space teacher (DEEM-micro's micro-SD), whose "latents" are the images themselves."""

    def __init__(self, unet: UNet2DConditionModel, vae: AutoencoderKL | None, scheduler,
                 config: DiffusionConfig):
        super().__init__()
        width = unet.config["cross_attention_dim"]
        if config.condition_dim <= 0:          # "whatever the UNet takes" (LLaVA + CSR sizes its projection to it)
            config = dataclasses.replace(config, condition_dim=width)
        self.unet, self.vae, self.scheduler, self.config = unet, vae, scheduler, config
        self.requires_grad_(False)
        self.eval()
        if width != config.condition_dim:
            raise DeemEvalError(f"the diffusion UNet's cross-attention width is {width}, but the encoder's condition "
                                f"projection gives {config.condition_dim}")
        t = scheduler.config.num_train_timesteps
        if not 0 <= config.t_min <= config.t_max < t:
            raise DeemEvalError(f"timestep range [{config.t_min}, {config.t_max}] is outside 0..{t - 1}")

    def train(self, mode: bool = True):   # the teacher stays in eval mode (no dropout) even inside training
        return super().train(False)

    def timesteps(self, batch: int, generator: torch.Generator, device) -> torch.Tensor:
        total = self.scheduler.config.num_train_timesteps
        t0 = torch.randint(0, total, (batch,), generator=generator, device=generator.device).to(device)
        return squeeze_timesteps(t0, total, self.config.t_min, self.config.t_max)

    @torch.no_grad()
    def latents(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """images [B, 3, S, S] in [-1, 1] -> scaled latents (a sample of the VAE posterior)."""
        if self.vae is None:
            return images.to(next(self.unet.parameters()).dtype)
        vae_dtype = next(self.vae.parameters()).dtype
        encoded = self.vae.encode(images.to(vae_dtype))
        if isinstance(encoded, tuple):
            raise TypeError("AutoencoderKL.encode returned a tuple although return_dict is True")
        dist = encoded.latent_dist
        noise = torch.randn(dist.mean.shape, generator=generator, device=generator.device,
                            dtype=torch.float32).to(dist.mean.device, dist.mean.dtype)
        return (dist.mean + dist.std * noise) * self.vae.config["scaling_factor"]

    def loss(self, images: torch.Tensor, condition: torch.Tensor, generator: torch.Generator, *,
             mmfs=None, levels: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Per-sample noise-prediction MSE [B] (un-weighted), differentiable w.r.t. `condition` (and, with an
        attached MMFSNet `mmfs`, w.r.t. the encoder's `levels` it injects into the UNet)."""
        latents = self.latents(images, generator)
        b = latents.shape[0]
        noise = torch.randn(latents.shape, generator=generator, device=generator.device,
                            dtype=torch.float32).to(latents.device, latents.dtype)
        t = self.timesteps(b, generator, latents.device)
        noisy = self.scheduler.add_noise(latents, noise, t)
        kind = self.scheduler.config.prediction_type
        if kind == "epsilon":
            target = noise
        elif kind == "v_prediction":
            target = self.scheduler.get_velocity(latents, noise, t)
        else:
            raise DeemEvalError(f"unsupported diffusion prediction type {kind!r}")
        unet_dtype = next(self.unet.parameters()).dtype
        import contextlib

        bound = mmfs.bound(levels) if mmfs is not None and levels is not None else contextlib.nullcontext()
        with bound:
            pred = self.unet(noisy.to(unet_dtype), t, encoder_hidden_states=condition.to(unet_dtype)).sample
        return F.mse_loss(pred.float(), target.float(), reduction="none").flatten(1).mean(1)


def build_teacher(config: DiffusionConfig, *, seed: int = 0, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32, components: Path | None = None,
                  download: bool = False) -> DiffusionTeacher:
    """"random": the config's small UNet/VAE with seeded weights; otherwise a diffusers checkpoint
    (directory with unet/, vae/, scheduler/, or "hub:org/name")."""
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    from ..model.init import init_generic, move_

    vae: AutoencoderKL | None

    if config.source == "random":
        if not (config.unet and config.vae and config.scheduler):
            raise DeemEvalError("a random diffusion teacher needs unet, vae and scheduler configs")
        unet, vae = UNet2DConditionModel(**config.unet), AutoencoderKL(**config.vae)
        scheduler = DDPMScheduler(**config.scheduler)
        init_generic(unet, seed, "diffusion.unet")
        init_generic(vae, seed, "diffusion.vae")
    else:
        from ..model.presets import resolve_source

        path = resolve_source("diffusion", config.source, components=components, download=download)
        if path is None:
            repo = config.source.removeprefix("hub:")
            raise DeemEvalError(f"diffusion teacher {repo} is not available locally. Fetch it with\n"
                                f"  huggingface-cli download {repo} --include 'unet/*' --include 'vae/*' "
                                "--include 'scheduler/*'\nor pass --download.")
        unet = UNet2DConditionModel.from_pretrained(str(path), subfolder="unet")
        # no vae/ folder: a pixel-space teacher (micro-SD)
        vae = AutoencoderKL.from_pretrained(str(path), subfolder="vae") if (Path(path) / "vae").is_dir() else None
        scheduler = DDPMScheduler.from_pretrained(str(path), subfolder="scheduler")
    move_(unet, device=device)
    if vae is not None:
        move_(vae, device=device)                # the VAE encoder runs in fp32 (as DEEM does)
    if dtype != torch.float32:
        move_(unet, dtype=dtype)
    return DiffusionTeacher(unet, vae, scheduler, config)


def diffusion_config_for(spec: str) -> DiffusionConfig:
    """A teacher config from a CLI spec: "sd-2.1-base", "random-tiny", a directory, or "hub:org/name"
    (condition width: whatever that UNet takes)."""
    from ..model.presets import DEEM_TINY

    if spec == "random-tiny":
        return DEEM_TINY.diffusion
    if spec in ("sd-2.1-base", "sd21", "sd-2.1"):
        return DiffusionConfig(condition_dim=0)
    return DiffusionConfig(source=spec if spec.startswith("hub:") else str(Path(spec).expanduser()),
                           condition_dim=0)
