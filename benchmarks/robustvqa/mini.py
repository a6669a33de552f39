"""The bundled mini RobustVQA: SynthScenes single-object renderings under three shifts, no downloads.

Each subset mirrors one of the paper's (group field `subset`, same values as a real build):

* `v2` (like ImageNet-V2, natural resampling): the default renderer ("filled" style, plain or scene
  background, normal size) with a fresh seed stream.
* `r` (like ImageNet-R, renditions): the same categories drawn as outline, sketch, cartoon or texture,
  in turn (`variant` = the style).
* `a` (like ImageNet-A, hard natural-like conditions): small, occluded, cluttered, low-contrast or
  odd-coloured main objects, in turn (`variant` = the condition).

Questions and ids follow the real split ("Is {class} the main object in this image? ...", `.../key#yes`,
`#no`). The hard negative is chosen by a model-free similarity rule: for the true category c and the colour
actually painted (the identity colour, the odd colour of an `a` image, none for sketches),

    similarity(d) = colour_sim + 0.5 * [d shares c's supercategory] + 0.25 * shape_sim
    colour_sim    = 1 - |painted - d.main colour| / 441.7      (RGB distance; 0 without colour)
    shape_sim     = 1 - min(1, |ln(aspect_c / aspect_d)|)      (silhouette box aspect ratio)

and the negative is drawn uniformly among the 3 most similar other categories with
`derive_rng(seed, "robustvqa-mini", "negative", subset, key)`. Everything is a pure function of the config,
so the split (and its fingerprint) is the same on every build.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.rng import derive_rng
from deem_eval.core.splits import BuilderInfo, Sample, Split

from .build import BENCHMARK, PAPER_TEMPLATE, question

MINI_NAME = "robustvqa-mini"
R_STYLES = ("outline", "sketch", "cartoon", "texture")
A_CONDITIONS = ("small", "occluded", "cluttered", "low-contrast", "odd-colour")
SUBSETS = ("a", "r", "v2")
TOP_K = 3


@dataclass(frozen=True)
class MiniConfig:
    images_per_subset: int = 300
    seed: int = 0
    size: int = 128
    template: str = PAPER_TEMPLATE

    def check(self) -> None:
        if self.images_per_subset < 1:
            raise DeemEvalError("images_per_subset must be at least 1")
        if not 32 <= self.size <= 1024:
            raise DeemEvalError(f"size must be between 32 and 1024 pixels, got {self.size}")
        if "{class}" not in self.template:
            raise DeemEvalError(f"template {self.template!r} must contain {{class}}")


@dataclass(frozen=True)
class MiniImage:
    subset: str
    key: str
    category: str
    variant: str
    render: dict          # keyword arguments of render_single_object (besides seed, key, category, size)
    painted: tuple[int, int, int] | None


def plan(config: MiniConfig) -> list[MiniImage]:
    """What each image shows: pure function of the config (no rendering)."""
    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES, category_by_name

    width = max(4, len(str(config.images_per_subset - 1)))
    out: list[MiniImage] = []
    for subset in SUBSETS:
        for i in range(config.images_per_subset):
            key = f"{i:0{width}d}"
            rng = derive_rng(config.seed, "robustvqa-mini", "plan", subset, key)
            category = CATEGORY_NAMES[i % len(CATEGORY_NAMES)]
            identity = tuple(category_by_name(category).colour("main"))
            background = "scene" if rng.random() < 0.5 else "plain"
            scale = float(rng.uniform(0.75, 1.15))
            render: dict = {"style": "filled", "background": background, "scale": round(scale, 4)}
            painted: tuple[int, int, int] | None = identity  # type: ignore[assignment]
            if subset == "v2":
                variant = "natural"
            elif subset == "r":
                variant = R_STYLES[i % len(R_STYLES)]
                render["style"] = variant
                if variant == "sketch":
                    painted = None
            else:
                variant = A_CONDITIONS[i % len(A_CONDITIONS)]
                if variant == "small":
                    render.update(scale=round(float(rng.uniform(0.22, 0.34)), 4), background="scene")
                elif variant == "occluded":
                    render.update(occlusion=round(float(rng.uniform(0.35, 0.55)), 4))
                elif variant == "cluttered":
                    render.update(clutter=int(rng.integers(4, 8)), background="scene")
                elif variant == "low-contrast":
                    render.update(contrast=round(float(rng.uniform(0.25, 0.45)), 4))
                else:
                    painted = _odd_colour(identity, rng)
                    render.update(colour=painted)
            out.append(MiniImage(subset, key, category, variant, render, painted))
    return out


def _odd_colour(identity: tuple[int, ...], rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated colour far (> 180 in RGB) from the category's own."""
    for _ in range(100):
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if math.dist(colour, identity) > 180 and max(colour) - min(colour) > 80:
            return colour  # type: ignore[return-value]
    return tuple(255 - v for v in identity)  # type: ignore[return-value]


