"""Input pipeline throughput: images/s decoded + prepared at --workers 0/1/2/4/8, side by side in one run.

    python tests/perf/input_pipeline.py [--images 96] [--batch-size 8] [--workers 0,1,2,4,8] [--side 336]

What is timed is the runner's own pipeline (runner._worker_prepared over the planned batches, the same
DataLoader the runner uses) with the hf adapter's preparer (HFPreparer: the processor call) for the tiny LLaVA
of tests/hf_tiny.py, its image processor set to LLaVA-1.5's 336 px (resize shortest edge + centre crop +
normalise), on COCO-like 640x480 JPEGs. "0" is the in-process cost the main thread pays between forward passes
without workers (decode + processor, one thread). The tiny model's own answer rate (28 px inputs, scoring=
logits, one thread) is printed for comparison, with the target it stands for: a 7B LLaVA on an H100 answers
in 11-22 ms/sample (45-90 samples/s), so preprocessing has to run at least that fast to keep the GPU busy.

The load average is printed before and after each row: on a 2-core machine, rows above 2 workers are
oversubscribed (the workers and the consuming process share the cores) and show the overhead, not a gain.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def _split(directory: Path, n: int):
    """n images (640x480 JPEG content, smooth gradients + noise), one question each."""
    import numpy as np
    from PIL import Image

    from deem_eval.core.splits import BuilderInfo, Sample, Split

    (directory / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    samples = []
    for i in range(n):
        base = np.stack([(xx + 7 * i) % 256, (yy + 13 * i) % 256, (xx + yy + 29 * i) % 256], -1)
        arr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(directory / "images" / f"{i:04d}.jpg", quality=90)
        samples.append(Sample(f"perf/{i:04d}", f"{i:04d}.jpg", "Is there a dog in the image?", "yes", {}))
    split = Split.create(name="perf", benchmark="perf", samples=samples, image_root="images",
                         builder=BuilderInfo("perf", {"n": n}, 0), candidates=[])
    return split.save(directory)


def _throughput(split, preparer, batch_size: int, workers: int) -> float:
    from deem_eval.run.runner import _load_requests, _Loader, _worker_prepared, plan_batches

    batches = plan_batches(split.samples, batch_size)
    loader = _Loader(split.image_root_path(), split.meta.candidates, True, preparer)
    started = time.perf_counter()
    n = 0
    if workers == 0:   # what the main thread does per batch without workers: decode, then the processor
        for batch in batches:
            requests, _ = _load_requests(loader.root, loader.candidates, True, batch)
            preparer(requests)
            n += len(requests)
    else:
        for _, (requests, _, prepared) in _worker_prepared(batches, loader, workers):
            assert prepared is not None
            n += len(requests)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", default="0,1,2,4,8")
    parser.add_argument("--side", type=int, default=336)
    args = parser.parse_args()

    import dataclasses

    import torch
    from PIL import Image
    from transformers import CLIPImageProcessor

    from deem_eval.core.adapters import Request
    from deem_eval.model_adapters.hf.adapter import HFAdapter, HFConfig
    from deem_eval.run.runner import _load_requests
    from tests.hf_tiny import build_tiny_llava

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="This DataLoader will create")   # the oversubscription is the point
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        split = _split(root / "split", args.images)
        adapter = HFAdapter(HFConfig(path=str(build_tiny_llava(root / "llava")), scoring="logits", device="cpu"))
        side = args.side
        processor = adapter.processor
        big = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
        processor_336 = type(processor)(image_processor=big, tokenizer=processor.tokenizer, patch_size=14,
                                        vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                        chat_template=processor.chat_template)
        preparer = dataclasses.replace(adapter.preparer(), processor=processor_336)
        print(f"# {args.images} images 640x480 JPEG -> {side} px (tiny LLaVA processor), batch {args.batch_size}; "
              f"{cores} CPU cores, torch {torch.__version__}, {_load()}")
        print(f"{'workers':>8} {'images/s':>10} {'ms/image':>9}  load before -> after")
        for w in [int(x) for x in args.workers.split(",")]:
            before = _load()
            rate = _throughput(split, preparer, args.batch_size, w)
            note = "  (oversubscribed: more processes than cores)" if w + 1 > cores else ""
            print(f"{w:>8} {rate:>10.1f} {1000 / rate:>9.2f}  {before} -> {_load()}{note}")

        # the model's own rate: the tiny LLaVA answering (its 28 px processor), one thread, in-process inputs
        requests, _ = _load_requests(split.image_root_path(), (), True, split.samples[:args.batch_size * 4])
        small = [Request(r.id, r.image.resize((28, 28)), r.question) for r in requests
                 if isinstance(r.image, Image.Image)]
        adapter.answer(small[:args.batch_size])
        started = time.perf_counter()
        for i in range(0, len(small), args.batch_size):
            adapter.answer(small[i:i + args.batch_size])
        model_rate = len(small) / (time.perf_counter() - started)
        print(f"# tiny LLaVA answering (scoring=logits, 28 px, incl. its own processor): {model_rate:.1f} samples/s "
              f"({1000 / model_rate:.2f} ms/sample); a 7B LLaVA on an H100: 45-90 samples/s (11-22 ms/sample)")
        print(f"# {_load()}")


if __name__ == "__main__":
    main()
