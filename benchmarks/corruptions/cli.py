"""`deem-eval build corrupt`: derive an ImageNet-C style corrupted split from any split."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


class CorruptBuilder:
    name = "corrupt"
    help = "derive a corrupted split (ImageNet-C corruptions x severities) from any split"
    examples = ("examples:\n"
                "  deem-eval build corrupt --from splits/pope-coco --corruptions all --severities 1-5 \\\n"
                "      --workers 2 --out splits/pope-coco-c\n"
                "  deem-eval build corrupt --from splits/robustvqa --corruptions noise,blur --severities 1,3,5 "
                "--out splits/rvqa-c\n"
                "  deem-eval build corrupt --from DIR --corruptions fog,jpeg_compression --severities 2-4 "
                "--backend imagecorruptions --out DIR-c\n\n"
                "corruptions: all, common (the 15 of ImageNet-C), extra (speckle_noise, gaussian_blur, spatter,\n"
                "saturate), a family (noise, blur, weather, digital) or names, comma separated:\n"
                "  noise    gaussian_noise shot_noise impulse_noise speckle_noise\n"
                "  blur     defocus_blur glass_blur motion_blur zoom_blur gaussian_blur\n"
                "  weather  snow frost fog brightness spatter\n"
                "  digital  contrast elastic_transform pixelate jpeg_compression saturate")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.description = (
            "Write a new split whose images are corrupted copies of SPLIT_DIR's: one PNG per image x corruption x "
            "severity under OUT/images/ (an image shared by several questions is corrupted once), sample ids "
            "'<id>@<corruption>-<severity>', group fields corruption and severity. The same --seed gives "
            "byte-identical output with any --workers; an interrupted build resumes where it stopped.")
        parser.add_argument("--from", dest="source", type=Path, required=True, metavar="SPLIT_DIR",
                            help="the split to corrupt (a directory with split.json)")
        parser.add_argument("--corruptions", default="all", help="which corruptions (default: all 19)")
        parser.add_argument("--severities", default="1-5", help="severities 1-5: ranges and lists, e.g. 1-5, 1,3,5")
        parser.add_argument("--seed", type=int, default=0, help="build seed of the stochastic corruptions (recorded in split.json; default 0)")
        parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1; output is identical)")
        parser.add_argument("--out", type=Path, required=True, help="output split directory")
        parser.add_argument("--backend", choices=("ours", "imagecorruptions"), default="ours",
                            help="ours (fast, default) or the classic imagecorruptions 1.1.2 code")
        parser.add_argument("--max-images", type=int, default=None,
                            help="corrupt only this many source images (a fixed, seed-dependent subset)")
        parser.add_argument("--name", default=None, help="split name (default: <source name>-c)")
        parser.add_argument("--benchmark", default=None,
                            help="benchmark name stored in the split (default: <source benchmark>-c)")
        parser.add_argument("--skip-small", action="store_true",
                            help="leave out images smaller than 32x32 (listed in split.json) instead of failing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run(self, args: argparse.Namespace) -> int:
        from deem_eval.core.splits import Split

        from . import catalog
        from .derive import DeriveConfig, derive_corrupted_split
        from .spec import parse_severities

        config = DeriveConfig(corruptions=catalog.resolve(args.corruptions),
                              severities=parse_severities(args.severities), seed=args.seed,
                              backend=args.backend, max_images=args.max_images, name=args.name,
                              benchmark=args.benchmark, skip_small=args.skip_small, workers=args.workers,
                              progress=not args.no_progress)
        config.check()
        source = Split.load(args.source)
        start = time.perf_counter()
        split = derive_corrupted_split(source, args.out, config)
        extra = split.meta.extra
        print(f"wrote {split.meta.count} questions ({extra.get('images', 0)} images x "
              f"{len(config.corruptions)} corruptions x {len(config.severities)} severities) to {args.out} "
              f"in {time.perf_counter() - start:.1f} s; fingerprint {split.fingerprint[:16]}")
        if extra.get("unreadable_count"):
            print(f"skipped {extra['unreadable_count']} unreadable image(s) and their "
                  f"{extra['dropped_samples']} question(s); listed in {args.out / 'split.json'} (extra)")
        if extra.get("too_small_count"):
            print(f"skipped {extra['too_small_count']} image(s) below 32x32; listed in split.json (extra)")
        return 0
