"""The lmms-lab/POPE layout through `datasets`: a small dataset made locally, saved and loaded from disk."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")
from PIL import Image

from deem_eval.benchmarks.pope.hf import hf_split, open_dataset
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pope"


def tiny_image(name: str) -> Image.Image:
    seed = hashlib.sha256(name.encode()).digest()
    return Image.new("RGB", (4, 3), tuple(seed[:3]))


def make_dataset(rows: list[dict], directory: Path, *, with_source: bool = True) -> Path:
    columns: dict[str, list] = {"id": [], "question_id": [], "question": [], "answer": [], "image_source": [],
                                "image": [], "category": []}
    for k, row in enumerate(rows):
        stem = row["image"].rsplit(".", 1)[0]
        columns["id"].append(str(k))
        columns["question_id"].append(str(row["question_id"]))
        columns["question"].append(row["text"])
        columns["answer"].append(row["label"])
        columns["image_source"].append(stem)
        columns["image"].append(tiny_image(stem))
        columns["category"].append(row["category"])
    if not with_source:
        del columns["image_source"]
    features = datasets.Features({name: datasets.Value("string") for name in columns if name != "image"} |
                                 {"image": datasets.Image()})
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(directory))
    return directory


def rows_of(subset: str, questions: list[tuple[int, str, str, str]]) -> list[dict]:
    return [{"question_id": q, "image": im, "text": t, "label": lab, "category": subset} for q, im, t, lab in questions]


def test_small_dataset_becomes_a_split(tmp_path):
    rows = rows_of("adversarial", [(1, "COCO_val2014_000000000007.jpg", "Is there a cat in the image?", "yes"),
                                   (2, "COCO_val2014_000000000007.jpg", "Is there an owl in the image?", "no")]) + \
        rows_of("random", [(1, "COCO_val2014_000000000008.jpg", "Is there a bus in the image?", "yes"),
                           (2, "COCO_val2014_000000000008.jpg", "Is there a dog in the image?", "no")])
    source = make_dataset(rows, tmp_path / "hf")
    split, recognitions = hf_split(source, tmp_path / "split")
    assert split.name == "pope-coco-hf-custom" and split.meta.count == 4
    assert [r.version for r in recognitions] == [None, None]
    by_id = {s.id: s for s in split.samples}
    owl = by_id["pope-coco-adversarial/000002"]
    assert (owl.image, owl.answer, dict(owl.group)) == (      # PIL images are stored as PNG bytes
        "COCO_val2014_000000000007.png", "no", {"subset": "adversarial", "object": "owl", "image_id": "7"})
    saved = split.save(tmp_path / "split")
    assert sorted(p.name for p in (tmp_path / "split" / "images").iterdir()) == \
        ["COCO_val2014_000000000007.png", "COCO_val2014_000000000008.png"]
    loaded = Split.load(tmp_path / "split")
    for sample in loaded.samples:
        path = loaded.image_path(sample)
        assert path.is_file() and Image.open(path).size == (4, 3)
    assert loaded.fingerprint == saved.fingerprint


def test_images_are_named_by_source_and_written_once(tmp_path):
    rows = rows_of("popular", [(i, "COCO_val2014_000000000042.jpg", "Is there a cat in the image?", "yes")
                               for i in range(1, 4)])
    split, _ = hf_split(make_dataset(rows, tmp_path / "hf"), tmp_path / "split")
    files = list((tmp_path / "split" / "images").iterdir())
    assert [f.name for f in files] == ["COCO_val2014_000000000042.png"]       # PNG bytes get a .png extension
    assert {s.image for s in split.samples} == {"COCO_val2014_000000000042.png"}
    nameless, _ = hf_split(make_dataset(rows, tmp_path / "hf2", with_source=False), tmp_path / "split2")
    assert len({s.image for s in nameless.samples}) == 1 and next(iter(nameless.samples)).image.endswith(".png")


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="published POPE fixtures not found")
def test_a_dataset_with_published_questions_is_recognised(tmp_path):
    """lmms-lab/POPE names images by COCO stem; with .jpg bytes the rows equal the published file's."""
    rows = [json.loads(line) | {"category": "random"}
            for line in (FIXTURES / "coco/current/coco_pope_random.json").read_text().splitlines()]
    columns = {"question_id": [], "question": [], "answer": [], "image_source": [], "image": [], "category": []}
    jpegs: dict[str, bytes] = {}
    for row in rows:
        stem = row["image"].rsplit(".", 1)[0]
        if stem not in jpegs:
            buffer = io.BytesIO()
            tiny_image(stem).save(buffer, format="JPEG")
            jpegs[stem] = buffer.getvalue()
        columns["question_id"].append(row["question_id"])
        columns["question"].append(row["text"])
        columns["answer"].append(row["label"])
        columns["image_source"].append(stem)
        columns["image"].append({"bytes": jpegs[stem], "path": None})
        columns["category"].append("random")
    features = datasets.Features({"question_id": datasets.Value("int64"), "question": datasets.Value("string"),
                                  "answer": datasets.Value("string"), "image_source": datasets.Value("string"),
                                  "image": datasets.Image(), "category": datasets.Value("string")})
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(tmp_path / "hf"))
    split, recognitions = hf_split(tmp_path / "hf", tmp_path / "split")
    assert recognitions[0].version.version == "coco/random@2023-10-09"
    assert split.name == "pope-coco-hf-2023-10-09" and split.meta.count == 3000
    assert len(list((tmp_path / "split" / "images").iterdir())) == 500


def test_bad_datasets(tmp_path):
    rows = rows_of("random", [(1, "a.jpg", "Is there a cat in the image?", "yes")])
    rows[0]["category"] = "rare"
    with pytest.raises(DeemEvalError, match="category 'rare' is not one of"):
        hf_split(make_dataset(rows, tmp_path / "hf1"), tmp_path / "s1")
    rows = rows_of("random", [(1, "a.jpg", "Is there a cat in the image?", "maybe")])
    with pytest.raises(DeemEvalError, match="answer must be yes or no"):
        hf_split(make_dataset(rows, tmp_path / "hf2"), tmp_path / "s2")
    rows = rows_of("random", [(1, "a.jpg", "q", "yes"), (1, "b.jpg", "q", "no")])
    with pytest.raises(DeemEvalError, match="question ids repeat"):
        hf_split(make_dataset(rows, tmp_path / "hf3"), tmp_path / "s3")
    datasets.Dataset.from_dict({"question": ["q"]}).save_to_disk(str(tmp_path / "hf4"))
    with pytest.raises(DeemEvalError, match="missing column.s. question_id, answer, image, category"):
        hf_split(tmp_path / "hf4", tmp_path / "s4")


def test_hub_ids_fail_clearly_when_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'lmms-lab/POPE' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DeemEvalError, match=r"could not load 'lmms-lab/POPE' from the Hugging Face hub .*Offline\? "):
        open_dataset("lmms-lab/POPE")


def test_dataset_dict_splits(tmp_path):
    rows = rows_of("random", [(1, "a.jpg", "Is there a cat in the image?", "yes")])
    make_dataset(rows, tmp_path / "single")
    dd = datasets.DatasetDict({"test": datasets.load_from_disk(str(tmp_path / "single"))})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert len(open_dataset(tmp_path / "dd", "test")) == 1
    with pytest.raises(DeemEvalError, match="no split 'validation'; it has test"):
        open_dataset(tmp_path / "dd", "validation")
