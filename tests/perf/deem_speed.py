"""DEEM speed: the CSR training step and `deem` inference throughput.

    python tests/perf/deem_speed.py                       # deem-tiny on CPU
    python tests/perf/deem_speed.py --real-size           # deem-7b shapes, random bf16 weights, CUDA
    python tests/perf/deem_speed.py --real-size --llm-layers 8   # the same with a shorter LLM (stated)

1. deem-tiny (CPU): CSR step time (forward + backward + AdamW step over the encoder side, diffusion loss
   only and with captions) per step and per image; inference samples/s of beam-3 generation and of logit
   scoring at batch 1 vs batch 8, printed with the batch-8/batch-1 ratio. Random tiny models rarely emit
   EOS, and every generation is forced to the full --new-tokens (default 10, DEEM's limit) so batch sizes
   compare like for like. torch runs on --threads CPU threads (default 1: with matrices this small, more
   threads only add synchronisation, and on a shared machine their spin-waiting dominates).
2. --real-size (needs a CUDA GPU): the deem-7b configuration - CLIP ConvNeXt-B at 256 px, 77-query resampler,
   Vicuna-7B shapes with deformable cross-attention every 4th layer, Stable Diffusion 2.1-base UNet + VAE
   shapes at 512 px - with seeded random weights in bf16 (random weights do not change the cost): bf16
   inference samples/s at batch 1 vs --big-batch, and the CSR step time per image (bf16 autocast, fp32
   trained weights) with and without captions; peak GPU memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

# Stable Diffusion 2.1-base shapes (its unet/ and vae/ config.json), for random-weight timing only.
SD21_UNET = {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
                 "block_out_channels": [320, 640, 1280, 1280],
                 "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                   "DownBlock2D"],
                 "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                 "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024, "use_linear_projection": True,
                 "norm_num_groups": 32}
SD21_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512],
                "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
                "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 512}


def _images(n: int, size: int):
    from PIL import Image

    from deem_eval.core.rng import derive_rng

    return [Image.fromarray(derive_rng(0, "perf-image", i).integers(0, 256, (size, size, 3), dtype="uint8"))
            for i in range(n)]


QUESTIONS = ["Is there a dog in the image?", "Is tench the main object in this image? Please answer yes or no.",
             "Is there a traffic light in the image?", "Is there a cup in the image?"]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def inference(model, device, dtype, batch: int, *, repeats: int, new_tokens: int) -> dict:
    """samples/s of beam-3 generation and of one-pass logit scoring at one batch size."""
    from deem_eval.model_adapters.deem.model.images import to_pixels

    images = _images(batch, 96)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(batch)]
    v = model.config.visual

    def inputs():
        pixels = to_pixels(images, v.image_size, min_side=v.stride).to(device, dtype)
        ids, mask = model.tokenize_prompts(questions)
        return pixels, ids, mask

    model.generate(*inputs(), num_beams=3, max_new_tokens=new_tokens, min_new_tokens=new_tokens)   # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        model.generate(*inputs(), num_beams=3, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    _sync(device)
    gen = repeats * batch / (time.perf_counter() - t0)
    model.next_token_logits(*inputs())
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        model.next_token_logits(*inputs())
    _sync(device)
    logits = repeats * batch / (time.perf_counter() - t0)
    return {"generate": gen, "logits": logits}


def csr_step_time(target, teacher, device, *, batch: int, steps: int, captions: bool, autocast: bool) -> float:
    """Seconds per CSR step (forward, backward, AdamW) on one fixed batch."""
    import contextlib

    import torch

    from deem_eval.core.rng import derive_torch_generator
    from deem_eval.model_adapters.deem.training.csr import csr_losses

    images = _images(batch, 96)
    caps = [f"a photo of a dog on a beach, number {i}" for i in range(batch)] if captions else [None] * batch
    params = [p for _, p in target.trainable()]
    opt = torch.optim.AdamW(params, lr=1e-5)
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if autocast else contextlib.nullcontext
    times = []
    for step in range(steps + 1):                        # step 0 is warm-up
        _sync(device)
        t0 = time.perf_counter()
        gen = derive_torch_generator(0, "perf", step, device="cuda" if device.type == "cuda" else "cpu")
        with ctx():
            losses = csr_losses(target, teacher, images, caps, gen, weight=5.0)
        losses.total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sum(times[1:]) / steps


def report_inference(title: str, small: dict, big: dict, big_batch: int) -> None:
    print(f"\n{title}")
    print(f"  {'':10} {'batch 1':>12} {f'batch {big_batch}':>12} {'ratio':>8}")
    for key in ("generate", "logits"):
        print(f"  {key:10} {small[key]:10.2f}/s {big[key]:10.2f}/s {big[key] / small[key]:7.2f}x")


def report_csr_steps(target, teacher, device, args, *, autocast: bool) -> None:
    """CSR step time without and with captions, per step and per image."""
    for captions in (False, True):
        s = csr_step_time(target, teacher, device, batch=args.csr_batch, steps=args.csr_steps, captions=captions,
                          autocast=autocast)
        label = "diffusion + captions" if captions else "diffusion only"
        print(f"  {label:22} {s * 1000:8.1f} ms/step  {s * 1000 / args.csr_batch:7.1f} ms/image")


def tiny(args) -> None:
    import torch

    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
    from deem_eval.model_adapters.deem.training.csr import DeemCsrTarget
    from deem_eval.model_adapters.deem.training.diffusion import build_teacher

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print(f"deem-tiny on CPU, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    model = build_model(DEEM_TINY, seed=0)
    small = inference(model, device, torch.float32, 1, repeats=args.repeats * 8, new_tokens=args.new_tokens)
    big = inference(model, device, torch.float32, 8, repeats=args.repeats, new_tokens=args.new_tokens)
    report_inference(f"inference (beam 3, {args.new_tokens} new tokens; logits = one forward pass)", small, big, 8)
    teacher = build_teacher(DEEM_TINY.diffusion, seed=0)
    target = DeemCsrTarget(build_model(DEEM_TINY, seed=0))
    print(f"\nCSR step (batch {args.csr_batch}, encoder + resampler + projections + cross-attention trained)")
    report_csr_steps(target, teacher, device, args, autocast=False)


def real_size(args) -> None:
    import torch

    from deem_eval.model_adapters.deem.model.config import DiffusionConfig
    from deem_eval.model_adapters.deem.model.presets import DEEM_7B, SD_SCHEDULER, build_model
    from deem_eval.model_adapters.deem.training.csr import DeemCsrTarget
    from deem_eval.model_adapters.deem.training.diffusion import build_teacher

    dtype = torch.bfloat16
    llm = dataclasses.replace(DEEM_7B.llm, num_layers=args.llm_layers)
    config = DEEM_7B.replace(llm=llm, llm_source="random", tokenizer_source="tiny", encoder_source="random",
                             diffusion=DiffusionConfig(source="random", unet=SD21_UNET, vae=SD21_VAE,
                                                       scheduler=SD_SCHEDULER))
    if args.smoke:      # the same code path (bf16, autocast, random build) at toy sizes on the CPU
        device = torch.device("cpu")
        config = smoke_config(config)
        print("--smoke: the --real-size code path at toy sizes on CPU (timings meaningless)")
    elif not torch.cuda.is_available():
        sys.exit("--real-size needs a CUDA GPU (or --smoke to exercise the code path on CPU)")
    else:
        device = torch.device("cuda")
        layers = "" if args.llm_layers == 32 else f" ({args.llm_layers} of 32 LLM layers)"
        print(f"deem-7b shapes{layers}, random weights, bf16, {torch.cuda.get_device_name()}")
    model = build_model(config, seed=0, device=device, dtype=dtype)
    _reset_peak(device)
    small = inference(model, device, dtype, 1, repeats=args.repeats, new_tokens=args.new_tokens)
    big = inference(model, device, dtype, args.big_batch, repeats=args.repeats, new_tokens=args.new_tokens)
    report_inference(f"bf16 inference (beam 3, {args.new_tokens} new tokens)", small, big, args.big_batch)
    _peak(device)
    for module in (model.visual, model.xattn):
        module.float()
    model.image_start.data = model.image_start.data.float()
    teacher = build_teacher(config.diffusion, seed=0, device=device, dtype=dtype)
    target = DeemCsrTarget(model)
    _reset_peak(device)
    print(f"\nCSR step (batch {args.csr_batch}, bf16 autocast, trained weights fp32, SD-2.1-base UNet at 512 px)")
    report_csr_steps(target, teacher, device, args, autocast=True)
    _peak(device)


def smoke_config(config):
    from deem_eval.model_adapters.deem.model.config import ConvNeXtConfig
    from deem_eval.model_adapters.deem.model.presets import TINY_UNET, TINY_VAE

    visual = dataclasses.replace(config.visual, convnext=ConvNeXtConfig(depths=(1, 1, 1, 1), dims=(16, 32, 48, 64)),
                                 image_size=64, feature_dim=64, num_queries=8, width=32, layers=2, heads=2,
                                 mlp_dim=64, pos_grid=4)
    llm = dataclasses.replace(config.llm, hidden_size=64, intermediate_size=128, num_layers=4, num_heads=4,
                              num_kv_heads=4)
    unet = dict(TINY_UNET, cross_attention_dim=32)
    diffusion = dataclasses.replace(config.diffusion, image_size=32, condition_dim=32, unet=unet, vae=TINY_VAE)
    return config.replace(visual=visual, llm=llm, diffusion=diffusion,
                          xattn=dataclasses.replace(config.xattn, heads=4, points=2))


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak(device) -> None:
    import torch

    if device.type == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-size", action="store_true", help="deem-7b shapes on CUDA")
    parser.add_argument("--smoke", action="store_true", help="with --real-size: toy sizes on CPU (code path check)")
    parser.add_argument("--llm-layers", type=int, default=32)
    parser.add_argument("--big-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=10)
    parser.add_argument("--csr-batch", type=int, default=4)
    parser.add_argument("--csr-steps", type=int, default=5)
    args = parser.parse_args()
    real_size(args) if args.real_size else tiny(args)


if __name__ == "__main__":
    main()
