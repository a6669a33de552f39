"""The CSR training loop behind `deem-eval align`: data order, optimiser, accumulation, checkpoints, resume.

Everything random is derived from (seed, step, micro-batch): the data order of each epoch, the VAE
posterior sample, the noise and the timesteps. A run resumed from a checkpoint therefore continues exactly
as the uninterrupted run would have (same batches, same noise), and the data position needs no state of
its own - it follows from the step number.

Output directory:
    <out>/checkpoint-000100/   model weights (DEEM delta checkpoint, or the LLaVA tower + projection),
                               optimizer.pt, trainer_state.json
    <out>/final/               DEEM: a checkpoint for `-M checkpoint=`; LLaVA: save_pretrained() of the
                               whole model (+ processor) for the `hf` adapter, with csr_projection.safetensors
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.rng import derive_rng, derive_torch_generator
from deem_eval.core.version import __version__

from .csr import DEEM_GROUPS, csr_losses
from .data import AlignData, Example

STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class AlignOptions:
    out: Path
    steps: int = 100
    # what is trained
    target: str = "deem"                       # deem | llava
    preset: str | None = None                  # DEEM base (default deem-7b) ...
    checkpoint: Path | None = None             # ... or a DEEM checkpoint to continue from
    llava: str | None = None                   # LLaVA-style model (directory or hub id) for target llava
    diffusion: str | None = None               # teacher spec; DEEM default: the config's own
    groups: tuple[str, ...] = DEEM_GROUPS
    train_projector: bool = False              # llava: also train the multi-modal projector
    # data
    images: Path | None = None
    jsonl: Path | None = None
    dataset: str | None = None
    dataset_split: str = "train"
    image_column: str = "image"
    caption_column: str | None = "text"
    captions: bool = True                      # False: ignore captions (diffusion loss only)
    # optimisation
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup: int = 0
    max_grad_norm: float = 1.0
    csr_weight: float | None = None            # default: the config's (5.0)
    text_weight: float = 1.0
    # run
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"                    # auto: bf16 autocast on CUDA, fp32 on CPU | fp32 | bf16
    save_every: int = 0                        # 0: only at the end
    stop_at: int | None = None                 # stop (with a checkpoint) after this step; resume later
    keep_last: int = 2
    resume: bool = False
    export_full: bool = False                  # DEEM: final checkpoint with the LLM included
    progress: bool = True
    components: Path | None = None
    download: bool = False

    def identity(self) -> str:
        """What must not change between a run and its resumption."""
        keep = {k: v for k, v in dataclasses.asdict(self).items()
                if k not in {"out", "steps", "stop_at", "save_every", "keep_last", "resume", "progress",
                             "export_full", "device", "components", "download"}}
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class AlignResult:
    out: Path
    final: Path
    steps: int
    resumed_from: int
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped_images: int = 0
    truncated_captions: int = 0


# ---- set-up -----------------------------------------------------------------------------------------

def load_data(opt: AlignOptions) -> AlignData:
    from .data import caption_source

    return caption_source(images=opt.images, jsonl=opt.jsonl, dataset=opt.dataset, dataset_split=opt.dataset_split,
                          image_column=opt.image_column, caption_column=opt.caption_column, offer_webdataset=False)


def _device(opt: AlignOptions) -> torch.device:
    from ..model.devices import resolve_device

    return resolve_device(opt.device)


def _frozen_dtype(opt: AlignOptions, device: torch.device) -> torch.dtype:
    if opt.precision == "fp32" or (opt.precision == "auto" and device.type != "cuda"):
        return torch.float32
    return torch.bfloat16


def build_target(opt: AlignOptions, device: torch.device):
    """(CSR target, diffusion teacher, base description) for the options."""
    from .csr import DeemCsrTarget, LlavaCsrTarget
    from .diffusion import build_teacher, diffusion_config_for

    frozen = _frozen_dtype(opt, device)
    if opt.target == "deem":
        from ..model.checkpoint import load_checkpoint
        from ..model.presets import build_model, get_preset

        expect = get_preset(opt.preset) if opt.preset else None
        _check_components_first(opt, expect)
        if opt.checkpoint is not None:
            model = load_checkpoint(opt.checkpoint, expect=expect, device=device, dtype=frozen,
                                    components=opt.components, download=opt.download)
        else:
            model = build_model(expect or get_preset("deem-7b"), seed=opt.seed, device=device, dtype=frozen,
                                components=opt.components, download=opt.download)
        for module in (model.visual, model.xattn):     # trained weights stay in fp32 (autocast does the rest)
            module.float()
        model.image_start.data = model.image_start.data.float()
        dcfg = model.config.diffusion if opt.diffusion is None else dataclasses.replace(
            diffusion_config_for(opt.diffusion), condition_dim=model.config.diffusion.condition_dim)
        teacher = build_teacher(dcfg, seed=opt.seed, device=device, dtype=frozen, components=opt.components,
                                download=opt.download)
        return DeemCsrTarget(model, opt.groups), teacher
    if opt.target == "llava":
        if opt.llava is None or opt.diffusion is None:     # (checked with the options; here for the types)
            raise DeemEvalError("--target llava needs --llava PATH_OR_HUB_ID and --diffusion SPEC")
        model, processor = _load_llava(opt.llava, device, frozen)
        teacher = build_teacher(diffusion_config_for(opt.diffusion), seed=opt.seed, device=device, dtype=frozen,
                                components=opt.components, download=opt.download)
        target = LlavaCsrTarget(model, processor, teacher.config.condition_dim, seed=opt.seed,
                                train_projector=opt.train_projector)
        for _, p in target.trainable():
            p.data = p.data.float()
        return target, teacher
    raise DeemEvalError(f"unknown --target {opt.target!r}; choose deem or llava")


def _check_components_first(opt: AlignOptions, expect) -> None:
    """Name every missing component checkpoint (diffusion teacher included) before loading anything big."""
    from ..model.checkpoint import read_meta
    from ..model.config import DeemConfig
    from ..model.presets import get_preset, resolve_components

    roles: tuple[str, ...] = ("image encoder", "LLM", "tokenizer")
    if opt.checkpoint is not None:
        meta = read_meta(opt.checkpoint)
        config = DeemConfig.from_dict(meta["config"])
        if meta.get("contents") == "full":
            roles = ()
    else:
        config = expect or get_preset("deem-7b")
    if opt.diffusion is None:
        roles += ("diffusion",)
    resolve_components(config, roles=roles, components=opt.components, download=opt.download)


def _load_llava(name: str, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ..model.init import move_

    try:
        processor = AutoProcessor.from_pretrained(name)
        model = AutoModelForImageTextToText.from_pretrained(name, dtype=dtype)
        move_(model, device)
    except OSError as exc:
        raise DeemEvalError(f"cannot load LLaVA-style model {name!r}: {exc}") from None
    return model, processor


# ---- the loop -------------------------------------------------------------------------------------------

def example_index(data_len: int, seed: int, position: int) -> int:
    """The example at global position `position` of an endless, per-epoch shuffled stream."""
    epoch, offset = divmod(position, data_len)
    return int(_epoch_order(data_len, seed, epoch)[offset])


@functools.lru_cache(maxsize=2)
def _epoch_order(data_len: int, seed: int, epoch: int):
    return derive_rng(seed, "align-order", epoch).permutation(data_len)


def _load_example(example: Example) -> Any | None:
    from ..model.images import open_rgb

    try:
        return open_rgb(example.image)
    except DeemEvalError:
        return None


def _batch(data: AlignData, opt: AlignOptions, position: int, min_side: int) -> tuple[list, list, int, int]:
    """(images, captions, next position, skipped): `batch_size` usable examples from `position` on."""
    images: list[Any] = []
    captions: list[str | None] = []
    skipped = 0
    while len(images) < opt.batch_size:
        if skipped > 10 * opt.batch_size + len(data):
            raise DeemEvalError(f"{data.source}: no readable images of at least {min_side} px")
        example = data[example_index(len(data), opt.seed, position)]
        position += 1
        image = _load_example(example)
        if image is None or min(image.size) < min_side:
            skipped += 1
            continue
        images.append(image)
        captions.append(example.caption if opt.captions else None)
    return images, captions, position, skipped


def _schedule(opt: AlignOptions):
    def factor(step: int) -> float:
        if opt.warmup and step < opt.warmup:
            return (step + 1) / opt.warmup
        progress = (step - opt.warmup) / max(1, opt.steps - opt.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def _validate(opt: AlignOptions) -> None:
    """Option errors, before any data or model is loaded."""
    if opt.steps < 1 or opt.batch_size < 1 or opt.grad_accum < 1:
        raise DeemEvalError("--steps, --batch-size and --grad-accum must be at least 1")
    if opt.target not in ("deem", "llava"):
        raise DeemEvalError(f"unknown --target {opt.target!r}; choose deem or llava")
    if opt.target == "llava" and not opt.llava:
        raise DeemEvalError("--target llava needs --llava PATH_OR_HUB_ID")
    if opt.target == "llava" and opt.diffusion is None:
        raise DeemEvalError("--target llava needs --diffusion (sd-2.1-base, random-tiny, a diffusers directory "
                            "or hub:org/name)")
    if sum(x is not None for x in (opt.images, opt.jsonl, opt.dataset)) != 1:
        raise DeemEvalError("give exactly one data source: --images DIR, --jsonl FILE or --dataset NAME")


def run_align(opt: AlignOptions) -> AlignResult:
    from tqdm import tqdm

    _validate(opt)
    out = Path(opt.out).expanduser()
    existing = list_checkpoints(out)
    if existing and not opt.resume:
        raise DeemEvalError(f"{out} already holds checkpoints ({existing[-1].name}); pass --resume to continue "
                            "that run, or choose another --out")
    data = load_data(opt)
    device = _device(opt)
    target, teacher = build_target(opt, device)
    min_side = _min_side(target)
    weight = teacher.config.weight if opt.csr_weight is None else opt.csr_weight
    params = [p for _, p in target.trainable()]
    if not params:
        raise DeemEvalError("nothing to train: every parameter group is frozen")
    optimizer = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay, betas=(0.9, 0.995), eps=1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(opt))
    start = 0
    history: list[dict[str, Any]] = []
    if existing and opt.resume:
        start, history = _resume(existing[-1], opt, target, optimizer, scheduler)
    autocast = _autocast(opt, device)
    end = opt.steps if opt.stop_at is None else min(opt.steps, opt.stop_at)
    result = AlignResult(out, out / "final", end, start, history)
    per_step = opt.batch_size * opt.grad_accum
    position = start * per_step     # positions of skipped images are not replayed exactly on resume (rare)
    if start >= end:
        print(f"{out}: already trained for {start} steps", file=sys.stderr)
    bar = tqdm(total=opt.steps, initial=start, desc=f"CSR {target.kind}", unit="step", disable=not opt.progress,
               dynamic_ncols=True, file=sys.stderr)
    _train_mode(target, True)
    for step in range(start, end):
        started = time.perf_counter()
        totals = {"loss": 0.0, "diffusion": 0.0, "text": 0.0, "text_batches": 0, "truncated": 0}
        for micro in range(opt.grad_accum):
            images, captions, position, skipped = _batch(data, opt, position, min_side)
            result.skipped_images += skipped
            gen = derive_torch_generator(opt.seed, "csr-noise", step, micro,
                                         device="cuda" if device.type == "cuda" else "cpu")
            with autocast:
                losses = csr_losses(target, teacher, images, captions, gen, weight=weight,
                                    text_weight=opt.text_weight)
            (losses.total / opt.grad_accum).backward()
            totals["loss"] += float(losses.total.detach()) / opt.grad_accum
            totals["diffusion"] += losses.diffusion / opt.grad_accum
            if losses.text is not None:
                totals["text"] += losses.text
                totals["text_batches"] += 1
            result.truncated_captions += losses.truncated
            totals["truncated"] += losses.truncated
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, opt.max_grad_norm if opt.max_grad_norm > 0
                                                         else float("inf")))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        record = {"step": step + 1, "loss": round(totals["loss"], 6), "diffusion": round(totals["diffusion"], 6),
                  "text": round(totals["text"] / totals["text_batches"], 6) if totals["text_batches"] else None,
                  "truncated_captions": totals["truncated"], "grad_norm": round(grad_norm, 6),
                  "lr": scheduler.get_last_lr()[0],
                  "seconds": round(time.perf_counter() - started, 4)}
        history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}", diff=f"{record['diffusion']:.4f}",
                        **({"text": f"{record['text']:.3f}"} if record["text"] is not None else {}))
        if opt.save_every and (step + 1) % opt.save_every == 0 and step + 1 < end:
            _save(out / f"checkpoint-{step + 1:06d}", opt, target, optimizer, scheduler, step + 1, history)
            _prune(out, opt.keep_last)
    bar.close()
    _train_mode(target, False)
    if end > start:
        _save(out / f"checkpoint-{end:06d}", opt, target, optimizer, scheduler, end, history)
        _prune(out, opt.keep_last)
    if end == opt.steps:
        _export_final(result.final, opt, target)
    (out / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")
    result.history = history
    if result.skipped_images:
        print(f"align: skipped {result.skipped_images} unreadable or too-small images", file=sys.stderr)
    if result.truncated_captions:
        print(f"align: truncated {result.truncated_captions} captions longer than the context", file=sys.stderr)
    return result


def _min_side(target) -> int:
    if target.kind == "deem":
        return target.model.config.visual.stride
    return 1


def _train_mode(target, on: bool) -> None:
    """Training mode only for a LLaVA vision tower (its dropout); DEEM's own modules have no dropout or
    batch norm, and frozen parts (LLM, teacher) always stay in eval mode."""
    target.model.eval()
    if target.kind == "llava":
        target.tower.train(on)


def _autocast(opt: AlignOptions, device: torch.device):
    import contextlib

    if _frozen_dtype(opt, device) == torch.bfloat16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---- checkpoints -----------------------------------------------------------------------------------------

def list_checkpoints(out: Path) -> list[Path]:
    if not Path(out).is_dir():
        return []
    return sorted(p for p in Path(out).glob("checkpoint-*") if (p / STATE_FILE).is_file())


def _save(path: Path, opt: AlignOptions, target, optimizer, scheduler, step: int, history) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    _save_weights(tmp, opt, target, final=False)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
    state = {"step": step, "identity": opt.identity(), "options": json.loads(json.dumps(
        dataclasses.asdict(opt), default=str)), "history": history, "created_by": f"deem-eval {__version__}"}
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def _save_weights(path: Path, opt: AlignOptions, target, *, final: bool) -> None:
    from safetensors.torch import save_file

    if target.kind == "deem":
        from ..model.checkpoint import save_checkpoint

        full = final and (opt.export_full or _base_is_full(opt))
        save_checkpoint(target.model, path, contents="full" if full else "delta", seed=opt.seed,
                        note=f"deem-eval align ({'final' if final else 'checkpoint'})")
        return
    save_file(target.state_dict_to_save(), str(path / "csr_state.safetensors"))
    (path / "csr_config.json").write_text(json.dumps({"llava": opt.llava, "diffusion": opt.diffusion},
                                                     indent=1) + "\n", encoding="utf-8")


def _base_is_full(opt: AlignOptions) -> bool:
    if opt.checkpoint is None:
        return False
    from ..model.checkpoint import read_meta

    return read_meta(opt.checkpoint).get("contents") == "full"


def _resume(path: Path, opt: AlignOptions, target, optimizer, scheduler) -> tuple[int, list]:
    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    if state.get("identity") != opt.identity():
        raise DeemEvalError(f"{path}: cannot resume - it was trained with different options (data, model, "
                            "optimisation or seed). Use the same options, or another --out.")
    planned = state.get("options", {}).get("steps")
    if planned is not None and planned != opt.steps:
        print(f"align: note: {path} was planned for {planned} steps, now --steps {opt.steps}; the learning-rate "
              "schedule changes accordingly", file=sys.stderr)
    if target.kind == "deem":
        from safetensors.torch import load_file

        from ..model.checkpoint import WEIGHTS_FILE

        target.load_saved_state(load_file(str(path / WEIGHTS_FILE)))
    else:
        from safetensors.torch import load_file

        target.load_saved_state(load_file(str(path / "csr_state.safetensors")))
    saved = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)   # tensors and plain values only
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    print(f"resuming from {path} (step {state['step']})", file=sys.stderr)
    return int(state["step"]), list(state.get("history", []))


def _prune(out: Path, keep_last: int) -> None:
    if keep_last < 1:
        return
    for old in list_checkpoints(out)[:-keep_last]:
        shutil.rmtree(old)


def _export_final(path: Path, opt: AlignOptions, target) -> None:
    from safetensors.torch import save_file

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    if target.kind == "deem":
        _save_weights(path, opt, target, final=True)
        return
    target.model.save_pretrained(str(path))
    target.processor.save_pretrained(str(path))
    save_file({k: v.detach().contiguous() for k, v in target.projection.state_dict().items()},
              str(path / "csr_projection.safetensors"))
