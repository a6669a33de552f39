"""DEEM's `robustvqa_test.json`: export a split to it and import one from it.

The file (written by DEEM's `scripts/convert_imagenet_for_robustvqa_test.py`, read by its
`ImageNetEvalDataset`) is

    {"imagenet_a": [{"file_name": "datasets/robustvqa/imagenet-a/n01498041/xxx.jpg",
                     "gt_caption": "stingray", "error_caption": "electric_ray"}, ...],
     "imagenet_r": [...], "imagenet_v2": [...]}

`file_name` is relative to DEEM's repository root (their `data_root` is ''), under `datasets/robustvqa/`
with the folders `imagenet-a`, `imagenet-r` and `imagenetv2`. Captions are raw class names (the Keras
`imagenet_class_index.json` names, underscores kept) that DEEM puts into its question unchanged. Each entry
becomes two questions: gt_caption -> "yes", error_caption -> "no". Entries are sorted by path, as DEEM's
sorted glob made them, and the JSON is written with Python's default `json.dump` layout, as DEEM did.

DEEM's loader also knows the keys `imagenet_s` and `imagenet_d`, with the same fields but asked as
*multiple choice* ("What is the main object in this image? Choose from the following list:[x, y]", scored
on the class name). They are not yes/no pairs, so they are refused on import, naming the file and entries;
`multiple_choice="skip"` leaves them out instead and records that in the split.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.jsonio import parse_json
from deem_eval.core.splits import BuilderInfo, Sample, Split, sha256_file

from .build import BENCHMARK, PAPER_TEMPLATE, question
from .classes import imagenet_rows

DEEM_PREFIX = "datasets/robustvqa/"
SUBSET_KEYS = {"a": "imagenet_a", "r": "imagenet_r", "v2": "imagenet_v2"}
KEY_SUBSETS = {v: k for k, v in SUBSET_KEYS.items()}
FIELDS = ("file_name", "gt_caption", "error_caption")
#: Keys DEEM's ImageNetEvalDataset asks as multiple choice (phases 's' and 'd'), not as yes/no pairs.
MULTIPLE_CHOICE_KEYS = ("imagenet_s", "imagenet_d")
MULTIPLE_CHOICE_MODES = ("refuse", "skip")


def to_deem(split: Split, *, prefix: str = DEEM_PREFIX) -> dict[str, list[dict[str, str]]]:
    """The DEEM dictionary for a RobustVQA split (pairs of #yes/#no samples of one image)."""
    pairs: dict[str, dict[str, Sample]] = defaultdict(dict)
    for sample in split.samples:
        base, sep, answer = sample.id.rpartition("#")
        if not sep or answer not in ("yes", "no"):
            raise DeemEvalError(f"split {split.name!r}: sample id {sample.id!r} is not a RobustVQA id "
                                "(`.../key#yes` or `#no`); only RobustVQA splits can be exported to DEEM's format")
        pairs[base][answer] = sample
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for base, pair in pairs.items():
        if set(pair) != {"yes", "no"}:
            raise DeemEvalError(f"split {split.name!r}: image {base!r} lacks its "
                                f"{'no' if 'yes' in pair else 'yes'} question; DEEM's format needs both")
        yes, no = pair["yes"], pair["no"]
        for field_ in ("subset", "class", "negative"):
            if field_ not in yes.group:
                raise DeemEvalError(f"split {split.name!r}: sample {yes.id!r} has no group field {field_!r}")
        file_name = yes.image if Path(yes.image).is_absolute() else prefix + yes.image
        out[SUBSET_KEYS.get(str(yes.group["subset"]), str(yes.group["subset"]))].append(
            {"file_name": file_name, "gt_caption": str(yes.group["class"]), "error_caption": str(no.group["negative"])})
    ordered = {key: sorted(out[key], key=lambda e: e["file_name"]) for key in SUBSET_KEYS.values() if key in out}
    ordered.update({key: sorted(out[key], key=lambda e: e["file_name"]) for key in sorted(out) if key not in ordered})
    return ordered


def write_deem(split: Split, path: Path, *, prefix: str = DEEM_PREFIX) -> dict[str, int]:
    data = to_deem(split, prefix=prefix)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")  # json.dump's defaults, as DEEM wrote it
    return {key: len(entries) for key, entries in data.items()}


def read_deem(path: Path) -> dict[str, list[dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise DeemEvalError(f"{path}: DEEM RobustVQA file not found")
    data = parse_json(path.read_text(encoding="utf-8"), path)
    if not isinstance(data, dict) or not data:
        raise DeemEvalError(f"{path}: expected {{\"imagenet_a\": [...], \"imagenet_r\": [...], "
                            "\"imagenet_v2\": [...]}")
    for key, entries in data.items():
        if not isinstance(entries, list):
            raise DeemEvalError(f"{path}: {key!r} must be a list of entries")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or any(not isinstance(entry.get(f), str) for f in FIELDS):
                raise DeemEvalError(f"{path}: {key}[{i}] must have string fields {', '.join(FIELDS)}; got {entry!r}")
    return data


def _folder_names(parent: str) -> set[str]:
    """Class names a folder (WordNet id or ImageNet index) may carry, in both name styles."""
    for row in imagenet_rows():
        if parent in (row.wnid, str(row.index)):
            return {row.deem_name, row.name}
    return set()


def multiple_choice_entries(data: dict[str, list[dict[str, str]]]) -> dict[str, int]:
    """Non-empty multiple-choice subsets of a DEEM file: key -> number of entries."""
    return {key: len(data[key]) for key in MULTIPLE_CHOICE_KEYS if data.get(key)}


def _refuse_multiple_choice(path: Path, data: dict[str, list[dict[str, str]]], found: dict[str, int]) -> None:
    listed = "; ".join(f"{key} ({count} entr{'y' if count == 1 else 'ies'}, e.g. {data[key][0]['file_name']})"
                       for key, count in found.items())
    raise DeemEvalError(
        f"{path}: {listed}: DEEM asks these as multiple choice ('What is the main object in this image? Choose "
        "from the following list:[error_caption, gt_caption]', scored on the class name), not as yes/no "
        "questions. Made into yes/no pairs they would be a different test and would enter RobustVQA's pooled "
        "accuracy. Leave them out with --skip-multiple-choice (recorded in split.json), or remove "
        f"{' and '.join(found)} from the file.")


def from_deem(path: Path, image_root: Path, *, prefix: str = DEEM_PREFIX, template: str = PAPER_TEMPLATE,
              name: str | None = None, multiple_choice: str = "refuse") -> Split:
    """A split from DEEM's file, with `file_name` mapped onto `image_root` (DEEM's `prefix` removed).

    `multiple_choice`: what to do with DEEM's multiple-choice subsets (`imagenet_s`, `imagenet_d`):
    "refuse" (default, an error naming them) or "skip" (left out, counted in `extra.multiple_choice_skipped`).
    """
    if multiple_choice not in MULTIPLE_CHOICE_MODES:
        raise DeemEvalError(f"multiple_choice must be one of {', '.join(MULTIPLE_CHOICE_MODES)}, "
                            f"got {multiple_choice!r}")
    data = read_deem(path)
    skipped_mc = multiple_choice_entries(data)
    if skipped_mc and multiple_choice == "refuse":
        _refuse_multiple_choice(Path(path), data, skipped_mc)
    data = {key: entries for key, entries in data.items() if key not in MULTIPLE_CHOICE_KEYS}
    if skipped_mc and not any(data.values()):
        raise DeemEvalError(f"{path}: only multiple-choice subsets ({', '.join(skipped_mc)}); no yes/no entries "
                            "(imagenet_a, imagenet_r, imagenet_v2) are left to import")
    root = Path(image_root).expanduser().resolve()
    if not root.is_dir():
        raise DeemEvalError(f"--image-root {image_root}: not a directory")
    if prefix and (root / prefix).is_dir():  # given DEEM's repository root (its data_root '')
        root = (root / prefix).resolve()
    samples: list[Sample] = []
    missing: list[str] = []
    duplicates: list[str] = []
    mismatches: list[dict[str, str]] = []
    seen: set[str] = set()
    counts: dict[str, dict[str, int]] = {}
    for key, entries in data.items():
        subset = KEY_SUBSETS.get(key, key.removeprefix("imagenet_"))
        counts[subset] = {"entries": len(entries), "kept": 0}
        for entry in entries:
            file_name = entry["file_name"]
            rel = file_name[len(prefix):] if prefix and file_name.startswith(prefix) else file_name
            if Path(rel).is_absolute():
                try:
                    rel = Path(rel).resolve().relative_to(root).as_posix()
                except ValueError:
                    pass
            parts = Path(rel).parts
            image_key = "/".join(parts[1:]) if len(parts) > 1 and not Path(rel).is_absolute() else rel
            sample_id = f"{BENCHMARK}/{subset}/{image_key}"
            if sample_id in seen:
                duplicates.append(file_name)
                continue
            seen.add(sample_id)
            if not (root / rel).is_file():
                missing.append(file_name)
                continue
            names = _folder_names(Path(rel).parent.name)
            if names and entry["gt_caption"] not in names:
                mismatches.append({"file_name": file_name, "gt_caption": entry["gt_caption"],
                                   "folder": Path(rel).parent.name})
            group = {"subset": subset, "class": entry["gt_caption"], "negative": entry["error_caption"]}
            samples.append(Sample(f"{sample_id}#yes", rel, question(template, entry["gt_caption"]), "yes",
                                  {**group, "object": entry["gt_caption"]}))
            samples.append(Sample(f"{sample_id}#no", rel, question(template, entry["error_caption"]), "no",
                                  {**group, "object": entry["error_caption"]}))
            counts[subset]["kept"] += 1
    total = sum(len(v) for v in data.values())
    if total and not samples:
        example = missing[0] if missing else ""
        raise DeemEvalError(f"none of the {total} images of {path} were found under {root} (e.g. looked for "
                            f"{root / (example.removeprefix(prefix))}). "
                            f"--image-root must be the folder holding imagenet-a/, imagenet-r/, imagenetv2/; "
                            f"file names lose the prefix {prefix!r} first (--deem-prefix).")
    if missing:
        print(f"warning: {len(missing)} image(s) of {path} not found under {root}; skipped (listed in "
              "split.json extra.missing_images)", file=sys.stderr)
    if mismatches:
        print(f"warning: {len(mismatches)} entr{'y' if len(mismatches) == 1 else 'ies'} of {path} name a class "
              f"other than their folder's (e.g. {mismatches[0]['file_name']} is {mismatches[0]['gt_caption']!r}); "
              "the file may come from the version of DEEM's script that misaligns paths and labels. They are "
              "kept as given and listed in split.json extra.label_mismatches.", file=sys.stderr)
    extra: dict[str, Any] = {"subsets": counts, "missing_count": len(missing), "missing_images": missing[:1000],
                             "duplicate_count": len(duplicates), "duplicates": duplicates[:1000],
                             "label_mismatch_count": len(mismatches), "label_mismatches": mismatches[:1000],
                             "deem_prefix": prefix}
    digest = sha256_file(Path(path))
    params = {"from_deem": Path(path).name, "deem_sha256": digest, "template": template}
    if skipped_mc:   # only then, so other imports keep their split.json bytes
        params["multiple_choice"] = "skip"
        extra["multiple_choice_skipped"] = skipped_mc
        print(f"note: left out DEEM's multiple-choice subset(s) of {path}: "
              f"{', '.join(f'{k} ({v} entries)' for k, v in skipped_mc.items())} (--skip-multiple-choice)",
              file=sys.stderr)
    candidates = sorted({str(s.group["object"]) for s in samples})   # read_deem checked: captions are strings
    return Split.create(name=name or f"{BENCHMARK}-deem-{digest[:8]}", benchmark=BENCHMARK, samples=samples,
                        image_root=str(root), builder=BuilderInfo("robustvqa-from-deem", params, None, digest),
                        candidates=candidates, extra=extra)

