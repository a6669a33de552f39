"""GPU check: the `vllm` adapter against the `hf` adapter on the same model directory.

On a CUDA machine with vllm installed (`pip install 'deem-eval[vllm]'`):

    python -m deem_eval.model_adapters.vllm.gpu_check --model-dir /models/llava-1.5-7b-hf [--bench pope] [-n 16]

It takes `-n` samples spread over a bundled split (default: the offline SynthScenes `pope`), answers them
with `--model vllm -M scoring=both` and then with `--model hf -M scoring=both` (same preset, dtype and
options), and compares, per sample: the prompt text (must be identical), P(yes) (|difference| must be at most
`--tolerance`), the generated text and the yes/no verdict at 0.5 (agreement reported). It prints a table and
a JSON summary (also written to `--out` if given) and exits 1 when prompts differ or P(yes) is off.

vLLM keeps its engine (and its share of GPU memory, `--gpu-memory-utilization`, default 0.45) while the hf
model loads next to it, so the GPU needs room for two copies of the weights (a 7B model in bf16: ~2 x 15 GB).
Expect small P(yes) differences in bf16 (different kernels); prompts must match exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def pick_samples(split: Any, n: int) -> list[Any]:
    """`n` samples spread evenly over the split (its samples are sorted by id, so this is deterministic)."""
    samples = list(split.samples)
    if n >= len(samples):
        return samples
    step = len(samples) / n
    return [samples[int(i * step)] for i in range(n)]


def make_requests(split: Any, samples: list[Any]) -> list[Any]:
    from deem_eval.core.adapters import Request
    from deem_eval.core.images import load_rgb

    requests = []
    for s in samples:
        subject = s.group.get("object", s.group.get("class"))
        requests.append(Request(s.id, load_rgb(split.image_path(s)), s.question,
                                None if subject is None else str(subject), split.meta.candidates))
    return requests


def verdict(p: float) -> str:
    return "yes" if p >= 0.5 else "no"


def compare(rows: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    diffs = [abs(r["p_vllm"] - r["p_hf"]) for r in rows]
    return {
        "n": len(rows),
        "prompts_identical": all(r["prompt_vllm"] == r["prompt_hf"] for r in rows),
        "max_abs_p_diff": max(diffs, default=0.0),
        "mean_abs_p_diff": sum(diffs) / len(diffs) if diffs else 0.0,
        "verdict_agreement": sum(verdict(r["p_vllm"]) == verdict(r["p_hf"]) for r in rows) / max(len(rows), 1),
        "text_agreement": sum(r["text_vllm"] == r["text_hf"] for r in rows) / max(len(rows), 1),
        "tolerance": tolerance,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="local checkpoint directory (or cached hub id)")
    parser.add_argument("--bench", default="pope", help="bundled benchmark whose split to sample (default pope)")
    parser.add_argument("-n", type=int, default=16, help="samples to compare (default 16)")
    parser.add_argument("--preset", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--logprobs", type=int, default=20)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.45)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--tolerance", type=float, default=0.02, help="max |P_vllm(yes) - P_hf(yes)| (default 0.02)")
    parser.add_argument("--out", type=Path, help="write the JSON summary and rows here")
    args = parser.parse_args(argv)

    from deem_eval.core.registry import BENCHMARKS
    from deem_eval.model_adapters.hf import HFAdapter, HFConfig

    from .adapter import VLLMAdapter
    from .config import VLLMConfig

    split = BENCHMARKS.get(args.bench)().load()
    requests = make_requests(split, pick_samples(split, args.n))
    print(f"{len(requests)} samples of {split.name} ({split.meta.count} in the split)", flush=True)

    common = {"path": args.model_dir, "preset": args.preset, "dtype": args.dtype, "max_new_tokens": args.max_new_tokens,
                  "scoring": "both"}
    t0 = time.perf_counter()
    v = VLLMAdapter(VLLMConfig(**common, logprobs=args.logprobs, gpu_memory_utilization=args.gpu_memory_utilization,
                               max_model_len=args.max_model_len))
    t1 = time.perf_counter()
    v_text = v.generate(requests)
    v_prob = v.yes_probability(requests)
    t2 = time.perf_counter()
    v_prompts = [v.prompt_for(r) for r in requests]
    masses = [o.yes_no_mass for o in v._outputs(requests, v._score_params)]   # logits-mode pass: diagnostic

    h = HFAdapter(HFConfig(**common, device="cuda"))
    t3 = time.perf_counter()
    h_text = h.generate(requests)
    h_prob = h.yes_probability(requests)
    t4 = time.perf_counter()

    rows = [{"id": r.id, "prompt_vllm": pv, "prompt_hf": h.prompt_for(r), "text_vllm": tv, "text_hf": th,
             "p_vllm": pv_, "p_hf": ph, "yes_no_mass_vllm": m}
            for r, pv, tv, th, pv_, ph, m in zip(requests, v_prompts, v_text, h_text, v_prob, h_prob, masses)]
    summary = compare(rows, args.tolerance)
    summary.update({"model_dir": args.model_dir, "preset": v.preset.name, "bench": args.bench,
                    "vllm_load_s": round(t1 - t0, 1), "vllm_answer_s": round(t2 - t1, 2),
                    "hf_answer_s": round(t4 - t3, 2), "min_yes_no_mass_vllm": min(masses, default=0.0)})

    print(f"{'id':<40} {'p_vllm':>8} {'p_hf':>8} {'|diff|':>8}  text_vllm | text_hf")
    for row in rows:
        print(f"{row['id'][:40]:<40} {row['p_vllm']:8.4f} {row['p_hf']:8.4f} "
              f"{abs(row['p_vllm'] - row['p_hf']):8.4f}  {row['text_vllm'][:20]!r} | {row['text_hf'][:20]!r}")
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    ok = summary["prompts_identical"] and summary["max_abs_p_diff"] <= args.tolerance
    print("OK" if ok else "MISMATCH", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
