"""GPU suite: the device-side speed numbers in one run of under 8 minutes on one CUDA GPU.

    tests/perf/gpu_suite.sh [--budget-s 460]          # the wrapper: threads set, hard time limit
    python tests/perf/gpu_suite.py [--device cuda] [--budget-s 460] [--only llava,corruptions,deem]
    python tests/perf/gpu_suite.py --quick --device cpu   # the same code paths, toy sizes, on a CPU

1. LLaVA-1.5-7B shapes (Vicuna-7B + CLIP ViT-L/14-336, built by transformers from a LlavaConfig with
   random bf16 weights: nothing is downloaded, random weights cost what trained ones do) on POPE-length
   prompts (576 image tokens + the LLaVA-1.5 POPE prompt, ~611 tokens): batch 1 vs 32, greedy generation
   (forced to --new-tokens) vs one-pass logit scoring; samples/s, peak memory, and the ratio of achieved
   FLOP/s to the GPU's dense bf16 peak (per sample ~8.7 TFLOP at full size: LLM ~8.3, vision ~0.35; the
   script computes it from the built model's shapes). The peak comes from a table keyed by device name,
   else from a measured bf16 matmul.
2. Corruptions on the GPU: `Corruption.batch(images, 3, rngs, device=...)` on 224 px images, images/s for
   every built-in corruption.
3. deem-7b logit scoring (the preset's shapes, seeded random bf16 weights on the device): samples/s at
   batch 1 and 32; skipped with a message when the time budget left or the GPU memory does not allow it.

Goal line: POPE's 9,000 questions in <= 3 minutes with logit scoring, i.e. logits samples/s x 180 s >= 9,000.
Without a CUDA device (and without --device cpu) it prints "no CUDA device: nothing measured" and exits 0.
--quick shrinks every model to a few layers and narrow widths (and the batches) so the code paths can be
smoke-run on a CPU; its timings mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

#: Dense bf16 tensor-core peak, TFLOP/s (no sparsity), by a substring of torch.cuda.get_device_name().
BF16_PEAK_TFLOPS: dict[str, float] = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "GH200": 989.0,
                                      "B200": 2250.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0,
                                      "L40": 181.0, "A10G": 70.0, "A10": 125.0, "L4": 121.0,
                                      "RTX 4090": 165.0, "RTX 3090": 71.0, "V100": 125.0}
POPE_QUESTIONS = 9_000
GOAL_SECONDS = 180.0
# LLaVA-1.5's POPE prompt: "USER: <image>\nIs there a {object} in the image?\nAnswer the question using a
# single word or phrase. ASSISTANT:" is ~35 text tokens around the 576 image tokens.
POPE_TEXT_TOKENS = 35


class Budget:
    """Seconds left of --budget-s; sections ask before starting work they cannot finish."""

    def __init__(self, seconds: float) -> None:
        self.start, self.seconds = time.perf_counter(), seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
    return "n/a (CPU)"


def timed(fn: Callable[[], Any], device: Any, *, min_seconds: float, max_repeats: int) -> float:
    """Seconds per call: one warm-up call, then repeats until `min_seconds` have passed (at most max_repeats)."""
    fn()
    sync(device)
    started, n = time.perf_counter(), 0
    while n < max_repeats and (n == 0 or time.perf_counter() - started < min_seconds):
        fn()
        n += 1
    sync(device)
    return (time.perf_counter() - started) / n


def bf16_peak(device: Any, dtype: Any, quick: bool) -> tuple[float, str]:
    """(peak FLOP/s, where it came from): the table by device name, else a measured square matmul."""
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in sorted(BF16_PEAK_TFLOPS.items(), key=lambda kv: -len(kv[0])):
            if key in name:
                return tflops * 1e12, f"table entry {key!r} for {name!r} (dense bf16)"
    n = 512 if quick or device.type != "cuda" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, min_seconds=0.5, max_repeats=50)
    return 2 * n**3 / seconds, f"measured {n}x{n} {str(dtype).removeprefix('torch.')} matmul on {device.type}"


# --- 1. LLaVA-1.5-7B shapes -----------------------------------------------------------------------------------

def llava_config(quick: bool) -> Any:
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    if quick:
        vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=336, patch_size=14, projection_dim=64)
        text = LlamaConfig(vocab_size=32064, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096)
    else:
        from tests.hf_tiny import llava_7b_towers

        vision, text = llava_7b_towers()
    return LlavaConfig(vision_config=vision, text_config=text, image_token_index=32000, image_seq_length=576,
                       projector_hidden_act="gelu", vision_feature_select_strategy="default",
                       vision_feature_layer=-2)


def llava_flops_per_sample(config: Any, seq: int, new_tokens: int = 0) -> tuple[float, float]:
    """(LLM, vision) FLOPs for one sample: 2 x weights x tokens for every matmul, plus attention scores and
    values (4 x layers x seq^2 x width for the causal prefill, counted dense), the LM head on the last
    position only; `new_tokens` decode steps add 2 x weights each (their attention over the cache is small)."""
    t, v = config.text_config, config.vision_config
    d, f, layers = t.hidden_size, t.intermediate_size, t.num_hidden_layers
    per_layer = 4 * d * d + 3 * d * f                      # q, k, v, o and the SwiGLU MLP (MHA: kv = d)
    llm = 2 * per_layer * layers * seq + 4 * layers * seq * seq * d + 2 * d * t.vocab_size
    llm += new_tokens * (2 * per_layer * layers + 2 * d * t.vocab_size)
    patches = (v.image_size // v.patch_size) ** 2 + 1
    vd, vf, vl = v.hidden_size, v.intermediate_size, v.num_hidden_layers
    vision = 2 * (4 * vd * vd + 2 * vd * vf) * vl * patches + 4 * vl * patches * patches * vd
    vision += 2 * 3 * 14 * 14 * vd * (patches - 1)        # patch embedding
    vision += 2 * (vd * d + d * d) * (patches - 1)         # the two-layer projector
    return float(llm), float(vision)


def llava_section(args: argparse.Namespace, device: Any, dtype: Any, peak: float, budget: Budget) -> float | None:
    """Returns the best logits samples/s (for the goal line)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    config = llava_config(args.quick)
    started = time.perf_counter()
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype).eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n[1] LLaVA-1.5-7B shapes{' (--quick: toy widths, 2+2 layers)' if args.quick else ''}: "
          f"{n_params / 1e9:.2f} B parameters, random {str(dtype).removeprefix('torch.')} weights, built in "
          f"{time.perf_counter() - started:.1f} s")
    image_tokens = config.image_seq_length
    seq = 1 + image_tokens + POPE_TEXT_TOKENS
    llm_flops, vision_flops = llava_flops_per_sample(config, seq)
    print(f"  POPE-length prompt: {seq} tokens ({image_tokens} image + {POPE_TEXT_TOKENS + 1} text); "
          f"{(llm_flops + vision_flops) / 1e12:.3f} TFLOP/sample by the shapes (LLM {llm_flops / 1e12:.3f}, "
          f"vision {vision_flops / 1e12:.3f}; full size ~8.7 = 8.3 + 0.35)")
    gen = torch.Generator(device="cpu").manual_seed(0)

    def inputs(batch: int) -> dict[str, Any]:
        text = torch.randint(2, 32000, (batch, POPE_TEXT_TOKENS), generator=gen)
        ids = torch.cat([torch.ones(batch, 1, dtype=torch.long),                       # BOS
                         torch.full((batch, image_tokens), config.image_token_index), text], dim=1)
        pixels = torch.randn(batch, 3, 336, 336, generator=gen)
        return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
                "pixel_values": pixels.to(device, dtype)}

    rows, best_logits = [], None
    for batch in (1, args.big_batch):
        if budget.left() < (30 if args.quick else 60):
            print(f"  batch {batch}: skipped, {budget.left():.0f} s of the budget left")
            continue
        x = inputs(batch)
        reset_peak(device)
        def logits(x: dict[str, Any] = x, m: Any = model) -> Any:
            return m(**x, logits_to_keep=1, use_cache=False)

        def generate(x: dict[str, Any] = x, m: Any = model) -> Any:
            return m.generate(**x, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                              do_sample=False, pad_token_id=0)

        with torch.inference_mode():
            logits_s = timed(logits, device, min_seconds=args.min_seconds, max_repeats=args.max_repeats)
            logits_peak = peak_gib(device)
            reset_peak(device)
            gen_s = timed(generate, device, min_seconds=args.min_seconds, max_repeats=args.max_repeats)
            gen_peak = peak_gib(device)
        llm_g, vis_g = llava_flops_per_sample(config, seq, args.new_tokens)
        for mode, seconds, flops, mem in (("logits", logits_s, llm_flops + vision_flops, logits_peak),
                                          (f"generate {args.new_tokens} tok", gen_s, llm_g + vis_g, gen_peak)):
            rate = batch / seconds
            rows.append((batch, mode, rate, rate * flops / peak, mem))
            if mode == "logits":
                best_logits = max(best_logits or 0.0, rate)
        del x
    print(f"  {'batch':>5}  {'mode':18} {'samples/s':>10}  {'of bf16 peak':>12}  {'peak memory':>12}")
    for batch, mode, rate, ratio, mem in rows:
        print(f"  {batch:5d}  {mode:18} {rate:10.2f}  {ratio:11.1%}  {mem:>12}")
    by = {(b, m.split()[0]): r for b, m, r, _, _ in rows}
    for mode in ("logits", "generate"):
        if (1, mode) in by and (args.big_batch, mode) in by:
            print(f"  {mode}: batch {args.big_batch} / batch 1 = x{by[(args.big_batch, mode)] / by[(1, mode)]:.1f} "
                  "samples/s")
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return best_logits


