"""Speed of deem-eval's corruptions against imagecorruptions 1.1.2, in one process, on the same images.

    OMP_NUM_THREADS=1 .venv/bin/python tests/perf/corruptions_speed.py      # 224x224 and 640x480, 1 thread
    .venv/bin/python tests/perf/corruptions_speed.py --sizes 224x224 --corruptions blur,digital
    .venv/bin/python tests/perf/corruptions_speed.py --threads 2 --batch 16 --device cpu,cuda

For every size and corruption, the reference and ours corrupt the same --ref-images photos x 5 severities,
image by image (ours as `Corruption.batch` on one image, which is what `build corrupt` runs), in alternating
passes so both see the same machine load; each side's time is its best pass. Reported, side by side for all
sizes: ms per image (all 5 severities) and the ratio reference / ours (> 1: ours is faster), then for the whole
19 x 5 grid the ratio with and without glass blur (the reference's glass blur is a pure-Python pixel loop
that dominates its grid time). --batch N adds ours on batches of N (tiled photos), --device cuda a GPU column.

The thread count (torch, OpenCV and, through the environment, BLAS / OpenMP) is set before anything is
imported; the machine's load average (os.getloadavg) is printed at the start and the end: on a shared
machine, ratios measured under load are noisy.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable


def _threads_from_argv(argv: list[str]) -> int:
    for index, arg in enumerate(argv):
        if arg == "--threads" and index + 1 < len(argv):
            return int(argv[index + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


_THREADS = _threads_from_argv(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = str(_THREADS)

import numpy as np  # after the thread environment is set
import torch

SLOW_PASS_S = 1.5   # a side whose first pass takes longer than this is not repeated (reference glass blur)


def photos(height: int, width: int, count: int) -> np.ndarray:
    import skimage.data
    from PIL import Image

    names = ("astronaut", "coffee", "chelsea", "rocket", "cat", "hubble_deep_field", "immunohistochemistry")
    out = []
    for name in names[:count]:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        out.append(np.asarray(image.resize((width, height), Image.Resampling.BILINEAR)))
    while len(out) < count:
        out.append(out[len(out) % len(names)])
    return np.stack(out[:count])


def parse_size(text: str) -> tuple[int, int]:
    """'224' or '224x224' or '640x480' (width x height) -> (height, width)."""
    width, _, height = text.lower().partition("x")
    return (int(height or width), int(width))


def _reference_pass(name: str, images: np.ndarray) -> float:
    from deem_eval.benchmarks.corruptions import compat

    start = time.perf_counter()
    for index, image in enumerate(images):
        for severity in range(1, 6):
            compat.reference_corrupt(image, name, severity, 1000 * severity + index)
    return (time.perf_counter() - start) / len(images)


def _ours_pass(corruption, images: np.ndarray, device: str, batch: int) -> float:
    """Seconds per image for all five severities, `batch` images per call."""
    from deem_eval.benchmarks.corruptions.backends import seeded_generator

    data = images if device == "cpu" else torch.from_numpy(images).to(device)
    start = time.perf_counter()
    for severity in range(1, 6):
        for first in range(0, len(images), batch):
            part = data[first:first + batch]
            rngs = [seeded_generator(1000 * severity + first + i) for i in range(len(part))]
            corruption.batch(part, severity, rngs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / len(images)


def measure(name: str, ref_images: np.ndarray, batch_images: np.ndarray | None, devices: list[str],
            repeats: int) -> dict[str, float]:
    """Best seconds per image: 'ref', 'cpu' (ours, one image per call) and, where asked, per device and batch."""
    from deem_eval.benchmarks.corruptions import catalog, compat

    corruption = catalog.get(name)
    compat.reference_corrupt(ref_images[0][:64, :64].copy(), name, 1, 0)          # import + first-call costs
    sides: dict[str, Callable[[], float]] = {"ref": lambda: _reference_pass(name, ref_images)}
    for device in devices:
        key = "cpu" if device == "cpu" else device
        sides[key] = functools.partial(_ours_pass, corruption, ref_images, device, 1)
        if batch_images is not None:
            sides[f"{key} B"] = functools.partial(_ours_pass, corruption, batch_images, device, len(batch_images))
    for key, run in sides.items():        # warm caches (kernels, frost photos, JPEG checks) outside the timing
        if key != "ref":
            run()
    best = {key: float("inf") for key in sides}
    slow: set[str] = set()
    for _ in range(repeats):              # alternate the sides so that both see the same load
        for key, run in sides.items():
            if key in slow:
                continue
            seconds = run()
            best[key] = min(best[key], seconds)
            if seconds * (len(ref_images) if key == "ref" else 1) > SLOW_PASS_S:
                slow.add(key)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="224x224,640x480", help="comma list of WIDTHxHEIGHT (or one number)")
    parser.add_argument("--size", type=int, default=None, help="one square size (overrides --sizes)")
    parser.add_argument("--ref-images", type=int, default=2, help="photos both sides corrupt, per size")
    parser.add_argument("--batch", type=int, default=0, help="also time ours on batches of N tiled photos")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch / OpenCV / BLAS threads (default 1; set before numpy is imported)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating passes; the best is reported")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, or cpu,cuda")
    parser.add_argument("--corruptions", default="all")
    args = parser.parse_args()

    import cv2

    from deem_eval.benchmarks.corruptions import catalog

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    if "cpu" not in devices:
        devices.insert(0, "cpu")
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        print("CUDA requested but not available: CUDA not measured")
        devices = [d for d in devices if not d.startswith("cuda")]
    sizes = [(args.size, args.size)] if args.size else [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    names = catalog.resolve(args.corruptions)
    load = os.getloadavg()
    print(f"threads {args.threads} (torch {torch.get_num_threads()}, OpenCV {cv2.getNumThreads()}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}); {os.cpu_count()} CPUs; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    print(f"torch {torch.__version__}, numpy {np.__version__}, OpenCV {cv2.__version__}; "
          f"{args.ref_images} photo(s) x 5 severities per corruption, image by image, best of {args.repeats} "
          f"alternating passes (sides slower than {SLOW_PASS_S} s per pass: one pass)")
    results: dict[tuple[int, int], dict[str, dict[str, float]]] = {}
    start = time.perf_counter()
    for height, width in sizes:
        ref_images = photos(height, width, args.ref_images)
        batch_images = photos(height, width, args.batch) if args.batch else None
        results[(height, width)] = {name: measure(name, ref_images, batch_images, devices, args.repeats)
                                    for name in names}
    labels = [f"{w}x{h}" for h, w in sizes]
    extra = [k for k in next(iter(next(iter(results.values())).values())) if k not in ("ref", "cpu")]
    head = f"{'ms per image (5 sev.)':24s}" + "".join(
        f" | {label + ' ref':>16s} {'ours':>8s} {'ratio':>6s}" + "".join(f" {k:>9s}" for k in extra)
        for label in labels)
    print("\n" + head)
    print("-" * len(head))
    for name in names:
        line = f"{name:24s}"
        for size in sizes:
            row = results[size][name]
            line += f" | {1000 * row['ref']:16.2f} {1000 * row['cpu']:8.2f} {row['ref'] / row['cpu']:5.2f}x"
            line += "".join(f" {row['ref'] / row[k]:8.2f}x" for k in extra)
        print(line)
    print("-" * len(head))
    for title, keep in (("grid, all corruptions", lambda n: True),
                        ("grid without glass_blur", lambda n: n != "glass_blur")):
        chosen = [n for n in names if keep(n)]
        if not chosen:
            continue
        line = f"{title:24s}"
        for size in sizes:
            ref = sum(results[size][n]["ref"] for n in chosen)
            ours = sum(results[size][n]["cpu"] for n in chosen)
            line += f" | {1000 * ref:16.1f} {1000 * ours:8.1f} {ref / ours:5.2f}x"
            for k in extra:
                line += f" {ref / sum(results[size][n][k] for n in chosen):8.2f}x"
        print(line)
    slower = [(label, n, results[size][n]["ref"] / results[size][n]["cpu"])
              for size, label in zip(sizes, labels) for n in names
              if results[size][n]["ref"] < results[size][n]["cpu"]]
    print("\nslower than the reference: " + (", ".join(f"{n} at {label} ({r:.2f}x)" for label, n, r in slower)
                                           if slower else "none"))
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
