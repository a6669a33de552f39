"""ImageNet-C corruptions (the 19 of imagecorruptions 1.1.2), fast, batched and explicitly seeded.

    from deem_eval.benchmarks.corruptions import corrupt
    out = corrupt(image, "glass_blur", severity=3, seed=0, key="img-001")   # RGB uint8 (H, W, 3)

Every corruption is a `Corruption` (see catalog.BUILTIN): `c(image, severity, rng)` for one image,
`c.batch(images, severity, rngs)` for a (B, H, W, 3) uint8 batch on any torch device. `compat` runs the
reference implementation (imagecorruptions) on current libraries.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from deem_eval.core.rng import derive_seed

if TYPE_CHECKING:
    import numpy as np

    from .catalog import BUILTIN, families, get, names, resolve
    from .images import MIN_SIZE, ImageTooSmallError, load_rgb, to_rgb_uint8
    from .spec import ALL, COMMON, EXTRA, FAMILIES, SEVERITIES, Corruption, check_severity, parse_severities

# The package's names load on first use (they need torch): a module that only needs a benchmark's metadata
# (the leaderboard reading pope-c's columns through suites.py) stays light.
_LAZY = {**dict.fromkeys(("BUILTIN", "families", "get", "names", "resolve"), "catalog"),
         **dict.fromkeys(("MIN_SIZE", "ImageTooSmallError", "load_rgb", "to_rgb_uint8"), "images"),
         **dict.fromkeys(("ALL", "COMMON", "EXTRA", "FAMILIES", "SEVERITIES", "Corruption", "check_severity",
                          "parse_severities"), "spec")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["ALL", "BUILTIN", "COMMON", "EXTRA", "FAMILIES", "MIN_SIZE", "SEVERITIES", "Corruption",
           "ImageTooSmallError", "check_severity", "corrupt", "corruption_seed", "families", "get",
           "load_rgb", "names", "parse_severities", "resolve", "to_rgb_uint8"]


def corruption_seed(seed: int, key: str, name: str, severity: int) -> int:
    """The seed of one (image, corruption, severity): the same image key gets the same draws anywhere."""
    return derive_seed(seed, "corrupt", key, name, int(severity))


def corrupt(image: Any, name: str, severity: int, *, seed: int = 0, key: str = "", backend: str = "ours",
            device: str | None = None) -> np.ndarray:
    """Corrupt one image (PIL or array, any mode) -> RGB uint8 (H, W, 3), reproducibly.

    Draws come from (seed, key, name, severity), where `key` names the image (e.g. its path in a
    split). backend="imagecorruptions" runs the reference implementation with the same derived seed."""
    from .backends import get_backend
    from .images import to_rgb_uint8
    from .spec import check_severity

    check_severity(severity)
    array = to_rgb_uint8(image)
    return get_backend(backend, device=device).corrupt(array, name, severity,
                                                       corruption_seed(seed, key, name, severity))


def generator(seed: int, key: str, name: str, severity: int) -> np.random.Generator:
    """The numpy Generator `corrupt` uses for (seed, key, name, severity)."""
    from .backends import seeded_generator

    return seeded_generator(corruption_seed(seed, key, name, severity))
