"""Presets (`deem-tiny`, `deem-7b`) and building a DeemModel from a config.

`deem-tiny` is all random weights (seeded) and a locally trained tokenizer: it runs on a CPU in seconds
and exists for tests, demos and the pipeline's plumbing. `deem-7b` is the paper's configuration, built
from public component checkpoints (CLIP ConvNeXt-B, Vicuna-7B v1.5; Stable Diffusion 2.1-base for CSR
training only). DEEM's own trained weights were never published, so the adapters, resampler and
cross-attention of a component build are untrained until `deem-eval align` (or a checkpoint) fills them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from deem_eval.core.errors import DeemEvalError, did_you_mean

from .config import (
    ConvNeXtConfig,
    DeemConfig,
    DiffusionConfig,
    LlmConfig,
    VisualConfig,
    XAttnConfig,
    config_differences,
)

TINY_UNET = {"sample_size": 16, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
                 "block_out_channels": [16, 32], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                 "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32,
                 "attention_head_dim": 8, "norm_num_groups": 8}
TINY_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [8, 16],
                "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
                "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "layers_per_block": 1, "norm_num_groups": 8,
                "sample_size": 32}
SD_SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                    "prediction_type": "epsilon", "clip_sample": False, "steps_offset": 1}

DEEM_TINY = DeemConfig(
    name="deem-tiny",
    visual=VisualConfig(convnext=ConvNeXtConfig(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), stem_stride=2,
                                                layer_scale_init=0.5),
                        image_size=32, feature_dim=32, perceiver_level=2, xattn_levels=(1, 2, 3),
                        mmfs_levels=(0, 1, 2, 3), pos_grid=4,
                        num_queries=8, width=32, layers=2, heads=2, cross_every=1, mlp_dim=64, qk_norm=True),
    llm=LlmConfig(vocab_size=1024, hidden_size=64, intermediate_size=128, num_layers=4, num_heads=4,
                  num_kv_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5, init_std=0.3),
    xattn=XAttnConfig(every=2, heads=2, points=4, offset_init=3.0, base_level=2),
    diffusion=DiffusionConfig(source="random", image_size=32, condition_dim=32, unet=TINY_UNET, vae=TINY_VAE,
                              scheduler=SD_SCHEDULER),
    llm_source="random", tokenizer_source="tiny", encoder_source="random", max_text_tokens=64,
)

DEEM_7B = DeemConfig(name="deem-7b")   # every default is the paper's configuration

#: DEEM-micro: the paper's architecture at a size a 2-core CPU trains in minutes (`deem-eval train-micro`).
#: Its components are the project's own: micro-CLIP's ConvNeXt trunk, the micro tokenizer, a small Llama
#: pretrained on the training world's text, and micro-SD (a pixel-space UNet) as the CSR teacher. "micro*"
#: sources are filled by train-micro; a shipped checkpoint is "full" and never rebuilds them.
DEEM_MICRO = DeemConfig(
    name="deem-micro",
    visual=VisualConfig(convnext=ConvNeXtConfig(depths=(1, 1, 2, 1), dims=(24, 48, 96, 192), stem_stride=4,
                                                layer_scale_init=1e-6),
                        image_size=64, feature_dim=96, perceiver_level=2, xattn_levels=(1, 2, 3),
                        mmfs_levels=(0, 1, 2, 3), pos_grid=4, num_queries=8, width=96, layers=2, heads=4,
                        cross_every=1, mlp_dim=192, qk_norm=True),
    llm=LlmConfig(vocab_size=768, hidden_size=128, intermediate_size=256, num_layers=4, num_heads=4,
                  num_kv_heads=4, max_position_embeddings=256, rms_norm_eps=1e-5, init_std=0.02),
    xattn=XAttnConfig(every=2, heads=4, points=4, offset_init=1.0, base_level=2),
    diffusion=DiffusionConfig(source="micro-sd", image_size=32, condition_dim=128, t_min=200, t_max=799, weight=5.0),
    llm_source="micro", tokenizer_source="micro", encoder_source="micro-clip", max_text_tokens=96,
)
#: The same model trained without CSR (the paper's DEEM*): only the weights differ.
DEEM_MICRO_NOCSR = DEEM_MICRO.replace(name="deem-micro-nocsr")

PRESETS: dict[str, DeemConfig] = {c.name: c for c in (DEEM_TINY, DEEM_7B, DEEM_MICRO, DEEM_MICRO_NOCSR)}
#: Built-in sources that are not downloaded: seeded random weights, or parts train-micro supplies.
LOCAL_SOURCES = ("random", "tiny", "micro", "micro-clip", "micro-sd")


def get_preset(name: str) -> DeemConfig:
    if name not in PRESETS:
        raise did_you_mean(name, PRESETS, "DEEM preset")
    return PRESETS[name]


# ---- component checkpoints ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Component:
    role: str
    repo: str
    patterns: tuple[str, ...]      # files the build needs (empty: the whole repository)


def component_for(role: str, source: str) -> Component:
    patterns = {
        "image encoder": ("open_clip_*",),
        "LLM": (),
        "tokenizer": ("tokenizer*", "special_tokens_map.json", "*.model"),
        "diffusion": ("unet/*", "vae/*", "scheduler/*", "model_index.json"),
    }[role]
    return Component(role, source.removeprefix("hub:"), patterns)


def resolve_source(role: str, source: str, *, components: Path | None, download: bool) -> Path | None:
    """A local directory for `source` ("hub:org/name" or a path), or None when it is not available."""
    if not source.startswith("hub:"):
        path = Path(source).expanduser()
        return path if path.exists() else None
    comp = component_for(role, source)
    roots = [components] if components else []
    env = os.environ.get("DEEM_EVAL_COMPONENTS")
    if env:
        roots.append(Path(env))
    for root in roots:
        candidate = Path(root).expanduser() / comp.repo
        if candidate.is_dir():
            return candidate
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(comp.repo, allow_patterns=list(comp.patterns) or None,
                                      local_files_only=not download))
    except Exception:  # noqa: BLE001 - not cached / offline / no such repo: reported together below
        return None


def resolve_components(config: DeemConfig, *, roles: tuple[str, ...], components: Path | None,
                       download: bool) -> dict[str, Path]:
    """Paths for every hub/path source the build needs; a DeemEvalError listing all missing ones."""
    sources = {"image encoder": config.encoder_source, "LLM": config.llm_source,
               "tokenizer": config.tokenizer_source, "diffusion": config.diffusion.source}
    found: dict[str, Path] = {}
    missing: list[tuple[str, str]] = []
    for role in roles:
        source = sources[role]
        if source in LOCAL_SOURCES:
            continue
        if any(src == source for _, src in missing):    # e.g. the tokenizer of a missing LLM: said once
            continue
        path = resolve_source(role, source, components=components, download=download)
        if path is None:
            missing.append((role, source))
        else:
            found[role] = path
    if missing:
        lines = []
        for role, source in missing:
            if source.startswith("hub:"):
                comp = component_for(role, source)
                where = f"{components}/{comp.repo}, " if components else ""
                include = "".join(f" --include '{p}'" for p in comp.patterns)
                lines.append(f"  - {role}: {comp.repo} (looked in {where}the Hugging Face cache). Fetch it with\n"
                             f"      huggingface-cli download {comp.repo}{include}")
            else:
                lines.append(f"  - {role}: {source} does not exist")
        raise DeemEvalError(f"{config.name}: missing component checkpoint(s):\n" + "\n".join(lines) +
                            "\n  or pass -M download=true (adapter) / --download (align) to fetch from the hub, "
                            "or -M components=DIR with DIR/<org>/<name> copies.")
    return found


# ---- building --------------------------------------------------------------------------------------------

def build_tokenizer(config: DeemConfig, paths: dict[str, Path]):
    if config.tokenizer_source == "tiny":
        from .tiny_tokenizer import tiny_tokenizer

        return tiny_tokenizer()
    if config.tokenizer_source == "micro":
        from .tiny_tokenizer import micro_corpus, tiny_tokenizer

        return tiny_tokenizer(1024, micro_corpus())
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(paths["tokenizer"]))


def llama_config(llm: LlmConfig):
    from transformers import LlamaConfig

    # rope_theta: a keyword transformers 4.x declares and 5.x still accepts (into rope_parameters) without
    # declaring it, so it goes through **kwargs
    legacy: dict[str, Any] = {"rope_theta": llm.rope_theta}
    return LlamaConfig(vocab_size=llm.vocab_size, hidden_size=llm.hidden_size,
                       intermediate_size=llm.intermediate_size, num_hidden_layers=llm.num_layers,
                       num_attention_heads=llm.num_heads, num_key_value_heads=llm.num_kv_heads,
                       max_position_embeddings=llm.max_position_embeddings, rms_norm_eps=llm.rms_norm_eps,
                       bos_token_id=llm.bos_token_id, eos_token_id=llm.eos_token_id,
                       pad_token_id=llm.pad_token_id, tie_word_embeddings=False, **legacy)


def _llm_shape(hf_config) -> LlmConfig:
    return LlmConfig(vocab_size=hf_config.vocab_size, hidden_size=hf_config.hidden_size,
                     intermediate_size=hf_config.intermediate_size, num_layers=hf_config.num_hidden_layers,
                     num_heads=hf_config.num_attention_heads,
                     num_kv_heads=getattr(hf_config, "num_key_value_heads", None) or hf_config.num_attention_heads,
                     max_position_embeddings=hf_config.max_position_embeddings, rms_norm_eps=hf_config.rms_norm_eps,
                     rope_theta=float((getattr(hf_config, "rope_parameters", None) or {}).get(
                         "rope_theta", getattr(hf_config, "rope_theta", 10000.0))),
                     bos_token_id=hf_config.bos_token_id, eos_token_id=_first(hf_config.eos_token_id),
                     pad_token_id=hf_config.pad_token_id if hf_config.pad_token_id is not None else 0)


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


def build_llm(config: DeemConfig, paths: dict[str, Path], *, seed: int, device: torch.device, dtype: torch.dtype):
    from transformers import LlamaForCausalLM

    from .init import init_generic, move_

    if config.llm_source in ("random", "micro"):
        with torch.device(device):
            llm = LlamaForCausalLM._from_config(llama_config(config.llm), dtype=dtype)
        # deem-tiny uses a large std so next-token distributions are peaked (near-ties would make beam
        # search fragile to float noise), as the tiny HF test models do
        init_generic(llm, seed, "llm", style="normal", std=config.llm.init_std)
        return llm.eval()
    llm = LlamaForCausalLM.from_pretrained(str(paths["LLM"]), dtype=dtype)
    move_(llm, device)
    # only the shape matters: token ids and rope details are whatever the checkpoint says
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads")
    diffs = [d for d in config_differences({k: getattr(config.llm, k) for k in keys},
                                            {k: getattr(_llm_shape(llm.config), k) for k in keys})]
    if diffs:
        raise DeemEvalError(f"{paths['LLM']}: LLM shape does not match {config.name}: " + "; ".join(diffs))
    return llm.eval()


def build_model(config: DeemConfig, *, seed: int = 0, device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32, components: Path | None = None, download: bool = False,
                tokenizer=None):
    """A DeemModel for `config`: component checkpoints where the config names them, seeded random weights
    elsewhere (always for DEEM's own modules). Evaluation mode, no gradients enabled anywhere.
    `tokenizer` (e.g. a checkpoint's saved copy) replaces the config's tokenizer source."""
    from .convnext import load_open_clip_trunk
    from .deform_attn import DeformableCrossAttention
    from .init import _normal_, init_generic, init_xattn
    from .model import DeemModel, text_vocabulary

    device = torch.device(device)
    roles = ("image encoder", "LLM") if tokenizer is not None else ("image encoder", "LLM", "tokenizer")
    paths = resolve_components(config, roles=roles, components=components, download=download)
    if tokenizer is None:
        tokenizer = build_tokenizer(config, paths)
    base_vocab = text_vocabulary(tokenizer)     # a saved tokenizer already holds the image tokens
    llm = build_llm(config, paths, seed=seed, device=device, dtype=dtype)
    if base_vocab > llm.config.vocab_size:
        raise DeemEvalError(f"{config.name}: tokenizer has {base_vocab} tokens, more than the LLM's vocabulary "
                            f"({llm.config.vocab_size})")
    model = DeemModel(config, llm, tokenizer)
    init_generic(model.visual, seed, "visual")
    with torch.no_grad():
        _normal_(model.visual.resampler.queries, 0.02, seed, "visual.resampler.queries")
        for lin in (model.visual.to_llm, model.visual.to_condition):   # DEEM: N(0, 1e-3), bias 0
            name = "visual.to_llm" if lin is model.visual.to_llm else "visual.to_condition"
            _normal_(lin.weight, 1e-3, seed, f"{name}.weight")
            lin.bias.zero_()
        for i, block in enumerate(model.xattn):
            init_xattn(cast(DeformableCrossAttention, block), seed, f"xattn.{i}", config.xattn.offset_init)
        model.image_start.copy_(llm.get_input_embeddings().weight[:base_vocab].float().mean(0))
        # layer scale of a random trunk is the configured constant (init_generic leaves 1-D params alone)
        for name, p in model.visual.encoder.trunk.named_parameters():
            if name.endswith("gamma"):
                p.fill_(config.visual.convnext.layer_scale_init)
    if "image encoder" in paths:
        load_open_clip_trunk(model.visual.encoder.trunk, paths["image encoder"])
    model.visual.to(device=device, dtype=dtype)
    model.xattn.to(device=device, dtype=dtype)
    model.image_start.data = model.image_start.data.to(device=device, dtype=dtype)
    model.requires_grad_(False)
    return model.eval()
