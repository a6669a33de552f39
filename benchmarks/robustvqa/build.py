"""Build a RobustVQA split from sources: read and hash images, mine a negative each, write two questions.

For every kept image: "Is {class} the main object in this image? ..." with the true class (yes) and with
the mined negative (no). Sample ids are `robustvqa/{subset}/{key}#yes|#no` where `key` is the path inside
the subset's folder (or the dataset row), so ids do not depend on where the data lives, and a split
imported from DEEM's file has the same ids as one built from the same folders.

Images are referenced, not copied: `image_root` is the common parent of the source folders and each
sample's image is `<subset folder name>/<key>`. Images of in-memory sources (HF datasets) are written to
`<out>/images/<subset>/` instead (a build mixes one kind or the other, not both).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deem_eval.core.atomic import atomic_write_bytes
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import BuilderInfo, Sample, Split

from .imagefile import LoadedImage, image_suffix, read_image
from .miners import MINERS, Mined
from .options import BENCHMARK, DEEM_CODE_TEMPLATE, DEFAULT_PROMPT, MAX_LISTED, PAPER_TEMPLATE, TEMPLATES, BuildOptions  # noqa: F401 - re-exported for callers of build
from .sources import Source


def question(template: str, name: str) -> str:
    return template.replace("{class}", name)


def split_name(options: BuildOptions) -> str:
    """`robustvqa` for the paper's recipe; variants get suffixes so the leaderboard keeps them apart."""
    if options.name:
        return options.name
    parts = [BENCHMARK]
    deem = options.protocol == "deem"
    if deem:
        parts.append("deemprotocol")
    if options.miner != "clip":
        parts.append(options.miner)
    if options.candidates != "all":
        parts.append("subsetcands")
    if options.keep != "all":
        parts.append("clipwrong")
    if options.class_names != "deem":
        parts.append(f"{options.class_names}names")
    if options.template != (DEEM_CODE_TEMPLATE if deem else PAPER_TEMPLATE):
        parts.append("tpl" + hashlib.sha256(options.template.encode()).hexdigest()[:6])
    return "-".join(parts)


@dataclass
class BuildReport:
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)


def image_layout(sources: Sequence[Source], out: Path) -> tuple[str, dict[str, str]]:
    """(image_root, subset -> prefix of its sample images)."""
    on_disk = [s for s in sources if s.root is not None]
    in_memory = [s for s in sources if s.root is None]
    if on_disk and in_memory:
        raise DeemEvalError("a build takes image folders or Hugging Face datasets, not both: build them as "
                            "separate splits (or save the dataset's images into class folders)")
    if in_memory:
        return ".", {s.subset: f"images/{s.subset}" for s in in_memory}
    common = Path(os.path.commonpath([str(s.root.parent) for s in on_disk]))  # type: ignore[union-attr]
    prefixes = {s.subset: s.root.relative_to(common).as_posix() for s in on_disk}  # type: ignore[union-attr]
    return str(common), prefixes


def _batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _prefetched(batches: list[list], pool: ThreadPoolExecutor) -> Iterator[tuple[list, list[LoadedImage]]]:
    """Read (and hash) the next batch while the current one is mined."""
    def read(batch):
        return list(pool.map(read_image, batch))

    reader = ThreadPoolExecutor(max_workers=1)
    try:
        pending: Future | None = reader.submit(read, batches[0]) if batches else None
        for i, batch in enumerate(batches):
            loaded = pending.result()  # type: ignore[union-attr]
            pending = reader.submit(read, batches[i + 1]) if i + 1 < len(batches) else None
            yield batch, loaded
    finally:
        reader.shutdown(wait=True, cancel_futures=True)


