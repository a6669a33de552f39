"""DEEM's training stages as data: checked-in TOML files whose values are the official ones, overridable.

    configs/pretrain.toml   stage 1: captions + 5 * CSR; LLM frozen but its cross-attention blocks;
                            ConvNeXt trunk trainable; MMFSNet trained; UNet frozen
    configs/sft.toml        stage 2: answers only + 5 * CSR; LLM trainable; trunk frozen

(in model_adapters/deem/training/, installed as package data)

`load_stage(name_or_path, overrides)` reads one (a name means the checked-in file), applies `key=value`
overrides such as `optim.lr=3e-4` or `steps=200` (typed by the field; an unknown key lists the valid ones),
and returns a frozen `StageConfig`; the resolved config is saved in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError

from ..model.config import to_jsonable

CONFIG_DIR = Path(__file__).parent / "configs"
STAGES = ("pretrain", "sft")
#: Parameter groups a stage can train (see `optim.trainable_groups`).
GROUPS = ("encoder_trunk", "encoder_adapters", "tokenizer", "xattn", "mmfs", "llm")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4                   # base learning rate
    trunk_lr: float | None = None      # the ConvNeXt trunk's (None: lr)
    offsets_lr: float | None = None    # every deformable `sampling_offsets` layer's (None: lr)
    betas: tuple[float, float] = (0.9, 0.995)
    eps: float = 1e-6
    weight_decay: float = 0.05         # never on biases, norms, gates, embeddings (see optim.py)
    warmup: int = 1000
    schedule: str = "cosine"           # cosine | constant (after the linear warm-up)
    max_grad_norm: float = 1.0


@dataclass(frozen=True)
class StageConfig:
    name: str = "pretrain"
    loss: str = "caption"              # caption: next-token loss on captions | answer: on answer tokens only
    csr_weight: float = 5.0            # 0 turns CSR off (the teacher is then not loaded: DEEM*)
    text_weight: float = 1.0
    train: tuple[str, ...] = ("encoder_trunk", "encoder_adapters", "tokenizer", "xattn", "mmfs")
    steps: int = 10000
    batch_size: int = 4                # per process and micro-batch
    grad_accum: int = 1
    global_batch: int = 0              # > 0: examples per optimiser step over all processes; sets the per-process
                                       # batch (global / (processes * grad_accum)), so any process count trains alike
    gradient_checkpointing: bool = False   # recompute ConvNeXt stages and LLM layers in backward (memory for time)
    image_size: int | None = 256       # encoder input (None: the model config's)
    diffusion_size: int | None = 512   # teacher input (None: the teacher config's)
    t_min: int = 200                   # timesteps drawn from 0..999 and squeezed into [t_min, t_max]
    t_max: int = 799
    mmfs: bool = True                  # feed the encoder's c2..c5 maps into the UNet (MMFSNet)
    csr_batch: int = 0                 # > 0: the diffusion loss uses only the first N images of a micro-batch
                                       # (a compute saving for CPU-scale runs; 0: all, as DEEM does)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def check(self) -> None:
        if self.loss not in ("caption", "answer"):
            raise DeemEvalError(f"stage {self.name}: loss must be caption or answer, got {self.loss!r}")
        unknown = sorted(set(self.train) - set(GROUPS))
        if unknown:
            raise DeemEvalError(f"stage {self.name}: unknown parameter groups {unknown}; choose from {', '.join(GROUPS)}")
        if not self.train:
            raise DeemEvalError(f"stage {self.name}: nothing to train (train = [])")
        if min(self.steps, self.batch_size, self.grad_accum) < 1:
            raise DeemEvalError(f"stage {self.name}: steps, batch_size and grad_accum must be at least 1")
        if self.optim.schedule not in ("cosine", "constant"):
            raise DeemEvalError(f"stage {self.name}: optim.schedule must be cosine or constant")
        if not 0 <= self.t_min <= self.t_max:
            raise DeemEvalError(f"stage {self.name}: need 0 <= t_min <= t_max")
        if self.global_batch < 0:
            raise DeemEvalError(f"stage {self.name}: global_batch must be >= 0")
        if self.csr_weight < 0:
            raise DeemEvalError(f"stage {self.name}: csr_weight must be >= 0")

    def per_process_batch(self, world_size: int) -> int:
        """The micro-batch each process takes; refuses a global batch the processes cannot share evenly."""
        if not self.global_batch:
            return self.batch_size
        share = world_size * self.grad_accum
        if self.global_batch % share:
            raise DeemEvalError(f"stage {self.name}: global_batch {self.global_batch} is not divisible by processes "
                                f"({world_size}) x grad_accum ({self.grad_accum}); choose a multiple of {share}")
        return self.global_batch // share

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))

    @property
    def uses_csr(self) -> bool:
        return self.csr_weight > 0


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeemEvalError(f"stage config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeemEvalError(f"stage config {path}: {exc}") from None


def _coerce(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise DeemEvalError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise DeemEvalError(f"{where}: [{key}] must be a table")
            kwargs[key] = _coerce(hint, value, f"{where} [{key}]")
        else:
            kwargs[key] = _typed(value, hint, f"{where}: {key}")
    return cls(**kwargs)


def _typed(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _typed(value, inner[0], where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise DeemEvalError(f"{where}: expected a list, got {value!r}")
        item = args[0]
        return tuple(_typed(v, item, where) for v in value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise DeemEvalError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """"optim.lr=3e-4" -> (["optim", "lr"], 3e-4): the value is read as TOML (numbers, true/false, lists,
    quoted strings) and falls back to a plain string."""
    if "=" not in text:
        raise DeemEvalError(f"--set {text!r}: expected KEY=VALUE (e.g. --set optim.lr=3e-4)")
    key, raw = text.split("=", 1)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for text in overrides:
        path, value = parse_override(text)
        target = out
        for part in path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise DeemEvalError(f"--set {text!r}: {part} is not a table")
        target[path[-1]] = value
    return out


def load_stage(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> StageConfig:
    """A checked-in stage ("pretrain", "sft") or a TOML file, with `key=value` overrides applied."""
    text = str(name_or_path)
    path = CONFIG_DIR / f"{text}.toml" if text in STAGES else Path(text).expanduser()
    if text not in STAGES and not path.is_file():
        raise DeemEvalError(f"unknown stage {text!r}: choose {' | '.join(STAGES)} or give a TOML file")
    data = apply_overrides(_read_toml(path), list(overrides))
    stage = _coerce(StageConfig, data, f"stage config {path}" + (" (with --set overrides)" if overrides else ""))
    stage.check()
    return stage


def stage_from_dict(data: dict[str, Any]) -> StageConfig:
    return _coerce(StageConfig, data, "saved stage config")
