"""`synthscenes-yesno`: a small balanced "Is there a {object} in the image?" split on SynthScenes.

The first benchmark that runs offline on any machine: per image, one question about an object that is in
it (yes) and one about a category that is not (no, drawn uniformly). Built on first use into
$DEEM_EVAL_HOME/splits/ and deterministic, so every machine gets the same fingerprint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from deem_eval.core.benchmark import cached_build, deem_eval_home, load_prebuilt
from deem_eval.core.rng import derive_rng
from deem_eval.core.splits import BuilderInfo, Sample, Split

NAME = "synthscenes-yesno"
BUILD_VERSION = 1   # bump when the construction changes, so caches of the old one are not reused


@dataclass(frozen=True)
class SynthScenesYesNoConfig:
    seed: int = 0
    num_images: int = 200
    size: int = 224

    def __post_init__(self) -> None:
        if self.num_images < 1 or self.size < 32:
            raise ValueError("num_images must be >= 1 and size >= 32")


class SynthScenesYesNo:
    name = NAME
    description = "balanced object-presence questions on procedural SynthScenes images (offline default)"
    Config = SynthScenesYesNoConfig

    def __init__(self, config: SynthScenesYesNoConfig | None = None):
        self.config = config or SynthScenesYesNoConfig()

    def load(self, *, split_dir: Path | None = None) -> Split:
        if split_dir is not None:
            return load_prebuilt(split_dir, benchmark=NAME)
        from deem_eval.benchmarks.synthscenes.coco import RENDER_VERSION

        c = self.config
        version = f"v{BUILD_VERSION}.{RENDER_VERSION}"   # a renderer change must not reuse old caches
        cache = deem_eval_home() / "splits" / f"{NAME}-{version}-s{c.seed}-n{c.num_images}-px{c.size}"
        return cached_build(cache, self.build)

    def build(self, out_dir: Path) -> Split:
        from deem_eval.benchmarks.synthscenes import generate

        c = self.config
        generate(out_dir, seed=c.seed, num_images=c.num_images, size=c.size)
        coco = json.loads((out_dir / "instances.json").read_text(encoding="utf-8"))
        samples = questions_from_coco(coco, seed=c.seed)
        return Split.create(name=f"{NAME}-s{c.seed}", benchmark=NAME, samples=samples, image_root="images",
                            builder=BuilderInfo("synthscenes-yesno", {**asdict(c), "version": BUILD_VERSION}, c.seed),
                            candidates=[cat["name"] for cat in coco["categories"]])


def questions_from_coco(coco: dict, *, seed: int) -> list[Sample]:
    """One present (yes) and one absent (no) object per image, drawn with per-image generators."""
    names = {cat["id"]: cat["name"] for cat in coco["categories"]}
    all_names = sorted(names.values())
    present: dict[int, list[str]] = {}
    for ann in coco["annotations"]:
        objects = present.setdefault(ann["image_id"], [])
        if names[ann["category_id"]] not in objects:
            objects.append(names[ann["category_id"]])
    samples = []
    for image in coco["images"]:
        objects = present.get(image["id"], [])
        absent = [n for n in all_names if n not in objects]
        if not objects or not absent:
            continue
        rng = derive_rng(seed, NAME, image["id"])
        yes_obj = objects[int(rng.integers(len(objects)))]
        no_obj = absent[int(rng.integers(len(absent)))]
        for answer, obj in (("yes", yes_obj), ("no", no_obj)):
            samples.append(Sample(
                id=f"{NAME}/{int(image['id']):06d}/{answer}", image=image["file_name"],
                question=f"Is there {article(obj)} {obj} in the image?", answer=answer,
                group={"object": obj, "scene": image.get("scene", "unknown"), "image_id": str(image["id"])}))
    return samples


def article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"
