"""SynthScenes generation speed.

    python tests/perf/synthscenes_speed.py [--images 500] [--workers 2]

1. `generate()` of N scenes at 224 px and at 64 px on one process (rendering + PNG writing + JSON), in
   ms/image and as a ratio to the target (500 images at 224 px in <= 5 s, i.e. 10 ms/image).
2. The same at 224 px with --workers processes (speed-up ratio; files are identical, see the tests).
3. render_single_object per style at 224 px (RobustVQA-style renditions), ms/image.
"""

from __future__ import annotations

import argparse
import tempfile
import time

TARGET_MS = 10.0


def time_generate(n: int, size: int, workers: int) -> float:
    from deem_eval.benchmarks.synthscenes import generate

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate(tmp, seed=0, num_images=n, size=size, workers=workers, progress=False)
        return time.perf_counter() - t0


def time_styles(size: int, repeats: int) -> dict[str, float]:
    from deem_eval.benchmarks.synthscenes import CATEGORIES, STYLES, render_single_object

    out = {}
    for style in STYLES:
        t0 = time.perf_counter()
        for r in range(repeats):
            for c in CATEGORIES:
                render_single_object(0, r, c.name, size=size, style=style)
        out[style] = (time.perf_counter() - t0) / (repeats * len(CATEGORIES)) * 1000
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    time_generate(10, 224, 1)  # warm imports
    one = {}
    for size in (224, 64):
        s = time_generate(a.images, size, 1)
        one[size] = s
        ms = s / a.images * 1000
        print(f"generate {a.images} images at {size:>3} px, 1 process: {s:.2f} s = {ms:.1f} ms/image "
              f"({ms / TARGET_MS:.2f}x the {TARGET_MS:.0f} ms/image target)")
    if a.workers > 1:
        s = time_generate(a.images, 224, a.workers)
        print(f"generate {a.images} images at 224 px, {a.workers} processes: {s:.2f} s "
              f"(speed-up {one[224] / s:.2f}x over 1 process)")
    for style, ms in time_styles(224, 2).items():
        print(f"render_single_object style={style:<8} 224 px: {ms:.1f} ms/image")


if __name__ == "__main__":
    main()
