"""DEEM checkpoints of ours: a directory with the config, DEEM's own weights, the tokenizer and maybe the LLM.

    <dir>/deem_config.json   {"format": 1, "contents": "full" | "delta", "config": {...DeemConfig...},
                              "seed": 0, "created_by": "deem-eval 0.1.0", "note": "..."}
    <dir>/deem.safetensors   everything that is not the LLM: encoder, adapters, resampler, projections,
                             cross-attention blocks, image-start vector
    <dir>/tokenizer/         the tokenizer (with the two image tokens)
    <dir>/llm/               "full" only: the LLM, via save_pretrained

A "delta" checkpoint (what `deem-eval align` writes) rebuilds the LLM from the config's source (the preset's
components, or the seeded random LLM of deem-tiny) and loads only DEEM's weights on top; the tokenizer is
the saved copy in <dir>/tokenizer/ (the config's tokenizer source only when a checkpoint has none), so a
checkpoint keeps the tokenizer it was trained with.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.version import __version__

from .config import DeemConfig, config_differences

CONFIG_FILE = "deem_config.json"
WEIGHTS_FILE = "deem.safetensors"
TOKENIZER_DIR = "tokenizer"
FORMAT = 1
#: The shipped checkpoints (DEEM-micro, DEEM-micro*, micro-CLIP), package data next to this package:
#: model_adapters/deem/weights/<name>/ (written by `deem-eval train-micro --ship`).
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def own_state(model) -> dict[str, torch.Tensor]:
    """DEEM's own tensors (all but the LLM's), contiguous and detached."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.startswith("llm.")}


def save_checkpoint(model, directory: Path, *, contents: Literal["full", "delta"] = "full", seed: int = 0,
                    note: str = "") -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(own_state(model), str(directory / WEIGHTS_FILE), metadata={"format": str(FORMAT)})
    model.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    if contents == "full":
        model.llm.save_pretrained(str(directory / "llm"))
    meta = {"format": FORMAT, "contents": contents, "config": model.config.to_dict(), "seed": seed,
            "created_by": f"deem-eval {__version__}", "note": note}
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return directory


def read_meta(directory: Path) -> dict:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise DeemEvalError(f"{directory}: not a DEEM checkpoint (no {CONFIG_FILE}); save one with "
                            "`deem-eval align` or deem_eval.model_adapters.deem.model.checkpoint.save_checkpoint")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise DeemEvalError(f"{path}: checkpoint format {meta.get('format')!r} is not supported (expected {FORMAT})")
    return meta


def check_matches(config: DeemConfig, expected: DeemConfig, where: Path) -> None:
    diffs = config_differences(expected, config)
    if diffs:
        shown = "\n  ".join(diffs[:20]) + ("\n  ..." if len(diffs) > 20 else "")
        raise DeemEvalError(f"{where}: checkpoint config does not match preset {expected.name!r} "
                            f"(preset != checkpoint):\n  {shown}\nDrop -M preset to use the checkpoint's own config.")


def load_checkpoint(directory: Path, *, expect: DeemConfig | None = None, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32, components: Path | None = None, download: bool = False):
    """A DeemModel from `directory`; refuses a config that differs from `expect` (listing the differences)."""
    from safetensors.torch import load_file

    from .init import move_
    from .model import DeemModel
    from .presets import build_model

    directory = Path(directory).expanduser()
    meta = read_meta(directory)
    config = DeemConfig.from_dict(meta["config"])
    if expect is not None:
        check_matches(config, expect, directory)
    device = torch.device(device)
    if meta["contents"] == "full":
        from transformers import LlamaForCausalLM

        tokenizer = _saved_tokenizer(directory, required=True)
        with _readable(directory / "llm"):
            llm = LlamaForCausalLM.from_pretrained(str(directory / "llm"), dtype=dtype)
            move_(llm, device)
            llm.eval()
        model = DeemModel(config, llm, tokenizer)
    elif meta["contents"] == "delta":
        model = build_model(config, seed=int(meta.get("seed", 0)), device=device, dtype=dtype,
                            components=components, download=download,
                            tokenizer=_saved_tokenizer(directory, required=False))
    else:
        raise DeemEvalError(f"{directory}: unknown checkpoint contents {meta['contents']!r}")
    with _readable(directory / WEIGHTS_FILE):
        state = load_file(str(directory / WEIGHTS_FILE))
    load_partial(model, state, what=str(directory / WEIGHTS_FILE), exact=True)
    model.to(device=device)
    for module in (model.visual, model.xattn):
        module.to(dtype=dtype)
    model.image_start.data = model.image_start.data.to(dtype)
    model.requires_grad_(False)
    return model.eval()


@contextlib.contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turn a missing, truncated or corrupt weight file into an error that names it."""
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DeemEvalError(f"{path}: cannot read the checkpoint's weights ({first}). The file is missing, truncated "
                            "or corrupt: copy it again, or retrain (`deem-eval train-micro --out DIR --ship` for the "
                            "shipped DEEM-micro models).") from None


def _saved_tokenizer(directory: Path, *, required: bool):
    """The checkpoint's own tokenizer copy; None (use the config's source) when absent and not required."""
    from transformers import AutoTokenizer

    path = directory / TOKENIZER_DIR
    if not path.is_dir():
        if required:
            raise DeemEvalError(f"{directory}: incomplete checkpoint, {TOKENIZER_DIR}/ is missing")
        return None
    return AutoTokenizer.from_pretrained(str(path))


def load_partial(model, state: dict[str, torch.Tensor], *, what: str, exact: bool = False) -> None:
    """Copy `state` into the model's own (non-LLM) tensors; with `exact`, every one of them must be present."""
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("llm.")}
    unexpected = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state)) if exact else []
    if unexpected or missing:
        raise DeemEvalError(f"{what}: weights do not fit this DEEM model (missing {missing[:5]}, "
                            f"unexpected {unexpected[:5]})")
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise DeemEvalError(f"{what}: shape mismatch for {bad[:5]}")
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v.to(own[k].device, own[k].dtype))