def build_split(sources: Sequence[Source], options: BuildOptions, out: Path) -> Split:
    """Mine negatives for every image of `sources` and return the (unsaved) split; in-memory images are
    written under `out/images/` on the way."""
    options.check()
    if not sources:
        raise DeemEvalError("nothing to build: give at least one of --imagenet-a, --imagenet-r, --imagenet-v2, "
                            "--folder, --hf-dataset (or --from-deem)")
    subsets = [s.subset for s in sources]
    if len(set(subsets)) != len(subsets):
        raise DeemEvalError(f"two sources share the subset name(s) {sorted({x for x in subsets if subsets.count(x) > 1})}")
    miner_cls = MINERS.get(options.miner)
    if options.keep == "clip-wrong" and not getattr(miner_cls, "uses_clip", False):
        raise DeemEvalError("--keep clip-wrong needs CLIP ranks: use --miner clip (or --keep all)")
    if options.protocol == "deem":
        _check_deem_globs(sources)
    image_root, prefixes = image_layout(sources, out)
    miner = miner_cls(options)
    miner.start(list(sources), options.candidates)

    items = [im for s in sources for im in s.images]
    by_subset = {s.subset: s for s in sources}
    report = BuildReport({s.subset: {"source": s.kind, "images": len(s.images), "kept": 0, "skipped": 0}
                          for s in sources})
    samples: list[Sample] = []
    fingerprint = hashlib.sha256()
    progress = _progress(len(items), f"robustvqa ({options.miner})", options.progress)
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        for batch, loaded in _prefetched(_batches(items, options.batch_size), pool):
            readable = [lo for lo in loaded if lo.error is None]
            results: dict[int, Mined | str] = dict(zip((id(lo) for lo in readable), miner.mine(readable, pool)))
            for lo in loaded:
                item = lo.item
                fingerprint.update(f"{item.subset}\t{item.key}\t{item.label}\t{lo.sha256}\n".encode())
                result = lo.error if lo.error is not None else results[id(lo)]
                stats = report.counts[item.subset]
                if isinstance(result, str):
                    stats["skipped"] += 1
                    report.skipped.append({"subset": item.subset, "image": item.key, "reason": result})
                    continue
                if result.clip_rank is not None:
                    stats["clip_top1"] = stats.get("clip_top1", 0) + (result.clip_rank == 1)
                if options.keep == "clip-wrong" and result.clip_rank == 1:
                    continue
                source = by_subset[item.subset]
                image = _image_path(lo, prefixes[item.subset], out)
                samples.extend(_pair(source, item.subset, item.key, image, item.label, result, options.template))
                stats["kept"] += 1
            progress.update(len(batch))
    progress.close()
    if hasattr(miner, "finish"):
        miner.finish()
    for stats in report.counts.values():
        if "clip_top1" in stats:
            encoded = stats["images"] - stats["skipped"]
            stats["clip_top1_accuracy"] = round(stats["clip_top1"] / encoded, 6) if encoded else None
    if report.skipped:
        print(f"warning: {len(report.skipped)} unreadable or corrupt image(s) skipped (listed in split.json "
              f"extra.skipped_images), e.g. {report.skipped[0]['subset']}/{report.skipped[0]['image']}: "
              f"{report.skipped[0]['reason']}", file=sys.stderr)
    if not samples:
        raise DeemEvalError("no questions were produced (every image was skipped or, with --keep clip-wrong, "
                            "CLIP got every image right)")
    params = {**asdict(options), **miner.params()}
    dropped = ["progress", "cache_dir", "workers", "name", "batch_size", "device", "dtype"]
    if not getattr(miner, "uses_clip", False):
        dropped += ["clip_model", "dtype", "prompt"]
    for key in dropped:
        params.pop(key, None)
    extra = {
        "subsets": report.counts,
        "skipped_count": len(report.skipped),
        "skipped_images": report.skipped[:MAX_LISTED],
        "empty_folders": {s.subset: s.empty_folders for s in sources if s.empty_folders},
        "skipped_folders": {s.subset: s.skipped_folders for s in sources if s.skipped_folders},
        "sources": {s.subset: {"kind": s.kind, "path": str(s.root) if s.root else None,
                               "classes": s.table.name, **({"glob": s.glob} if s.glob else {})} for s in sources},
        "device": getattr(getattr(miner, "encoder", None), "device", None),
    }
    candidates = _candidate_names(sources, options.candidates)
    return Split.create(name=split_name(options), benchmark=BENCHMARK, samples=samples, image_root=image_root,
                        builder=BuilderInfo("robustvqa", params, options.seed, fingerprint.hexdigest()),
                        candidates=candidates, extra=extra)


def _check_deem_globs(sources: Sequence[Source]) -> None:
    """ImageNet folders listed the default way would not be DEEM's image set: refuse the mix."""
    wrong = [s.subset for s in sources if s.kind.startswith("imagenet-") and s.glob is None]
    if wrong:
        raise DeemEvalError(f"--protocol deem: ImageNet source(s) {wrong} were listed without DEEM's file globs; "
                            "build them with imagenet_folder(..., protocol='deem')")


def _pair(source: Source, subset: str, key: str, image: str, label: int, mined: Mined, template: str) -> list[Sample]:
    true_name = source.table.classes[label].name
    negative = source.table.classes[mined.negative].name
    group: dict[str, str | int] = {"subset": subset, "class": true_name, "negative": negative}
    if mined.clip_rank is not None:
        group["clip_rank"] = mined.clip_rank
    base = f"{BENCHMARK}/{subset}/{key}"
    return [Sample(f"{base}#yes", image, question(template, true_name), "yes", {**group, "object": true_name}),
            Sample(f"{base}#no", image, question(template, negative), "no", {**group, "object": negative})]


def _image_path(loaded: LoadedImage, prefix: str, out: Path) -> str:
    item = loaded.item
    if item.path is not None:
        return f"{prefix}/{item.key}"
    suffix = image_suffix(loaded.data)  # type: ignore[arg-type]
    rel = f"{prefix}/{item.key}{suffix}"
    target = out / rel
    if not target.is_file() or target.stat().st_size != len(loaded.data):  # type: ignore[arg-type]
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, loaded.data)  # type: ignore[arg-type]
    return rel


def _candidate_names(sources: Sequence[Source], mode: str) -> list[str]:
    seen: dict[str, None] = {}
    for source in sources:
        for index in source.candidates(mode):
            seen.setdefault(source.table.classes[index].name, None)
    return list(seen)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
