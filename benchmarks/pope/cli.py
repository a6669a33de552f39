"""`deem-eval build pope`: sample POPE from annotations, load / recognise / export published files, or
load the lmms-lab/POPE Hugging Face layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from deem_eval.core.errors import DeemEvalError

NEWLINES = {"lf": "\n", "crlf": "\r\n"}


class PopeBuilder:
    name = "pope"
    help = "build POPE splits (COCO / object lists), load or export published POPE files, recognise versions"
    examples = (
        "examples:\n"
        "  deem-eval build pope --coco-annotations instances_val2014.json --images val2014/ --seed 0 \\\n"
        "      --out splits/pope-coco\n"
        "  deem-eval build pope --coco-annotations instances_val2014.json --images val2014/ \\\n"
        "      --images-list coco_pope_popular.json --out splits/pope-coco-upstream-images\n"
        "  deem-eval build pope --from-published coco_pope_random.json        # just say which version it is\n"
        "  deem-eval build pope --from-published output/coco/*.json --images val2014/ \\\n"
        "      --out splits/pope-coco-published\n"
        "  deem-eval build pope --from-published output/coco/*.json --question-suffix deem \\\n"
        "      --images val2014/ --out splits/pope-coco-deem   # DEEM's prompt: '... Please anwser yes or no'\n"
        "  deem-eval build pope --to-published splits/pope-coco --out exported/\n"
        "  deem-eval build pope --from-hf lmms-lab/POPE --out splits/pope-lmms   # or a save_to_disk directory")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.description = ("POPE splits: all requested subsets in one split (group field 'subset'), ids "
                              "pope-<dataset>-<subset>/<question id>. Sampling follows upstream's algorithm "
                              "with a seed; published files keep their question ids and export back byte for byte.")
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--coco-annotations", type=Path, metavar="FILE",
                          help="COCO instances JSON (e.g. instances_val2014.json) to sample from")
        mode.add_argument("--objects", type=Path, metavar="FILE",
                          help='POPE object lists to sample from: JSON lines {"image": ..., "objects": [...]}')
        mode.add_argument("--from-published", type=Path, nargs="+", metavar="FILE",
                          help="published POPE question files (one per subset): print their version; with --out, "
                               "save them as a split")
        mode.add_argument("--to-published", type=Path, metavar="SPLIT_DIR",
                          help="export a POPE split to upstream's question-file format")
        mode.add_argument("--from-hf", metavar="DIR_OR_ID",
                          help="a datasets dataset in the lmms-lab/POPE layout (save_to_disk dir or hub id)")
        parser.add_argument("--out", type=Path, help="output directory (split dir, or export dir)")
        parser.add_argument("--images", type=Path, metavar="DIR",
                            help="directory holding the images the questions name (e.g. COCO val2014/)")
        sampling = parser.add_argument_group("sampling (--coco-annotations / --objects)")
        sampling.add_argument("--seed", type=int, default=0, help="build seed: which images and random negatives the split draws (recorded in split.json)")
        sampling.add_argument("--img-num", type=int, default=500, help="images to choose (default 500)")
        sampling.add_argument("--n", type=int, default=3,
                              help="positives per image, each followed by one negative (default 3)")
        sampling.add_argument("--subsets", default="random,popular,adversarial",
                              help="comma-separated subsets (default: all three)")
        sampling.add_argument("--images-list", type=Path, metavar="FILE",
                              help="use exactly these images in this order instead of drawing them: one file name "
                                   "per line, or a POPE question file (reproduces its images)")
        sampling.add_argument("--template", default="Is there a {} in the image?", help="question template")
        sampling.add_argument("--article", choices=("by-letter", "upstream"), default="by-letter",
                              help="'a'/'an' by the object's first letter (default), or upstream's "
                                   "template.replace('a', 'an'), which writes 'imange'")
        sampling.add_argument("--duplicates", choices=("drop", "upstream"), default="drop",
                              help="--objects lists that name an object twice for one image: drop (default) keeps "
                                   "its first mention; upstream keeps every mention, as upstream POPE counts them "
                                   "(frequencies, co-occurrences, objects per image, positives)")
        published = parser.add_argument_group("published files (--from-published)")
        published.add_argument("--question-suffix", metavar="SUFFIX",
                               help="append this to every question: 'deem' = DEEM's \" Please anwser yes or no\" "
                                    "(sic, as DEEM's POPE evaluation asks), 'none' (default), or any literal text; "
                                    "recorded in the split (name tag, builder params) and taken off on export")
        naming = parser.add_argument_group("naming")
        naming.add_argument("--dataset", help="dataset part of ids and names (default: coco / from file names)")
        naming.add_argument("--name", help="split name (default pope-<dataset>-s<seed>, or -<version date>)")
        export = parser.add_argument_group("export (--to-published)")
        export.add_argument("--format", choices=("jsonl", "array"),
                            help="file layout (default: as loaded, else JSON lines)")
        export.add_argument("--newline", choices=sorted(NEWLINES), help="line endings (default: as loaded, else lf)")
        parser.add_argument("--hf-split", default="test", help="dataset split for --from-hf (default test)")

    def run(self, args: argparse.Namespace) -> int:
        suffix = getattr(args, "question_suffix", None)
        if suffix not in (None, "none") and not (args.from_published and args.out is not None):
            raise DeemEvalError("--question-suffix applies to --from-published with --out (a sampled split "
                                "takes it in --template, e.g. 'Is there a {} in the image? Please anwser yes or no')")
        if getattr(args, "duplicates", "drop") != "drop" and not args.objects:
            raise DeemEvalError("--duplicates upstream applies to --objects lists (upstream POPE samples from such "
                                "lists); COCO instance files name an object once per instance, which upstream "
                                "never counted")
        if args.coco_annotations or args.objects:
            return self._sample(args)
        if args.from_published:
            return self._from_published(args)
        if args.to_published:
            return self._to_published(args)
        return self._from_hf(args)

    # ---- modes ----------------------------------------------------------------------------------------

    def _sample(self, args: argparse.Namespace) -> int:
        from .build import sampled_split
        from .questions import subsets_from_text
        from .sampler import SamplerConfig
        from .sources import load_coco_instances, load_object_lists, read_image_list

        out = _need_out(args)
        if args.images is None:
            raise DeemEvalError("--images DIR is needed: the directory holding the images (e.g. COCO val2014/)")
        if not args.images.is_dir():
            raise DeemEvalError(f"--images {args.images}: not a directory")
        t0 = time.perf_counter()
        source = load_coco_instances(args.coco_annotations) if args.coco_annotations else \
            load_object_lists(args.objects, duplicates=args.duplicates)
        image_list = read_image_list(args.images_list) if args.images_list else None
        config = SamplerConfig(seed=args.seed, img_num=len(image_list) if image_list else args.img_num, n=args.n,
                               subsets=subsets_from_text(args.subsets), template=args.template, article=args.article)
        dataset = args.dataset or ("coco" if args.coco_annotations else "custom")
        split, sampling = sampled_split(source, config, dataset=dataset, image_root=args.images.resolve(),
                                        name=args.name, image_list=image_list)
        split = split.save(out)
        sel = sampling.selection
        missing = sum(not (args.images / image.image).is_file() for image in sel.chosen)
        print(f"{source.path.name}: {sel.total} images, {sel.eligible} with at least {config.n} objects "
              f"({sel.skipped_too_few} skipped with fewer); chose {len(sel.chosen)}"
              + (" from --images-list" if image_list else f" with seed {config.seed}"))
        if source.duplicate_objects and source.duplicates == "upstream":
            print(f"note: {source.duplicate_objects} object lists named an object twice; every mention was kept and "
                  "counted, as upstream POPE does (--duplicates upstream)")
        elif source.duplicate_objects:
            print(f"note: {source.duplicate_objects} object lists named an object twice; duplicates were dropped "
                  "(--duplicates upstream counts them as upstream POPE does)")
        for subset in config.subsets:
            print(f"  {subset:<12} {len(sampling.questions[subset])} questions")
        print(f"wrote split {split.name} ({split.meta.count} questions, fingerprint {split.fingerprint[:12]}…) "
              f"to {out} in {time.perf_counter() - t0:.1f} s")
        if missing:
            print(f"warning: {missing} of the {len(sel.chosen)} chosen images are not in {args.images}")
        return 0

    def _from_published(self, args: argparse.Namespace) -> int:
        from .build import published_split, resolve_question_suffix
        from .published import read_published
        from .versions import recognise

        files = [read_published(path, dataset=args.dataset) for path in args.from_published]
        if args.out is None:
            for f in files:
                print(recognise(f).describe())
            return 0
        suffix = resolve_question_suffix(args.question_suffix)
        split, recognitions = published_split(files, image_root=(args.images.resolve() if args.images else "."),
                                              name=args.name, question_suffix=suffix)
        for r in recognitions:
            print(r.describe())
        split = split.save(args.out)
        print(f"wrote split {split.name} ({split.meta.count} questions, fingerprint {split.fingerprint[:12]}…) "
              f"to {args.out}")
        if suffix:
            print(f"note: every question ends with {suffix!r} (--question-suffix); the published files do not")
        if args.images is None:
            print("note: no --images given; runs will look for the images in the split directory")
        return 0

    def _to_published(self, args: argparse.Namespace) -> int:
        from deem_eval.core.splits import Split

        from .build import export_published

        out = _need_out(args)
        split = Split.load(args.to_published)
        paths = export_published(split, out, kind=args.format,
                                 newline=NEWLINES[args.newline] if args.newline else None)
        for path in paths:
            print(f"wrote {path}")
        return 0

    def _from_hf(self, args: argparse.Namespace) -> int:
        from .hf import hf_split

        out = _need_out(args)
        split, recognitions = hf_split(args.from_hf, out, split=args.hf_split, dataset=args.dataset or "coco",
                                       name=args.name)
        for r in recognitions:
            print(r.describe().replace(f"{r.file.path}: ", f"{args.from_hf} [{r.file.subset}]: ", 1))
        split = split.save(out)
        print(f"wrote split {split.name} ({split.meta.count} questions, images in {out / 'images'}) to {out}")
        return 0


def _need_out(args: argparse.Namespace) -> Path:
    if args.out is None:
        raise DeemEvalError("--out DIR is needed")
    return args.out
