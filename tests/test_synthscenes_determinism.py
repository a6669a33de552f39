"""SynthScenes is a pure function of (seed, index, size): same seed -> same bytes, any order, any workers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deem_eval.benchmarks.synthscenes import generate, plan_scene, render_scene, render_single_object
from deem_eval.cli import main


def _digests(out: Path) -> dict[str, str]:
    files = sorted((out / "images").glob("*.png")) + [out / "instances.json"]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    generate(out, seed=3, num_images=10, size=96, progress=False)
    return out


def test_same_seed_gives_identical_files(built, tmp_path):
    again = generate(tmp_path / "b", seed=3, num_images=10, size=96, progress=False)
    assert _digests(again) == _digests(built)
    assert len(_digests(built)) == 11


def test_workers_give_identical_files(built, tmp_path):
    parallel = generate(tmp_path / "w", seed=3, num_images=10, size=96, workers=2, progress=False)
    assert _digests(parallel) == _digests(built)


def test_image_bytes_do_not_depend_on_range(built, tmp_path):
    tail = generate(tmp_path / "t", seed=3, num_images=4, start=6, size=96, progress=False)
    tail_digests = _digests(tail)
    full = _digests(built)
    for name, digest in tail_digests.items():
        if name.endswith(".png"):
            assert full[name] == digest
    assert sorted(n for n in tail_digests if n.endswith(".png")) == [f"synth_3_{i:06d}.png" for i in range(6, 10)]


def test_different_seed_differs(built, tmp_path):
    other = _digests(generate(tmp_path / "o", seed=4, num_images=10, size=96, progress=False))
    mine = _digests(built)
    pngs = [{d for n, d in digests.items() if n.endswith(".png")} for digests in (other, mine)]
    assert pngs[0].isdisjoint(pngs[1])
    plans = [plan_scene(3, i) for i in range(20)], [plan_scene(4, i) for i in range(20)]
    assert plans[0] != plans[1]


def test_render_order_does_not_matter():
    forward = [render_scene(1, i, size=64)[0].tobytes() for i in range(5)]
    backward = [render_scene(1, i, size=64)[0].tobytes() for i in reversed(range(5))][::-1]
    assert forward == backward
    assert len(set(forward)) == 5


def test_plan_does_not_depend_on_size():
    _img64, objs64 = render_scene(2, 7, size=64)
    _img224, objs224 = render_scene(2, 7, size=224)
    assert [o.category for o in objs64] == [o.category for o in objs224]
    for a, b in zip(objs64, objs224):
        assert a.bbox == pytest.approx(tuple(v * 64 / 224 for v in b.bbox), abs=0.02)


def test_single_object_is_deterministic_and_keyed():
    a = render_single_object(0, "k1", "dog", size=64, style="sketch", clutter=2, occlusion=0.3)
    b = render_single_object(0, "k1", "dog", size=64, style="sketch", clutter=2, occlusion=0.3)
    c = render_single_object(0, "k2", "dog", size=64, style="sketch", clutter=2, occlusion=0.3)
    d = render_single_object(1, "k1", "dog", size=64, style="sketch", clutter=2, occlusion=0.3)
    assert a.tobytes() == b.tobytes()
    assert len({a.tobytes(), c.tobytes(), d.tobytes()}) == 3


def test_cli_build_writes_the_same_files(built, tmp_path):
    out = tmp_path / "cli"
    assert main(["build", "synthscenes", "--seed", "3", "--num-images", "10", "--size", "96", "--out", str(out)]) == 0
    assert _digests(out) == _digests(built)


def test_cli_rejects_bad_counts(tmp_path, capsys):
    assert main(["build", "synthscenes", "--num-images", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--num-images must be at least 1" in capsys.readouterr().err
