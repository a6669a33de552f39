"""`deem-eval align --stage pretrain|sft`: DEEM's two training stages from the command line.

Builds the model (a preset, or a checkpoint to continue from - stage 2 starts from stage 1's `final/`), the
frozen diffusion teacher and MMFSNet when the stage uses CSR, and the stage's data: captions (folder, JSON
lines, dataset, webdataset shards) for `pretrain`, instruction data (LLaVA conversation JSON, a yes/no
question list, or a deem-eval split) for `sft`; then runs `train.train_stage`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError


def caption_data(args: argparse.Namespace):
    from .data import caption_source

    return caption_source(images=args.images, jsonl=args.jsonl, dataset=args.dataset, webdataset=args.webdataset,
                          dataset_split=args.dataset_split, image_column=args.image_column,
                          caption_column=args.caption_column)


def answer_data(args: argparse.Namespace):
    from .instruct_data import instruct_data

    source = args.conversations or args.questions
    if source is None:
        raise DeemEvalError("stage sft needs instruction data: --conversations llava.json (LLaVA conversation "
                            "JSON), or --questions FILE|SPLIT_DIR (a yes/no question list or a deem-eval split)")
    return instruct_data(source, image_folder=args.image_folder)


def build_parts(args: argparse.Namespace, stage, device) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(model, teacher or None, MMFSNet or None, provenance)."""
    from safetensors.torch import load_file

    from ..model.checkpoint import load_checkpoint
    from ..model.presets import build_model, get_preset
    from .diffusion import build_teacher, diffusion_config_for
    from .mmfs import MMFSNet
    from .train import MMFS_FILE

    expect = get_preset(args.preset) if args.preset else None
    if args.checkpoint is not None:
        model = load_checkpoint(args.checkpoint, expect=expect, device=device, components=args.components,
                                download=args.download)
    else:
        model = build_model(expect or get_preset("deem-7b"), seed=args.seed, device=device,
                            components=args.components, download=args.download)
    for module in (model.visual, model.xattn):
        module.float()
    teacher = mmfs = None
    if stage.uses_csr:
        dcfg = model.config.diffusion if args.diffusion is None else dataclasses.replace(
            diffusion_config_for(args.diffusion), condition_dim=model.config.diffusion.condition_dim)
        teacher = build_teacher(dcfg, seed=args.seed, device=device, components=args.components,
                                download=args.download)
        v = model.config.visual
        if stage.mmfs:
            if not v.mmfs_levels:
                raise DeemEvalError(f"{model.config.name} has no MMFS levels (visual.mmfs_levels); set mmfs=false "
                                    "in the stage (--set mmfs=false) or use a preset with them")
            mmfs = MMFSNet.from_unet(teacher.unet, feature_dim=v.feature_dim,
                                     level_strides=tuple(v.convnext.strides[i] for i in v.mmfs_levels)).to(device)
            base = args.checkpoint
            if base is not None and (Path(base) / MMFS_FILE).is_file():
                mmfs.load_state_dict(load_file(str(Path(base) / MMFS_FILE)), strict=True)
            mmfs.attach(teacher.unet)
    provenance = {"base": str(args.checkpoint) if args.checkpoint else model.config.name,
                  "command": "deem-eval " + " ".join(sys.argv[1:])}
    return model, teacher, mmfs, provenance


def run_stage_command(args: argparse.Namespace) -> int:
    from ..model.devices import resolve_device
    from .stages import load_stage
    from .train import train_stage

    stage = load_stage(args.stage, args.set or [])
    if args.print_groups:
        return print_groups(args, stage)
    data = caption_data(args) if stage.loss == "caption" else answer_data(args)
    device = resolve_device(args.device)
    model, teacher, mmfs, provenance = build_parts(args, stage, device)
    provenance["data"] = getattr(data, "source", "")
    result = train_stage(model, stage, data, args.out, teacher=teacher, mmfs=mmfs, seed=args.seed,
                         resume=args.resume, stop_at=args.stop_at, save_every=args.save_every,
                         keep_last=args.keep_last, progress=not args.no_progress, provenance=provenance)
    last = result.history[-1] if result.history else None
    summary = ", ".join(f"{k} {last[k]:.4f}" for k in ("loss", "text", "diffusion") if last and k in last)
    where = (f"final weights in {result.final}" if result.steps == stage.steps else
             f"stopped at step {result.steps} of {stage.steps}; continue with --resume")
    print(f"align --stage {stage.name}: {result.steps} steps{', ' + summary if summary else ''}; {where}")
    return 0


def print_groups(args: argparse.Namespace, stage) -> int:
    """Every trainable parameter with its group, learning rate and weight decay (no training)."""
    from ..model.presets import build_model, get_preset
    from .optim import parameter_table
    from .train import named_trainables

    model = build_model(get_preset(args.preset or "deem-tiny"), seed=args.seed)
    rows = parameter_table(named_trainables(model, None), stage)
    for r in rows:
        print(f"{r.group:<17} lr {r.lr:<8g} wd {r.weight_decay:<5g} {r.numel:>10,d}  {r.name}")
    print(json.dumps({"stage": stage.name, "parameters": sum(r.numel for r in rows), "tensors": len(rows)}))
    return 0
