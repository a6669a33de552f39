"""What DEEM-micro is taught on its training world: captions (stage 1) and questions (stage 2).

Questions come in the forms the benchmarks ask (the RobustVQA "main object" question, POPE's "Is there a
... in the image?") and a short-answer one ("What is the main object in this image?"), on training images
only. Negatives mix uniform draws with look-alikes: for single objects the most similar other categories
by the same colour/supercategory/shape rule the mini uses (the paper's CLIP-mined negatives play that
role on ImageNet), for scenes absent objects that belong to the scene type (POPE's adversarial idea) and
uniform ones. Every draw comes from `derive_rng(seed, TRAIN_STREAM, "qa", ...)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deem_eval.core.rng import derive_rng

from ..model.tiny_tokenizer import MAIN_OBJECT, MAIN_OBJECT_ALT, THERE_IS, WHAT_IS, fill
from .world import TRAIN_STREAM, World


@dataclass(frozen=True)
class QA:
    index: int        # world item
    question: str
    answer: str


def _look_alikes(category: str) -> list[str]:
    from deem_eval.benchmarks.robustvqa.mini import similarity
    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES, category_by_name

    painted = tuple(category_by_name(category).colour("main"))
    others = [c for c in CATEGORY_NAMES if c != category]
    return sorted(others, key=lambda d: (-round(similarity(category, d, painted), 9), d))[:3]  # type: ignore[arg-type]


def questions(world: World, seed: int, per_image: int = 4) -> list[QA]:
    """`per_image` questions for every world item, balanced yes/no (short answers on single objects)."""
    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES, scene_by_name

    look_alikes = {c: _look_alikes(c) for c in CATEGORY_NAMES}
    out: list[QA] = []
    for index, item in enumerate(world.items):
        for k in range(per_image):
            rng = derive_rng(seed, TRAIN_STREAM, "qa", index, k)
            positive = k % 2 == 0
            if item.kind == "single":
                assert item.main is not None
                if k == 3 and rng.random() < 0.5:
                    out.append(QA(index, WHAT_IS, item.main))
                    continue
                template = MAIN_OBJECT if rng.random() < 0.6 else MAIN_OBJECT_ALT
                if positive:
                    name = item.main
                elif rng.random() < 0.5:
                    name = look_alikes[item.main][int(rng.integers(3))]
                else:
                    name = _uniform_other(rng, CATEGORY_NAMES, {item.main})
            else:
                template = THERE_IS
                present = set(item.objects)
                if positive and present:
                    name = item.objects[int(rng.integers(len(item.objects)))]
                else:
                    positive = False
                    assert item.scene is not None
                    in_scene = sorted({o.name for o in scene_by_name(item.scene).objects} - present)
                    if in_scene and rng.random() < 0.5:
                        name = in_scene[int(rng.integers(len(in_scene)))]
                    else:
                        name = _uniform_other(rng, CATEGORY_NAMES, present)
            out.append(QA(index, fill(template, name), "yes" if positive else "no"))
    return out


def _uniform_other(rng: np.random.Generator, names, exclude: set[str]) -> str:
    pool = [n for n in names if n not in exclude]
    return pool[int(rng.integers(len(pool)))]
