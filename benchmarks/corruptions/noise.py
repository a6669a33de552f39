"""Noise corruptions: gaussian, shot (Poisson), impulse (salt & pepper) and speckle noise.

Draws are made per image from that image's generator, in (H, W, 3) order as imagecorruptions makes
them, so a replayed reference stream (compat.ReplayRng) gives the reference's exact pixels. These run in
numpy on the CPU: they are bound by drawing the noise, and the draws are numpy's (device-independent).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .spec import Corruption, RngLike

# Standard deviation of the additive noise, in [0, 1] intensity units.
GAUSSIAN_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)

# Photons per unit intensity: the image is Poisson(x * rate) / rate, so fewer photons = more noise.
SHOT_NOISE_RATE = (60, 25, 12, 5, 3)

# Fraction of (pixel, channel) values replaced by 0 or 1 (half each on average).
IMPULSE_NOISE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)

# Standard deviation of the multiplicative noise: x + x * N(0, std).
SPECKLE_NOISE_STD = (0.15, 0.2, 0.35, 0.45, 0.6)


def per_image(x: torch.Tensor, rngs: Sequence[RngLike],
              corrupt: Callable[[np.ndarray, RngLike], np.ndarray]) -> torch.Tensor:
    """Apply corrupt(image (H, W, 3) uint8, rng) -> uint8 to each image, on the CPU in numpy.

    Noise is bound by drawing it, which happens in numpy anyway; the arithmetic around it is a few passes,
    cheaper in place than a round trip through torch."""
    images = x.permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([corrupt(image, rng) for image, rng in zip(images, rngs)])
    return torch.from_numpy(out).to(x.device).permute(0, 3, 1, 2)


def _to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 as the reference does: clip, scale by 255, truncate."""
    np.clip(unit, 0, 1, out=unit)
    unit *= 255
    return unit.astype(np.uint8)


def gaussian_noise(x: torch.Tensor, rngs: Sequence[RngLike], std: float) -> torch.Tensor:
    def corrupt(image: np.ndarray, rng: RngLike) -> np.ndarray:
        unit = image / 255.0
        unit += rng.normal(0.0, std, image.shape)
        return _to_uint8(unit)

    return per_image(x, rngs, corrupt)


def shot_noise(x: torch.Tensor, rngs: Sequence[RngLike], rate: int) -> torch.Tensor:
    def corrupt(image: np.ndarray, rng: RngLike) -> np.ndarray:
        return _to_uint8(rng.poisson(image / 255.0 * rate) / float(rate))

    return per_image(x, rngs, corrupt)


def impulse_noise(x: torch.Tensor, rngs: Sequence[RngLike], amount: float) -> torch.Tensor:
    """On uint8 directly: the reference's x / 255 * 255 round trip returns every level unchanged."""
    def corrupt(image: np.ndarray, rng: RngLike) -> np.ndarray:
        flipped = rng.random(image.shape) <= amount
        salted = rng.random(image.shape) <= 0.5
        return np.where(flipped, np.where(salted, np.uint8(255), np.uint8(0)), image)

    return per_image(x, rngs, corrupt)


def speckle_noise(x: torch.Tensor, rngs: Sequence[RngLike], std: float) -> torch.Tensor:
    def corrupt(image: np.ndarray, rng: RngLike) -> np.ndarray:
        unit = image / 255.0
        return _to_uint8(unit + unit * rng.normal(0.0, std, image.shape))

    return per_image(x, rngs, corrupt)


GAUSSIAN_NOISE = Corruption("gaussian_noise", "noise", GAUSSIAN_NOISE_STD, gaussian_noise, stochastic=True,
                            description="additive Gaussian noise")
SHOT_NOISE = Corruption("shot_noise", "noise", SHOT_NOISE_RATE, shot_noise, stochastic=True,
                        description="Poisson (photon) noise")
IMPULSE_NOISE = Corruption("impulse_noise", "noise", IMPULSE_NOISE_AMOUNT, impulse_noise, stochastic=True,
                           description="salt-and-pepper noise per channel")
SPECKLE_NOISE = Corruption("speckle_noise", "noise", SPECKLE_NOISE_STD, speckle_noise, stochastic=True,
                           description="multiplicative Gaussian noise")
