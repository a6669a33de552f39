"""The corruptions deem-eval ships, by name, and lookup through the `deem_eval.corruptions` registry.

Third-party packages can add a `Corruption` under the entry-point group ``deem_eval.corruptions``; it
then shows up in `names()`, in its family, and in `deem-eval build corrupt --corruptions`.
"""

from __future__ import annotations

from deem_eval.core.errors import DeemEvalError, did_you_mean
from deem_eval.core.registry import CORRUPTIONS

from . import blur, digital, noise, weather
from .spec import ALL, FAMILIES, Corruption, resolve_names

BUILTIN: dict[str, Corruption] = {c.name: c for c in (
    noise.GAUSSIAN_NOISE, noise.SHOT_NOISE, noise.IMPULSE_NOISE, blur.DEFOCUS_BLUR, blur.GLASS_BLUR,
    blur.MOTION_BLUR, blur.ZOOM_BLUR, weather.SNOW, weather.FROST, weather.FOG, digital.BRIGHTNESS,
    digital.CONTRAST, digital.ELASTIC_TRANSFORM, digital.PIXELATE, digital.JPEG_COMPRESSION,
    noise.SPECKLE_NOISE, blur.GAUSSIAN_BLUR, weather.SPATTER, digital.SATURATE)}
assert tuple(BUILTIN) == ALL


def names() -> list[str]:
    """Built-in corruptions in imagecorruptions' order, then any registered by other packages."""
    extra = sorted(set(CORRUPTIONS.names()) - set(BUILTIN))
    return [*BUILTIN, *extra]


def get(name: str) -> Corruption:
    if name in BUILTIN:
        return BUILTIN[name]
    if name not in CORRUPTIONS.names():
        raise did_you_mean(name, names(), "corruption")
    corruption = CORRUPTIONS.get(name)
    if not isinstance(corruption, Corruption):
        raise DeemEvalError(f"corruption {name!r} is registered as {CORRUPTIONS.target(name)!r}, which is "
                            "not a deem_eval.benchmarks.corruptions.Corruption")
    return corruption


def families() -> dict[str, tuple[str, ...]]:
    """Family -> names, including registered corruptions (by their `family`)."""
    out = {family: list(members) for family, members in FAMILIES.items()}
    for name in names():
        if name not in BUILTIN:
            out.setdefault(get(name).family, []).append(name)
    return {family: tuple(members) for family, members in out.items()}


def resolve(text: str) -> tuple[str, ...]:
    """Corruption names from `all`, `common`, `extra`, a family or names (comma separated)."""
    return resolve_names(text, names(), families())
