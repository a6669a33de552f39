"""DEEM's two training stages on a DeemModel: one loop for `deem-eval align --stage` and for train-micro.

Each optimiser step takes `grad_accum` micro-batches of `batch_size` examples from an endless, per-epoch
shuffled stream (positions derived from the step, as in align.py, so resuming needs no data state):

    loss = text_weight * L_text + csr_weight * L_CSR
    L_text: stage "caption" - next-token loss on the caption; stage "answer" - on the answer tokens only
    L_CSR : the frozen teacher's noise-prediction loss conditioned on the resampler's tokens (+ MMFSNet)

Examples are objects with `.image` and either `.caption` (caption stage) or `.turns` - a sequence of
(question, answer) pairs - (answer stage). Unreadable images are skipped and counted.

Output:
    <out>/checkpoint-000100/  state.safetensors (every trainable tensor; MMFSNet's as "mmfs.*"),
                              optimizer.pt (read back with weights_only=True), trainer_state.json
    <out>/final/              a DEEM checkpoint (`-M checkpoint=`), mmfs.safetensors, stage.json
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from deem_eval.core.atomic import atomic_write_text
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.rng import derive_torch_generator
from deem_eval.core.version import __version__

from .align import example_index, list_checkpoints
from .optim import build_optimizer, select_trainable
from .stages import StageConfig

STATE_FILE = "trainer_state.json"
MMFS_FILE = "mmfs.safetensors"
STAGE_FILE = "stage.json"


@dataclass
class StageResult:
    out: Path
    final: Path
    steps: int
    resumed_from: int
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped_images: int = 0
    seconds: float = 0.0


def named_trainables(model, mmfs) -> list[tuple[str, torch.nn.Parameter]]:
    named = [(n, p) for n, p in model.named_parameters()]
    if mmfs is not None:
        named += [(f"mmfs.{n}", p) for n, p in mmfs.named_parameters()]
    return named


def identity(stage: StageConfig, extra: dict[str, Any]) -> str:
    keep = {k: v for k, v in stage.to_dict().items() if k != "steps"}
    blob = json.dumps({"stage": keep, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _images(examples: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """The readable images of a micro-batch and their positions (unreadable ones are skipped, as in align)."""
    from .align import _load_example

    loaded = [_load_example(ex) for ex in examples]
    keep = [i for i, image in enumerate(loaded) if image is not None]
    return [loaded[i] for i in keep], keep


def _pair(turn: Any) -> tuple[str, str]:
    """A (question, answer) pair from an instruct_data.Turn or a plain tuple."""
    return (turn.question, turn.answer) if hasattr(turn, "question") else (turn[0], turn[1])


def stage_losses(model, stage: StageConfig, examples: Sequence[Any], generator: torch.Generator, *,
                 teacher=None, mmfs=None) -> tuple[torch.Tensor, dict[str, float], int]:
    """(total loss, logged values, skipped images) for one micro-batch."""
    from ..model.images import to_pixels

    images, keep = _images(examples)
    skipped = len(examples) - len(keep)
    if not images:
        raise DeemEvalError("a whole micro-batch of unreadable images")
    kept = [examples[i] for i in keep]
    v = model.config.visual
    pixels = to_pixels(images, stage.image_size or v.image_size, min_side=v.stride).to(model.device)
    visual = model.visual(pixels)
    if stage.loss == "caption":
        text = model.caption_loss(visual, [ex.caption or "" for ex in kept])
    else:
        text = model.answer_loss(visual, [[_pair(t) for t in ex.turns] for ex in kept])
    total = stage.text_weight * text.loss
    logged = {"text": float(text.loss.detach())}
    if stage.uses_csr:
        if teacher is None:
            raise DeemEvalError(f"stage {stage.name} has csr_weight {stage.csr_weight} but no diffusion teacher")
        size = stage.diffusion_size or teacher.config.image_size
        n = stage.csr_batch or len(images)
        targets = to_pixels(images[:n], size, min_side=1, value_range=(-1.0, 1.0)).to(model.device)
        condition = model.visual.condition(visual)[:n]
        levels = [lvl[:n] for lvl in visual.mmfs_levels] if visual.mmfs_levels else None
        diffusion = teacher.loss(targets, condition, generator, mmfs=mmfs if stage.mmfs else None,
                                 levels=levels).mean()
        total = total + stage.csr_weight * diffusion
        logged["diffusion"] = float(diffusion.detach())
    return total, logged, skipped


@dataclass(frozen=True)
class Processes:
    """This process's place in a data-parallel run (torchrun / accelerate launch set RANK and WORLD_SIZE)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def average(self, tensors: Sequence[torch.Tensor]) -> None:
        """All-reduce in place to the mean over processes: what DDP does to gradients, done explicitly because
        the LLM's cross-attention lives in hooks DDP's module wrapper would not see."""
        if self.world == 1:
            return
        import torch.distributed as dist

        for t in tensors:
            dist.all_reduce(t)
            t.div_(self.world)


