"""Loading a transformers CLIP model for mining, and encoding prompts and images with it.

A model is named by a hub id (looked up in the Hugging Face cache, downloaded if the network allows) or a
local folder saved with `save_pretrained`. Its identity for the embedding cache is the content of its
weight files (hub cache blobs are already named by their SHA-256; local files are hashed once and
remembered by size and mtime) plus the image preprocessing and the dtype.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deem_eval.core.atomic import atomic_write_text
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.hub import hub_cache_dir, hub_reachable

if TYPE_CHECKING:
    from transformers.image_processing_utils import BaseImageProcessor

DEFAULT_CLIP = "openai/clip-vit-large-patch14-336"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class ClipEncoder:
    name: str
    model: Any
    tokenizer: Any
    image_processor: Any
    device: str
    dtype: str            # "float32" | "float16" | "bfloat16"
    identity: str         # weights identity (content hashes)
    resize: str = "crop"  # "crop": the processor's short-side resize + centre crop; "squash": DEEM's


    @property
    def cache_key(self) -> str:
        """Key of this model's embedding cache: weights + preprocessing + dtype."""
        keyed = {k: v for k, v in self.describe().items() if k != "model"}  # a moved folder keeps its cache
        return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def describe(self) -> dict[str, Any]:
        processor = {k: v for k, v in self.image_processor.to_dict().items() if not k.startswith("_")}
        processor.pop("image_processor_type", None)
        processor.pop("processor_class", None)
        return {"model": self.name, "weights": self.identity, "dtype": self.dtype,
                "image_processor_class": type(self.image_processor).__name__,
                "image_processor": json.loads(json.dumps(processor, sort_keys=True, default=str)),
                **({"resize": self.resize} if self.resize != "crop" else {})}  # default key as before

    def squash_size(self) -> tuple[int, int]:
        """(width, height) of DEEM's squash: the model's input size (the processor's crop size)."""
        crop = self.image_processor.crop_size
        return int(crop["width"]), int(crop["height"])

    def preprocess(self, image) -> np.ndarray:
        """One decoded PIL image -> pixel array (C, H, W) float32; thread-safe, run in workers."""
        if self.resize == "squash":  # DEEM: bicubic to the input size whatever the aspect, no crop
            from PIL import Image

            image = image.convert("RGB").resize(self.squash_size(), Image.Resampling.BICUBIC)
            return self.image_processor(images=[image], do_resize=False, do_center_crop=False,
                                        return_tensors="np")["pixel_values"][0]
        return self.image_processor(images=[image], return_tensors="np")["pixel_values"][0]

    def encode_pixels(self, pixels: list[np.ndarray]) -> np.ndarray:
        import torch

        batch = torch.from_numpy(np.stack(pixels)).to(self.device, dtype=_torch_dtype(self.dtype))
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=batch)
        return _features(out).float().cpu().numpy()

    def encode_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        import torch

        max_len = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                    max_length=max_len, return_tensors="pt")
            tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
            with torch.inference_mode():
                out = self.model.get_text_features(**tokens)
            chunks.append(_features(out).float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def _features(out: Any):
    """transformers 4.x returns the projected tensor, 5.x a model output with it in pooler_output."""
    return out if hasattr(out, "dim") else out.pooler_output


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[str, str]:
    """("cuda"/"cpu"/..., dtype name): fp16 on CUDA and fp32 on CPU unless asked otherwise."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeemEvalError(f"--device {device}: CUDA is not available here (torch {torch.__version__}); "
                            "use --device cpu")
    aliases = {"auto": None, "fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
               "half": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"}
    if dtype not in aliases:
        raise DeemEvalError(f"--dtype {dtype}: choose auto, fp32, fp16 or bf16")
    resolved = aliases[dtype] or ("float16" if device.startswith("cuda") else "float32")
    return device, resolved


def _missing_model_message(name: str, exc: Exception) -> str:
    return (f"cannot load the CLIP model {name!r} offline: it is not a local folder and not in the Hugging Face "
            f"cache ({hub_cache_dir()}; set by HF_HOME or HF_HUB_CACHE). Download it once on a machine with "
            f"internet: `huggingface-cli download {name}` (or `hf download {name}`) and copy the cache, or save it "
            f"with save_pretrained and pass --clip-model /path/to/folder (config.json, model.safetensors, "
            f"tokenizer and preprocessor files). Without CLIP weights use --miner random. "
            f"(loader said: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")


def load_clip(name_or_path: str = DEFAULT_CLIP, *, device: str = "auto", dtype: str = "auto",
              memo_dir: Path | None = None, resize: str = "crop") -> ClipEncoder:
    """Load CLIPModel + tokenizer + image processor with from_pretrained, on `device` in `dtype`."""
    if resize not in ("crop", "squash"):
        raise ValueError(resize)
    from transformers import AutoTokenizer, CLIPModel
    from transformers.utils import logging as hf_logging

    processor_cls: type[BaseImageProcessor]
    try:  # transformers 5: the Pillow backend, the same pixels with or without torchvision installed
        from transformers import CLIPImageProcessorPil
        processor_cls = CLIPImageProcessorPil
    except ImportError:  # transformers 4.x
        from transformers import CLIPImageProcessor
        processor_cls = CLIPImageProcessor

    device, dtype = resolve_device(device, dtype)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        source, local = str(path.resolve()), True
    elif path.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise DeemEvalError(f"--clip-model {name_or_path}: no such model folder")
    else:
        source, local = name_or_path, False
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the torchvision-fallback notice is noise here

    def load(local_only: bool):
        kwargs: dict[str, Any] = {"local_files_only": True} if local_only else {}
        return (CLIPModel.from_pretrained(source, dtype=_torch_dtype(dtype), **kwargs),
                AutoTokenizer.from_pretrained(source, **kwargs),
                processor_cls.from_pretrained(source, **kwargs))

    try:
        try:  # the cache first: a cached model never touches the network
            model, tokenizer, image_processor = load(local_only=True)
        except (OSError, ValueError):
            if local or not hub_reachable():   # offline: fail now, not after minutes of retries
                raise
            model, tokenizer, image_processor = load(local_only=False)  # may download
    except (OSError, ValueError, ImportError) as exc:
        if local:
            raise DeemEvalError(f"--clip-model {source}: cannot load a CLIP model from this folder ({exc})") from None
        raise DeemEvalError(_missing_model_message(name_or_path, exc)) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model = model.to(device).eval()
    folder = Path(source) if local else _hub_snapshot(name_or_path)
    identity = weights_identity(folder, memo_dir) if folder is not None else \
        f"hub:{name_or_path}@{getattr(model.config, '_commit_hash', None)}"
    return ClipEncoder(name_or_path, model, tokenizer, image_processor, device, dtype, identity, resize)


def _hub_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
        return Path(found).parent if isinstance(found, str) else None
    except Exception:  # noqa: BLE001
        return None


def weights_identity(folder: Path, memo_dir: Path | None = None) -> str:
    """SHA-256 over the weight files' content hashes (hub blobs: their names; others: hashed, memoised)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise DeemEvalError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    memo_path = (memo_dir / "weights-sha256.json") if memo_dir is not None else None
    memo: dict[str, Any] = {}
    if memo_path is not None and memo_path.is_file():
        try:
            memo = json.loads(memo_path.read_text())
        except (OSError, json.JSONDecodeError):
            memo = {}
    parts = []
    changed = False
    for file in files:
        real = file.resolve()
        if _HEX64.match(real.name) and real.parent.name == "blobs":
            digest = real.name
        else:
            stat = real.stat()
            entry = memo.get(str(real))
            if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
                digest = entry["sha256"]
            else:
                h = hashlib.sha256()
                with open(real, "rb") as handle:
                    while block := handle.read(1 << 22):
                        h.update(block)
                digest = h.hexdigest()
                memo[str(real)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
                changed = True
        parts.append(f"{file.name}:{digest}")
    if changed and memo_path is not None:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(memo_path, json.dumps(memo, indent=1, sort_keys=True))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
