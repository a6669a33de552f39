"""DEEM training-stage step times, side by side in one run, and DEEM-micro's answer rate.

    python tests/perf/deem_train_speed.py [--steps 8] [--threads 1]

1. deem-tiny, one process: s/step of stage 1 (pretrain: captions + 5 CSR through the frozen tiny UNet with
   MMFSNet) and stage 2 (sft: answers + 5 CSR), each with and without CSR (csr_weight 0), same data, same
   global batch; printed with the with/without ratio (the paper's Table 3: 9.25 vs 8.11 s/step at 7B).
2. deem-tiny sft without CSR, global batch 8: 1 process vs 2 processes (torchrun --standalone, gloo), s/step.
3. the shipped DEEM-micro: answers/s on CPU at batch 1 and 16, beam-3 generation and logit scoring.
The first step of every run is a warm-up and is left out of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

_TWO = '''
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {repo!r})
from pathlib import Path
from tests.perf.deem_train_speed import caption_examples, answer_examples
from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
from deem_eval.model_adapters.deem.training.stages import load_stage
from deem_eval.model_adapters.deem.training.train import train_stage
stage = load_stage("sft", ["steps={steps}", "global_batch=8", "csr_weight=0.0", "image_size=32"])
train_stage(build_model(DEEM_TINY, seed=0), stage, answer_examples(64), Path(sys.argv[1]), seed=0, progress=False)
'''


def caption_examples(n: int):
    from deem_eval.model_adapters.deem.micro.pipeline import CaptionExample
    from tests.hf_tiny import make_images

    return [CaptionExample(im, f"a photo of thing number {i}.") for i, im in enumerate(make_images(n, size=40))]


def answer_examples(n: int):
    from deem_eval.model_adapters.deem.micro.pipeline import AnswerExample
    from tests.hf_tiny import make_images

    return [AnswerExample(im, ((f"Is there a thing {i} in the image?", "yes" if i % 2 else "no"),))
            for i, im in enumerate(make_images(n, size=40))]


def stage_seconds(name: str, csr: bool, steps: int, out: Path) -> float:
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
    from deem_eval.model_adapters.deem.training.diffusion import build_teacher
    from deem_eval.model_adapters.deem.training.mmfs import MMFSNet
    from deem_eval.model_adapters.deem.training.stages import load_stage
    from deem_eval.model_adapters.deem.training.train import train_stage

    overrides = [f"steps={steps}", "global_batch=8", "image_size=32", "diffusion_size=32"]
    stage = load_stage(name, overrides + ([] if csr else ["csr_weight=0.0"]))
    model = build_model(DEEM_TINY, seed=0)
    teacher = mmfs = None
    if csr:
        teacher = build_teacher(DEEM_TINY.diffusion, seed=0)
        v = DEEM_TINY.visual
        mmfs = MMFSNet.from_unet(teacher.unet, feature_dim=v.feature_dim,
                                 level_strides=tuple(v.convnext.strides[i] for i in v.mmfs_levels), heads=2, points=2)
        mmfs.attach(teacher.unet)
    data = caption_examples(64) if name == "pretrain" else answer_examples(64)
    result = train_stage(model, stage, data, out, teacher=teacher, mmfs=mmfs, seed=0, progress=False)
    return statistics.median(r["seconds"] for r in result.history[1:])


def two_processes(steps: int, out: Path) -> float:
    script = out / "two.py"
    script.write_text(_TWO.format(repo=str(REPO), steps=steps), encoding="utf-8")
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(script), str(out / "two")], env=env,
                   check=True, capture_output=True)
    hist = [json.loads(line) for line in (out / "two" / "history.jsonl").read_text().splitlines()]
    return statistics.median(r["seconds"] for r in hist[1:])


def answer_rate(batch: int, scoring: str, repeats: int = 3) -> float:
    from deem_eval.core.adapters import Request
    from deem_eval.model_adapters.deem.adapter import DeemAdapter, DeemAdapterConfig
    from tests.hf_tiny import make_images

    adapter = DeemAdapter(DeemAdapterConfig(preset="deem-micro"))
    requests = [Request(f"q{i}", im, "Is cat the main object in this image? Please answer yes or no.")
                for i, im in enumerate(make_images(batch, size=128))]
    call = adapter.generate if scoring == "generate" else adapter.yes_probability
    call(requests)                                   # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        call(requests)
    return batch * repeats / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} (2-core machine); torch threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        times = {(n, c): stage_seconds(n, c, args.steps, root / f"{n}-{c}") for n in ("pretrain", "sft")
                 for c in (True, False)}
        for n in ("pretrain", "sft"):
            print(f"deem-tiny {n:<8}: with CSR {times[(n, True)]:.3f} s/step, without {times[(n, False)]:.3f} s/step, "
                  f"ratio {times[(n, True)] / times[(n, False)]:.2f}x (global batch 8)")
        print(f"deem-tiny pretrain vs sft (with CSR): {times[('pretrain', True)] / times[('sft', True)]:.2f}x")
        one, two = times[("sft", False)], two_processes(args.steps, root)
        print(f"deem-tiny sft, global batch 8: 1 process {one:.3f} s/step, 2 processes {two:.3f} s/step "
              f"(speed-up {one / two:.2f}x)")
    for scoring in ("generate", "logits"):
        r1, r16 = answer_rate(1, scoring), answer_rate(16, scoring)
        print(f"DEEM-micro {scoring:<8}: {r1:.1f} answers/s at batch 1, {r16:.1f} at batch 16 ({r16 / r1:.1f}x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
