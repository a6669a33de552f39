"""Run imagecorruptions 1.1.2 (the reference implementation) on today's numpy / scikit-image / setuptools.

imagecorruptions 1.1.2 no longer imports or runs on current libraries:

* it imports ``pkg_resources`` (gone from recent setuptools) for one call, ``resource_filename``;
* ``plasma_fractal`` (fog) uses ``np.float_``, removed in numpy 2;
* it calls ``skimage.filters.gaussian(..., multichannel=True)``, removed in scikit-image 0.19+
  (now ``channel_axis=-1``);
* ``scipy.ndimage.interpolation`` is a deprecated alias that may disappear.

Nothing in site-packages is modified. Every patch is confined to the imagecorruptions module namespace
(its own ``np``, ``gaussian`` and ``resource_filename`` names) or lasts only while it is imported; the
real numpy, scikit-image and setuptools modules are left as they were.

imagecorruptions draws from numpy's *global* legacy random state (and scikit-image's s&p noise from a
fresh unseeded Generator). `seeded()` makes a call reproducible: it seeds the global state inside a
lock, hands scikit-image a seeded Generator, and restores the previous global state afterwards. It is
used only for this reference backend; deem-eval's own corruptions take explicit generators.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any, cast

import numpy as np

from deem_eval.core.errors import DeemEvalError

_LOCK = threading.RLock()
_MODULE: types.ModuleType | None = None
_SKIMAGE_RNG: list[np.random.Generator | None] = [None]


class _NumpyWithFloat(types.ModuleType):
    """numpy as imagecorruptions expects it: the real module plus the removed ``float_`` alias."""

    float_ = np.float64

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


def _resource_filename(package: str, resource: str) -> str:
    """Stand-in for pkg_resources.resource_filename: a path inside an imported package's directory."""
    module = sys.modules.get(package) or importlib.import_module(package)
    return os.path.normpath(os.path.join(os.path.dirname(module.__file__ or ""), resource))


def _gaussian_compat(image: np.ndarray, sigma: Any = 1, *args: Any, multichannel: bool | None = None,
                     **kwargs: Any) -> np.ndarray:
    """skimage.filters.gaussian accepting the removed ``multichannel=`` keyword."""
    from skimage.filters import gaussian

    if multichannel and "channel_axis" not in kwargs:
        kwargs["channel_axis"] = -1
    return gaussian(image, sigma, *args, **kwargs)


def _random_noise_compat(image: np.ndarray, mode: str = "gaussian", rng: Any = None, **kwargs: Any) -> np.ndarray:
    """skimage.util.random_noise drawing from the seeded Generator of `seeded()` when there is one."""
    from skimage.util import random_noise

    if rng is None:
        rng = _SKIMAGE_RNG[0]
    return random_noise(image, mode=mode, rng=rng, **kwargs)


@contextlib.contextmanager
def _temporary_module(name: str, module: types.ModuleType) -> Iterator[None]:
    present = name in sys.modules
    if not present:
        sys.modules[name] = module
    try:
        yield
    finally:
        if not present:
            sys.modules.pop(name, None)


def load() -> types.ModuleType:
    """Import imagecorruptions through the shim and return its ``corruptions`` module (patched)."""
    global _MODULE
    with _LOCK:
        if _MODULE is not None:
            return _MODULE
        fake_pkg_resources: Any = types.ModuleType("pkg_resources")
        fake_pkg_resources.resource_filename = _resource_filename
        with contextlib.ExitStack() as stack:
            if importlib.util.find_spec("pkg_resources") is None:   # gone from setuptools >= 81
                stack.enter_context(_temporary_module("pkg_resources", fake_pkg_resources))
            try:
                import scipy.ndimage.interpolation
            except ImportError:
                import scipy.ndimage

                stack.enter_context(_temporary_module("scipy.ndimage.interpolation", scipy.ndimage))
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                module: Any   # patched below with attributes ModuleType does not declare
                try:
                    module = importlib.import_module("imagecorruptions.corruptions")
                except ImportError as exc:
                    raise DeemEvalError(
                        f"the imagecorruptions backend needs the package imagecorruptions 1.1.x "
                        f"(pip install imagecorruptions): {exc}") from exc
        module.np = _NumpyWithFloat("numpy")              # fog's plasma_fractal uses np.float_
        module.gaussian = _gaussian_compat                   # multichannel= -> channel_axis=-1
        module.resource_filename = _resource_filename        # frost images, without pkg_resources
        module.sk = _SkimageWithSeededNoise(module.sk)       # impulse noise: seedable s&p draws
        _MODULE = module
        return module


class _SkimageWithSeededNoise(types.ModuleType):
    """The ``sk`` name inside imagecorruptions: skimage, with ``sk.util.random_noise`` seedable."""

    def __init__(self, skimage: types.ModuleType) -> None:
        super().__init__("skimage")
        self._skimage = skimage
        self.util = types.SimpleNamespace(random_noise=_random_noise_compat)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._skimage, name)


def legacy_seed(seed: int) -> int:
    """The 32-bit seed numpy's legacy global state accepts, from any (64-bit) derived seed."""
    return int(seed) & 0xFFFF_FFFF


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run imagecorruptions reproducibly: seed numpy's global legacy state (restored on exit) and the
    Generator scikit-image's s&p noise draws from. Holds a lock, so concurrent threads take turns."""
    with _LOCK:
        saved = np.random.get_state()
        np.random.seed(legacy_seed(seed))
        _SKIMAGE_RNG[0] = np.random.default_rng(legacy_seed(seed))
        try:
            yield
        finally:
            _SKIMAGE_RNG[0] = None
            np.random.set_state(saved)


class ReplayRng:
    """The random streams imagecorruptions draws from under `seeded(seed)`, as one generator object.

    Passing it to our corruption functions instead of a numpy Generator makes them draw exactly what the
    reference draws (legacy RandomState for normal / uniform / poisson / randint; a PCG64 Generator for
    ``random``, as scikit-image's s&p noise does), so the parity checks can compare stochastic corruptions
    pixel for pixel, not only in distribution.
    """

    def __init__(self, seed: int) -> None:
        self._legacy = np.random.RandomState(legacy_seed(seed))
        self._generator = np.random.default_rng(legacy_seed(seed))

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> Any:
        return self._legacy.normal(loc, scale, size)

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None) -> Any:
        return self._legacy.uniform(low, high, size)

    def poisson(self, lam: Any = 1.0, size: Any = None) -> Any:
        return self._legacy.poisson(lam, size)

    def integers(self, low: int, high: int | None = None, size: Any = None) -> Any:
        return self._legacy.randint(low, high, size)

    def random(self, size: Any = None) -> Any:
        return self._generator.random(size)


def reference_corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """imagecorruptions' `corrupt()` on an RGB uint8 array, reproducibly seeded; returns uint8 (H, W, 3)."""
    module = load()
    function = getattr(module, name, None)
    if function is None or not callable(function):
        raise DeemEvalError(f"imagecorruptions has no corruption {name!r}")
    import warnings

    from PIL import Image

    with seeded(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = function(Image.fromarray(image), severity)
    # what imagecorruptions.corrupt() does: truncation, not rounding (an array in, so an array out)
    return cast(np.ndarray, np.uint8(out))
