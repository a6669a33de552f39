"""What SynthScenes draws: categories, scene co-occurrence, styles, and single-object nuisances."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

from deem_eval.benchmarks.synthscenes import (
    CATEGORIES,
    SCENES,
    STYLES,
    ScenePlan,
    category_by_name,
    draw_object,
    plan_scene,
    render_plan,
    render_scene,
    render_single_object,
    scene_by_name,
)
from deem_eval.benchmarks.synthscenes.backgrounds import PLAIN
from deem_eval.core.errors import DeemEvalError, UnknownNameError


def test_categories_are_many_distinct_and_well_formed():
    names = [c.name for c in CATEGORIES]
    assert len(names) >= 20 and len(set(names)) == len(names)
    assert [c.id for c in CATEGORIES] == list(range(1, len(CATEGORIES) + 1))
    for c in CATEGORIES:
        assert c.name == c.name.lower().strip() and c.name.replace(" ", "").isalpha()
        assert c.shape.roles() <= set(c.colours) | {"dark"}, c.name  # every role has a colour
        assert 0 < c.size[0] <= c.size[1] < 0.5 and c.max_per_image >= 1
    assert category_by_name("apple").article == "an" and category_by_name("umbrella").article == "an"
    assert category_by_name("dog").article == "a"
    assert len({c.colours["main"] for c in CATEGORIES}) >= 25  # identity colours mostly differ


def test_scene_table():
    assert len(SCENES) >= 5
    in_scenes = Counter(o.name for s in SCENES for o in {o.name: o for o in s.objects}.values())
    assert set(in_scenes) == {c.name for c in CATEGORIES}  # every category can appear
    assert sum(1 for n in in_scenes.values() if n >= 3) >= 5  # several objects are shared between scenes
    with pytest.raises(UnknownNameError, match="Did you mean 'beach'"):
        scene_by_name("beech")


def test_forced_scene_is_used():
    for s in SCENES:
        plan = plan_scene(0, 1, scene=s.name)
        assert plan.scene == s.name
        assert {p.category for p in plan.objects} <= {o.name for o in s.objects}


def test_cooccurrence_differs_from_global_frequency():
    """POPE popular negatives (globally frequent) must differ from adversarial ones (frequent partners)."""
    freq, co = Counter(), Counter()
    counts = Counter()
    for i in range(300):
        plan = plan_scene(0, i)
        counts[len(plan.objects)] += 1
        names = sorted({p.category for p in plan.objects})
        freq.update(names)
        for a, b in combinations(names, 2):
            co[a, b] += 1
            co[b, a] += 1
    assert set(counts) <= set(range(1, 9)) and counts[1] > 0 and sum(v for k, v in counts.items() if k >= 5) > 50
    top = freq.most_common(1)[0][0]

    def partner(x: str) -> str:
        return max((c, b) for (a, b), c in co.items() if a == x)[1]

    assert partner("fish") != top and partner("cup") != top and partner("star") != top
    assert partner("fish") in {"anchor", "crab", "bottle"}
    assert partner("star") == "moon"
    assert co["cup", "star"] == 0 and co["fish", "car"] == 0  # scenes keep unrelated objects apart
    # Several instances of one category occur in some images.
    assert any(len(p.objects) > len({o.category for o in p.objects}) for p in (plan_scene(0, i) for i in range(50)))


@pytest.mark.parametrize("size", [64, 224])
def test_every_style_renders_every_category(size):
    for style in STYLES:
        tiles = []
        for c in CATEGORIES:
            img = render_single_object(0, "t", c.name, size=size, style=style)
            assert img.size == (size, size) and img.mode == "RGB"
            arr = np.asarray(img).astype(int)
            changed = np.abs(arr - np.array(PLAIN)).sum(axis=2) > 30
            assert changed.mean() > 0.03, (style, c.name)  # something visible was drawn
            ys, xs = np.nonzero(changed)
            assert abs(xs.mean() - size / 2) < size * 0.2 and abs(ys.mean() - size / 2) < size * 0.2
            tiles.append(img.tobytes())
        assert len(set(tiles)) == len(CATEGORIES)


def test_styles_look_different_but_keep_the_layout():
    imgs = {s: np.asarray(render_single_object(0, "k", "car", size=96, style=s)).astype(int) for s in STYLES}
    boxes = {}
    for s, arr in imgs.items():
        ys, xs = np.nonzero(np.abs(arr - np.array(PLAIN)).sum(axis=2) > 30)
        boxes[s] = (xs.min(), ys.min(), xs.max(), ys.max())
    for a, b in combinations(STYLES, 2):
        assert np.abs(imgs[a] - imgs[b]).mean() > 2, (a, b)
        assert max(abs(p - q) for p, q in zip(boxes[a], boxes[b])) <= 8, (a, b, boxes[a], boxes[b])
    gray = imgs["sketch"]
    assert np.abs(gray[..., 0] - gray[..., 2]).max() < 20  # pencil: no colour


def test_objects_are_visible_inside_their_boxes():
    for index in range(12):
        plan = plan_scene(9, index)
        img, objects = render_plan(plan, 9, index, size=128)
        bg, _ = render_plan(ScenePlan(plan.scene, ()), 9, index, size=128)
        diff = np.abs(np.asarray(img).astype(int) - np.asarray(bg).astype(int)).sum(axis=2) > 40
        outside = diff.copy()
        for o in objects:
            x, y, w, h = (round(v) for v in o.bbox)
            assert diff[y:y + h, x:x + w].mean() > 0.2, (index, o.category)
            outside[max(0, y - 3):y + h + 3, max(0, x - 3):x + w + 3] = False
        assert outside.mean() < 0.002  # nothing is drawn outside the annotated boxes


def test_draw_object_fits_box_and_overrides_colour():
    img = Image.new("RGB", (200, 100), (255, 255, 255))
    x, y, w, h = draw_object(img, "ball", (0, 0, 200, 100), colour=(0, 0, 255))
    assert (w, h) == pytest.approx((100, 100)) and x == pytest.approx(50) and y == 0
    arr = np.asarray(img)
    assert ((arr == (0, 0, 255)).all(axis=2)).sum() > 500
    assert (arr[:, :45] == 255).all() and (arr[:, 155:] == 255).all()
    with pytest.raises(UnknownNameError, match="Did you mean 'cartoon'"):
        draw_object(img, "ball", (0, 0, 10, 10), style="cartton")
    with pytest.raises(UnknownNameError, match="Did you mean 'umbrella'"):
        draw_object(img, "umbrela", (0, 0, 10, 10))


def _visible(img: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(img).astype(int) - np.array(PLAIN)).sum(axis=2) > 30


def test_single_object_nuisances():
    base = render_single_object(0, 7, "bottle", size=96)
    arr = np.asarray(base).astype(int)
    # colour override: green bottle turns blue
    blue = np.asarray(render_single_object(0, 7, "bottle", size=96, colour=(0, 0, 255))).astype(int)
    assert ((blue[..., 2] > 200) & (blue[..., 0] < 60)).sum() > 100 > ((arr[..., 2] > 200) & (arr[..., 0] < 60)).sum()
    # occlusion hides part of the object and leaves the rest identical
    occ = np.asarray(render_single_object(0, 7, "bottle", size=96, occlusion=0.5)).astype(int)
    same = (occ == arr).all(axis=2)
    assert 0.05 < 1 - same.mean() < 0.6
    # scale
    assert _visible(render_single_object(0, 7, "bottle", size=96, scale=0.5)).sum() < 0.5 * _visible(base).sum()
    # contrast
    low = np.asarray(render_single_object(0, 7, "bottle", size=96, contrast=0.4)).astype(float)
    assert low.std() < 0.6 * arr.std()
    # clutter adds other objects; the scene background fills the frame
    cluttered = np.asarray(render_single_object(0, 7, "bottle", size=96, clutter=3)).astype(int)
    assert _visible(cluttered).sum() > _visible(base).sum() + 150
    scene_bg = np.asarray(render_single_object(0, 7, "bottle", size=96, background="scene")).astype(int)
    assert (np.abs(scene_bg - arr).sum(axis=2) > 20).mean() > 0.5


def test_single_object_rejects_bad_options():
    with pytest.raises(DeemEvalError, match="occlusion"):
        render_single_object(0, 0, "dog", occlusion=1.5)
    with pytest.raises(DeemEvalError, match="background"):
        render_single_object(0, 0, "dog", background="forest")
    with pytest.raises(DeemEvalError, match="colour must be three integers"):
        render_single_object(0, 0, "dog", colour=(300, 0, 0))
    with pytest.raises(DeemEvalError, match="size"):
        render_scene(0, 0, size=8)


def test_draw_object_accepts_an_imagedraw():
    from PIL import ImageDraw

    a, b = Image.new("RGB", (60, 60)), Image.new("RGB", (60, 60))
    assert draw_object(ImageDraw.Draw(a), "cat", (5, 5, 55, 55)) == draw_object(b, "cat", (5, 5, 55, 55))
    assert a.tobytes() == b.tobytes()
