"""One resumable optimisation loop for the micro phases (micro-CLIP, micro-SD, micro-LLM).

Every batch and every random draw is a function of (seed, phase, step), so a phase stopped at any point
and resumed from its last state continues exactly as the uninterrupted run would have. State lives in
`<dir>/state/`: the module's weights (safetensors), the optimiser and schedule (torch.save, read back with
weights_only=True) and `progress.json` (step, loss history); `<dir>/done.json` marks a finished phase.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from deem_eval.core.atomic import atomic_write_text

DONE_FILE = "done.json"


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    lr: float
    warmup: int = 0
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    max_grad_norm: float = 1.0
    save_every: int = 200


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def seeded(build: Callable[[], ModuleT], seed: int, what: str) -> ModuleT:
    """Build a module with torch's default initialisers drawing from (seed, what) only: the global generator
    is forked, seeded, and restored afterwards, so nothing outside sees or sets global RNG state."""
    from deem_eval.core.rng import derive_seed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "micro-init", what) & 0x7FFF_FFFF_FFFF_FFFF)
        return build()


def cosine(warmup: int, steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))
    return factor


def decay_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay for biases, norms, embeddings and other 1-D / scalar parameters."""
    decay: list[nn.Parameter] = []
    keep: list[nn.Parameter] = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (keep if p.ndim < 2 or "embed" in name or "norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def is_done(directory: Path) -> bool:
    return (directory / DONE_FILE).is_file()


def run_loop(directory: Path, module: nn.Module, config: LoopConfig, step_fn: Callable[[int], dict[str, Any]],
             *, what: str, progress: bool = True, stop_at: int | None = None) -> list[dict[str, Any]]:
    """Train `module` for `config.steps` steps of `step_fn(step)` (which returns the loss tensor under
    "loss" plus floats to log); resumes from `directory/state`. Returns the loss history."""
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    state_dir = directory / "state"
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(decay_groups(module, config.weight_decay), lr=config.lr, betas=config.betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine(config.warmup, config.steps))
    start, history = 0, list[dict[str, Any]]()
    if (state_dir / "progress.json").is_file():
        saved = json.loads((state_dir / "progress.json").read_text(encoding="utf-8"))
        module.load_state_dict(load_file(str(state_dir / "model.safetensors")), strict=False)
        opt_state = torch.load(state_dir / "optimizer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(opt_state["optimizer"])
        scheduler.load_state_dict(opt_state["scheduler"])
        start, history = int(saved["step"]), list(saved["history"])
        print(f"{what}: resuming at step {start}", file=sys.stderr)

    def save(step: int) -> None:
        tmp = directory / "state.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        save_file({k: v.detach().contiguous() for k, v in module.state_dict().items()}, str(tmp / "model.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
        atomic_write_text(tmp / "progress.json", json.dumps({"step": step, "history": history}) + "\n")
        if state_dir.exists():
            shutil.rmtree(state_dir)
        tmp.rename(state_dir)

    end = config.steps if stop_at is None else min(config.steps, stop_at)
    module.train()
    bar = tqdm(total=config.steps, initial=start, desc=what, unit="step", disable=not progress, dynamic_ncols=True,
               file=sys.stderr)
    for step in range(start, end):
        started = time.perf_counter()
        logged = step_fn(step)
        loss = logged.pop("loss")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        record = {"step": step + 1, "loss": round(float(loss.detach()), 6),
                  **{k: round(float(v), 6) for k, v in logged.items()}, "seconds": round(time.perf_counter() - started, 4)}
        history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}")
        if (step + 1) % config.save_every == 0 and step + 1 < end:
            save(step + 1)
    bar.close()
    module.eval()
    if end > start:
        save(end)
    return history


def mark_done(directory: Path, info: dict[str, Any]) -> None:
    atomic_write_text(directory / DONE_FILE, json.dumps(info, indent=1, sort_keys=True) + "\n")
