"""The `clip` adapter: yes iff the asked class ranks first among the candidates (tiny random CLIP)."""

from __future__ import annotations

import pytest
import torch

from deem_eval.core.adapters import Request
from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.clip_zeroshot import CLIPConfig, CLIPZeroShot
from tests.hf_tiny import CLASSES, make_images, single_torch_thread  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def clip(tiny_clip):
    return CLIPZeroShot(CLIPConfig(path=str(tiny_clip), device="cpu"))


def requests(n: int, candidates=CLASSES) -> list[Request]:
    images = make_images(n, seed=3)
    return [Request(f"c{i}", images[i], "q", CLASSES[i % len(CLASSES)], tuple(candidates)) for i in range(n)]


def reference_logits(adapter, image, names):
    """Independent path: CLIPModel.forward on (prompts, image) -> logits_per_image."""
    proc = adapter.processor
    inputs = proc(text=[f"a photo of a {n}." for n in names], images=[image], return_tensors="pt", padding=True)
    with torch.no_grad():
        return adapter.model(**inputs).logits_per_image[0]


def test_yes_iff_subject_ranks_first(clip):
    reqs = requests(24)
    answers = clip.generate(reqs)
    expected = []
    for r in reqs:
        logits = reference_logits(clip, r.image, CLASSES)
        expected.append("yes" if int(logits.argmax()) == CLASSES.index(r.subject) else "no")
    assert answers == expected
    assert set(answers) == {"yes", "no"}, "the tiny model should produce both answers across 24 images"


def test_probability_is_softmax_over_candidates(clip):
    reqs = requests(6)
    probs = clip.yes_probability(reqs)
    for r, p in zip(reqs, probs):
        ref = torch.softmax(reference_logits(clip, r.image, CLASSES), -1)[CLASSES.index(r.subject)]
        assert p == pytest.approx(float(ref), abs=1e-5)


def test_batch_size_does_not_change_answers(clip):
    reqs = requests(10)
    assert clip.generate(reqs) == [clip.generate([r])[0] for r in reqs]


def test_text_embeddings_cached_per_class(clip, monkeypatch):
    clip._text_cache.clear()
    calls = []
    real = clip.model.get_text_features

    def counting(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real(**kwargs)

    monkeypatch.setattr(clip.model, "get_text_features", counting)
    clip.generate(requests(4))
    clip.generate(requests(4, candidates=CLASSES[:5]))          # a subset: nothing new to encode
    assert calls == [len(CLASSES)]


def test_subject_outside_vocabulary_is_added(clip):
    names, index = clip.candidates_for(Request("x", None, "q", "Zebra", ("dog", "cat")))
    assert names == ["dog", "cat", "Zebra"] and index == 2
    names, index = clip.candidates_for(Request("x", None, "q", "cat", ("Dog", "CAT", "dog")))
    assert names == ["Dog", "CAT"] and index == 1                  # case-insensitive, first spelling kept


def test_candidates_precedence_and_errors(tiny_clip, tmp_path):
    with pytest.raises(DeemEvalError, match="candidates_file"):
        CLIPZeroShot(CLIPConfig(path=str(tiny_clip), device="cpu")).generate(
            [Request("x", make_images(1)[0], "q", "dog", ())])
    with pytest.raises(DeemEvalError, match="asked class"):
        CLIPZeroShot(CLIPConfig(path=str(tiny_clip), device="cpu")).generate(
            [Request("x", make_images(1)[0], "q", None, CLASSES)])
    listing = tmp_path / "classes.txt"
    listing.write_text("# vocabulary\ndog\ncat\n\nboat\n")
    fixed = CLIPZeroShot(CLIPConfig(path=str(tiny_clip), device="cpu", candidates_file=listing))
    assert fixed.candidates_for(Request("x", None, "q", "cat", CLASSES))[0] == ["dog", "cat", "boat"]
    with pytest.raises(ValueError, match="needs a"):
        CLIPConfig(template="a photo")


def test_path_images_are_opened_and_answer_like_the_same_pil_images(clip, tmp_path):
    """A Request whose image is a path (what the runner passes when it does not decode images itself)."""
    reqs = requests(4)
    paths = []
    for r in reqs:
        paths.append(tmp_path / f"{r.id}.png")
        r.image.save(paths[-1])
    by_path = [Request(r.id, p if i % 2 else str(p), r.question, r.subject, r.candidates)
               for i, (r, p) in enumerate(zip(reqs, paths))]
    assert clip.generate(by_path) == clip.generate(reqs)
    assert clip.yes_probability(by_path) == pytest.approx(clip.yes_probability(reqs), abs=1e-6)
