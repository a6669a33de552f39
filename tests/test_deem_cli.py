"""`deem-eval align` (DEEM and LLaVA + CSR), its data sources and resume, and `deem-eval run --model deem`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError
from tests.deem_tiny import one_thread  # noqa: F401 (fixture)
from tests.hf_tiny import make_images, make_yesno_split

pytestmark = pytest.mark.usefixtures("one_thread")


def _image_folder(directory: Path, n: int = 6) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(make_images(n, size=40, seed=3)):
        image.save(directory / f"img{i}.png")
        if i % 2 == 0:
            (directory / f"img{i}.txt").write_text(f"a photo of a dog number {i}\n", encoding="utf-8")
    return directory


def _history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def test_align_deem_tiny_resumes_exactly_and_feeds_the_adapter(tmp_path):
    from safetensors.torch import load_file

    data = _image_folder(tmp_path / "images")
    base = ["align", "--preset", "deem-tiny", "--images", str(data), "--batch-size", "2", "--grad-accum", "2",
            "--lr", "1e-3", "--no-progress"]
    assert main(base + ["--steps", "3", "--out", str(tmp_path / "straight")]) == 0
    assert main(base + ["--steps", "3", "--stop-at", "2", "--save-every", "1", "--out", str(tmp_path / "split")]) == 0
    assert not (tmp_path / "split" / "final").exists()
    assert main(base + ["--steps", "3", "--out", str(tmp_path / "split")]) == 2       # needs --resume
    assert main(base + ["--steps", "3", "--out", str(tmp_path / "split"), "--resume"]) == 0

    straight, split = _history(tmp_path / "straight"), _history(tmp_path / "split")
    assert [h["step"] for h in split] == [1, 2, 3]
    for a, b in zip(straight, split):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["text"] is not None and a["diffusion"] > 0
    w1 = load_file(str(tmp_path / "straight" / "final" / "deem.safetensors"))
    w2 = load_file(str(tmp_path / "split" / "final" / "deem.safetensors"))
    assert w1.keys() == w2.keys()
    assert all(torch.allclose(w1[k], w2[k], atol=1e-6) for k in w1)
    ckpts = sorted(p.name for p in (tmp_path / "split").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-000002", "checkpoint-000003"]                       # --keep-last 2

    # the trained weights moved, and `run --model deem -M checkpoint=` answers with them
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model

    fresh = build_model(DEEM_TINY, seed=0).state_dict()
    assert not torch.equal(fresh["visual.to_condition.weight"], w1["visual.to_condition.weight"])
    split_dir = make_yesno_split(tmp_path / "split-data", n_images=3).directory
    runs = tmp_path / "runs"
    rc = main(["run", "--model", "deem", "-M", f"checkpoint={tmp_path / 'straight' / 'final'}",
               "--split-dir", str(split_dir), "--out", str(runs), "--no-progress", "--batch-size", "4"])
    assert rc == 0
    (run_dir,) = list(runs.iterdir())
    samples = (run_dir / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 6
    assert json.loads((run_dir / "manifest.json").read_text())["model_label"] == "deem:straight"


def test_run_deem_tiny_end_to_end_on_synthscenes(tmp_path):
    out = tmp_path / "runs"
    rc = main(["run", "--model", "deem", "-M", "preset=deem-tiny", "-M", "scoring=both", "--bench",
               "synthscenes-yesno", "--limit", "8", "--out", str(out), "--no-progress"])
    assert rc == 0
    (run_dir,) = list(out.iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    records = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(r["yes_prob"] is not None for r in records)
    assert metrics["run"]["model_label"] == "deem:deem-tiny"


def test_align_llava_vision_tower(tmp_path, tiny_llava):
    from transformers import LlavaForConditionalGeneration

    data = _image_folder(tmp_path / "images", n=4)
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps({"image": f"images/img{i}.png", "text": f"a dog {i}"}) + "\n"
                             for i in range(4)), encoding="utf-8")
    assert data.is_dir()
    out = tmp_path / "llava-csr"
    rc = main(["align", "--target", "llava", "--llava", str(tiny_llava), "--diffusion", "random-tiny", "--jsonl",
               str(jsonl), "--steps", "2", "--batch-size", "2", "--lr", "1e-2", "--out", str(out), "--no-progress"])
    assert rc == 0
    final = out / "final"
    assert (final / "csr_projection.safetensors").is_file() and (final / "config.json").is_file()
    before = LlavaForConditionalGeneration.from_pretrained(tiny_llava).state_dict()
    after = LlavaForConditionalGeneration.from_pretrained(final).state_dict()
    tower = [k for k in before if "vision_tower" in k and "embeddings" in k]
    assert tower and any(not torch.equal(before[k], after[k]) for k in tower)
    assert all(torch.equal(before[k], after[k].to(before[k].dtype)) for k in before if "vision_tower" not in k)
    assert _history(out)[0]["text"] is not None


def test_align_refuses_bad_set_ups_before_loading_anything(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    assert main(["align", "--preset", "deem-tiny", "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    assert "exactly one data source" in capsys.readouterr().err
    assert main(["align", "--target", "llava", "--llava", "x", "--images", str(tmp_path), "--steps", "1",
                 "--out", str(tmp_path / "y")]) == 2
    assert "needs --diffusion" in capsys.readouterr().err
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("DEEM_EVAL_COMPONENTS", raising=False)
    _image_folder(tmp_path / "images", n=1)
    assert main(["align", "--preset", "deem-7b", "--images", str(tmp_path / "images"), "--out",
                 str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err
    for repo in ("laion/CLIP-convnext_base_w_320", "lmsys/vicuna-7b-v1.5", "stabilityai/stable-diffusion-2-1-base"):
        assert f"huggingface-cli download {repo}" in err


def test_data_sources(tmp_path):
    import datasets

    from deem_eval.model_adapters.deem.training.data import dataset_data, folder_data, jsonl_data

    folder = folder_data(_image_folder(tmp_path / "images", n=4))
    assert [e.name for e in folder] == ["img0.png", "img1.png", "img2.png", "img3.png"]
    assert [e.caption for e in folder] == ["a photo of a dog number 0", None, "a photo of a dog number 2", None]
    assert folder.captioned == 2

    jsonl = tmp_path / "sub" / "data.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text(json.dumps({"image": "../images/img1.png", "caption": "one"}) + "\n\n"
                     + json.dumps({"image": str(tmp_path / "images" / "img2.png")}) + "\n", encoding="utf-8")
    rows = jsonl_data(jsonl)
    assert [e.caption for e in rows] == ["one", None] and Path(rows[0].image).resolve().is_file()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"caption": "no image"}\n', encoding="utf-8")
    with pytest.raises(DeemEvalError, match="bad.jsonl:1"):
        jsonl_data(bad)
    with pytest.raises(DeemEvalError, match="no images found"):
        folder_data((tmp_path / "empty").resolve() if (tmp_path / "empty").mkdir() is None else None)

    images = make_images(3, size=40)
    ds = datasets.Dataset.from_dict({"image": images, "text": ["x", "", "z"]}).cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "ds"))
    loaded = dataset_data(str(tmp_path / "ds"))
    assert len(loaded) == 3 and loaded.captioned == 2
    assert loaded[1].caption is None and loaded[0].image.size == images[0].size
    with pytest.raises(DeemEvalError, match="no column 'picture'"):
        dataset_data(str(tmp_path / "ds"), image_column="picture")
    out = tmp_path / "from-dataset"
    assert main(["align", "--preset", "deem-tiny", "--dataset", str(tmp_path / "ds"), "--steps", "1",
                 "--batch-size", "2", "--no-captions", "--out", str(out), "--no-progress"]) == 0
    assert _history(out)[0]["text"] is None
