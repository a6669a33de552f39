"""`deem-eval build corrupt` and the robustvqa-c / pope-c benchmarks: determinism across workers, resume,
bad input, and an offline end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deem_eval.benchmarks.corruptions import derive
from deem_eval.benchmarks.corruptions.derive import DeriveConfig, derive_corrupted_split
from deem_eval.benchmarks.corruptions.suites import PopeC, RobustVQAC
from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.options import parse_options
from deem_eval.core.splits import BuilderInfo, Sample, Split

CORRUPTIONS = ("gaussian_noise", "glass_blur", "frost")


def _picture(size=(40, 40), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    return np.clip(np.stack([xx * 6, yy * 5, (xx + yy) * 3], -1) + rng.normal(0, 10, (*size, 3)), 0, 255).astype(np.uint8)


def make_source(root: Path, *, tiny: bool = False) -> Path:
    images = root / "src" / "images"
    (images / "sub").mkdir(parents=True)
    Image.fromarray(_picture()).save(images / "a.png")
    Image.fromarray(_picture((36, 44), 1)).convert("L").save(images / "sub" / "b.jpg", quality=95)
    Image.fromarray(_picture((40, 40), 2)).convert("P").save(images / "c.png")
    Image.fromarray(_picture((33, 40), 3)[..., 0].astype(np.uint16) * 257).save(images / "d16.png")
    (images / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    files = ["a.png", "a.png", "sub/b.jpg", "c.png", "d16.png", "broken.jpg"]
    if tiny:
        Image.fromarray(_picture((20, 20), 4)).save(images / "tiny.png")
        files.append("tiny.png")
    samples = [Sample(f"toy/{i:02d}", f, f"Is there a thing {i}?", "yes" if i % 2 else "no", {"subset": "x"})
               for i, f in enumerate(files)]
    split = Split.create(name="toy", benchmark="toy", samples=samples, image_root="images",
                         builder=BuilderInfo("toy", {}, 0))
    split.save(root / "src")
    return root / "src"


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The toy split corrupted with 1 worker and with 2 workers, through the CLI."""
    root = tmp_path_factory.mktemp("corrupt")
    source = make_source(root)
    outs = []
    for workers in (1, 2):
        out = root / f"out{workers}"
        code = main(["build", "corrupt", "--from", str(source), "--corruptions", ",".join(CORRUPTIONS),
                     "--severities", "1,3", "--seed", "5", "--workers", str(workers), "--out", str(out),
                     "--no-progress"])
        assert code == 0
        outs.append(out)
    return source, outs


def test_one_and_two_workers_write_identical_bytes(built):
    _, (one, two) = built
    first, second = tree(one), tree(two)
    assert first.keys() == second.keys()
    assert first == second
    assert Split.load(one).fingerprint == Split.load(two).fingerprint


def test_derived_split_layout_ids_groups_and_provenance(built):
    source_dir, (out, _) = built
    source, split = Split.load(source_dir), Split.load(out)
    assert split.meta.benchmark == "toy-c" and split.name == "toy-c"
    assert split.meta.builder.name == "corrupt" and split.meta.builder.seed == 5
    assert split.meta.builder.source_fingerprint == source.fingerprint
    assert split.meta.builder.params["corruptions"] == list(CORRUPTIONS)
    # 4 readable images x 3 corruptions x 2 severities, the shared image corrupted once
    pngs = sorted((out / "images").rglob("*.png"))
    assert len(pngs) == 4 * 3 * 2
    assert (out / "images" / "glass_blur" / "3" / "sub" / "b.png").is_file()
    assert split.meta.count == 5 * 3 * 2
    ids = {s.id for s in split.samples}
    assert "toy/00@glass_blur-3" in ids and "toy/05@frost-1" not in ids      # broken.jpg dropped
    sample = next(s for s in split.samples if s.id == "toy/01@frost-3")
    assert sample.group == {"subset": "x", "corruption": "frost", "severity": 3}
    assert sample.image == "images/frost/3/a.png" and split.image_path(sample).is_file()
    assert next(s for s in split.samples if s.id == "toy/00@frost-3").image == sample.image
    extra = split.meta.extra
    assert extra["unreadable_count"] == 1 and extra["dropped_samples"] == 1 and extra["images"] == 4
    assert list(extra["unreadable_images"]) == ["broken.jpg"]
    hashes = (out / "images.sha256").read_text().splitlines()
    assert len(hashes) == len(pngs)
    with Image.open(out / "images" / "gaussian_noise" / "1" / "d16.png") as img:
        assert img.mode == "RGB" and img.size == (40, 33)