def similarity(category: str, other: str, painted: tuple[int, int, int] | None) -> float:
    """The documented model-free similarity of `other` to an image of `category` painted `painted`."""
    from deem_eval.benchmarks.synthscenes import category_by_name

    c, d = category_by_name(category), category_by_name(other)
    colour_sim = 0.0 if painted is None else 1.0 - math.dist(painted, d.colour("main")) / math.dist((0, 0, 0), (255, 255, 255))
    same_super = 1.0 if c.supercategory == d.supercategory else 0.0
    shape_sim = 1.0 - min(1.0, abs(math.log(c.aspect / d.aspect)))
    return colour_sim + 0.5 * same_super + 0.25 * shape_sim


def hard_negative(image: MiniImage, seed: int) -> str:
    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES

    others = [name for name in CATEGORY_NAMES if name != image.category]
    ranked = sorted(others, key=lambda name: (-round(similarity(image.category, name, image.painted), 9), name))
    rng = derive_rng(seed, "robustvqa-mini", "negative", image.subset, image.key)
    return ranked[int(rng.integers(min(TOP_K, len(ranked))))]


def build_mini(out: Path, config: MiniConfig) -> Split:
    """Render the images into `out/images/{subset}/{key}.png` and return the (unsaved) split."""
    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES, render_single_object

    config.check()
    images = plan(config)

    def render(image: MiniImage) -> str:
        rel = f"images/{image.subset}/{image.key}.png"
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        picture = render_single_object(config.seed, ("robustvqa-mini", image.subset, image.key), image.category,
                                       size=config.size, **image.render)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        picture.save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, target)
        return rel

    # every image is a pure function of (config, key): threads change the speed, never the bytes
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        paths = list(pool.map(render, images))
    samples: list[Sample] = []
    for image, rel in zip(images, paths):
        negative = hard_negative(image, config.seed)
        group = {"subset": image.subset, "class": image.category, "negative": negative, "variant": image.variant}
        base = f"{MINI_NAME}/{image.subset}/{image.key}"
        samples.append(Sample(f"{base}#yes", rel, question(config.template, image.category), "yes",
                              {**group, "object": image.category}))
        samples.append(Sample(f"{base}#no", rel, question(config.template, negative), "no",
                              {**group, "object": negative}))
    params = {"images_per_subset": config.images_per_subset, "size": config.size, "template": config.template,
              "renderer": "synthscenes.render_single_object", "negatives": "similarity top-3 (see mini.py)"}
    extra = {"synthetic": True, "subsets": {s: {"images": config.images_per_subset} for s in SUBSETS},
             "note": "bundled mini RobustVQA (SynthScenes); not comparable with numbers on ImageNet-A/-R/-V2"}
    return Split.create(name=MINI_NAME, benchmark=BENCHMARK, samples=samples, image_root=".",
                        builder=BuilderInfo("robustvqa-mini", params, config.seed, None),
                        candidates=list(CATEGORY_NAMES), extra=extra)
