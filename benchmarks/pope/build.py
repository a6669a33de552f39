"""POPE splits: sampled from an object source, loaded from published files, exported back to them.

All subsets go into one split (group field `subset`), with ids `pope-<dataset>-<subset>/<question id>`.
`split.meta.extra["pope"]` records how the split was made; for published files it keeps each file's
version and layout, so `export_published` writes the same bytes back.

A question suffix (`question_suffix`, e.g. DEEM's " Please anwser yes or no", typo DEEM's) can be appended to
every published question; it changes the samples (and so the fingerprint), is recorded in the builder
params and in `extra["pope"]`, and is taken off again on export, so the files still come back byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import BuilderInfo, Split

from .published import Layout, PublishedFile, published_file_name, write_published
from .questions import BENCHMARK, SUBSETS, PopeQuestion, parse_sample_id
from .sampler import SamplerConfig, Sampling, sample_pope
from .sources import ObjectSource
from .versions import Recognition, recognise, release_tag

#: What DEEM's POPEEvalDataset appends to every published question (f"{text} Please anwser yes or no"; sic).
DEEM_QUESTION_SUFFIX = " Please anwser yes or no"
#: Named suffixes for `--question-suffix`; any other text is taken literally.
QUESTION_SUFFIXES = {"none": "", "deem": DEEM_QUESTION_SUFFIX}


def resolve_question_suffix(value: str | None) -> str:
    """`none`/None -> "", `deem` -> DEEM's suffix, anything else: the text itself."""
    if value is None:
        return ""
    return QUESTION_SUFFIXES.get(value, value)


def _suffix_tag(suffix: str) -> str:
    """Split-name tag of a suffix: `deemsuffix` for DEEM's, `suffix-<sha8>` for any other text."""
    import hashlib

    if suffix == DEEM_QUESTION_SUFFIX:
        return "deemsuffix"
    return "suffix-" + hashlib.sha256(suffix.encode("utf-8")).hexdigest()[:8]


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
    kept = source.duplicates != "drop"
    if kept:   # only when not the default, so default splits keep their bytes
        params["duplicates"] = source.duplicates
    params.update(extra_params or {})
    extra = {"pope": {"kind": "sampled", "dataset": dataset, "prefix": prefix, "subsets": list(config.subsets),
                      "images_total": sel.total, "images_eligible": sel.eligible,
                      "images_skipped_too_few_objects": sel.skipped_too_few, "images_chosen": len(sel.chosen),
                      "source_file": source.path.name,
                      "duplicate_objects_removed": 0 if kept else source.duplicate_objects}}
    if kept:
        extra["pope"]["duplicate_objects_kept"] = source.duplicate_objects
    split = Split.create(name=name or f"{prefix}-s{config.seed}", benchmark=BENCHMARK, samples=samples,
                         image_root=str(image_root),
                         builder=BuilderInfo(builder, params, config.seed, source.sha256),
                         candidates=sampling.stats.vocabulary, extra=extra)
    return split, sampling


def published_split(files: Sequence[PublishedFile], *, image_root: str | Path = ".", name: str | None = None,
                    question_suffix: str = "") -> tuple[Split, list[Recognition]]:
    """Published question files (one per subset, same dataset) as one split; question ids are kept.

    `question_suffix` is appended to every question text (the object is read from the text before that);
    the default name then gets a tag (`-deemsuffix` for DEEM's suffix), so the leaderboard keeps it apart.
    """
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
    if question_suffix:
        samples = [PopeQuestion(q.subset, q.question_id, q.image, q.text + question_suffix, q.label, q.object_name(),
                                q.image_id).to_sample(prefix) for f in files for q in f.questions]
    else:
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
    extra: dict[str, Any] = {"pope": {"kind": "published", "dataset": dataset, "prefix": prefix,
                                      "subsets": [s for s in SUBSETS if s in by_subset], "files": records}}
    params: dict[str, Any] = {"files": [f.path.name for f in files]}
    default_name = f"{prefix}-{tag}"
    if question_suffix:   # only when given, so default splits keep their bytes
        params["question_suffix"] = question_suffix
        extra["pope"]["question_suffix"] = question_suffix
        default_name += "-" + _suffix_tag(question_suffix)
    fingerprint = _combined(sorted(f.content_sha256 for f in files))
    split = Split.create(name=name or default_name, benchmark=BENCHMARK, samples=samples,
                         image_root=str(image_root),
                         builder=BuilderInfo("pope-published", params, None, fingerprint),
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


def export_published(split: Split, out_dir: Path, *, kind: Literal["jsonl", "array"] | None = None,
                     newline: str | None = None) -> list[Path]:
    """Write each subset as upstream's `<dataset>_pope_<subset>.json`.

    The layout recorded when the split was loaded from a published file is reused (so the bytes match the
    original); `kind` ("jsonl"/"array") and `newline` ("\\n"/"\\r\\n") override it. A question suffix
    recorded at load time (`extra["pope"]["question_suffix"]`) is taken off: upstream's files do not have it.
    """
    info = split.meta.extra.get("pope", {}) if isinstance(split.meta.extra, dict) else {}
    files = info.get("files", {})
    dataset = info.get("dataset")
    suffix = info.get("question_suffix") or ""
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
        if suffix:
            questions = [PopeQuestion(q.subset, q.question_id, q.image, q.text.removesuffix(suffix), q.label)
                         for q in questions]
        paths.append(write_published(out_dir / name, questions, layout))
    return paths
