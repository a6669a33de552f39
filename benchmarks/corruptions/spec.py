"""What a corruption is (name, family, per-severity parameters, batched function) and how users name them.

The 19 corruptions are those of imagecorruptions 1.1.2 (the 15 of ImageNet-C plus its 4 validation
corruptions), in its order. Families follow ImageNet-C (Hendrycks & Dietterich, 2019): the validation
corruptions join the family they resemble.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast, overload

import numpy as np
import torch

from deem_eval.core.errors import DeemEvalError, did_you_mean

from .images import MIN_SIZE, check_size, to_rgb_uint8
from .ops import single_thread

SEVERITIES = (1, 2, 3, 4, 5)

COMMON = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
          "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
          "jpeg_compression")
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")   # imagecorruptions' "validation" set
ALL = COMMON + EXTRA

FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "weather": ("snow", "frost", "fog", "brightness", "spatter"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"),
}
FAMILY_OF = {name: family for family, names in FAMILIES.items() for name in names}

# On the CPU a batch is processed in chunks of this many images: one 224 px image's float64 planes fit
# in cache, a batch of them does not, and measured throughput is best image by image. Results do not
# depend on the chunk size (each image uses only its own generator). GPUs take the whole batch.
CPU_CHUNK = 1

# A numpy Generator, or anything with the same drawing methods (compat.ReplayRng replays the reference's
# legacy streams through this interface).
RngLike = np.random.Generator | Any
BatchFn = Callable[[torch.Tensor, Sequence[RngLike], Any], torch.Tensor]
# One image on the CPU, without torch: (H, W, 3) uint8 numpy array, its generator, the severity's parameters
# -> (H, W, 3) uint8. Optional; where present it is what CPU batches run (faster: no CHW <-> HWC copies,
# float32 / OpenCV / PIL where parity allows), and `fn` is what other devices run. Both give the same pixels
# up to the float rounding the parity checks allow.
CpuFn = Callable[[np.ndarray, RngLike, Any], np.ndarray]


def integers(rng: RngLike, low: int, high: int | None = None, size: Any = None) -> Any:
    """Integers in [low, high) from a Generator (`integers`) or a legacy RandomState (`randint`)."""
    draw = getattr(rng, "integers", None) or cast(Any, rng).randint
    return draw(low, high, size=size)


@dataclass(frozen=True)
class Corruption:
    """One corruption: `fn(x, rngs, params)` maps a uint8 batch (B, 3, H, W) to pixel values in [0, 255]
    (float, truncated to uint8 afterwards as imagecorruptions does, or uint8), drawing image b's
    randomness only from rngs[b]; `table[s - 1]` holds the parameters of severity s."""

    name: str
    family: str
    table: tuple[Any, ...]
    fn: BatchFn
    stochastic: bool
    min_size: int = MIN_SIZE
    description: str = ""
    cpu_fn: CpuFn | None = None

    def params(self, severity: int) -> Any:
        return self.table[check_severity(severity) - 1]

    @overload
    def batch(self, images: np.ndarray, severity: int, rngs: Sequence[RngLike], *,
              device: str | torch.device | None = None) -> np.ndarray: ...

    @overload
    def batch(self, images: torch.Tensor, severity: int, rngs: Sequence[RngLike], *,
              device: str | torch.device | None = None) -> torch.Tensor: ...

    def batch(self, images: np.ndarray | torch.Tensor, severity: int, rngs: Sequence[RngLike], *,
              device: str | torch.device | None = None) -> np.ndarray | torch.Tensor:
        """Corrupt a batch of equal-size RGB uint8 images (B, H, W, 3); returns the same type and shape.

        Image b depends only on images[b], severity and rngs[b], never on the rest of the batch."""
        params = self.params(severity)
        as_numpy = isinstance(images, np.ndarray)
        if isinstance(images, np.ndarray):
            array = np.ascontiguousarray(images)
            tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
        else:
            tensor = images
        if tensor.dtype != torch.uint8 or tensor.ndim != 4 or tensor.shape[-1] != 3:
            raise DeemEvalError(f"{self.name}: expected uint8 images of shape (B, H, W, 3), got "
                                f"{tuple(tensor.shape)} {tensor.dtype}")
        if len(rngs) != tensor.shape[0]:
            raise DeemEvalError(f"{self.name}: {tensor.shape[0]} images but {len(rngs)} generators")
        check_size(tensor.shape[1], tensor.shape[2], self.min_size, what="the image batch",
                   corruption=self.name)
        if tensor.shape[0] == 0:
            return images
        if device is not None:
            tensor = tensor.to(device)
        if tensor.device.type == "cpu":
            with single_thread():            # one thread: no spin-waiting on shared cores, same bytes anywhere
                return self._compute(tensor, rngs, params, as_numpy)
        return self._compute(tensor, rngs, params, as_numpy)

    def _compute(self, tensor: torch.Tensor, rngs: Sequence[RngLike], params: Any,
                 as_numpy: bool) -> np.ndarray | torch.Tensor:
        if self.cpu_fn is not None and tensor.device.type == "cpu":
            return self._batch_cpu(self.cpu_fn, tensor.numpy(), rngs, params, as_numpy)
        chunk = CPU_CHUNK if tensor.device.type == "cpu" else len(rngs)
        parts = []
        for start in range(0, len(rngs), chunk):
            part = tensor[start:start + chunk].permute(0, 3, 1, 2).contiguous()
            part = to_uint8(self.fn(part, rngs[start:start + chunk], params))
            parts.append(part.permute(0, 2, 3, 1))
        out = torch.cat(parts).contiguous() if len(parts) > 1 else parts[0].contiguous()
        return out.cpu().numpy() if as_numpy else out

    @staticmethod
    def _batch_cpu(cpu_fn: CpuFn, array: np.ndarray, rngs: Sequence[RngLike], params: Any, as_numpy: bool
                   ) -> np.ndarray | torch.Tensor:
        """The numpy path: image by image through `cpu_fn`, HWC uint8 throughout."""
        outs = [cpu_fn(np.ascontiguousarray(array[b]), rngs[b], params) for b in range(len(rngs))]
        out = outs[0][None] if len(outs) == 1 else np.stack(outs)
        return out if as_numpy else torch.from_numpy(out)

    def __call__(self, image: Any, severity: int, rng: RngLike, *, device: str | None = None) -> np.ndarray:
        """Corrupt one image (PIL image or array, any mode) and return RGB uint8 (H, W, 3)."""
        array = to_rgb_uint8(image)
        return self.batch(array[None], severity, [rng], device=device)[0]


def to_uint8(values: torch.Tensor) -> torch.Tensor:
    """[0, 255] floats to uint8 by truncation (what imagecorruptions' np.uint8 does), clamping first."""
    if values.dtype == torch.uint8:
        return values
    return values.clamp(0, 255).floor_().to(torch.uint8)


def check_severity(severity: Any) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise DeemEvalError(f"severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


def parse_severities(text: str | Sequence[int]) -> tuple[int, ...]:
    """'1-5', '1,3,5', '2-3,5' (or a sequence of ints) -> sorted unique severities, each checked."""
    if not isinstance(text, str):
        return tuple(sorted({check_severity(s) for s in text}))
    found: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(-?\d+)(?:\s*-\s*(-?\d+))?", part)
        if not match:
            raise DeemEvalError(f"--severities {text!r}: {part!r} is not a severity or range like 1-5")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if low > high:
            raise DeemEvalError(f"--severities {text!r}: range {part!r} is empty (write it low-high)")
        for severity in (low, high):
            try:
                check_severity(severity)
            except DeemEvalError as exc:
                raise DeemEvalError(f"--severities {text!r}: {exc}") from None
        found.update(range(low, high + 1))
    if not found:
        raise DeemEvalError(f"--severities {text!r}: no severity given (e.g. 1-5 or 1,3,5)")
    return tuple(sorted(found))


def resolve_names(text: str | Sequence[str], known: Sequence[str], families: dict[str, tuple[str, ...]]
                  ) -> tuple[str, ...]:
    """'all', 'common', 'extra', a family name, corruption names, or a comma list of these -> names in
    `known` order, each once. Unknown names raise with a did-you-mean suggestion."""
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)]
    parts = [p for p in parts if p]
    if not parts:
        raise DeemEvalError("no corruption given: use all, common, extra, a family "
                            f"({', '.join(families)}) or corruption names")
    groups: dict[str, tuple[str, ...]] = {"all": tuple(known), "common": tuple(n for n in COMMON if n in known),
                                          "extra": tuple(n for n in EXTRA if n in known), **families}
    chosen: set[str] = set()
    for part in parts:
        key = part.lower().replace("-", "_") if part.lower().replace("-", "_") in known else part.lower()
        if key in groups:
            chosen.update(groups[key])
        elif key in known:
            chosen.add(key)
        else:
            raise did_you_mean(part, [*known, *groups], "corruption")
    return tuple(n for n in known if n in chosen)
