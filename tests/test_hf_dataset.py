"""Split <-> datasets.Dataset (export --format hf, build hf-split --from-hf) and the lmms-eval task export."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")

from deem_eval.benchmarks.hf_split import HFSplitBuilder
from deem_eval.cli import COMMANDS, main
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.hf_dataset import dataset_to_split, open_dataset, save_split_dataset
from deem_eval.core.registry import BUILDERS
from deem_eval.core.splits import BuilderInfo, Sample, Split
from tests.conftest import make_split


@pytest.fixture
def cli(monkeypatch):
    """`export` and `build hf-split` as the pyproject entries will register them."""
    monkeypatch.setitem(COMMANDS, "export", ("deem_eval.cli.export:ExportCommand", "export a split"))
    BUILDERS.register("hf-split", HFSplitBuilder)
    yield main
    BUILDERS.unregister("hf-split")


def _mixed_split(directory: Path) -> Split:
    """Group values of every type, samples with different group keys, images in a sub-folder, one image
    shared by two samples, a JPEG next to PNGs."""
    from PIL import Image

    (directory / "images" / "sub").mkdir(parents=True)
    Image.new("RGB", (9, 7), (10, 20, 30)).save(directory / "images" / "sub" / "a.png")
    Image.new("RGB", (8, 8), (200, 100, 0)).save(directory / "images" / "b.jpg", quality=83)
    samples = [Sample("m/1", "sub/a.png", "Is there a cat in the image?", "yes", {"subset": "x", "n": 3, "w": 0.25}),
               Sample("m/2", "sub/a.png", "Is there a dog in the image?", "no", {"subset": "x"}),
               Sample("m/3", "b.jpg", "Is the sky green? ünïcode", "no", {})]
    split = Split.create(name="mixed", benchmark="tiny", samples=samples, image_root="images",
                         builder=BuilderInfo("test", {}, 0), candidates=["cat", "dog"])
    return split.save(directory)


@pytest.mark.parametrize("maker", ["tiny", "mixed"])
def test_round_trip_split_dataset_split(tmp_path, cli, maker):
    original = make_split(tmp_path / "split") if maker == "tiny" else _mixed_split(tmp_path / "split")
    assert cli(["export", str(tmp_path / "split"), "--format", "hf", "--out", str(tmp_path / "ds")]) == 0
    data = datasets.load_from_disk(str(tmp_path / "ds"))
    assert set(data.column_names) == {"id", "image", "question", "answer", "group", "image_file"}
    assert isinstance(data.features["image"], datasets.Image)
    assert data[0]["id"] == original.samples[0].id and json.loads(data[0]["group"]) == dict(original.samples[0].group)

    assert cli(["build", "hf-split", "--from-hf", str(tmp_path / "ds"), "--out", str(tmp_path / "back")]) == 0
    back = Split.load(tmp_path / "back")
    assert back.samples == original.samples                  # ids, images, questions, answers, groups (and types)
    assert back.fingerprint == original.fingerprint and back.name == original.name
    assert back.meta.benchmark == original.meta.benchmark and back.meta.candidates == original.meta.candidates
    for a, b in zip(original.samples, back.samples):
        assert original.image_path(a).read_bytes() == back.image_path(b).read_bytes()
    assert (tmp_path / "back" / "images.sha256").is_file()


def test_decoded_pixels_match(tmp_path):
    from PIL import Image

    split = make_split(tmp_path / "split", n_images=2)
    data = save_split_dataset(split, tmp_path / "ds")
    for row, sample in zip(data, split.samples):
        with Image.open(split.image_path(sample)) as im:
            assert row["image"].convert("RGB").tobytes() == im.convert("RGB").tobytes()


def test_foreign_dataset_without_id_or_group(tmp_path):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, format="PNG")
    data = datasets.Dataset.from_dict(
        {"image": [{"bytes": buf.getvalue(), "path": None}] * 2, "question": ["Q1?", "Q2?"], "answer": ["Yes", "NO"],
         "category": ["random", "popular"], "question_id": [7, 8]},
        features=datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"),
                                    "answer": datasets.Value("string"), "category": datasets.Value("string"),
                                    "question_id": datasets.Value("int64")}))
    data.save_to_disk(str(tmp_path / "foreign"))
    split = dataset_to_split(open_dataset(tmp_path / "foreign"), tmp_path / "out", source="foreign")
    assert [s.answer for s in split.samples] == ["yes", "no"]
    assert split.samples[0].group == {"category": "random", "question_id": 7}
    assert split.samples[0].id == "foreign/000000" and split.samples[0].image.endswith(".png")
    assert (tmp_path / "out" / "images" / split.samples[0].image).read_bytes() == buf.getvalue()


def test_bad_answers_and_missing_columns(tmp_path):
    data = datasets.Dataset.from_dict({"question": ["q"], "answer": ["maybe"]})
    with pytest.raises(DeemEvalError, match="missing column"):
        dataset_to_split(data, tmp_path / "out", source="x")


def test_hub_id_offline_is_a_clear_error(tmp_path, monkeypatch, cli, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli(["build", "hf-split", "--from-hf", "nobody/no-such-set", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and "save_to_disk" in err


def test_load_dataset_failure_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DeemEvalError, match="Offline\\?.*save_to_disk"):
        open_dataset("nobody/no-such-set")


def test_export_refuses_a_non_empty_out(tmp_path, cli, capsys):
    make_split(tmp_path / "split", n_images=1)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("x")
    assert cli(["export", str(tmp_path / "split"), "--format", "hf", "--out", str(tmp_path / "ds")]) == 2
    assert "not an empty directory" in capsys.readouterr().err


def test_push_to_hub_offline_is_a_clear_error(tmp_path, cli, monkeypatch, capsys):
    make_split(tmp_path / "split", n_images=1)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli(["export", str(tmp_path / "split"), "--format", "hf", "--out", str(tmp_path / "ds"),
                "--push-to-hub", "me/set"]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and "push it later" in err
    assert datasets.load_from_disk(str(tmp_path / "ds")).num_rows == 2      # saved locally all the same


# ---- lmms-eval ------------------------------------------------------------------------------------

def _load_yaml(text: str):
    yaml = pytest.importorskip("yaml")

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")
    return yaml.load(text, Loader=Loader)


def test_lmms_eval_task(tmp_path, cli):
    split = make_split(tmp_path / "split", n_images=2)
    out = tmp_path / "task"
    assert cli(["export", str(tmp_path / "split"), "--format", "lmms-eval", "--out", str(out),
                "--post-prompt", "\nAnswer yes or no."]) == 0
    yaml_path = out / "deem_tiny.yaml"
    config = _load_yaml(yaml_path.read_text())
    assert config["task"] == "deem_tiny" and config["test_split"] == "test"
    assert config["output_type"] == "generate_until"
    assert config["doc_to_text"] == "!function utils.doc_to_text"
    assert config["metric_list"][0]["metric"] == "accuracy"
    assert config["generation_kwargs"]["max_new_tokens"] == 16 and config["generation_kwargs"]["do_sample"] is False
    assert config["lmms_eval_specific_kwargs"]["default"]["post_prompt"] == "\nAnswer yes or no."
    assert config["metadata"]["deem_eval_samples_sha256"] == split.fingerprint

    # what lmms-eval does: load_dataset(dataset_path)[test_split], then the utils functions on a row
    docs = datasets.load_dataset(config["dataset_path"])[config["test_split"]]
    assert len(docs) == len(split.samples) and isinstance(docs.features["image"], datasets.Image)
    spec = importlib.util.spec_from_file_location("task_utils", out / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    doc = docs[1]
    sample = split.samples[1]
    kwargs = config["lmms_eval_specific_kwargs"]["default"]
    assert utils.doc_to_text(doc, kwargs) == sample.question + "\nAnswer yes or no."
    assert utils.doc_to_target(doc) == sample.answer
    visual = utils.doc_to_visual(doc)
    assert len(visual) == 1 and visual[0].mode == "RGB" and visual[0].size == (16, 16)
    right = utils.process_results(doc, [f"{sample.answer.capitalize()}, it is."])
    wrong = utils.process_results(doc, ["I cannot tell"])
    assert right["accuracy"]["correct"] and not wrong["accuracy"]["correct"]
    assert right["accuracy"]["id"] == sample.id
    assert utils.accuracy([right["accuracy"], wrong["accuracy"]]) == 0.5


def test_lmms_eval_samples_log_scores_back(tmp_path, cli, capsys):
    """A samples log of the exported task (doc dropped, as newer lmms-eval does) is matched by sample id."""
    split = make_split(tmp_path / "split", n_images=2)
    rows = [{"doc_id": i, "target": s.answer, "filtered_resps": [s.answer.capitalize()],
             "accuracy": {"id": s.id, "prediction": s.answer, "correct": True}, "input": s.question}
            for i, s in enumerate(split.samples)]
    log = tmp_path / "samples_deem_tiny.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli(["score", "--split", str(tmp_path / "split"), "--answers", str(log), "--out",
                str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["answers_file"]["matched"] == len(split.samples)
    assert metrics["answers_file"]["matched_by"] == "id"