def test_resume_redoes_only_missing_or_damaged_images(built, tmp_path, monkeypatch):
    source_dir, (reference, _) = built
    out = tmp_path / "resume"
    config = DeriveConfig(corruptions=CORRUPTIONS, severities=(1, 3), seed=5, progress=False)
    source = Split.load(source_dir)
    calls: list[str] = []
    real = derive.corrupt_task

    def counting(task, *args):
        calls.append(task.key)
        if len(calls) == 3 and not getattr(counting, "interrupted", False):
            counting.interrupted = True
            raise KeyboardInterrupt  # a build stopped half-way
        return real(task, *args)

    monkeypatch.setattr(derive, "corrupt_task", counting)
    with pytest.raises(KeyboardInterrupt):
        derive_corrupted_split(source, out, config)
    assert not (out / "split.json").exists() and (out / derive.DONE_FILE).is_file()
    calls.clear()
    derive_corrupted_split(source, out, config)
    # a.png was finished before the interruption; broken.jpg (unreadable) is always retried
    assert calls == ["broken.jpg", "c.png", "d16.png", "sub/b.jpg"]
    assert tree(out) == tree(reference)

    (out / "images" / "frost" / "1" / "c.png").unlink()
    (out / "images" / "glass_blur" / "3" / "a.png").write_bytes(b"damaged")
    calls.clear()
    derive_corrupted_split(source, out, config)
    assert sorted(calls) == ["a.png", "broken.jpg", "c.png"]   # unreadable images are retried
    assert tree(out) == tree(reference)
    calls.clear()
    derive_corrupted_split(source, out, config)
    assert calls == ["broken.jpg"]

    # fewer corruptions in the same directory: nothing recomputed, the other outputs removed
    calls.clear()
    fewer = derive_corrupted_split(source, out, DeriveConfig(("frost",), (3,), seed=5, progress=False))
    assert calls == ["broken.jpg"] and fewer.meta.count == 5
    assert sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.png")) == [
        "images/frost/3/a.png", "images/frost/3/c.png", "images/frost/3/d16.png", "images/frost/3/sub/b.png"]

    with pytest.raises(DeemEvalError, match="different settings.*seed"):
        derive_corrupted_split(source, out, DeriveConfig(CORRUPTIONS, (1, 3), seed=6, progress=False))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(DeemEvalError, match="does not hold a corrupted split"):
        derive_corrupted_split(source, tmp_path / "other", config)


def test_bad_arguments_are_user_errors(built, tmp_path, capsys):
    source_dir, _ = built
    base = ["build", "corrupt", "--from", str(source_dir), "--out", str(tmp_path / "x"), "--no-progress"]
    assert main([*base, "--corruptions", "fogg"]) == 2
    assert "Did you mean 'fog'" in capsys.readouterr().err
    assert main([*base, "--severities", "0-2"]) == 2
    assert "severity must be an integer from 1 to 5" in capsys.readouterr().err
    assert main([*base, "--severities", "6"]) == 2
    assert main(["build", "corrupt", "--from", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_too_small_images_fail_clearly_or_are_skipped(tmp_path):
    source = Split.load(make_source(tmp_path, tiny=True))
    config = DeriveConfig(corruptions=("contrast",), severities=(2,), progress=False)
    with pytest.raises(DeemEvalError, match=r"tiny.png is 20x20 pixels; contrast needs at least 32x32.*--skip-small"):
        derive_corrupted_split(source, tmp_path / "o1", config)
    split = derive_corrupted_split(source, tmp_path / "o2", DeriveConfig(("contrast",), (2,), skip_small=True,
                                                                      progress=False))
    assert split.meta.extra["too_small_count"] == 1 and "tiny.png" in split.meta.extra["too_small_images"]
    assert split.meta.count == 5


def test_imagecorruptions_backend_is_reproducible_and_distinct(built, tmp_path):
    source = Split.load(built[0])
    config = DeriveConfig(("glass_blur", "impulse_noise"), (2,), seed=1, backend="imagecorruptions",
                          max_images=2, progress=False)
    first = derive_corrupted_split(source, tmp_path / "ic1", config)
    derive_corrupted_split(source, tmp_path / "ic2", config)
    assert tree(tmp_path / "ic1") == tree(tmp_path / "ic2")
    assert first.meta.builder.params["backend"] == "imagecorruptions"
    assert first.meta.extra["images"] + first.meta.extra["unreadable_count"] == 2     # --max-images
    ours = derive_corrupted_split(source, tmp_path / "ours", DeriveConfig(("glass_blur", "impulse_noise"), (2,),
                                                                          seed=1, max_images=2, progress=False))
    assert [s.id for s in ours.samples] == [s.id for s in first.samples]
    assert tree(tmp_path / "ours")["images.sha256"] != tree(tmp_path / "ic1")["images.sha256"]


def test_corrupted_benchmarks_build_once_into_the_cache(built, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEM_EVAL_HOME", str(tmp_path / "home"))
    config = parse_options(PopeC.Config, {"source_split": str(built[0]), "corruptions": "noise",
                                          "severities": "2-3", "images": "0"}, what="pope-c")
    split = PopeC(config).load()
    assert split.meta.benchmark == "pope-c" and split.meta.count == 5 * 4 * 2
    assert split.directory.parent == tmp_path / "home" / "splits"
    again = PopeC(config).load()
    assert again.fingerprint == split.fingerprint and again.directory == split.directory
    quick = RobustVQAC(parse_options(RobustVQAC.Config, {"source_split": str(built[0]), "images": "2"},
                                     what="robustvqa-c")).load()
    assert quick.meta.benchmark == "robustvqa-c"
    assert {s.group["corruption"] for s in quick.samples} == {"gaussian_noise", "glass_blur", "snow",
                                                              "jpeg_compression"}
    assert {s.group["severity"] for s in quick.samples} == {1, 3, 5}
    with pytest.raises(DeemEvalError):
        parse_options(PopeC.Config, {"images": "-1"}, what="pope-c")
    with pytest.raises(DeemEvalError, match="belongs to benchmark 'pope-c'"):
        RobustVQAC().load(split_dir=split.directory)


def test_pope_c_runs_offline_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEM_EVAL_HOME", str(tmp_path / "home"))
    code = main(["--model", "random", "--bench", "pope-c", "-B", "images=2", "-B", "severities=1,5",
                 "-B", "corruptions=fog", "--out", str(tmp_path / "runs"), "--no-progress"])
    assert code == 0
    metrics = json.loads(next((tmp_path / "runs").rglob("metrics.json")).read_text())
    text = json.dumps(metrics)
    assert "fog" in text and "severity" in text