# --- 2. corruptions ---------------------------------------------------------------------------------------------

def corruptions_section(args: argparse.Namespace, device: Any, budget: Budget) -> None:
    import numpy as np
    import torch

    from deem_eval.benchmarks.corruptions import catalog
    from deem_eval.benchmarks.corruptions.spec import ALL

    batch = 4 if args.quick else args.corruption_batch
    size = 224
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)).to(device)
    print(f"\n[2] corruptions on {device.type}, severity 3, batch {batch} x {size} px (images already on the device)")
    print(f"  {'corruption':20} {'images/s':>10}  {'ms/batch':>9}")
    names = ALL if not args.corruptions else tuple(args.corruptions.split(","))
    for name in names:
        if budget.left() < 20:
            print(f"  {name:20} skipped: {budget.left():.0f} s of the budget left")
            continue
        try:
            corruption = catalog.get(name)

            def run(c: Any = corruption) -> Any:
                return c.batch(images, 3, [np.random.default_rng(i) for i in range(batch)], device=device)

            seconds = timed(run, device, min_seconds=args.min_seconds / 2, max_repeats=args.max_repeats)
            print(f"  {name:20} {batch / seconds:10.1f}  {seconds * 1000:9.1f}")
        except Exception as exc:  # noqa: BLE001 - one corruption's failure must not hide the others' numbers
            print(f"  {name:20} failed: {type(exc).__name__}: {exc}")


