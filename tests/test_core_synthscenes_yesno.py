import json

from deem_eval.benchmarks.synthscenes_yesno import SynthScenesYesNo, SynthScenesYesNoConfig, questions_from_coco
from deem_eval.cli import main


def test_build_is_deterministic_balanced_and_true_to_annotations(tmp_path):
    cfg = SynthScenesYesNoConfig(seed=3, num_images=12, size=64)
    a = SynthScenesYesNo(cfg).build(tmp_path / "a")
    b = SynthScenesYesNo(cfg).build(tmp_path / "b")
    assert a.fingerprint == b.fingerprint
    answers = [s.answer for s in a.samples]
    assert answers.count("yes") == answers.count("no") == 12
    coco = json.loads((tmp_path / "a" / "instances.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    present = {}
    for ann in coco["annotations"]:
        present.setdefault(ann["image_id"], set()).add(names[ann["category_id"]])
    by_file = {img["file_name"]: img["id"] for img in coco["images"]}
    for s in a.samples:
        assert (s.group["object"] in present[by_file[s.image]]) == (s.answer == "yes")
        assert s.question.startswith("Is there a") and s.question.endswith("in the image?")
    assert set(a.meta.candidates) == set(names.values())


def test_other_seed_other_split(tmp_path):
    a = SynthScenesYesNo(SynthScenesYesNoConfig(seed=0, num_images=6, size=64)).build(tmp_path / "a")
    b = SynthScenesYesNo(SynthScenesYesNoConfig(seed=1, num_images=6, size=64)).build(tmp_path / "b")
    assert a.fingerprint != b.fingerprint


def test_article_follows_first_letter():
    coco = {"categories": [{"id": 1, "name": "apple"}, {"id": 2, "name": "car"}],
            "images": [{"id": 0, "file_name": "x.png"}, {"id": 1, "file_name": "y.png"}],
            "annotations": [{"image_id": 0, "category_id": 1}, {"image_id": 1, "category_id": 2}]}
    questions = {s.question for s in questions_from_coco(coco, seed=0)}
    assert questions == {"Is there an apple in the image?", "Is there a car in the image?"}


def test_default_benchmark_runs_end_to_end_from_the_cli(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["--model", "always-no", "--bench", "synthscenes-yesno", "-B", "num_images=10", "-B", "size=64",
                 "--out", str(out), "--no-progress"]) == 0
    (run_dir,) = out.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["overall"]["accuracy"]["value"] == 0.5
    assert metrics["overall"]["recall"]["value"] == 0.0
