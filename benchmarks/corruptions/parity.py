"""Fidelity of our corruptions to imagecorruptions 1.1.2 (run through `compat`), measured two ways.

* Replayed draws: our function fed the exact random stream the reference draws from (compat.ReplayRng)
  must give the reference's pixels. This checks every deterministic step of every corruption, the
  stochastic ones included: mean absolute difference and 99th percentile of |difference| in grey levels.
* Independent draws: with our own generator (PCG64, seeded per image) a stochastic corruption must
  degrade images as much as the reference does: the PSNR to the clean image, averaged over seeds and
  images, within a tolerance (0.5 dB) of the reference's.

Used by tests/perf/corruptions_parity.py (the full table) and tests/test_corruptions_parity.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import catalog, compat
from .backends import seeded_generator

PSNR_TOLERANCE_DB = 0.5


@dataclass(frozen=True)
class ParityRow:
    corruption: str
    severity: int
    stochastic: bool
    mad: float            # mean |ours - reference| over pixels and images, replayed draws (grey levels)
    p99: float            # worst image's 99th percentile of |ours - reference|
    max_diff: int
    psnr_reference: float | None   # mean PSNR (dB) to the clean image, independent draws (stochastic only)
    psnr_ours: float | None
    psnr_se: float | None = None   # standard error of psnr_ours - psnr_reference (draw-to-draw spread)

    @property
    def psnr_delta(self) -> float | None:
        if self.psnr_ours is None or self.psnr_reference is None:
            return None
        return self.psnr_ours - self.psnr_reference


def psnr(clean: np.ndarray, corrupted: np.ndarray) -> float:
    mse = np.mean((clean.astype(np.float64) - corrupted.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def parity_row(name: str, severity: int, images: Sequence[np.ndarray], seeds: Sequence[int]) -> ParityRow:
    corruption = catalog.get(name)
    diffs = []
    psnr_ref: list[float] = []
    psnr_ours: list[float] = []
    for index, image in enumerate(images):
        for seed_index, seed in enumerate(seeds):
            if seed_index and not corruption.stochastic:
                break
            key = 7919 * seed + index
            reference = compat.reference_corrupt(image, name, severity, key)
            if seed_index == 0:
                replayed = corruption.batch(image[None], severity, [compat.ReplayRng(key)])[0]
                diffs.append(np.abs(reference.astype(np.int16) - replayed.astype(np.int16)))
            if corruption.stochastic:
                ours = corruption.batch(image[None], severity, [seeded_generator(key)])[0]
                psnr_ref.append(psnr(image, reference))
                psnr_ours.append(psnr(image, ours))
    stacked = np.stack(diffs)
    return ParityRow(name, severity, corruption.stochastic, float(stacked.mean()),
                     float(max(np.percentile(d, 99) for d in diffs)), int(stacked.max()),
                     _finite_mean(psnr_ref), _finite_mean(psnr_ours), _difference_se(psnr_ref, psnr_ours))


def _finite(values: list[float]) -> np.ndarray:
    return np.array([v for v in values if np.isfinite(v)])


def _finite_mean(values: list[float]) -> float | None:
    finite = _finite(values)
    return float(finite.mean()) if finite.size else None


def _difference_se(first: list[float], second: list[float]) -> float | None:
    a, b = _finite(first), _finite(second)
    if a.size < 2 or b.size < 2:
        return None
    return float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))


def sample_images(size: int, names: Sequence[str] = ("astronaut", "coffee", "chelsea", "rocket")) -> list[np.ndarray]:
    """scikit-image's sample photos as RGB uint8, resized (bilinear) to size x size."""
    import skimage.data
    from PIL import Image

    out = []
    for name in names:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        out.append(np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)).copy())
    return out
