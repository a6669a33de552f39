"""Speed of deem-eval's corruptions against imagecorruptions 1.1.2, in one process, on the same images.

    .venv/bin/python benchmarks/perf/corruptions_speed.py                 # 224 px, batch 16, CPU
    .venv/bin/python benchmarks/perf/corruptions_speed.py --device cuda   # also time CUDA (if present)

For every corruption, the reference runs on --ref-images photos x 5 severities and ours on the same
photos tiled to --batch images x 5 severities, one after the other, so both see the same machine load.
Reported: images per second for each, per corruption (all 5 severities), and the ratio for the full
19 x 5 grid (total time per image) and for glass blur.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def photos(size: int, count: int) -> np.ndarray:
    import skimage.data
    from PIL import Image

    names = ("astronaut", "coffee", "chelsea", "rocket", "cat", "hubble_deep_field", "immunohistochemistry")
    out = []
    for name in names[:count] if count <= len(names) else names:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        out.append(np.asarray(image.resize((size, size), Image.BILINEAR)))
    while len(out) < count:
        out.append(out[len(out) % len(names)])
    return np.stack(out[:count])


def time_ours(corruption, images: np.ndarray, device: str, repeats: int) -> float:
    """Seconds per image for all five severities (best of `repeats`)."""
    from benchmarks.corruptions.backends import seeded_generator

    batch = torch.from_numpy(images).to(device)
    best = float("inf")
    for repeat in range(repeats + 1):                 # first pass warms caches (kernels, frost photos)
        start = time.perf_counter()
        for severity in range(1, 6):
            rngs = [seeded_generator(1000 * severity + i) for i in range(len(images))]
            corruption.batch(batch, severity, rngs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if repeat:
            best = min(best, time.perf_counter() - start)
    return best / len(images)


def time_reference(name: str, images: np.ndarray) -> float:
    from benchmarks.corruptions import compat

    compat.reference_corrupt(images[0][:64, :64].copy(), name, 1, 0)  # import + first-call costs
    start = time.perf_counter()
    for index, image in enumerate(images):
        for severity in range(1, 6):
            compat.reference_corrupt(image, name, severity, 1000 * severity + index)
    return (time.perf_counter() - start) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16, help="images per batch for ours")
    parser.add_argument("--ref-images", type=int, default=2, help="images the (slow) reference corrupts")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, or cpu,cuda")
    parser.add_argument("--corruptions", default="all")
    args = parser.parse_args()

    from benchmarks.corruptions import catalog

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        print("CUDA requested but not available: CUDA not measured")
        devices = [d for d in devices if not d.startswith("cuda")]
    names = catalog.resolve(args.corruptions)
    ref_images = photos(args.size, args.ref_images)
    batch = photos(args.size, args.batch)
    print(f"{args.size}x{args.size}, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
          f"reference on {args.ref_images} image(s), ours on batches of 1 and {args.batch}")
    header = f"{'corruption':18s} {'ref img/s':>10s}"
    for device in devices:
        header += f" {device + ' B=1':>12s} {device + f' B={args.batch}':>12s} {'ratio':>7s}"
    print(header)
    totals = {"ref": 0.0}
    for name in names:
        corruption = catalog.get(name)
        ref = time_reference(name, ref_images)
        totals["ref"] += ref
        line = f"{name:18s} {5 / ref:10.1f}"
        for device in devices:
            single = time_ours(corruption, batch[:1], device, args.repeats)
            batched = time_ours(corruption, batch, device, args.repeats)
            totals[f"{device}1"] = totals.get(f"{device}1", 0.0) + single
            totals[device] = totals.get(device, 0.0) + batched
            line += f" {5 / single:12.1f} {5 / batched:12.1f} {ref / batched:6.1f}x"
            if name == "glass_blur":
                totals[f"glass {device}"] = ref / batched
                totals[f"glass {device}1"] = ref / single
        print(line, flush=True)
    grid = f"{len(names)}x5 grid"
    print(f"\n{grid}: reference {1 / totals['ref']:.3f} images/s (all variants of one image per "
          f"{totals['ref']:.2f} s)")
    for device in devices:
        print(f"{grid}: ours {device} batch 1: {1 / totals[device + '1']:.2f} images/s "
              f"({totals['ref'] / totals[device + '1']:.1f}x); batch {args.batch}: {1 / totals[device]:.2f} "
              f"images/s ({totals['ref'] / totals[device]:.1f}x)")
        if f"glass {device}" in totals:
            print(f"glass_blur {device}: {totals[f'glass {device}1']:.0f}x (batch 1), "
                  f"{totals[f'glass {device}']:.0f}x (batch {args.batch})")


if __name__ == "__main__":
    main()
