"""`deem-eval build robustvqa`: build RobustVQA from ImageNet-A/-R/-V2 (or other) images, or import /
export DEEM's `robustvqa_test.json`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .options import default_out


class RobustVQABuilder:
    name = "robustvqa"
    help = "build RobustVQA (ImageNet-A/-R/-V2 + CLIP-mined negatives); import/export DEEM's robustvqa_test.json"
    examples = (
        "examples:\n"
        "  deem-eval build robustvqa --imagenet-a data/imagenet-a --imagenet-r data/imagenet-r \\\n"
        "      --imagenet-v2 data/imagenetv2-matched-frequency-format-val --out splits/robustvqa\n"
        "  deem-eval build robustvqa --imagenet-a data/imagenet-a --miner random --out splits/rvqa-random\n"
        "  deem-eval build robustvqa --from-deem robustvqa_test.json --image-root DEEM/datasets/robustvqa --out splits/rvqa-deem\n"
        "  deem-eval build robustvqa --split-dir splits/robustvqa --to-deem robustvqa_test.json")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from .build import DEFAULT_PROMPT
        from .deem_format import DEEM_PREFIX

        parser.description = (
            "Two questions per image, 'Is {class} the main object in this image? Please answer yes or no.': the "
            "true class (yes) and the wrong class CLIP rates highest (no). Images are referenced, not copied.")
        src = parser.add_argument_group("sources")
        src.add_argument("--imagenet-a", type=Path, metavar="DIR", help="ImageNet-A folder (WordNet-id sub-folders)")
        src.add_argument("--imagenet-r", type=Path, metavar="DIR", help="ImageNet-R folder (WordNet-id sub-folders)")
        src.add_argument("--imagenet-v2", type=Path, metavar="DIR", help="ImageNet-V2 folder (sub-folders 0..999)")
        src.add_argument("--folder", type=Path, metavar="DIR", help="any folder of class sub-folders")
        src.add_argument("--class-map", type=Path, metavar="FILE",
                         help="names for --folder / --hf-dataset classes: JSON {folder or label: name}, a JSON "
                              "list of names, or TSV `key<TAB>name` (default: sub-folders are ImageNet WordNet ids)")
        src.add_argument("--subset-name", metavar="NAME", help="subset name of --folder / --hf-dataset (group field)")
        src.add_argument("--hf-dataset", metavar="NAME_OR_DIR", help="a Hugging Face dataset (hub name or a "
                         "save_to_disk folder) with an image and a label column")
        src.add_argument("--hf-split", default="test", help="dataset split (default test)")
        src.add_argument("--hf-image-column", default="image", help="image column (default image)")
        src.add_argument("--hf-label-column", default="label", help="label column (default label)")
        src.add_argument("--hf-imagenet-labels", action="store_true",
                         help="the labels are ImageNet-1k class indices 0..999")
        src.add_argument("--skip-unknown-folders", action="store_true",
                         help="leave out sub-folders that are not classes of the subset (default: error)")
        mine = parser.add_argument_group("negatives and questions")
        mine.add_argument("--miner", default="clip", help="negative miner: clip (default, the paper's) or random "
                          "(seeded, needs no model)")
        mine.add_argument("--clip-model", default="openai/clip-vit-large-patch14-336", metavar="NAME_OR_PATH",
                          help="CLIP hub id or local folder (default openai/clip-vit-large-patch14-336)")
        mine.add_argument("--candidates", choices=("all", "subset"), default="all",
                          help="negatives among all 1000 ImageNet classes (default, as the paper) or only the "
                               "subset's 200 (ImageNet-A/-R)")
        mine.add_argument("--keep", choices=("all", "clip-wrong"), default="all",
                          help="keep every image (default; the released file) or only those CLIP gets wrong")
        mine.add_argument("--class-names", choices=("deem", "openai"), default="deem",
                          help="ImageNet names: deem = the Keras names DEEM used (default; e.g. great_white_shark), "
                               "openai = CLIP's curated names (e.g. great white shark)")
        mine.add_argument("--protocol", choices=("deem-eval", "deem"), default="deem-eval",
                          help="deem-eval (default): this project's mining; deem: DEEM's script exactly (squashed "
                               "images, unnormalised text embeddings, fp32, *.jpg / *.jpeg globs, DEEM's names, "
                               "template and top-1/top-2 rule; see the README's table of what still differs)")
        mine.add_argument("--template", default=None, help="question template with {class}, or 'paper' "
                          "(default; deem-code with --protocol deem) / 'deem-code' (the wording in DEEM's "
                          "evaluation code)")
        mine.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"CLIP prompt (default {DEFAULT_PROMPT!r})")
        mine.add_argument("--seed", type=int, default=0, help="build seed of the random miner: which negatives it draws (recorded in split.json; default 0)")
        run = parser.add_argument_group("compute")
        run.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
        run.add_argument("--dtype", default="auto", help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16")
        run.add_argument("--batch-size", type=int, default=64, help="images per CLIP batch (default 64)")
        run.add_argument("--workers", type=int, default=4, help="threads reading and preprocessing images (default 4)")
        run.add_argument("--cache-dir", type=Path, metavar="DIR",
                         help="image-embedding cache (default $DEEM_EVAL_HOME/robustvqa/clip-cache)")
        run.add_argument("--no-progress", action="store_true", help="no progress bar")
        deem = parser.add_argument_group("DEEM's robustvqa_test.json")
        deem.add_argument("--from-deem", type=Path, metavar="FILE", help="import DEEM's file instead of mining")
        deem.add_argument("--image-root", type=Path, metavar="DIR",
                          help="with --from-deem: the folder holding imagenet-a/, imagenet-r/, imagenetv2/")
        deem.add_argument("--to-deem", type=Path, metavar="FILE", help="also write the split in DEEM's format")
        deem.add_argument("--skip-multiple-choice", action="store_true",
                          help="with --from-deem: leave out DEEM's multiple-choice subsets imagenet_s / imagenet_d "
                               "(recorded in split.json) instead of refusing the file")
        deem.add_argument("--deem-prefix", default=DEEM_PREFIX,
                          help=f"file_name prefix in DEEM's file (default {DEEM_PREFIX!r})")
        deem.add_argument("--split-dir", type=Path, metavar="DIR",
                          help="with --to-deem: export this existing split instead of building one")
        out = parser.add_argument_group("output")
        out.add_argument("--out", type=Path, metavar="DIR",
                         help="split directory (default $DEEM_EVAL_HOME/splits/robustvqa, which "
                              "`--bench robustvqa` then uses)")
        out.add_argument("--name", help="split name (default robustvqa, with suffixes for non-default options)")

    def run(self, args: argparse.Namespace) -> int:
        from deem_eval.core.errors import DeemEvalError
        from deem_eval.core.splits import Split

        from .build import TEMPLATES
        from .deem_format import from_deem, write_deem

        template_arg = args.template or ("deem-code" if getattr(args, "protocol", "deem-eval") == "deem" else "paper")
        template = TEMPLATES.get(template_arg, template_arg)
        start = time.perf_counter()
        if args.skip_multiple_choice and args.from_deem is None:
            raise DeemEvalError("--skip-multiple-choice applies to --from-deem")
        if args.split_dir is not None:
            if args.to_deem is None:
                raise DeemEvalError("--split-dir is for exporting an existing split: add --to-deem FILE")
            split = Split.load(args.split_dir)
        elif args.from_deem is not None:
            if args.image_root is None:
                raise DeemEvalError("--from-deem needs --image-root DIR (the folder holding imagenet-a/, "
                                    "imagenet-r/, imagenetv2/)")
            if "{class}" not in template:
                raise DeemEvalError(f"--template {template!r} must contain {{class}}")
            split = from_deem(args.from_deem, args.image_root, prefix=args.deem_prefix, template=template,
                              name=args.name,
                              multiple_choice="skip" if args.skip_multiple_choice else "refuse")
            split = split.save(args.out or default_out())
        else:
            split = self._build(args, template)
        if args.split_dir is None:
            _summary(split, time.perf_counter() - start)
        if args.to_deem is not None:
            counts = write_deem(split, args.to_deem, prefix=args.deem_prefix)
            print(f"wrote {args.to_deem} ({', '.join(f'{k}: {v}' for k, v in counts.items())})")
        return 0

    def _build(self, args: argparse.Namespace, template: str):
        from .build import BuildOptions, build_split
        from .sources import generic_folder, hf_dataset, imagenet_folder

        names = args.class_names
        sources = []
        for subset, path in (("a", args.imagenet_a), ("r", args.imagenet_r), ("v2", args.imagenet_v2)):
            if path is not None:
                sources.append(imagenet_folder(subset, path, names=names, skip_unknown=args.skip_unknown_folders,
                                               protocol=args.protocol))
        if args.folder is not None:
            sources.append(generic_folder(args.folder, subset=args.subset_name, class_map=args.class_map,
                                          names=names, skip_unknown=args.skip_unknown_folders))
        if args.hf_dataset is not None:
            sources.append(hf_dataset(args.hf_dataset, split=args.hf_split, subset=args.subset_name,
                                      image_column=args.hf_image_column, label_column=args.hf_label_column,
                                      class_map=args.class_map, imagenet_labels=args.hf_imagenet_labels,
                                      names=names))
        options = BuildOptions(miner=args.miner, clip_model=args.clip_model, candidates=args.candidates,
                               keep=args.keep, class_names=names, template=template, prompt=args.prompt,
                               device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                               workers=args.workers, seed=args.seed, cache_dir=args.cache_dir, name=args.name,
                               progress=not args.no_progress, protocol=args.protocol)
        out = Path(args.out or default_out())
        split = build_split(sources, options, out)
        return split.save(out)


def _summary(split, seconds: float) -> None:
    extra = split.meta.extra
    print(f"built {split.name}: {split.meta.count} questions in {seconds:.1f} s -> {split.directory}")
    for subset, stats in extra.get("subsets", {}).items():
        line = f"  {subset}: " + ", ".join(f"{k} {v}" for k, v in stats.items() if not isinstance(v, dict))
        print(line)
    print(f"  fingerprint {split.fingerprint}")
    skipped = extra.get("skipped_count", 0) or extra.get("missing_count", 0)
    if skipped:
        print(f"  {skipped} image(s) skipped: see {split.directory / 'split.json'}", file=sys.stderr)
