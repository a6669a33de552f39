"""--workers N: batches decoded and prepared in worker processes give exactly the answers of --workers 0."""

from __future__ import annotations

import json
import pickle

import pytest

from deem_eval.core.adapters import ModelAdapter, Reply, Request
from deem_eval.run.runner import RunOptions, run
from deem_eval.scoring.parsing import STRICT
from tests.conftest import make_split
from tests.hf_tiny import single_torch_thread  # noqa: F401 (fixture: one torch thread per module)


def _split(directory, *, n_images=5, broken=(), small=()):
    """make_split, with images of different sizes and colours (so the resize matters), `broken` ones garbage
    and `small` ones 4x4 px (decodable, but below DEEM's encoder stride: its preparer refuses them)."""
    from deem_eval.core.splits import Split
    from tests.hf_tiny import make_images

    make_split(directory, n_images=n_images, broken=broken)
    images = make_images(n_images, size=40, seed=3)
    for i, image in enumerate(images):
        if i in broken:
            continue
        path = directory / "images" / f"img{i:03d}.png"
        (image.resize((4, 4)) if i in small else image.resize((24 + 7 * i, 40 - 3 * i))).save(path)
    return Split.load(directory)


def _answers(result) -> tuple[list[tuple], list[dict]]:
    lines = [json.loads(line) for line in (result.run_dir / "samples.jsonl").read_text().splitlines()]
    answers = sorted((r["id"], r.get("output"), r.get("yes_prob"), r.get("prompt_sha256")) for r in lines)
    failures = sorted(result.metrics["failures"], key=lambda f: f["id"])
    return answers, failures


def _both(adapter, split, tmp_path, **kw):
    zero = run(adapter, split, STRICT, RunOptions(out=tmp_path / "w0", progress=False, workers=0, **kw))
    two = run(adapter, split, STRICT, RunOptions(out=tmp_path / "w2", progress=False, workers=2, **kw))
    return _answers(zero), _answers(two), zero, two


@pytest.fixture(scope="module")
def llava(tiny_llava):
    from deem_eval.model_adapters.hf.adapter import HFAdapter, HFConfig

    return HFAdapter(HFConfig(path=str(tiny_llava), max_new_tokens=4, scoring="both", device="cpu"))


@pytest.fixture(scope="module")
def deem():
    from deem_eval.model_adapters.deem.adapter import DeemAdapter, DeemAdapterConfig

    return DeemAdapter(DeemAdapterConfig(preset="deem-tiny", scoring="both", device="cpu", max_new_tokens=3))


@pytest.mark.parametrize("name", ["llava", "deem"])
def test_two_workers_answer_exactly_like_none(name, request, tmp_path, monkeypatch):
    adapter = request.getfixturevalue(name)
    split = _split(tmp_path / "split", broken=(2,))
    zero = _answers(run(adapter, split, STRICT, RunOptions(out=tmp_path / "w0", progress=False, batch_size=3)))
    calls, live = [], []
    answer_prepared = adapter.answer_prepared
    monkeypatch.setattr(adapter, "answer_prepared", lambda b, p: calls.append(len(b)) or answer_prepared(b, p))
    if name == "llava":    # the processor never runs in the main process
        from deem_eval.model_adapters.hf.adapter import HFPreparer
        encode = HFPreparer.encode
        monkeypatch.setattr(HFPreparer, "encode", lambda self, b: live.append(len(b)) or encode(self, b))
    else:
        from deem_eval.model_adapters.deem.model import images
        to_pixels = images.to_pixels
        monkeypatch.setattr(images, "to_pixels", lambda *a, **k: live.append(1) or to_pixels(*a, **k))
    two = _answers(run(adapter, split, STRICT, RunOptions(out=tmp_path / "w2", progress=False, batch_size=3,
                                                          workers=2)))
    assert sum(calls) == 8 and len(calls) == 4 and live == []     # every answered batch came prepared
    (w0, f0), (w2, f2) = zero, two
    assert len(w0) == 8 and all(a[1] is not None and a[2] is not None for a in w0)
    assert w0 == w2                                   # text, P(yes) (exact floats) and prompt hashes
    assert f0 == f2 and {f["id"] for f in f0} == {"tiny/002/yes", "tiny/002/no"}
    assert all(f["stage"] == "image" and "img002.png" in f["error"] for f in f0)


