"""`deem-eval build hf-split --from-hf NAME_OR_DIR --out DIR`: a split from a `datasets` dataset.

The dataset is one written by `deem-eval export SPLIT --format hf` (columns id, image, question, answer, group,
image_file; the round trip gives the same samples, fingerprint and image bytes), or any dataset with image,
question and yes/no answer columns (see deem_eval.core.hf_dataset). A local directory is read with
`load_from_disk`, anything else is a hub id for `load_dataset` (network or a filled cache needed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deem_eval.core.errors import DeemEvalError


class HFSplitBuilder:
    name = "hf-split"
    help = "build a split from a Hugging Face datasets dataset (save_to_disk dir or hub id), e.g. one made by export"
    examples = (
        "examples:\n"
        "  deem-eval build hf-split --from-hf exported/pope-coco-hf --out splits/pope-coco-again\n"
        "  deem-eval build hf-split --from-hf me/my-yes-no-set --hf-split validation --out splits/mine")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.description = ("Images are written, with their original bytes, into OUT/images/; samples keep the "
                              "dataset's ids, questions, answers and group fields.")
        parser.add_argument("--from-hf", required=True, metavar="NAME_OR_DIR",
                            help="a save_to_disk directory, or a hub dataset id")
        parser.add_argument("--out", required=True, type=Path, help="the new split directory (new or empty)")
        parser.add_argument("--hf-split", default="test",
                            help="which split of a DatasetDict / hub dataset (default test)")
        parser.add_argument("--name", help="split name (default: the exported split's, else the source's name)")
        parser.add_argument("--benchmark", help="benchmark name recorded in split.json (default: the exported "
                                                "split's, else 'hf')")

    def run(self, args: argparse.Namespace) -> int:
        from deem_eval.core.hf_dataset import dataset_to_split, open_dataset

        out = Path(args.out).expanduser()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise DeemEvalError(f"{out}: exists and is not an empty directory; choose a new --out directory")
        data = open_dataset(args.from_hf, args.hf_split)
        split = dataset_to_split(data, out, source=str(args.from_hf), name=args.name, benchmark=args.benchmark,
                                 hf_split=args.hf_split).save(out)
        print(f"wrote split {split.name} ({split.meta.count} questions, images in {out / 'images'}) to {out}")
        return 0
