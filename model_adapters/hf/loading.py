"""Find and load a transformers checkpoint (processor + model) by hub id or local directory.

Offline-first: a hub id already in the local cache is loaded from it without touching the network; one
that is missing fails with a `DeemEvalError` that says what to download and where the cache is, instead
of a long network traceback.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError, did_you_mean
from deem_eval.core.hub import hf_offline, hub_locations, hub_reachable

log = logging.getLogger(__name__)

DTYPES = ("auto", "checkpoint", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Checkpoint:
    source: str            # what from_pretrained gets: a local directory, or a hub id (to download)
    display_name: str      # short name for labels: the directory or repo name
    local: bool


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or text.count("/") != 1 or os.sep in text.replace("/", "")


def not_available_error(repo_id: str, why: str = "") -> DeemEvalError:
    return DeemEvalError(
        f"model {repo_id!r} is not available offline{': ' + why if why else ''}. Download it first on a "
        f"machine with network access: `hf download {repo_id}` (or `huggingface-cli download {repo_id}`), "
        f"into the same cache this run reads: {hub_locations()}; or pass -M path=/a/local/checkpoint/dir.")


def resolve_checkpoint(path: str, *, revision: str | None = None) -> Checkpoint:
    """A local directory as is; a hub id resolved to its cached snapshot when there is one."""
    if not path:
        raise DeemEvalError("model hf needs -M path=HUB_ID_OR_DIRECTORY (e.g. -M path=llava-hf/llava-1.5-7b-hf) "
                            "or -M preset=NAME to use the preset's default checkpoint")
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise DeemEvalError(f"{local}: not a transformers checkpoint (no config.json in it)")
        return Checkpoint(str(local), local.resolve().name, True)
    if _looks_like_path(path):
        raise DeemEvalError(f"{path}: no such checkpoint directory (hub ids look like 'org/name')")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    name = path.rsplit("/", 1)[-1]
    try:
        cached = snapshot_download(path, revision=revision, local_files_only=True)
        return Checkpoint(cached, name, True)
    except (LocalEntryNotFoundError, FileNotFoundError):
        pass
    except Exception as exc:  # noqa: BLE001 - malformed ids etc.
        raise DeemEvalError(f"-M path={path!r}: {exc}") from None
    if hf_offline():
        raise not_available_error(path, "not in the local cache and HF_HUB_OFFLINE is set")
    if not hub_reachable():
        raise not_available_error(path, "not in the local cache, and the hub cannot be reached from here")
    return Checkpoint(path, name, False)


def resolve_dtype(name: str, device: str) -> Any:
    """`auto`: bfloat16 on a CUDA device that supports it, else float32; `checkpoint`: as stored."""
    import torch

    if name not in DTYPES:
        raise DeemEvalError(f"-M dtype={name!r}: expected one of {', '.join(DTYPES)}")
    if name == "checkpoint":
        return "auto"
    if name == "auto":
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def resolve_device(name: str) -> str:
    """`auto`: cuda:LOCAL_RANK (one GPU per data-parallel rank) if CUDA is available, else mps, else cpu."""
    import torch

    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise DeemEvalError(f"-M device={name}: CUDA is not available on this machine (use device=cpu)")
        return name
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_processor(checkpoint: Checkpoint, *, revision: str | None, trust_remote_code: bool) -> Any:
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(checkpoint.source, revision=revision,
                                             trust_remote_code=trust_remote_code)
    except OSError as exc:
        if not checkpoint.local:
            raise not_available_error(checkpoint.source, str(exc).splitlines()[0]) from None
        raise DeemEvalError(f"{checkpoint.source}: cannot load the processor: {exc}") from None


def model_classes(name: str) -> list[Any]:
    """The classes to try: `auto` = AutoModelForImageTextToText, then AutoModelForCausalLM (remote-code
    models); or one transformers class by name (e.g. LlavaForConditionalGeneration)."""
    import transformers

    if name == "auto":
        return [transformers.AutoModelForImageTextToText, transformers.AutoModelForCausalLM]
    cls = getattr(transformers, name, None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        known = [n for n in dir(transformers) if n.endswith(("ForConditionalGeneration", "ForImageTextToText"))]
        raise did_you_mean(name, known + ["auto"], "transformers model class")
    return [cls]


def load_model(checkpoint: Checkpoint, *, model_class: str, dtype: Any, device: str, device_map: str | None,
               attn_implementation: str | None, revision: str | None, trust_remote_code: bool) -> Any:
    kwargs: dict[str, Any] = {"dtype": dtype, "revision": revision, "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if device_map:
        kwargs["device_map"] = device_map
    errors = []
    for cls in model_classes(model_class):
        try:
            model = cls.from_pretrained(checkpoint.source, **kwargs)
        except ValueError as exc:          # "Unrecognized configuration class ..." -> try the next class
            errors.append(f"{getattr(cls, '__name__', cls)}: {str(exc).splitlines()[0]}")
            continue
        except OSError as exc:
            if not checkpoint.local:
                raise not_available_error(checkpoint.source, str(exc).splitlines()[0]) from None
            raise DeemEvalError(f"{checkpoint.source}: cannot load the model: {exc}") from None
        if not device_map:
            model = model.to(device)
        return model.eval()
    raise DeemEvalError(f"{checkpoint.source}: no transformers class loads this checkpoint ({'; '.join(errors)}). "
                        "Name one with -M model_class=... (and -M trust_remote_code=true for custom code).")


def checkpoint_fingerprint(checkpoint: Checkpoint, *, revision: str | None = None) -> str | None:
    """A digest of the loaded checkpoint for the run key: a hub snapshot's commit, or a local directory's
    config and weight files; a hub id loaded from the network is looked up in the cache it was saved to
    (None if it cannot be found there: the run key then has only the id and revision)."""
    from deem_eval.core.fingerprint import checkpoint_fingerprint as fingerprint

    source = checkpoint.source
    if not Path(source).is_dir():
        try:
            from huggingface_hub import snapshot_download

            source = snapshot_download(source, revision=revision, local_files_only=True)
        except Exception:  # noqa: BLE001 - not cached, or an old huggingface_hub: no fingerprint
            return None
    return fingerprint(Path(source))


@dataclass(frozen=True)
class TextSide:
    """The processor, its tokenizer and (for scoring=logits|both) the yes/no token ids, loaded before the
    model so a tokenizer without usable yes/no tokens fails in seconds, not after a multi-GB load."""

    processor: Any
    tokenizer: Any
    yes_no: Any                 # generation.YesNoTokens | None


def load_text_side(checkpoint: Checkpoint, *, revision: str | None, trust_remote_code: bool, scoring: str,
                   what: str) -> TextSide:
    from deem_eval.model_adapters.generation import find_yes_no_tokens

    processor = load_processor(checkpoint, revision=revision, trust_remote_code=trust_remote_code)
    tokenizer = getattr(processor, "tokenizer", processor)
    yes_no = None
    if scoring in ("logits", "both"):
        yes_no = find_yes_no_tokens(tokenizer, what=what)
        log.info("yes/no tokens: %s", yes_no.describe())
    return TextSide(processor, tokenizer, yes_no)