def test_deem_sample_its_preparer_refuses_fails_alone_as_without_workers(deem, tmp_path):
    split = _split(tmp_path / "split", n_images=3, small=(1,))
    (w0, f0), (w2, f2), _, _ = _both(deem, split, tmp_path, batch_size=4)
    assert w0 == w2 and f0 == f2
    assert {f["id"] for f in f0} == {"tiny/001/yes", "tiny/001/no"} and all(f["stage"] == "model" for f in f0)
    assert "smaller than the encoder's stride" in f0[0]["error"]


@pytest.mark.parametrize("name", ["llava", "deem"])
def test_prepared_inputs_equal_the_adapters_own(name, request):
    """In-process: answer(batch, prepared=prepare(batch)) == answer(batch), also when max_batch cuts the batch
    and when the prepared chunks do not match the forward chunks (after an out-of-memory halving)."""
    import dataclasses

    from tests.deem_tiny import requests

    adapter = request.getfixturevalue(name)
    batch = requests(5, size=40, seed=1)
    expected = adapter.answer(batch)
    assert adapter.answer(batch, prepared=adapter.prepare(batch)) == expected
    preparer = pickle.loads(pickle.dumps(adapter.preparer()))      # spawn-safe: travels without the model
    assert adapter.answer(batch, prepared=preparer(batch)) == expected
    cut = dataclasses.replace(adapter.preparer(), max_batch=2)     # chunks the adapter never runs: re-encoded
    assert adapter.answer(batch, prepared=cut(batch)) == expected


def test_deem_prepared_pixels_are_uint8_and_become_to_pixels_values(deem):
    import torch

    from deem_eval.model_adapters.deem.model.images import to_pixels
    from tests.deem_tiny import requests

    batch = requests(3, size=40, seed=2)
    prepared = deem.preparer()(batch)
    (pixels, input_ids, mask), = prepared.values()
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 3, 32, 32)
    v = deem.model.config.visual
    reference = to_pixels([r.image for r in batch], v.image_size, min_side=v.stride)
    assert torch.equal(deem._on_device(pixels, input_ids, mask)[0], reference)
    ids, m = deem.model.tokenize_prompts([r.question for r in batch])
    assert torch.equal(input_ids, ids) and torch.equal(mask, m)


class _Counting(ModelAdapter):
    """needs images, prepares nothing: --workers changes nothing for it."""

    name = "counting"
    label = "counting"

    def generate(self, batch):
        return ["Yes." if r.image.getpixel((0, 0))[0] > 100 else "No." for r in batch]


class _Preparing(_Counting):
    """A preparer that raises on one id (a per-batch failure) and answers from what it prepared."""

    name = "preparing"

    def preparer(self):
        return _IdPreparer()

    def answer_prepared(self, batch, prepared):
        assert [r.id for r in batch] == prepared["ids"]
        return [Reply(t, None) for t in prepared["texts"]]


class _IdPreparer:
    def __call__(self, batch: list[Request]):
        if any(r.id == "tiny/003/no" for r in batch):
            raise ValueError("cannot prepare")
        return {"ids": [r.id for r in batch],
                "texts": ["Yes." if r.image.getpixel((0, 0))[0] > 100 else "No." for r in batch]}


@pytest.mark.parametrize("adapter", [_Counting(), _Preparing()], ids=["no-preparer", "preparer"])
def test_order_failures_and_fallback_with_workers(adapter, tmp_path):
    split = make_split(tmp_path / "split", n_images=6, broken=(1,))
    (w0, f0), (w2, f2), zero, two = _both(adapter, split, tmp_path, batch_size=2)
    assert w0 == w2 and f0 == f2 and len(w0) == 10
    assert [f["stage"] for f in f0] == ["image", "image"]
    # batches are written in their planned order, whatever the workers finish first
    ids = lambda r: [json.loads(line)["id"] for line in (r.run_dir / "samples.jsonl").read_text().splitlines()]
    assert ids(zero) == ids(two)


def test_workers_option_is_checked(tmp_path):
    from deem_eval.api import prepare
    from deem_eval.core.errors import DeemEvalError

    with pytest.raises(DeemEvalError, match="--workers"):
        prepare("always-yes", split_dir=make_split(tmp_path / "split").directory, workers=-1)
