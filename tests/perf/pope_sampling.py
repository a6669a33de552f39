"""POPE sampling speed on a COCO-sized annotation set (target: all three subsets in under 5 s).

    python tests/perf/pope_sampling.py [--images 40000] [--categories 80] [--mean-objects 7.25]

Generates a COCO instances file shaped like instances_val2014.json (40,000 images, 80 categories,
~290,000 annotations; scene mixtures give COCO-like skewed frequencies and co-occurrence), then times:

1. reading it with the COCO source (JSON parse + per-image distinct objects in annotation order);
2. sampling random, popular and adversarial with upstream's defaults (500 images, 3 per image);
3. the same three subsets over every eligible image (a stress case: counts and co-occurrence over
   ~40,000 images instead of 500).

Prints seconds and the ratio to the 5 s target (ratio < 1 meets it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from deem_eval.benchmarks.pope.sampler import SamplerConfig, sample_pope
from deem_eval.benchmarks.pope.sources import load_coco_instances
from deem_eval.core.rng import derive_rng

TARGET_S = 5.0


def make_instances(n_images: int, n_categories: int, mean_objects: float, seed: int = 0) -> dict:
    """A synthetic COCO instances document: each image belongs to one of 12 scenes whose category weights
    are skewed (Dirichlet), so some objects are frequent and some pairs co-occur far more than others."""
    rng = derive_rng(seed, "perf", "pope-coco")
    scenes = rng.dirichlet(np.full(n_categories, 0.15), size=12)
    popularity = 1.0 / np.arange(1, n_categories + 1)            # Zipf-like global popularity
    scenes = scenes * popularity
    scenes /= scenes.sum(axis=1, keepdims=True)
    scene_of = rng.integers(0, len(scenes), size=n_images)
    counts = rng.poisson(mean_objects - 1, size=n_images) + 1
    annotations = []
    ann_id = 1
    for image_index in range(n_images):
        picked = rng.choice(n_categories, size=int(counts[image_index]), p=scenes[scene_of[image_index]])
        for category in picked:
            annotations.append({"id": ann_id, "image_id": image_index + 1, "category_id": int(category) + 1,
                                "bbox": [0.0, 0.0, 10.0, 10.0], "area": 100.0, "iscrowd": 0})
            ann_id += 1
    images = [{"id": i + 1, "file_name": f"COCO_val2014_{i + 1:012d}.jpg", "width": 640, "height": 480}
              for i in range(n_images)]
    categories = [{"id": i + 1, "name": f"object {i + 1}", "supercategory": "thing"} for i in range(n_categories)]
    return {"images": images, "annotations": annotations, "categories": categories}


CPU: dict[str, float] = {}


def timed(fn, label: str = ""):
    """Wall-clock seconds (perf_counter); CPU seconds are kept in CPU[label] (shared machines inflate wall time)."""
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t0
    CPU[label] = time.process_time() - c0
    return result, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40_000)
    parser.add_argument("--categories", type=int, default=80)
    parser.add_argument("--mean-objects", type=float, default=7.25, help="annotations per image (COCO: ~7.3)")
    args = parser.parse_args()

    doc, gen_s = timed(lambda: make_instances(args.images, args.categories, args.mean_objects))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "instances.json"
        path.write_text(json.dumps(doc))
        size_mb = path.stat().st_size / 1e6
        print(f"generated {len(doc['images']):,} images, {len(doc['categories'])} categories, "
              f"{len(doc['annotations']):,} annotations ({size_mb:.0f} MB) in {gen_s:.1f} s")
        del doc
        source, read_s = timed(lambda: load_coco_instances(path), "read")
    eligible = sum(len(im.objects) >= 3 for im in source.images)
    print(f"read with the COCO source: {read_s:.2f} s wall, {CPU['read']:.2f} s CPU "
          f"({eligible:,} images with >= 3 distinct objects)")

    default, sample_s = timed(lambda: sample_pope(source.images, SamplerConfig(seed=0, img_num=500, n=3)), "sample")
    n_questions = sum(len(q) for q in default.questions.values())
    print(f"sample random+popular+adversarial (500 images, n=3): {sample_s:.3f} s wall, {CPU['sample']:.3f} s CPU "
          f"for {n_questions} questions")

    stress, stress_s = timed(lambda: sample_pope(source.images, SamplerConfig(seed=0, img_num=eligible, n=3)),
                              "stress")
    n_stress = sum(len(q) for q in stress.questions.values())
    print(f"stress: all {eligible:,} eligible images: {stress_s:.2f} s wall, {CPU['stress']:.2f} s CPU "
          f"for {n_stress:,} questions")

    total = read_s + sample_s
    cpu = CPU["read"] + CPU["sample"]
    print(f"\nread + sample (upstream defaults): {total:.2f} s wall ({cpu:.2f} s CPU)   ratio to the "
          f"{TARGET_S:.0f} s target: {total / TARGET_S:.2f} wall, {cpu / TARGET_S:.2f} CPU")
    stress_total, stress_cpu = read_s + stress_s, CPU["read"] + CPU["stress"]
    print(f"read + sample (every eligible image): {stress_total:.2f} s wall ({stress_cpu:.2f} s CPU)   ratio: "
          f"{stress_total / TARGET_S:.2f} wall, {stress_cpu / TARGET_S:.2f} CPU")


if __name__ == "__main__":
    main()
