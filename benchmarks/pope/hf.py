"""POPE from a Hugging Face `datasets` dataset in the layout of `lmms-lab/POPE`.

Fields: question_id, question, answer, image (an Image feature), category (random/popular/adversarial);
`image_source` (the COCO file stem), when present, names the image file. Images are written once each,
with their original bytes, into `<out_dir>/images/`. A local directory is read with `load_from_disk`;
anything else is taken as a hub id for `load_dataset` (which needs the network or a filled HF cache).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.hf_dataset import open_dataset
from deem_eval.core.splits import BuilderInfo, Split

from .published import Layout, PublishedFile
from .questions import BENCHMARK, SUBSETS, PopeQuestion
from .versions import Recognition, recognise, release_tag

REQUIRED = ("question_id", "question", "answer", "image", "category")
_FORMATS = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png", b"GIF8": ".gif", b"RIFF": ".webp", b"BM": ".bmp"}


def hf_split(source: str | Path, out_dir: Path, *, split: str = "test", dataset: str = "coco",
             name: str | None = None) -> tuple[Split, list[Recognition]]:
    """Write images into out_dir/images and return the split (not yet saved) plus version recognition."""
    import datasets

    data = open_dataset(source, split)
    missing = [c for c in REQUIRED if c not in data.column_names]
    if missing:
        raise DeemEvalError(f"{source}: missing column(s) {', '.join(missing)}; the lmms-lab/POPE layout has "
                            f"{', '.join(REQUIRED)} (and image_source)")
    data = data.cast_column("image", datasets.Image(decode=False))
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}           # file name -> sha256 of its bytes
    questions: dict[str, list[PopeQuestion]] = {}
    for index, row in enumerate(data):
        where = f"{source} row {index}"
        subset = str(row["category"]).strip().lower()
        if subset not in SUBSETS:
            raise DeemEvalError(f"{where}: category {row['category']!r} is not one of {', '.join(SUBSETS)}")
        answer = str(row["answer"]).strip().lower()
        if answer not in ("yes", "no"):
            raise DeemEvalError(f"{where}: answer must be yes or no, got {row['answer']!r}")
        qid = _question_id(row["question_id"], where)
        file_name = _write_image(row["image"], row.get("image_source"), images_dir, written, where)
        questions.setdefault(subset, []).append(PopeQuestion(subset, qid, file_name, str(row["question"]), answer))
    files = []
    for subset in SUBSETS:
        if subset not in questions:
            continue
        rows = sorted(questions[subset], key=lambda q: q.question_id)
        if len({q.question_id for q in rows}) != len(rows):
            raise DeemEvalError(f"{source}: question ids repeat within the {subset} subset")
        files.append(PublishedFile(Path(f"{dataset}_pope_{subset}.json"), subset, dataset, tuple(rows), Layout(), ""))
    if not files:
        raise DeemEvalError(f"{source}: the dataset has no rows")
    recognitions = [recognise(f) for f in files]
    prefix = f"pope-{dataset}"
    samples = [q.to_sample(prefix) for f in files for q in f.questions]
    extra = {"pope": {"kind": "huggingface", "dataset": dataset, "prefix": prefix, "source": str(source),
                      "subsets": [f.subset for f in files],
                      "files": {r.file.subset: {"version": r.version.version if r.version else None,
                                                "content_sha256": r.file.content_sha256,
                                                "layout": Layout().to_json()} for r in recognitions}}}
    fingerprint = hashlib.sha256("\n".join(sorted(written.values())).encode()).hexdigest()
    built = Split.create(name=name or f"{prefix}-hf-{release_tag(recognitions)}", benchmark=BENCHMARK,
                         samples=samples, image_root="images",
                         builder=BuilderInfo("pope-hf", {"source": str(source), "split": split}, None, fingerprint),
                         candidates=sorted({str(s.group["object"]) for s in samples}), extra=extra)
    return built, recognitions


def _question_id(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise DeemEvalError(f"{where}: question_id must be an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise DeemEvalError(f"{where}: question_id must be an integer, got {value!r}") from None


def _write_image(image: Any, source_name: Any, images_dir: Path, written: dict[str, str], where: str) -> str:
    data = image.get("bytes") if isinstance(image, dict) else None
    if data is None and isinstance(image, dict) and image.get("path") and Path(image["path"]).is_file():
        data = Path(image["path"]).read_bytes()
    if not data:
        raise DeemEvalError(f"{where}: the image has no bytes")
    digest = hashlib.sha256(data).hexdigest()
    ext = next((e for magic, e in _FORMATS.items() if data.startswith(magic)), ".bin")
    if source_name:
        stem = Path(str(source_name)).name
        file_name = stem if Path(stem).suffix else stem + ext
    else:
        file_name = digest[:16] + ext
    previous = written.get(file_name)
    if previous is None:
        (images_dir / file_name).write_bytes(data)
        written[file_name] = digest
    elif previous != digest:
        raise DeemEvalError(f"{where}: two different images are both named {file_name!r}")
    return file_name
