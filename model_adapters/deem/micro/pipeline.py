"""`deem-eval train-micro`: the whole small world DEEM stands on, trained here, end to end, resumable.

Phases (each in its own directory under --out, skipped once its `done.json` exists; a stopped phase resumes
from its last state):

    world/             the training images, captions and object lists (own seed stream, natural style only)
    micro-clip/        ConvNeXt image tower + text tower, contrastive           (the CLIP ConvNeXt-B role)
    micro-sd/          pixel-space text-conditioned UNet on micro-CLIP text      (the Stable Diffusion 2.1 role)
    micro-llm/         a small Llama pretrained on the world's text             (the Vicuna role)
    deem-micro/        stage 1 (captions + 5 CSR via frozen micro-SD, MMFSNet) -> stage 2 (answers + 5 CSR)
    deem-micro-nocsr/  the same stages with csr_weight 0                        (the paper's DEEM*)

`train_micro.json` at the top records the plan, each phase's time, the data fingerprint and the command;
`--ship` copies the three shipped models into the package (model_adapters/deem/weights/).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deem_eval.core.atomic import atomic_write_text
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.version import __version__

from ..model.checkpoint import WEIGHTS_DIR
from .loop import LoopConfig, is_done, mark_done
from .world import WorldConfig

MANIFEST = "train_micro.json"
SHIPPED = ("deem-micro", "deem-micro-nocsr", "micro-clip")


@dataclass(frozen=True)
class StagePlan:
    steps: int
    batch_size: int
    lr: float
    warmup: int


@dataclass(frozen=True)
class MicroPlan:
    world: WorldConfig = field(default_factory=WorldConfig)
    clip: LoopConfig = field(default_factory=lambda: LoopConfig(steps=400, lr=2e-3, warmup=40, save_every=100))
    clip_batch: int = 128
    sd: LoopConfig = field(default_factory=lambda: LoopConfig(steps=500, lr=1e-3, warmup=40, save_every=50))
    sd_batch: int = 24
    sd_sample_steps: int = 50
    llm: LoopConfig = field(default_factory=lambda: LoopConfig(steps=300, lr=2e-3, warmup=30, save_every=100))
    llm_batch: int = 64
    # DEEM's stages at micro scale: the checked-in configs with steps, batch and learning rates scaled
    # (the ratios trunk : base : offsets of the official optimiser are kept)
    pretrain: StagePlan = StagePlan(steps=300, batch_size=24, lr=1e-3, warmup=30)
    sft: StagePlan = StagePlan(steps=800, batch_size=32, lr=5e-4, warmup=50)
    csr_batch: int = 8         # images per micro-batch that the diffusion loss sees (CPU budget; DEEM: all)
    seed: int = 0


FULL = MicroPlan()
QUICK = MicroPlan(world=WorldConfig(singles=96, scenes=32), clip=LoopConfig(steps=6, lr=2e-3, save_every=3),
                  clip_batch=32, sd=LoopConfig(steps=3, lr=1e-3, save_every=2), sd_batch=8, sd_sample_steps=2,
                  llm=LoopConfig(steps=3, lr=2e-3, save_every=2), llm_batch=8,
                  pretrain=StagePlan(steps=3, batch_size=4, lr=1e-3, warmup=1),
                  sft=StagePlan(steps=4, batch_size=4, lr=5e-4, warmup=1))


def plan_dict(plan: MicroPlan) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(plan)))


# ---- data views over the world ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CaptionExample:
    image: Any
    caption: str


@dataclass(frozen=True)
class AnswerExample:
    image: Any
    turns: tuple[tuple[str, str], ...]


class _WorldView:
    def __init__(self, world, rows: list[Any]):
        self.world, self.rows = world, rows

    def __len__(self) -> int:
        return len(self.rows)


class CaptionData(_WorldView):
    def __getitem__(self, i: int) -> CaptionExample:
        from .world import image

        index = self.rows[i]
        return CaptionExample(image(self.world, index), self.world.items[index].caption)


class AnswerData(_WorldView):
    def __getitem__(self, i: int) -> AnswerExample:
        from .world import image

        qa = self.rows[i]
        return AnswerExample(image(self.world, qa.index), ((qa.question, qa.answer),))


# ---- the phases ----------------------------------------------------------------------------------------------

def _phase(manifest: dict, name: str, run, progress: bool) -> Any:
    started = time.perf_counter()
    value = run()
    if name not in manifest["phases"] or not manifest["phases"][name].get("done"):
        manifest["phases"][name] = {"seconds": round(time.perf_counter() - started, 1), "done": True}
    if progress:
        print(f"train-micro: {name} done ({manifest['phases'][name]['seconds']} s)", file=sys.stderr)
    return value


def train_micro(out: Path, *, plan: MicroPlan = FULL, resume: bool = False, progress: bool = True,
                command: str = "") -> dict[str, Any]:
    """Run every phase (skipping finished ones); returns the manifest."""
    out = Path(out).expanduser()
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise DeemEvalError(f"{manifest_path} is unreadable; remove {out} and start again") from None
        if manifest.get("plan") != plan_dict(plan):
            raise DeemEvalError(f"{out} holds a train-micro run with another plan (e.g. --quick vs full); choose "
                                "another --out")
        if not resume:
            raise DeemEvalError(f"{out} already holds a train-micro run; pass --resume to continue it, or choose "
                                "another --out")
    elif out.exists() and any(out.iterdir()):
        raise DeemEvalError(f"{out} is not empty and holds no train-micro run; choose another --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        manifest = {"plan": plan_dict(plan), "phases": {}, "created_by": f"deem-eval {__version__}",
                    "command": command}
    manifest["command"] = command or manifest.get("command", "")

    def save() -> None:
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    save()
    from ..model.tiny_tokenizer import micro_corpus, tiny_tokenizer
    from .world import load_or_render

    world = _phase(manifest, "world", lambda: load_or_render(out / "world", plan.world,
                                                                          progress=progress), progress)
    fingerprint = world.fingerprint()
    manifest["data_fingerprint"] = fingerprint
    save()
    tokenizer = tiny_tokenizer(1024, micro_corpus())
    provenance = {"data_fingerprint": fingerprint, "data_stream": "deem-micro-train", "command": command,
                  "created_by": f"deem-eval {__version__}"}
    clip = _phase(manifest, "micro-clip",
                  lambda: _clip_phase(out / "micro-clip", world, tokenizer, plan, provenance, progress), progress)
    save()
    teacher_dir = _phase(manifest, "micro-sd",
                         lambda: _sd_phase(out / "micro-sd", world, clip, tokenizer, plan, provenance, progress),
                         progress)
    save()
    llm_dir = _phase(manifest, "micro-llm",
                     lambda: _llm_phase(out / "micro-llm", world, tokenizer, plan, progress), progress)
    save()
    for variant, csr in (("deem-micro", True), ("deem-micro-nocsr", False)):
        for stage_name in ("pretrain", "sft"):
            key = f"{variant}/{stage_name}"
            _phase(manifest, key,
                   lambda v=variant, c=csr, s=stage_name: _deem_phase(out, v, s, c, world, clip, teacher_dir, llm_dir,
                                                                     plan, provenance, progress), progress)
            save()
    manifest["finished"] = True
    save()
    return manifest


def _clip_phase(directory: Path, world, tokenizer, plan: MicroPlan, provenance, progress):
    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES

    from .clip import MicroClipConfig, load_micro_clip, save_micro_clip
    from .train_clip import train_clip, zero_shot_accuracy

    final = directory / "final"
    if is_done(directory):
        return load_micro_clip(final)[0]
    config = MicroClipConfig(vocab_size=len(tokenizer))
    model, history = train_clip(directory, world, tokenizer, config=config, loop=plan.clip,
                                batch_size=plan.clip_batch, seed=plan.seed, progress=progress)
    acc = zero_shot_accuracy(model, tokenizer, world, list(CATEGORY_NAMES))
    save_micro_clip(model, tokenizer, final, {**provenance, "phase": "micro-clip",
                                              "plan": dataclasses.asdict(plan.clip),
                                              "train_zero_shot_accuracy": acc, "final_loss": history[-1]["loss"]})
    mark_done(directory, {"train_zero_shot_accuracy": acc, "final_loss": history[-1]["loss"]})
    return model


def _sd_phase(directory: Path, world, clip, tokenizer, plan: MicroPlan, provenance, progress) -> Path:
    from .train_sd import SCHEDULER, conditioning_gap, sample_grid, save_sd, train_sd

    final = directory / "final"
    if is_done(directory):
        return final
    unet, scheduler, history = train_sd(directory, world, clip, tokenizer, loop=plan.sd, batch_size=plan.sd_batch,
                                        seed=plan.seed, progress=progress)
    gap = conditioning_gap(unet, scheduler, clip, tokenizer, world, seed=plan.seed)
    save_sd(final, unet, scheduler, {**provenance, "phase": "micro-sd", "conditioning_gap": gap,
                                     "final_loss": history[-1]["loss"]})
    captions = [f"a photo of a {c}." for c in ("sun", "tree", "car", "cat", "fish", "apple", "clock", "house")]
    sample_grid(unet, dict(SCHEDULER), clip, tokenizer, captions, directory / "samples.png", seed=plan.seed,
                steps=plan.sd_sample_steps)
    atomic_write_text(directory / "teacher_checks.json", json.dumps({"conditioning_gap": gap}, indent=1) + "\n")
    mark_done(directory, {"conditioning_gap": gap})
    return final


def _llm_phase(directory: Path, world, tokenizer, plan: MicroPlan, progress) -> Path:
    from .train_llm import train_llm

    final = directory / "final"
    if is_done(directory):
        return final
    llm, history = train_llm(directory, world, tokenizer, loop=plan.llm, batch_size=plan.llm_batch, seed=plan.seed,
                             progress=progress)
    llm.save_pretrained(str(final))
    mark_done(directory, {"final_loss": history[-1]["loss"]})
    return final


def stage_for(name: str, sp: StagePlan, csr: bool, csr_batch: int = 0):
    """The checked-in stage config at micro scale (see MicroPlan)."""
    from ..training.stages import load_stage

    overrides = [f"steps={sp.steps}", f"batch_size={sp.batch_size}", f"optim.lr={sp.lr}", f"optim.warmup={sp.warmup}",
                 "image_size=64", "diffusion_size=32", f"csr_batch={csr_batch}"]
    if name == "pretrain":   # official ratios: trunk 2e-5 / base 1e-4, offsets 1e-5 / 1e-4
        overrides += [f"optim.trunk_lr={sp.lr * 0.2}", f"optim.offsets_lr={sp.lr * 0.1}"]
    if not csr:
        overrides.append("csr_weight=0.0")
    return load_stage(name, overrides)


def build_micro_model(variant: str, clip, llm_dir: Path, seed: int = 0):
    """DEEM-micro with micro-CLIP's trunk and the pretrained micro-LLM (DEEM's own modules seeded)."""
    from transformers import LlamaForCausalLM

    from ..model.presets import build_model, get_preset

    model = build_model(get_preset(variant), seed=seed)
    model.visual.encoder.trunk.load_state_dict(clip.trunk.state_dict(), strict=True)
    llm = LlamaForCausalLM.from_pretrained(str(llm_dir))
    model.llm.load_state_dict(llm.state_dict(), strict=True)
    with torch.no_grad():
        model.image_start.copy_(model.llm.get_input_embeddings().weight[: model.text_vocab].mean(0))
    return model


def _deem_phase(out: Path, variant: str, stage_name: str, csr: bool, world, clip, teacher_dir: Path, llm_dir: Path,
                plan: MicroPlan, provenance, progress) -> Path:
    from ..model.checkpoint import load_checkpoint
    from ..model.presets import get_preset
    from ..training.diffusion import build_teacher
    from ..training.mmfs import MMFSNet
    from ..training.train import MMFS_FILE, train_stage
    from .tasks import questions

    directory = out / variant / stage_name
    final = directory / "final"
    if is_done(directory):
        return final
    stage = stage_for(stage_name, plan.pretrain if stage_name == "pretrain" else plan.sft, csr, plan.csr_batch)
    config = get_preset(variant)
    if stage_name == "pretrain":
        model = build_micro_model(variant, clip, llm_dir, plan.seed)
        base = None
    else:
        base = out / variant / "pretrain" / "final"
        model = load_checkpoint(base)
    teacher = mmfs = None
    if csr:
        dcfg = dataclasses.replace(config.diffusion, source=str(teacher_dir))
        teacher = build_teacher(dcfg, seed=plan.seed)
        mmfs = MMFSNet.from_unet(teacher.unet, feature_dim=config.visual.feature_dim,
                                 level_strides=tuple(config.visual.convnext.strides[i]
                                                     for i in config.visual.mmfs_levels),
                                 heads=4, points=4)
        if base is not None and (base / MMFS_FILE).is_file():
            from safetensors.torch import load_file

            mmfs.load_state_dict(load_file(str(base / MMFS_FILE)), strict=True)
        mmfs.attach(teacher.unet)
    data: CaptionData | AnswerData
    if stage.loss == "caption":
        data = CaptionData(world, list(range(len(world))))
    else:
        data = AnswerData(world, questions(world, plan.seed))
    result = train_stage(model, stage, data, directory, teacher=teacher, mmfs=mmfs, seed=plan.seed, resume=True,
                         save_every=100, progress=progress,
                         provenance={**provenance, "variant": variant, "phase": f"{variant}/{stage_name}",
                                     "base": str(base) if base else "micro-clip trunk + micro-llm",
                                     "teacher": "micro-sd" if csr else None})
    mark_done(directory, {"seconds": round(result.seconds, 1), "final": result.history[-1] if result.history else None})
    return final


def ship(out: Path, target: Path = WEIGHTS_DIR) -> list[Path]:
    """Copy the trained DEEM-micro, DEEM-micro* and micro-CLIP into the package (what `--model deem` uses)."""
    sources = {"deem-micro": out / "deem-micro" / "sft" / "final",
               "deem-micro-nocsr": out / "deem-micro-nocsr" / "sft" / "final",
               "micro-clip": out / "micro-clip" / "final"}
    missing = [str(p) for p in sources.values() if not p.is_dir()]
    if missing:
        raise DeemEvalError(f"cannot ship: {', '.join(missing)} not trained yet (run train-micro to the end)")
    shipped = []
    for name, src in sources.items():
        dst = target / name
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tmp*"))
        shipped.append(dst)
    return shipped