# --- 3. deem-7b logits ----------------------------------------------------------------------------------------------

def deem_section(args: argparse.Namespace, device: Any, dtype: Any, budget: Budget) -> float | None:
    import torch

    from deem_eval.model_adapters.deem.model.config import ConvNeXtConfig
    from deem_eval.model_adapters.deem.model.images import to_pixels
    from deem_eval.model_adapters.deem.model.presets import DEEM_7B, build_model

    config = DEEM_7B.replace(llm_source="random", tokenizer_source="tiny", encoder_source="random")
    if args.quick:
        visual = dataclasses.replace(config.visual, convnext=ConvNeXtConfig(depths=(1, 1, 1, 1), dims=(16, 32, 48, 64)),
                                     image_size=64, feature_dim=64, num_queries=8, width=32, layers=2, heads=2,
                                     mlp_dim=64, pos_grid=4)
        llm = dataclasses.replace(config.llm, hidden_size=64, intermediate_size=128, num_layers=4, num_heads=4,
                                  num_kv_heads=4)
        config = config.replace(visual=visual, llm=llm, xattn=dataclasses.replace(config.xattn, heads=4, points=2))
    print(f"\n[3] deem-7b logit scoring{' (--quick: toy sizes)' if args.quick else ''}, seeded random "
          f"{str(dtype).removeprefix('torch.')} weights")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if free < 40 * 2**30 and not args.quick:
            print(f"  skipped: {free / 2**30:.0f} GiB free on the GPU, deem-7b in bf16 needs ~40 GiB with batch 32")
            return None
    if budget.left() < (40 if args.quick else 150):
        print(f"  skipped: {budget.left():.0f} s of the budget left (building and timing it needs ~150 s)")
        return None
    started = time.perf_counter()
    model = build_model(config, seed=0, device=device, dtype=dtype)
    print(f"  built in {time.perf_counter() - started:.1f} s")
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    v = config.visual
    best = None
    for batch in (1, args.big_batch):
        if budget.left() < 20:
            print(f"  batch {batch}: skipped, {budget.left():.0f} s of the budget left")
            continue
        images = [Image.fromarray(rng.integers(0, 256, (v.image_size, v.image_size, 3), dtype=np.uint8))
                  for _ in range(batch)]
        questions = ["Is there a dog in the image?"] * batch
        pixels = to_pixels(images, v.image_size, min_side=v.stride).to(device, dtype)
        ids, mask = model.tokenize_prompts(questions)
        reset_peak(device)
        def score(p: Any = pixels, i: Any = ids, m: Any = mask, model: Any = model) -> Any:
            return model.next_token_logits(p, i, m)

        with torch.inference_mode():
            seconds = timed(score, device, min_seconds=args.min_seconds, max_repeats=args.max_repeats)
        rate = batch / seconds
        best = max(best or 0.0, rate)
        print(f"  batch {batch:3d}: {rate:9.2f} samples/s, {seconds * 1000:8.1f} ms/batch, peak {peak_gib(device)}")
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return best


