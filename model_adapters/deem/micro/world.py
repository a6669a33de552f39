"""The DEEM-micro training world: SynthScenes images from a seed stream no benchmark can reproduce.

Every image comes from `(seed, TRAIN_STREAM, index)`: single-object pictures through
`render_single_object(seed, (TRAIN_STREAM, i), ...)` and multi-object scenes through
`plan_scene(seed, i, stream=TRAIN_STREAM)`. Benchmarks key their images by their own names
("robustvqa-mini", "synthscenes", ...), so no benchmark option (any seed, any size) can produce a training
image. Only the natural style is rendered: filled objects at ordinary sizes on plain or scene backgrounds -
none of the mini RobustVQA's shifts (outline, sketch, cartoon, texture, small, occluded, cluttered,
low-contrast, odd colour) and no corruptions.

The world is rendered once into a uint8 array at the encoder's size (the same PIL bicubic resize the adapter
applies at inference; the teacher's smaller input is resized from it by the trainer's own preprocessing),
with captions, object lists and the category of single-object pictures. `fingerprint()` hashes the pixels
and texts; checkpoints carry it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.rng import derive_rng

from ..model.tiny_tokenizer import article

TRAIN_STREAM = "deem-micro-train"
FORMAT = 1
WORLD_FILE = "world.npz"
META_FILE = "world.json"


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    singles: int = 6000          # single-object pictures (rendered at `single_px`)
    scenes: int = 3000           # multi-object scenes (rendered at `scene_px`)
    single_px: int = 128         # the mini RobustVQA's size
    scene_px: int = 224          # the bundled POPE's size
    encoder_px: int = 64         # stored at the encoder's input size
    scale_range: tuple[float, float] = (0.6, 1.15)   # natural sizes only (the mini's "small" is 0.22-0.34)


@dataclass(frozen=True)
class WorldItem:
    kind: str                    # "single" | "scene"
    index: int
    caption: str
    objects: tuple[str, ...]     # distinct categories present, in drawing order
    main: str | None             # single-object pictures: the category
    scene: str | None            # scenes: the scene type


def _listing(names: Sequence[str]) -> str:
    parts = [f"{article(n)} {n}" for n in names]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def single_caption(category: str, background: str, rng: np.random.Generator) -> str:
    if background == "plain":
        options = (f"a photo of {article(category)} {category}.", f"{article(category)} {category} on a plain background.")
    else:
        options = (f"a photo of {article(category)} {category}.", f"{article(category)} {category} in a scene.")
    return options[int(rng.integers(len(options)))]


def scene_caption(scene: str, objects: Sequence[str]) -> str:
    return f"a {scene} scene with {_listing(objects)}."


class World:
    """Images (uint8 [N, S, S, 3] at the encoder's size) and their items."""

    def __init__(self, config: WorldConfig, pixels: np.ndarray, items: list[WorldItem]):
        self.config, self.pixels, self.items = config, pixels, items

    def __len__(self) -> int:
        return len(self.items)

    def indices(self, kind: str) -> np.ndarray:
        return np.array([i for i, it in enumerate(self.items) if it.kind == kind], dtype=np.int64)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(asdict(self.config), sort_keys=True).encode())
        h.update(self.pixels.tobytes())
        for it in self.items:
            h.update(json.dumps(asdict(it), sort_keys=True).encode())
        return h.hexdigest()

    # ---- persistence ---------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        from deem_eval.core.atomic import atomic_write_text

        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{WORLD_FILE}.tmp.npz"
        np.savez(tmp, pixels=self.pixels)
        tmp.replace(directory / WORLD_FILE)
        meta = {"format": FORMAT, "config": asdict(self.config), "fingerprint": self.fingerprint(),
                "stream": TRAIN_STREAM, "items": [asdict(it) for it in self.items]}
        atomic_write_text(directory / META_FILE, json.dumps(meta) + "\n")

    @classmethod
    def load(cls, directory: Path, config: WorldConfig) -> World | None:
        """The saved world if it was made from `config` and is intact, else None (it is re-rendered)."""
        meta_path, arrays = directory / META_FILE, directory / WORLD_FILE
        if not (meta_path.is_file() and arrays.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("config") != json.loads(json.dumps(asdict(config))):
                return None
            with np.load(arrays) as data:
                pixels = data["pixels"]
            items = [WorldItem(**{**it, "objects": tuple(it["objects"])}) for it in meta["items"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        world = cls(config, pixels, items)
        return world if world.fingerprint() == meta.get("fingerprint") else None


def _resize(image, px: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(image.convert("RGB").resize((px, px), Image.Resampling.BICUBIC), dtype=np.uint8)


def render_world(config: WorldConfig, *, progress: bool = True) -> World:
    """Render every training image (a pure function of the config: same config, same bytes)."""
    from tqdm import tqdm

    from deem_eval.benchmarks.synthscenes import CATEGORY_NAMES, plan_scene, render_plan, render_single_object

    if config.singles < 1 or config.scenes < 0:
        raise DeemEvalError("the training world needs at least one single-object picture")
    total = config.singles + config.scenes
    pixels = np.zeros((total, config.encoder_px, config.encoder_px, 3), np.uint8)
    items: list[WorldItem] = []
    bar = tqdm(total=total, desc="training world", unit="img", disable=not progress, dynamic_ncols=True)
    for i in range(config.singles):
        rng = derive_rng(config.seed, TRAIN_STREAM, "single-plan", i)
        category = CATEGORY_NAMES[int(rng.integers(len(CATEGORY_NAMES)))]
        background = "scene" if rng.random() < 0.5 else "plain"
        scale = round(float(rng.uniform(*config.scale_range)), 4)
        picture = render_single_object(config.seed, (TRAIN_STREAM, i), category, size=config.single_px,
                                       style="filled", background=background, scale=scale)
        pixels[i] = _resize(picture, config.encoder_px)
        items.append(WorldItem("single", i, single_caption(category, background, rng), (category,), category, None))
        bar.update()
    for j in range(config.scenes):
        plan = plan_scene(config.seed, j, stream=TRAIN_STREAM)
        picture, objects = render_plan(plan, config.seed, j, size=config.scene_px, stream=TRAIN_STREAM)
        names = tuple(dict.fromkeys(o.category for o in objects))
        k = config.singles + j
        pixels[k] = _resize(picture, config.encoder_px)
        items.append(WorldItem("scene", j, scene_caption(plan.scene, names) if names else f"a {plan.scene} scene.",
                               names, None, plan.scene))
        bar.update()
    bar.close()
    return World(config, pixels, items)


def load_or_render(directory: Path, config: WorldConfig, *, progress: bool = True) -> World:
    world = World.load(directory, config)
    if world is None:
        world = render_world(config, progress=progress)
        world.save(directory)
    return world


def image(world: World, index: int):
    """Item `index` as a PIL image (what the trainers and the adapter's preprocessing take)."""
    from PIL import Image

    return Image.fromarray(world.pixels[index])