def processes(device: torch.device) -> Processes:
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world)


class Examples(Protocol):
    """What a stage reads its examples from: a length and integer indexing (a Sequence, or a view like it)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...


def train_stage(model, stage: StageConfig, data: Examples, out: Path, *, teacher=None, mmfs=None, seed: int = 0,
                resume: bool = False, stop_at: int | None = None, save_every: int = 0, keep_last: int = 2,
                progress: bool = True, provenance: dict[str, Any] | None = None) -> StageResult:
    """Run (or resume) one stage; writes checkpoints and `out/final`."""
    from tqdm import tqdm

    stage.check()
    out = Path(out)
    provenance = dict(provenance or {})
    procs = processes(model.device)
    per_process = stage.per_process_batch(procs.world)
    existing = list_checkpoints(out)
    if existing and not resume:
        raise DeemEvalError(f"{out} already holds checkpoints ({existing[-1].name}) of a training run; pass "
                            "--resume to continue it, or choose another --out")
    if len(data) == 0:
        raise DeemEvalError("no training examples")
    if teacher is not None:
        teacher.config = dataclasses.replace(teacher.config, t_min=stage.t_min, t_max=stage.t_max)
    model.requires_grad_(False)
    if mmfs is not None:
        mmfs.requires_grad_(False)
    named = named_trainables(model, mmfs if stage.mmfs else None)
    trainable = select_trainable(named, stage)
    if not trainable:
        raise DeemEvalError(f"stage {stage.name}: none of the groups {list(stage.train)} has parameters here")
    for _, p in trainable:
        p.data = p.data.float()
    params = [p for _, p in trainable]
    if stage.gradient_checkpointing:
        model.visual.encoder.trunk.checkpointing = True
        if "llm" in stage.train or "xattn" in stage.train:
            model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer, scheduler = build_optimizer(trainable, stage)
    ident = identity(stage, {"seed": seed, "data": provenance.get("data_fingerprint"), "len": len(data),
                             "model": model.config.name,
                             "global_batch": per_process * procs.world * stage.grad_accum})
    start, history = 0, list[dict[str, Any]]()
    if existing and resume:
        start, history = _resume(existing[-1], ident, trainable, optimizer, scheduler)
    end = stage.steps if stop_at is None else min(stage.steps, stop_at)
    result = StageResult(out, out / "final", end, start, history)
    bar = tqdm(total=stage.steps, initial=start, desc=f"DEEM {stage.name}", unit="step",
               disable=not progress or not procs.main, dynamic_ncols=True, file=sys.stderr)
    began = time.perf_counter()
    model.eval()                     # DEEM's modules have no dropout / batch norm; frozen parts stay in eval
    if stage.gradient_checkpointing:
        model.llm.train()            # HF checkpointing only runs in train mode (Llama has no dropout)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if model.device.type == "cuda"
                else contextlib.nullcontext())
    for step in range(start, end):
        started = time.perf_counter()
        sums: dict[str, float] = {}
        for micro in range(stage.grad_accum):
            # the global micro-batch is the same for any process count; rank r takes its r-th share
            first = ((step * stage.grad_accum + micro) * procs.world + procs.rank) * per_process
            batch = [data[example_index(len(data), seed, first + k)] for k in range(per_process)]
            gen = derive_torch_generator(seed, "deem-stage", stage.name, step, micro, procs.rank)
            with autocast:
                loss, logged, skipped = stage_losses(model, stage, batch, gen, teacher=teacher, mmfs=mmfs)
            (loss / stage.grad_accum).backward()
            result.skipped_images += skipped
            for k, val in {"loss": float(loss.detach()), **logged}.items():
                sums[k] = sums.get(k, 0.0) + val / stage.grad_accum
        grads: list[torch.Tensor] = []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        procs.average(grads)
        if procs.world > 1:
            logged_t = torch.tensor([sums[k] for k in sorted(sums)], dtype=torch.float64)
            procs.average([logged_t])
            sums = dict(zip(sorted(sums), logged_t.tolist()))
        norm = float(torch.nn.utils.clip_grad_norm_(params, stage.optim.max_grad_norm or float("inf")))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        record = {"step": step + 1, **{k: round(v, 6) for k, v in sums.items()}, "grad_norm": round(norm, 4),
                  "lr": scheduler.get_last_lr()[0], "seconds": round(time.perf_counter() - started, 4)}
        history.append(record)
        bar.update(1)
        bar.set_postfix({k: f"{v:.4f}" for k, v in sums.items()})
        if save_every and (step + 1) % save_every == 0 and step + 1 < end:
            if procs.main:           # only rank 0 writes; the others wait until the checkpoint is complete
                _save(out / f"checkpoint-{step + 1:06d}", stage, ident, trainable, optimizer, scheduler, step + 1,
                      history)
                _prune(out, keep_last)
            procs.barrier()
    bar.close()
    result.seconds = time.perf_counter() - began
    if procs.main:
        if end > start:
            _save(out / f"checkpoint-{end:06d}", stage, ident, trainable, optimizer, scheduler, end, history)
            _prune(out, keep_last)
        if end == stage.steps:
            export_final(result.final, model, stage, mmfs, {**provenance, "seed": seed, "processes": procs.world,
                                                            "history_tail": history[-5:]})
        atomic_write_text(out / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    procs.barrier()
    for _, p in trainable:
        p.requires_grad_(False)
    model.visual.encoder.trunk.checkpointing = model.config.visual.convnext.gradient_checkpointing
    model.llm.eval()
    result.history = history
    if result.skipped_images:
        print(f"train: skipped {result.skipped_images} unreadable images", file=sys.stderr)
    return result


def _save(path: Path, stage: StageConfig, ident: str, trainable, optimizer, scheduler, step: int, history) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file({n: p.detach().contiguous() for n, p in trainable}, str(tmp / "state.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
    state = {"step": step, "identity": ident, "stage": stage.to_dict(), "history": history,
             "created_by": f"deem-eval {__version__}"}
    atomic_write_text(tmp / STATE_FILE, json.dumps(state, indent=1) + "\n")
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def _resume(path: Path, ident: str, trainable, optimizer, scheduler) -> tuple[int, list]:
    from safetensors.torch import load_file

    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    if state.get("identity") != ident:
        raise DeemEvalError(f"{path}: cannot resume - it was trained with another stage config, model, data or seed "
                            f"(saved stage {state.get('stage', {}).get('name')!r}). Use the same options, or another "
                            "--out.")
    saved = load_file(str(path / "state.safetensors"))
    params = dict(trainable)
    if set(saved) != set(params):
        raise DeemEvalError(f"{path}: its tensors do not match this model's trainable parameters")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(saved[name])
    opt = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(opt["optimizer"])
    scheduler.load_state_dict(opt["scheduler"])
    print(f"resuming from {path} (step {state['step']})", file=sys.stderr)
    return int(state["step"]), list(state.get("history", []))


def _prune(out: Path, keep_last: int) -> None:
    for old in list_checkpoints(out)[:-keep_last] if keep_last >= 1 else []:
        shutil.rmtree(old)


def export_final(path: Path, model, stage: StageConfig, mmfs, provenance: dict[str, Any]) -> Path:
    """A self-contained DEEM checkpoint (full: the LLM included) with MMFSNet and the resolved stage."""
    from safetensors.torch import save_file

    from ..model.checkpoint import save_checkpoint

    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    contents: Literal["full", "delta"] = "full" if "llm" in stage.train or model.config.llm_source == "micro" else "delta"
    save_checkpoint(model, tmp, contents=contents, seed=int(provenance.get("seed", 0)),
                    note=f"deem-eval stage {stage.name}")
    if mmfs is not None:
        save_file({k: v.detach().contiguous() for k, v in mmfs.state_dict().items()}, str(tmp / MMFS_FILE))
    atomic_write_text(tmp / STAGE_FILE, json.dumps({"stage": stage.to_dict(), **provenance}, indent=1,
                                                   sort_keys=True, default=str) + "\n")
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path
