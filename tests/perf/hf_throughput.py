"""Throughput of the `hf` adapter: batching and logit scoring.

    python tests/perf/hf_throughput.py                     # tiny random LLaVA on CPU
    python tests/perf/hf_throughput.py --real-size         # LLaVA-1.5-7B architecture, bf16, CUDA
    python tests/perf/hf_throughput.py --real-size --smoke # the same code path, scaled down, on CPU

1. Tiny model (CPU, the test checkpoint: CLIP vision tower + 2-layer Llama, saved and loaded through the
   adapter): samples/s of `generate` at batch 1 vs batch 16, and of `yes_probability` (one forward pass)
   vs `generate`, all in one process; printed as ratios. Random tiny models never emit EOS, so every
   generation runs the full --new-tokens (default 2: "Yes" + EOS, the length of a real POPE answer).
   torch runs on --threads (default 1) CPU threads: with matrices this small, more threads only add
   synchronisation, and on a shared machine their spin-waiting dominates (measured 19x slower at 2 threads
   under load).
2. --real-size (needs a CUDA GPU): the LLaVA-1.5-7B configuration (CLIP ViT-L/14-336 + Vicuna-7B shapes,
   576 image tokens) with random bf16 weights, POPE-length prompts (~640 tokens), batch 1 vs --big-batch
   (32), generate vs logits: samples/s and peak GPU memory. Random weights do not change the cost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _rate(fn, items, batch: int, repeats: int) -> float:
    """Best-of-`repeats` samples/s of fn over items in chunks of `batch` (after one warm-up chunk)."""
    fn(items[:batch])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(items), batch):
            fn(items[i:i + batch])
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def tiny(n: int, new_tokens: int, repeats: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)   # tiny matmuls gain nothing from threads; on a shared box they spin-wait

    from deem_eval.core.adapters import Request
    from deem_eval.model_adapters.hf import HFAdapter, HFConfig
    from tests.hf_tiny import CLASSES, build_tiny_llava, make_images

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_llava(Path(tmp) / "tiny-llava")
        adapter = HFAdapter(HFConfig(path=str(path), device="cpu", scoring="both", max_new_tokens=new_tokens))
        images = make_images(n)
        reqs = [Request(f"q{i}", images[i], f"Is there a {CLASSES[i % len(CLASSES)]} in the image?")
                for i in range(n)]
        adapter.scoring = "logits"          # measure generate alone (no first-step caching)
        print(f"tiny LLaVA on CPU ({torch.get_num_threads()} threads), {n} requests, "
              f"max_new_tokens={new_tokens}, best of {repeats}")
        gen1 = _rate(adapter.generate, reqs, 1, repeats)
        gen16 = _rate(adapter.generate, reqs, 16, repeats)
        log1 = _rate(adapter.yes_probability, reqs, 1, repeats)
        log16 = _rate(adapter.yes_probability, reqs, 16, repeats)
    print(f"  generate        batch 1: {gen1:8.1f} samples/s   batch 16: {gen16:8.1f} samples/s   "
          f"ratio 16/1 = {gen16 / gen1:.2f}x")
    print(f"  yes_probability batch 1: {log1:8.1f} samples/s   batch 16: {log16:8.1f} samples/s   "
          f"ratio 16/1 = {log16 / log1:.2f}x")
    print(f"  logits vs generate: batch 1 {log1 / gen1:.2f}x, batch 16 {log16 / gen16:.2f}x")


def real_size(big_batch: int, new_tokens: int, repeats: int, smoke: bool) -> None:
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from deem_eval.core.rng import derive_torch_generator
    from deem_eval.model_adapters.generation import OomBackoff

    if smoke:
        device, dtype = "cpu", torch.float32
        vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, image_size=336, patch_size=14, projection_dim=64)
        text = LlamaConfig(vocab_size=32064, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096)
        big_batch = min(big_batch, 4)
    else:
        if not torch.cuda.is_available():
            sys.exit("--real-size needs a CUDA GPU (use --smoke to check the code path on CPU)")
        device, dtype = "cuda", torch.bfloat16
        from tests.hf_tiny import llava_7b_towers

        vision, text = llava_7b_towers()
    image_token = 32000
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token,
                         image_seq_length=576, vision_feature_select_strategy="default", vision_feature_layer=-2)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype).eval()
    # POPE-length prompt: vicuna_v1 system (~35 tokens) + "USER: " + 576 image tokens + question + suffix
    # + " ASSISTANT:" ~ 640 tokens; ids are random (the cost does not depend on them).
    gen = derive_torch_generator(0, "hf-throughput")
    prefix = torch.randint(3, 31000, (40,), generator=gen)
    suffix = torch.randint(3, 31000, (25,), generator=gen)
    prompt = torch.cat([torch.tensor([1]), prefix, torch.full((576,), image_token), suffix])

    def inputs(b: int) -> dict:
        ids = prompt.repeat(b, 1).to(device)
        pixels = torch.randn(b, 3, 336, 336, generator=gen).to(device, dtype)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixels}

    def generate(batch: list[int]) -> list[int]:
        with torch.inference_mode():
            model.generate(**inputs(len(batch)), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, pad_token_id=0)
        return batch

    def logits(batch: list[int]) -> list[int]:
        with torch.inference_mode():
            model(**inputs(len(batch)), logits_to_keep=1, use_cache=False)
        return batch

    n = 2 * big_batch
    print(f"LLaVA-1.5-7B architecture ({'SCALED-DOWN smoke run on CPU' if smoke else 'bf16 on ' + torch.cuda.get_device_name()}), "
          f"prompt {prompt.numel()} tokens, {new_tokens} new tokens, {n} requests, best of {repeats}")
    results = {}
    for name, fn in (("generate", generate), ("logits", logits)):
        for batch in (1, big_batch):
            backoff = OomBackoff(batch)
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            rate = _rate(lambda items, backoff=backoff, fn=fn: backoff.run(items, fn), list(range(n)), batch, repeats)
            peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
            results[name, batch] = rate
            print(f"  {name:8s} batch {batch:3d} (ran at {backoff.max_batch}): {rate:8.2f} samples/s   "
                  f"peak memory {peak:6.1f} GiB")
    print(f"  ratios: generate {big_batch}/1 = {results['generate', big_batch] / results['generate', 1]:.2f}x, "
          f"logits {big_batch}/1 = {results['logits', big_batch] / results['logits', 1]:.2f}x, "
          f"logits vs generate at batch {big_batch} = "
          f"{results['logits', big_batch] / results['generate', big_batch]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--real-size", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="with --real-size: scaled-down config on CPU")
    parser.add_argument("--big-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the tiny model")
    args = parser.parse_args()
    if args.real_size:
        real_size(args.big_batch, args.new_tokens, args.repeats, args.smoke)
    else:
        tiny(args.requests, args.new_tokens, args.repeats, args.threads)


if __name__ == "__main__":
    main()
