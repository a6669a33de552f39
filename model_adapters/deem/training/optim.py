"""DEEM's optimiser: which parameters a stage trains, and their AdamW groups (learning rate, weight decay).

Rules (DEEM's training code): the base learning rate for everything, except the ConvNeXt trunk
(`trunk_lr`) and every deformable attention's `sampling_offsets` (`offsets_lr`); weight decay on weight
matrices only - none on biases, norms, gates, embeddings (token / position embeddings, the learned queries
and the image-start vector). `parameter_table` lists every trainable parameter with its group, learning
rate and decay: the test checks the rules on it, and `deem-eval align --print-groups` shows it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .stages import OptimConfig, StageConfig


def group_of(name: str) -> str:
    """The stage group a DeemModel (or MMFSNet, prefixed "mmfs.") parameter belongs to."""
    if name.startswith("mmfs."):
        return "mmfs"
    if name.startswith("visual.encoder.trunk."):
        return "encoder_trunk"
    if name.startswith("visual.encoder."):
        return "encoder_adapters"
    if name.startswith(("visual.", "image_start")):
        return "tokenizer"
    if name.startswith("xattn."):
        return "xattn"
    return "llm"


def no_decay(name: str, param: torch.Tensor) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return (param.ndim < 2 or leaf in ("bias", "gate", "gamma", "queries", "image_start") or "norm" in name
            or "embed" in name)


@dataclass(frozen=True)
class ParamRow:
    name: str
    group: str          # stage group (encoder_trunk, ..., llm)
    lr: float
    weight_decay: float
    numel: int


def _lr_for(name: str, group: str, optim: OptimConfig) -> float:
    if "sampling_offsets" in name and optim.offsets_lr is not None:
        return optim.offsets_lr
    if group == "encoder_trunk" and optim.trunk_lr is not None:
        return optim.trunk_lr
    return optim.lr


def parameter_table(named: Iterable[tuple[str, nn.Parameter]], stage: StageConfig) -> list[ParamRow]:
    """Every parameter of the stage's groups, with its learning rate and weight decay."""
    rows = []
    for name, p in named:
        group = group_of(name)
        if group not in stage.train:
            continue
        rows.append(ParamRow(name, group, _lr_for(name, group, stage.optim),
                             0.0 if no_decay(name, p) else stage.optim.weight_decay, p.numel()))
    return rows


def select_trainable(named: list[tuple[str, nn.Parameter]], stage: StageConfig) -> list[tuple[str, nn.Parameter]]:
    """requires_grad on the stage's groups only; returns those parameters."""
    keep = {r.name for r in parameter_table(named, stage)}
    out = []
    for name, p in named:
        p.requires_grad_(name in keep)
        if name in keep:
            out.append((name, p))
    return out


def build_optimizer(named: list[tuple[str, nn.Parameter]], stage: StageConfig
                    ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with one group per (lr, weight decay) pair, and the warm-up + cosine (or constant) schedule."""
    params = dict(named)
    buckets: dict[tuple[float, float], list[nn.Parameter]] = {}
    for row in parameter_table(named, stage):
        buckets.setdefault((row.lr, row.weight_decay), []).append(params[row.name])
    o = stage.optim
    groups = [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in sorted(buckets.items())]
    optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=o.betas, eps=o.eps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(o, stage.steps))


def schedule(o: OptimConfig, steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if o.warmup and step < o.warmup:
            return (step + 1) / o.warmup
        if o.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - o.warmup) / max(1, steps - o.warmup))))
    return factor
