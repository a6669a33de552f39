"""`deem-eval align`: CSR training (DEEM's diffusion-aligned encoder step) from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path


def _path(text: str) -> Path:
    return Path(text).expanduser()


class AlignCommand:
    name = "align"
    summary = "train DEEM: its stages (--stage pretrain|sft) or CSR alone (diffusion-aligned encoder)"
    help = ("CSR: train an image encoder with the noise-prediction loss of a frozen diffusion UNet conditioned on "
            "the encoder's tokens (DEEM), plus next-token loss on captions. Works on a DEEM model or on an HF "
            "LLaVA-style model's vision tower (LLaVA + CSR).")
    examples = """examples:
  deem-eval align --preset deem-tiny --images photos/ --steps 20 --out runs/align-tiny
  deem-eval align --preset deem-7b --jsonl cc3m.jsonl --steps 10000 --batch-size 4 --grad-accum 8 \\
      --save-every 500 --out runs/deem-csr
      (then: deem-eval --model deem -M checkpoint=runs/deem-csr/final --bench robustvqa)
  deem-eval align --target llava --llava llava-hf/llava-1.5-7b-hf --diffusion sd-2.1-base \\
      --dataset my/captions --steps 2000 --out runs/llava-csr  (then: deem-eval --model hf -M path=runs/llava-csr/final)
  deem-eval align ... --resume           continue the run in --out from its latest checkpoint
  deem-eval align --stage pretrain --preset deem-tiny --images photos/ --set steps=20 --out runs/s1
  deem-eval align --stage sft --checkpoint runs/s1/final --questions yesno.jsonl --set steps=50 --out runs/s2
      (then: deem-eval --model deem -M checkpoint=runs/s2/final --bench robustvqa)
"""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        s = parser.add_argument_group("DEEM's training stages (see model_adapters/deem/training/configs/)")
        s.add_argument("--stage", help="pretrain | sft | a stage TOML file: DEEM's stage 1 (captions + 5 CSR, MMFSNet) "
                                       "or stage 2 (answers + 5 CSR). Without it: the CSR-only run below")
        s.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a stage value, e.g. --set optim.lr=3e-4 --set steps=200 (repeatable)")
        s.add_argument("--conversations", type=_path, help="sft: LLaVA conversation JSON (or JSON lines)")
        s.add_argument("--questions", type=_path, help="sft: yes/no question list (JSON lines) or a deem-eval split")
        s.add_argument("--image-folder", type=_path, help="sft: folder the instruction data's image paths are in")
        s.add_argument("--webdataset", help="pretrain: webdataset tar shards, e.g. 'shards/{000000..000099}.tar'")
        s.add_argument("--print-groups", action="store_true",
                       help="list every trainable parameter's group, learning rate and weight decay, then exit")

        m = parser.add_argument_group("model")
        m.add_argument("--target", choices=("deem", "llava"), default="deem", help="what to train (default deem)")
        m.add_argument("--preset", help="DEEM preset: deem-tiny | deem-7b (default deem-7b, or the checkpoint's)")
        m.add_argument("--checkpoint", type=_path, help="continue from a DEEM checkpoint directory")
        m.add_argument("--llava", help="LLaVA-style model directory or hub id (with --target llava)")
        m.add_argument("--diffusion", help="diffusion teacher: sd-2.1-base | random-tiny | DIR | hub:org/name "
                                           "(DEEM default: the model config's)")
        m.add_argument("--train", default="encoder,tokenizer,xattn",
                       help="DEEM parameter groups to train, comma-separated (default encoder,tokenizer,xattn)")
        m.add_argument("--train-projector", action="store_true", help="llava: also train the multi-modal projector")
        m.add_argument("--components", type=_path, help="directory with <org>/<name> copies of component checkpoints")
        m.add_argument("--download", action="store_true", help="fetch missing component checkpoints from the hub")

        d = parser.add_argument_group("data (one of)")
        d.add_argument("--images", type=_path, help="folder of images; captions from same-name .txt files")
        d.add_argument("--jsonl", type=_path, help='JSON lines: {"image": path, "caption": text}')
        d.add_argument("--dataset", help="Hugging Face dataset name or saved-dataset directory")
        d.add_argument("--dataset-split", default="train")
        d.add_argument("--image-column", default="image")
        d.add_argument("--caption-column", default="text")
        d.add_argument("--no-captions", action="store_true", help="ignore captions (diffusion loss only)")

        o = parser.add_argument_group("optimisation")
        o.add_argument("--steps", type=int, default=100, help="optimizer steps (default 100)")
        o.add_argument("--batch-size", type=int, default=4)
        o.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
        o.add_argument("--lr", type=float, default=1e-4)
        o.add_argument("--weight-decay", type=float, default=0.05)
        o.add_argument("--warmup", type=int, default=0, help="linear warm-up steps (then cosine decay)")
        o.add_argument("--max-grad-norm", type=float, default=1.0, help="0 disables clipping")
        o.add_argument("--csr-weight", type=float, help="weight of the diffusion loss (default: the config's, 5)")
        o.add_argument("--text-weight", type=float, default=1.0)
        o.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                       help="auto: bf16 autocast on CUDA, fp32 on CPU")

        r = parser.add_argument_group("run")
        r.add_argument("--out", type=_path, required=True, help="output directory (checkpoints, final/, history)")
        r.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps (default: at the end)")
        r.add_argument("--keep-last", type=int, default=2, help="checkpoints to keep (default 2)")
        r.add_argument("--stop-at", type=int, help="stop after this step (with a checkpoint); --resume continues "
                                                   "on the same --steps schedule")
        r.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
        r.add_argument("--export-full", action="store_true", help="DEEM: include the LLM in final/ (large)")
        r.add_argument("--seed", type=int, default=0)
        r.add_argument("--device", default="auto")
        r.add_argument("--no-progress", action="store_true")

    def run(self, args: argparse.Namespace) -> int:
        from .align import AlignOptions, run_align

        if args.stage or args.print_groups:
            from .stage_run import run_stage_command

            if not args.stage:
                args.stage = "pretrain"
            return run_stage_command(args)
        groups = tuple(g.strip() for g in args.train.split(",") if g.strip())
        options = AlignOptions(
            out=args.out, steps=args.steps, target=args.target, preset=args.preset, checkpoint=args.checkpoint,
            llava=args.llava, diffusion=args.diffusion, groups=groups, train_projector=args.train_projector,
            images=args.images, jsonl=args.jsonl, dataset=args.dataset, dataset_split=args.dataset_split,
            image_column=args.image_column, caption_column=args.caption_column or None,
            captions=not args.no_captions, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
            weight_decay=args.weight_decay, warmup=args.warmup, max_grad_norm=args.max_grad_norm,
            csr_weight=args.csr_weight, text_weight=args.text_weight, seed=args.seed, device=args.device,
            precision=args.precision, save_every=args.save_every, stop_at=args.stop_at, keep_last=args.keep_last,
            resume=args.resume,
            export_full=args.export_full, progress=not args.no_progress, components=args.components,
            download=args.download)
        result = run_align(options)
        last = result.history[-1] if result.history else None
        summary = f"loss {last['loss']:.4f} (diffusion {last['diffusion']:.4f})" if last else "no steps run"
        where = (f"final weights in {result.final}" if result.steps == options.steps else
                 f"stopped at step {result.steps} of {options.steps}; continue with --resume")
        print(f"align: {result.steps} steps, {summary}; {where}")
        return 0
