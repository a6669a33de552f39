"""`deem-eval train-micro`: train micro-CLIP, micro-SD, micro-LLM, DEEM-micro and DEEM-micro* end to end."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


class TrainMicroCommand:
    name = "train-micro"
    summary = "train DEEM-micro and its small world (micro-CLIP, micro-SD) offline, end to end"
    help = ("Train the small world DEEM stands on, offline, on SynthScenes: micro-CLIP (contrastive), micro-SD "
            "(diffusion teacher), a micro Llama, then DEEM-micro (stage 1 with CSR + MMFSNet, stage 2 instruction "
            "tuning) and DEEM-micro* (the same without CSR). Fixed seeds; resumable; --ship installs the result as "
            "the models `--model deem` uses.")
    examples = """examples:
  deem-eval train-micro --out runs/micro              # the full recipe (about an hour on 2 CPU cores)
  deem-eval train-micro --out runs/micro --resume     # continue a stopped run where it stopped
  deem-eval train-micro --out runs/micro --resume --ship   # then copy the models into the package
  deem-eval train-micro --out /tmp/m --quick          # the same pipeline at toy size (< 2 minutes)
"""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="run directory (one sub-directory per phase)")
        parser.add_argument("--quick", action="store_true", help="toy-sized plan: proves the pipeline in < 2 minutes")
        parser.add_argument("--resume", action="store_true", help="continue the run in --out (finished phases are kept)")
        parser.add_argument("--ship", action="store_true",
                            help="after training, copy DEEM-micro, DEEM-micro* and micro-CLIP into the package")
        parser.add_argument("--threads", type=int, default=None,
                            help="torch threads (default: $OMP_NUM_THREADS, else the number of cores)")
        parser.add_argument("--no-progress", action="store_true")

    def run(self, args: argparse.Namespace) -> int:
        import torch

        from .pipeline import FULL, QUICK, ship, train_micro

        threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or (os.cpu_count() or 1)
        torch.set_num_threads(threads)
        command = "deem-eval train-micro " + " ".join(a for a in sys.argv[2:]) if sys.argv[1:2] == ["train-micro"] \
            else f"deem-eval train-micro --out {args.out}{' --quick' if args.quick else ''}"
        manifest = train_micro(args.out, plan=QUICK if args.quick else FULL, resume=args.resume,
                               progress=not args.no_progress, command=command)
        times = {k: v["seconds"] for k, v in manifest["phases"].items()}
        print(f"train-micro: finished in {sum(times.values()):.0f} s; phases: {json.dumps(times)}")
        if args.ship:
            if args.quick:
                print("train-micro: --ship ignored with --quick (toy models are never shipped)", file=sys.stderr)
            else:
                for path in ship(args.out):
                    print(f"train-micro: shipped {path}")
        return 0
