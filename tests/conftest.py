"""Shared test set-up: an isolated $DEEM_EVAL_HOME and small hand-made splits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deem_eval.core.splits import BuilderInfo, Sample, Split

pytest_plugins = ["tests.model_fixtures"]   # tiny models any test may ask for by name

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory):
    """Builds and caches go to a per-session directory, never to ~/.cache."""
    home = tmp_path_factory.mktemp("deem-eval-home")
    old = os.environ.get("DEEM_EVAL_HOME")
    os.environ["DEEM_EVAL_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("DEEM_EVAL_HOME", None)
    else:
        os.environ["DEEM_EVAL_HOME"] = old


def make_split(directory: Path, n_images: int = 6, *, name: str = "tiny", broken: tuple[int, ...] = ()) -> Split:
    """A saved split: n_images PNGs under images/, two questions each (yes, then no); `broken` images are
    written as garbage bytes so the runner has to record per-sample failures."""
    from PIL import Image

    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n_images):
        path = images / f"img{i:03d}.png"
        if i in broken:
            path.write_bytes(b"not a png")
        else:
            Image.new("RGB", (16, 16), (i * 40 % 256, 80, 160)).save(path)
        for answer, obj in (("yes", "circle"), ("no", "square")):
            samples.append(Sample(f"{name}/{i:03d}/{answer}", f"img{i:03d}.png",
                                  f"Is there a {obj} in the image?", answer,
                                  {"subset": "a" if i % 2 else "b", "object": obj}))
    split = Split.create(name=name, benchmark="tiny", samples=samples, image_root="images",
                         builder=BuilderInfo("test", {"n_images": n_images}, 0), candidates=["circle", "square"])
    return split.save(directory)


@pytest.fixture
def tiny_split(tmp_path) -> Split:
    return make_split(tmp_path / "split")
