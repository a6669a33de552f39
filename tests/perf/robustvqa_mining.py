"""Throughput of RobustVQA negative mining with the CLIP miner (images/s), batch 1 vs batch 64.

    python tests/perf/robustvqa_mining.py                   # tiny random CLIP on CPU
    python tests/perf/robustvqa_mining.py --real-size       # CLIP ViT-L/14-336 architecture, fp16, CUDA
    python tests/perf/robustvqa_mining.py --real-size --clip-model openai/clip-vit-large-patch14-336

1. Tiny CLIP (CPU; the test checkpoint of tests/hf_tiny.py, saved and loaded with from_pretrained):
   --images PNGs (default 256, 160x120 noise, like small JPEG-decoded photos) in an ImageNet-A style
   folder, mined through `build_split` exactly as `deem-eval build robustvqa` does (reading, hashing,
   decoding, preprocessing in --workers threads, encoding, scoring against 1000 prompts). For each batch
   size: a cold build (empty embedding cache) and a warm rebuild (everything from the cache). The fixed
   cost (model load + 1000 text prompts) is measured on its own and subtracted for the "mining" rate.
2. --real-size (needs CUDA): the ViT-L/14-336 architecture with random fp16 weights (or the real weights
   with --clip-model), the same pipeline at batch 1 and 64; random weights do not change the cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def make_images(folder: Path, n: int, size: tuple[int, int]) -> None:
    import numpy as np
    from PIL import Image

    from deem_eval.benchmarks.robustvqa.classes import imagenet_rows
    from deem_eval.core.rng import derive_rng

    wnids = [r.wnid for r in imagenet_rows() if r.imagenet_a][:8]
    for i in range(n):
        target = folder / wnids[i % len(wnids)] / f"{i:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = derive_rng(0, "perf-image", i).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(target)


def fixed_cost(model: str, data: Path, device: str, dtype: str, cache: Path) -> float:
    """Seconds to load the model and embed the 1000 ImageNet prompts (paid once per build)."""
    from deem_eval.benchmarks.robustvqa.build import BuildOptions
    from deem_eval.benchmarks.robustvqa.miners import ClipMiner
    from deem_eval.benchmarks.robustvqa.sources import imagenet_folder

    start = time.perf_counter()
    miner = ClipMiner(BuildOptions(clip_model=model, device=device, dtype=dtype, cache_dir=cache))
    miner.start([imagenet_folder("a", data)], "all")
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(model: str, data: Path, n: int, batches: list[int], device: str, dtype: str, workers: int,
            work: Path) -> None:
    from deem_eval.benchmarks.robustvqa.build import BuildOptions, build_split
    from deem_eval.benchmarks.robustvqa.sources import imagenet_folder

    fixed_cost(model, data, device, dtype, work / "warmup-cache")          # imports, first CUDA context, ...
    fixed = min(fixed_cost(model, data, device, dtype, work / f"fixed-cache{i}") for i in range(2))
    print(f"  fixed cost (model load + 1000 prompts): {fixed:.2f} s")
    rates = {}
    for batch in batches:
        cache = work / f"cache-b{batch}"
        options = BuildOptions(clip_model=model, device=device, dtype=dtype, batch_size=batch, workers=workers,
                               cache_dir=cache, progress=False)
        start = time.perf_counter()
        build_split([imagenet_folder("a", data)], options, work / "out")
        cold = time.perf_counter() - start
        start = time.perf_counter()
        build_split([imagenet_folder("a", data)], options, work / "out")
        warm = time.perf_counter() - start
        mining = n / max(cold - fixed, 1e-9)
        rates[batch] = mining
        print(f"  batch {batch:>3}: cold build {cold:6.2f} s = {n / cold:7.1f} img/s end to end, "
              f"{mining:7.1f} img/s mining; warm rebuild (all cached) {warm:5.2f} s = {n / warm:7.1f} img/s")
    if len(rates) >= 2:
        lo, hi = min(rates), max(rates)
        print(f"  ratio: batch {hi} mines {rates[hi] / rates[lo]:.2f}x the images/s of batch {lo}")


def tiny(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from tests.hf_tiny import build_tiny_clip

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = build_tiny_clip(tmp / "tiny-clip")
        make_images(tmp / "imagenet-a", args.images, (160, 120))
        print(f"tiny CLIP on CPU ({torch.get_num_threads()} torch threads, {args.workers} reader threads), "
              f"{args.images} images 160x120 PNG")
        measure(str(model), tmp / "imagenet-a", args.images, args.batch_sizes, "cpu", "fp32", args.workers,
                tmp / "work")


def real_size(args) -> None:
    import torch

    if not torch.cuda.is_available():
        print("--real-size needs a CUDA GPU; none here (torch.cuda.is_available() is False). Not measured.")
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = args.clip_model or str(build_vit_l_336(tmp / "vit-l-336"))
        make_images(tmp / "imagenet-a", args.images, (500, 375))
        print(f"CLIP ViT-L/14-336 ({'weights of ' + args.clip_model if args.clip_model else 'random weights'}) on "
              f"{torch.cuda.get_device_name()}, fp16, {args.workers} reader threads, {args.images} images 500x375")
        measure(model, tmp / "imagenet-a", args.images, args.batch_sizes, "cuda", "fp16", args.workers, tmp / "work")
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


def byte_level_vocab() -> dict[str, int]:
    """A merge-free byte-level BPE vocabulary (every byte, alone and word-final): tokenises any text."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
                 *range(ord("\u00ae"), ord("\u00ff") + 1)]
    extra = iter(range(256, 512))
    chars = [chr(b) if b in printable else chr(next(extra)) for b in range(256)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in chars:
            vocab[ch + suffix] = len(vocab)
    return vocab


def build_vit_l_336(out: Path) -> Path:
    """openai/clip-vit-large-patch14-336's shapes with random weights, saved like a checkpoint."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    tokenizer = CLIPTokenizer(vocab=byte_level_vocab(), merges=[])
    config = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                         "num_attention_heads": 12, "max_position_embeddings": 77, "projection_dim": 768,
                         "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                         "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                           "image_size": 336, "patch_size": 14, "projection_dim": 768},
        projection_dim=768)
    with torch.device("cuda"):
        model = CLIPModel(config).half()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 336},
                                                                 crop_size={"height": 336, "width": 336}),
                              tokenizer=tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 64])
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the tiny model (default 1)")
    parser.add_argument("--real-size", action="store_true")
    parser.add_argument("--clip-model", help="with --real-size: real weights (hub id or folder) instead of random")
    args = parser.parse_args()
    os.environ.setdefault("DEEM_EVAL_HOME", tempfile.mkdtemp(prefix="deem-eval-perf-"))
    real_size(args) if args.real_size else tiny(args)


if __name__ == "__main__":
    main()
