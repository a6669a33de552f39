"""POPE splits: sampled from an object source, loaded from published files, exported back to them.

All subsets go into one split (group field `subset`), with ids `pope-<dataset>-<subset>/<question id>`.
`split.meta.extra["pope"]` records how the split was made; for published files it keeps each file's
version and layout, so `export_published` writes the same bytes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from deem_eval.errors import DeemEvalError
from deem_eval.splits import BuilderInfo, Split

from .published import Layout, PublishedFile, published_file_name, write_published
from .questions import BENCHMARK, SUBSETS, PopeQuestion, parse_sample_id
from .sampler import SamplerConfig, Sampling, sample_pope
from .sources import ObjectSource
from .versions import Recognition, recognise, release_tag


def sampled_split(source: ObjectSource, config: SamplerConfig, *, dataset: str, image_root: str | Path,
                  name: str | None = None, image_list: Sequence[str] | None = None,
                  builder: str = "pope", extra_params: dict[str, Any] | None = None) -> tuple[Split, Sampling]:
    """Sample every subset of `config` from `source` into one split."""
    sampling = sample_pope(source.images, config, image_list)
    prefix = f"pope-{dataset}"
    samples = [q.to_sample(prefix) for subset in config.subsets for q in sampling.questions[subset]]
    sel = sampling.selection
    params: dict[str, Any] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}
    params["source"] = source.kind
    params["image_list"] = image_list is not None
    params.update(extra_params or {})
    extra = {"pope": {"kind": "sampled", "dataset": dataset, "prefix": prefix, "subsets": list(config.subsets),
                      "images_total": sel.total, "images_eligible": sel.eligible,
                      "images_skipped_too_few_objects": sel.skipped_too_few, "images_chosen": len(sel.chosen),
                      "source_file": source.path.name, "duplicate_objects_removed": source.duplicate_objects}}
    split = Split.create(name=name or f"{prefix}-s{config.seed}", benchmark=BENCHMARK, samples=samples,
                         image_root=str(image_root),
                         builder=BuilderInfo(builder, params, config.seed, source.sha256),
                         candidates=sampling.stats.vocabulary, extra=extra)
    return split, sampling


def published_split(files: Sequence[PublishedFile], *, image_root: str | Path = ".", name: str | None = None,
                    ) -> tuple[Split, list[Recognition]]:
    """Published question files (one per subset, same dataset) as one split; question ids are kept."""
    if not files:
        raise DeemEvalError("no published files given")
    by_subset: dict[str, PublishedFile] = {}
    for f in files:
        if f.subset in by_subset:
            raise DeemEvalError(f"{f.path} and {by_subset[f.subset].path} are both the {f.subset} subset; "
                                "give one file per subset")
        by_subset[f.subset] = f
    recognitions = [recognise(f) for f in files]
    datasets = {r.version.dataset if r.version else r.file.dataset for r in recognitions}
    if len(datasets) > 1:
        raise DeemEvalError(f"the files come from different datasets ({', '.join(sorted(datasets))}); "
                            "load each dataset into its own split")
    dataset = datasets.pop()
    prefix = f"pope-{dataset}"
    samples = [q.to_sample(prefix) for f in files for q in f.questions]
    records = {}
    for r in recognitions:
        f = r.file
        records[f.subset] = {"source_file": f.path.name, "file_sha256": f.file_sha256,
                             "content_sha256": f.content_sha256, "layout": f.layout.to_json(),
                             "version": r.version.version if r.version else None,
                             "upstream_commit": r.version.introduced_commit if r.version else None,
                             "byte_identical_to_upstream": r.byte_identical}
    tag = release_tag(recognitions)
    extra = {"pope": {"kind": "published", "dataset": dataset, "prefix": prefix,
                      "subsets": [s for s in SUBSETS if s in by_subset], "files": records}}
    fingerprint = _combined(sorted(f.content_sha256 for f in files))
    split = Split.create(name=name or f"{prefix}-{tag}", benchmark=BENCHMARK, samples=samples,
                         image_root=str(image_root),
                         builder=BuilderInfo("pope-published", {"files": [f.path.name for f in files]}, None,
                                             fingerprint),
                         candidates=sorted({str(s.group["object"]) for s in samples}), extra=extra)
    return split, recognitions


def _combined(hashes: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def split_questions(split: Split) -> dict[str, list[PopeQuestion]]:
    """The split's questions per subset, in question-id order (what a published file lists)."""
    out: dict[str, list[PopeQuestion]] = {}
    for sample in split.samples:
        parsed = parse_sample_id(sample.id)
        if parsed is None:
            raise DeemEvalError(f"split {split.name!r}: sample id {sample.id!r} is not a POPE id "
                                "(pope-<dataset>-<subset>/<question id>); only POPE splits export to POPE files")
        out.setdefault(parsed.subset, []).append(PopeQuestion(parsed.subset, parsed.question_id, sample.image,
                                                              sample.question, sample.answer))
    for questions in out.values():
        questions.sort(key=lambda q: q.question_id)
    return out


def export_published(split: Split, out_dir: Path, *, kind: str | None = None, newline: str | None = None,
                     ) -> list[Path]:
    """Write each subset as upstream's `<dataset>_pope_<subset>.json`.

    The layout recorded when the split was loaded from a published file is reused (so the bytes match the
    original); `kind` ("jsonl"/"array") and `newline` ("\\n"/"\\r\\n") override it.
    """
    info = split.meta.extra.get("pope", {}) if isinstance(split.meta.extra, dict) else {}
    files = info.get("files", {})
    dataset = info.get("dataset")
    paths = []
    for subset, questions in sorted(split_questions(split).items(), key=lambda kv: SUBSETS.index(kv[0])):
        if dataset is None:
            prefix = parse_sample_id(f"{split.samples[0].id}")
            dataset = prefix.prefix.removeprefix("pope-") if prefix else "custom"
        recorded = files.get(subset, {}).get("layout")
        layout = Layout.from_json(recorded) if recorded else Layout()
        if kind is not None:
            layout = Layout(kind, layout.newline, layout.indent if layout.indent else 4, layout.final_newline
                            if kind == layout.kind else kind == "jsonl", layout.keys)
        if newline is not None:
            layout = Layout(layout.kind, newline, layout.indent, layout.final_newline, layout.keys)
        name = files.get(subset, {}).get("source_file") or published_file_name(dataset, subset)
        paths.append(write_published(out_dir / name, questions, layout))
    return paths