def goal_line(name: str, rate: float | None, quick: bool) -> None:
    if rate is None:
        print(f"goal ({name}): not measured")
        return
    done = rate * GOAL_SECONDS
    verdict = "meets" if done >= POPE_QUESTIONS else "misses"
    note = " (--quick: toy model, not the goal's model)" if quick else ""
    print(f"goal ({name}): POPE's {POPE_QUESTIONS:,} questions in <= {GOAL_SECONDS:.0f} s with logit scoring: "
          f"{rate:.1f} samples/s x {GOAL_SECONDS:.0f} s = {done:,.0f} questions, {done / POPE_QUESTIONS:.2f}x the "
          f"goal: {verdict} it; 9,000 would take {POPE_QUESTIONS / rate:.0f} s{note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (only sensible with --quick)")
    ap.add_argument("--quick", action="store_true", help="toy model sizes: smoke-runs the code paths")
    ap.add_argument("--budget-s", type=float, default=460.0, help="stop starting new work after this (s)")
    ap.add_argument("--only", default="llava,corruptions,deem", help="comma-separated sections")
    ap.add_argument("--big-batch", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=8, help="generation length, forced (random weights)")
    ap.add_argument("--corruption-batch", type=int, default=64)
    ap.add_argument("--corruptions", default="", help="comma-separated names (default: all built-in)")
    ap.add_argument("--min-seconds", type=float, default=2.0, help="time each measurement at least this long")
    ap.add_argument("--max-repeats", type=int, default=20)
    args = ap.parse_args()
    if args.quick:
        args.big_batch = min(args.big_batch, 4)
        args.new_tokens = min(args.new_tokens, 2)
        args.min_seconds = min(args.min_seconds, 0.2)
        args.max_repeats = min(args.max_repeats, 2)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing measured (run with --quick --device cpu to smoke-test the code paths)")
        return 0
    device = torch.device(args.device)
    dtype = torch.bfloat16
    budget = Budget(args.budget_s)
    only = set(args.only.split(","))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    print(f"GPU suite on {name}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"budget {args.budget_s:.0f} s, load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.quick:
        print("--quick: toy model sizes, timings are meaningless (this run checks that the code paths work)")
    peak, source = bf16_peak(device, dtype, args.quick)
    print(f"bf16 peak {peak / 1e12:.4g} TFLOP/s ({source})")
    results: dict[str, float | None] = {}
    sections: list[tuple[str, Callable[[], Any]]] = [
        ("llava", lambda: results.__setitem__("llava", llava_section(args, device, dtype, peak, budget))),
        ("corruptions", lambda: corruptions_section(args, device, budget)),
        ("deem", lambda: results.__setitem__("deem", deem_section(args, device, dtype, budget))),
    ]
    failed = 0
    for key, section in sections:
        if key not in only:
            continue
        try:
            section()
        except Exception:  # noqa: BLE001 - report and go on: the other sections' numbers are still worth having
            failed += 1
            print(f"\nsection {key} failed:")
            traceback.print_exc(file=sys.stdout)
    print()
    if "llava" in only:
        goal_line("LLaVA-1.5-7B shapes", results.get("llava"), args.quick)
    if "deem" in only:
        goal_line("deem-7b", results.get("deem"), args.quick)
    print(f"total {time.perf_counter() - budget.start:.0f} s of a {args.budget_s:.0f} s budget"
          f"{f'; {failed} section(s) failed' if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
