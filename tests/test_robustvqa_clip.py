"""The CLIP miner on a tiny CLIPModel loaded from a local folder with from_pretrained.

Planted embeddings (see test_robustvqa_helpers) make the answer known: classes stingray, junco, jay, tench
(not an ImageNet-A class) and crane get basis vectors e0..e4; every other prompt is orthogonal to all
planted images, so it scores exactly 0.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_robustvqa_helpers import Planted, SimulatedCrash, basis, make_folder, plant_clip

from deem_eval.benchmarks.robustvqa.build import BuildOptions, build_split
from deem_eval.benchmarks.robustvqa.sources import imagenet_folder
from deem_eval.core.errors import DeemEvalError

STINGRAY, JUNCO, JAY, TENCH, CRANE = 6, 13, 17, 0, 134
C1, C2, C3, C4, C5 = (200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0), (0, 200, 200)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from hf_tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "clip")


@pytest.fixture
def data(tmp_path):
    a = make_folder(tmp_path / "imagenet-a", {"n01498041": [C1, C2], "n01534433": [C3], "n01580077": [C4]})
    (a / "n01534433" / "broken.png").write_bytes(b"\x89PNG not really")
    v2 = make_folder(tmp_path / "imagenetv2", {"134": [C5]})
    return a, v2


def planted(monkeypatch, tiny_clip) -> Planted:
    from transformers import AutoTokenizer

    text = {f"A photo of a {name}": basis(i) for i, name in enumerate(["stingray", "junco", "jay", "tench", "crane"])}
    images = {C1: 0.9 * basis(0) + 0.5 * basis(3) + 0.3 * basis(1),   # stingray; tench beats junco
              C2: 0.4 * basis(0) + 0.8 * basis(1),                    # stingray, but CLIP says junco
              C3: 0.9 * basis(1) + 0.2 * basis(2),                    # junco; then jay
              C4: 0.3 * basis(2) + 0.6 * basis(3) + 0.5 * basis(0),   # jay, ranked below tench and stingray
              C5: 0.9 * basis(4) + 0.3 * basis(2)}                    # crane (bird); the other "crane" ties
    return plant_clip(monkeypatch, Planted(AutoTokenizer.from_pretrained(tiny_clip), text, images))


def mined(split) -> dict[str, tuple[str, str, int]]:
    return {s.id.removesuffix("#yes"): (s.group["class"], s.group["negative"], s.group["clip_rank"])
            for s in split.samples if s.answer == "yes"}


def options(tiny_clip, tmp_path, **kw) -> BuildOptions:
    base = {"clip_model": str(tiny_clip), "cache_dir": tmp_path / "cache", "batch_size": 2, "workers": 2, "progress": False}
    return BuildOptions(**{**base, **kw})


def test_clip_miner_picks_the_planted_top_wrong_class(monkeypatch, tiny_clip, data, tmp_path):
    plant = planted(monkeypatch, tiny_clip)
    a, v2 = data
    split = build_split([imagenet_folder("a", a), imagenet_folder("v2", v2)], options(tiny_clip, tmp_path),
                        tmp_path / "out")
    assert mined(split) == {
        "robustvqa/a/n01498041/img0.png": ("stingray", "tench", 1),
        "robustvqa/a/n01498041/img1.png": ("stingray", "junco", 2),
        "robustvqa/a/n01534433/img0.png": ("junco", "jay", 1),
        "robustvqa/a/n01580077/img0.png": ("jay", "tench", 3),
        # the construction crane has DEEM's name "crane" too: never the negative of a crane
        "robustvqa/v2/134/img0.png": ("crane", "jay", 1),
    }
    # the real loading path ran: 1000 prompts through the tokenizer and text tower, each image encoded once
    assert len(plant.prompts_seen) == 1000 and "A photo of a great_white_shark" in plant.prompts_seen
    assert plant.images_encoded == 5
    assert split.meta.extra["skipped_count"] == 1
    assert split.meta.extra["subsets"]["a"]["clip_top1_accuracy"] == 0.5
    no = next(s for s in split.samples if s.id == "robustvqa/a/n01498041/img0.png#no")
    assert (no.question, no.answer) == ("Is tench the main object in this image? Please answer yes or no.", "no")
    assert split.meta.builder.params["clip_weights"] and split.meta.builder.params["miner"] == "clip"


def test_other_options_reuse_the_embedding_cache(monkeypatch, tiny_clip, data, tmp_path):
    a, _ = data
    first = planted(monkeypatch, tiny_clip)
    build_split([imagenet_folder("a", a)], options(tiny_clip, tmp_path), tmp_path / "o1")
    assert first.images_encoded == 4
    again = planted(monkeypatch, tiny_clip)
    split = build_split([imagenet_folder("a", a)], options(tiny_clip, tmp_path, candidates="subset"), tmp_path / "o2")
    assert again.images_encoded == 0          # nothing re-encoded
    assert mined(split) == {                  # tench is not an ImageNet-A class: next best wins
        "robustvqa/a/n01498041/img0.png": ("stingray", "junco", 1),
        "robustvqa/a/n01498041/img1.png": ("stingray", "junco", 2),
        "robustvqa/a/n01534433/img0.png": ("junco", "jay", 1),
        "robustvqa/a/n01580077/img0.png": ("jay", "stingray", 2),
    }
    wrong = build_split([imagenet_folder("a", a)], options(tiny_clip, tmp_path, keep="clip-wrong"), tmp_path / "o3")
    assert sorted(mined(wrong)) == ["robustvqa/a/n01498041/img1.png", "robustvqa/a/n01580077/img0.png"]
    assert wrong.name == "robustvqa-clipwrong" and again.images_encoded == 0


def test_an_interrupted_build_resumes_from_the_cache(monkeypatch, tiny_clip, data, tmp_path):
    a, _ = data
    plant = planted(monkeypatch, tiny_clip)
    plant.fail_after_calls = 1               # the second batch dies
    with pytest.raises(SimulatedCrash):
        build_split([imagenet_folder("a", a)], options(tiny_clip, tmp_path), tmp_path / "o1")
    assert plant.images_encoded == 2
    resumed = planted(monkeypatch, tiny_clip)
    split = build_split([imagenet_folder("a", a)], options(tiny_clip, tmp_path), tmp_path / "o2")
    assert resumed.images_encoded == 2       # only the two images the first run did not finish
    assert len(mined(split)) == 4


def test_real_forward_is_deterministic_across_batch_sizes(tiny_clip, data, tmp_path):
    a, v2 = data
    sources = lambda: [imagenet_folder("a", a), imagenet_folder("v2", v2)]
    one = build_split(sources(), options(tiny_clip, tmp_path, batch_size=1, cache_dir=tmp_path / "c1"), tmp_path / "x")
    four = build_split(sources(), options(tiny_clip, tmp_path, batch_size=4, workers=1, cache_dir=tmp_path / "c2"),
                       tmp_path / "y")
    assert one.fingerprint == four.fingerprint
    for cls, negative, rank in mined(one).values():
        assert negative != cls and 1 <= rank <= 1000
    stored = list((tmp_path / "c1").glob("*/shard-*.npz"))
    assert len(stored) == 1                   # compacted after the build
    with np.load(stored[0]) as npz:
        assert npz["embeddings"].shape == (5, 16)


def test_a_model_that_cannot_be_loaded_offline_says_what_to_download(monkeypatch, tmp_path):
    from deem_eval.benchmarks.robustvqa.clip_model import load_clip

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DeemEvalError) as info:
        load_clip("no-such-org/no-such-clip", device="cpu")
    message = str(info.value)
    assert "huggingface-cli download no-such-org/no-such-clip" in message
    assert "HF_HOME" in message and "--miner random" in message
    with pytest.raises(DeemEvalError, match="no such model folder"):
        load_clip(str(tmp_path / "missing" / "clip"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeemEvalError, match="cannot load a CLIP model from this folder"):
        load_clip(str(tmp_path / "empty"), device="cpu")


def test_clip_wrong_needs_the_clip_miner(data, tmp_path):
    a, _ = data
    with pytest.raises(DeemEvalError, match="--keep clip-wrong needs CLIP"):
        build_split([imagenet_folder("a", a)], BuildOptions(miner="random", keep="clip-wrong", progress=False),
                    tmp_path / "out")


def test_weights_identity_uses_hub_blob_names_and_remembers_hashes(tmp_path):
    from deem_eval.benchmarks.robustvqa.clip_model import weights_identity

    blob = tmp_path / "blobs" / ("ab" * 32)
    blob.parent.mkdir()
    blob.write_bytes(b"weights")
    snapshot = tmp_path / "snapshots" / "c0ffee"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(blob)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "model.safetensors").write_bytes(b"weights")
    memo = tmp_path / "memo"
    hub_id, plain_id = weights_identity(snapshot, memo), weights_identity(plain, memo)
    assert hub_id != plain_id                      # the blob's name is taken as its hash, without reading it
    assert "model.safetensors" in (memo / "weights-sha256.json").read_text()
    assert weights_identity(plain, memo) == plain_id
    (plain / "model.safetensors").write_bytes(b"other weights")
    assert weights_identity(plain, memo) != plain_id
    with pytest.raises(DeemEvalError, match="no weight files"):
        weights_identity(memo, None)
