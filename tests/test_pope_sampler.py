"""The POPE sampler: upstream's rules (hand-made cases with forced outputs), invariants on random inputs, and
consistency with the published COCO files and upstream's own object statistics."""

from __future__ import annotations

import json
import re
from collections import Counter, OrderedDict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deem_eval.benchmarks.pope.sampler import (
    ImageObjects,
    ObjectStats,
    SamplerConfig,
    question_text,
    sample_pope,
    sample_subset,
    select_images,
)
from deem_eval.core.errors import DeemEvalError

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pope"
# Upstream's own object counts for its 500 images (RUCAIBox/POPE commit 28f884a). Data from fetched
# repositories is not committed here; the check runs where the file has been added to the shared fixtures.
UPSTREAM_STATS = FIXTURES / "upstream" / "pope_coco_object_stats_28f884a.json"
needs_upstream_stats = pytest.mark.skipif(not UPSTREAM_STATS.is_file(),
                                          reason=f"upstream object statistics not found at {UPSTREAM_STATS}")
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"published POPE fixtures not found at {FIXTURES}")
OBJECT = re.compile(r"^Is there an? (.+) in the ima(?:n)?ge\?$")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def triples(questions) -> list[tuple[int, str, str, str]]:
    return [(q.question_id, q.image, q.object, q.label) for q in questions]


# ---- question text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("obj, by_letter, upstream", [
    ("umbrella", "Is there an umbrella in the image?", "Is there an umbrella in the imange?"),
    ("apple", "Is there an apple in the image?", "Is there an apple in the imange?"),
    ("skis", "Is there a skis in the image?", "Is there a skis in the image?"),
    ("hair drier", "Is there a hair drier in the image?", "Is there a hair drier in the image?"),
    ("Orange", "Is there an Orange in the image?", "Is there a Orange in the image?"),
])
def test_question_text_articles(obj, by_letter, upstream):
    assert question_text(obj) == by_letter
    assert question_text(obj, article="upstream") == upstream


def test_question_text_custom_templates():
    assert question_text("owl", "A {} is visible?") == "An owl is visible?"
    assert question_text("cat", "Do you see an {}?") == "Do you see a cat?"
    assert question_text("egg", "Name the {}.") == "Name the egg."          # no article: left alone


# ---- statistics -----------------------------------------------------------------------------------------

def test_popular_ranking_counts_images_and_keeps_first_appearance_on_ties():
    images = [ImageObjects("1", ("b", "q")), ImageObjects("2", ("p", "c")), ImageObjects("3", ("p", "b")),
              ImageObjects("4", ("c", "z"))]
    stats = ObjectStats.from_images(images)
    assert stats.vocabulary == ("b", "q", "p", "c", "z")
    # counts: b2 q1 p2 c2 z1 -> ties in first-appearance order
    assert stats.popular == ("b", "p", "c", "q", "z")


def test_co_occurrence_ties_follow_first_co_occurrence_not_global_order():
    # globally b appears before c, but p meets c (image 2) before it meets b (image 3): upstream's dict order
    images = [ImageObjects("1", ("b", "q")), ImageObjects("2", ("p", "c")), ImageObjects("3", ("p", "b")),
              ImageObjects("4", ("p", "q", "b"))]
    stats = ObjectStats.from_images(images)
    assert stats.co_occurring["p"] == ("b", "c", "q")      # b: 2, then c and q tie at 1: c was met first
    assert stats.co_occurring["c"] == ("p",)
    assert stats.co_occurring["q"] == ("b", "p")


# ---- forced outputs -------------------------------------------------------------------------------------

def forced_images() -> list[ImageObjects]:
    return [
        ImageObjects("a.jpg", ("person", "dog", "cat", "car")),
        ImageObjects("b.jpg", ("dog", "cat", "bus")),
        ImageObjects("c.jpg", ("person", "car", "bus", "tree")),
        ImageObjects("d.jpg", ("sink", "oven", "cup")),
        ImageObjects("e.jpg", ("person", "dog", "tree", "bench", "bird")),
    ]


def test_popular_and_adversarial_are_forced_by_the_object_lists():
    images = forced_images()
    order = ["b.jpg", "d.jpg", "a.jpg", "c.jpg", "e.jpg"]
    sampling = sample_pope(images, SamplerConfig(img_num=5, seed=123, subsets=("popular", "adversarial")),
                           image_list=order)
    # image counts: dog 3, person 3, then cat, bus, car, tree 2 each, in order of first appearance (b, d, a, c, e)
    assert sampling.stats.popular[:6] == ("dog", "person", "cat", "bus", "car", "tree")
    assert triples(sampling.questions["popular"]) == [
        (1, "b.jpg", "dog", "yes"), (2, "b.jpg", "person", "no"), (3, "b.jpg", "cat", "yes"),
        (4, "b.jpg", "car", "no"), (5, "b.jpg", "bus", "yes"), (6, "b.jpg", "tree", "no"),
        (7, "d.jpg", "sink", "yes"), (8, "d.jpg", "dog", "no"), (9, "d.jpg", "oven", "yes"),
        (10, "d.jpg", "person", "no"), (11, "d.jpg", "cup", "yes"), (12, "d.jpg", "cat", "no"),
        (13, "a.jpg", "person", "yes"), (14, "a.jpg", "bus", "no"), (15, "a.jpg", "dog", "yes"),
        (16, "a.jpg", "tree", "no"), (17, "a.jpg", "cat", "yes"), (18, "a.jpg", "sink", "no"),
        (19, "c.jpg", "person", "yes"), (20, "c.jpg", "dog", "no"), (21, "c.jpg", "car", "yes"),
        (22, "c.jpg", "cat", "no"), (23, "c.jpg", "bus", "yes"), (24, "c.jpg", "sink", "no"),
        (25, "e.jpg", "person", "yes"), (26, "e.jpg", "cat", "no"), (27, "e.jpg", "dog", "yes"),
        (28, "e.jpg", "bus", "no"), (29, "e.jpg", "tree", "yes"), (30, "e.jpg", "car", "no"),
    ]
    adversarial = triples(sampling.questions["adversarial"])
    # co-occurrence with "dog" (images b, a, e): cat 2, person 2, bus 1, car 1, tree 1, bench 1, bird 1
    assert sampling.stats.co_occurring["dog"] == ("cat", "person", "bus", "car", "tree", "bench", "bird")
    assert adversarial[:6] == [(1, "b.jpg", "dog", "yes"), (2, "b.jpg", "person", "no"),
                               (3, "b.jpg", "cat", "yes"), (4, "b.jpg", "car", "no"),
                               (5, "b.jpg", "bus", "yes"), (6, "b.jpg", "tree", "no")]
    # d.jpg's objects never co-occur with anything else: all three negatives are random fallbacks
    fallbacks = [obj for _, image, obj, label in adversarial if image == "d.jpg" and label == "no"]
    assert len(set(fallbacks)) == 3 and not set(fallbacks) & {"sink", "oven", "cup"}
    # a.jpg: person's partners: dog 2, car 2, tree 2, cat 1, bus 1, bench 1, bird 1 -> tree (dog, car in image);
    # dog's -> bus; cat's partners (dog, bus, person, car) are all in the image or asked -> random fallback
    assert adversarial[12:16] == [(13, "a.jpg", "person", "yes"), (14, "a.jpg", "tree", "no"),
                                  (15, "a.jpg", "dog", "yes"), (16, "a.jpg", "bus", "no")]
    assert adversarial[16][2:] == ("cat", "yes")
    assert adversarial[17][3] == "no" and adversarial[17][2] not in {"person", "dog", "cat", "car", "tree", "bus"}


def test_fallback_and_random_draws_are_seeded():
    images = forced_images()
    config = SamplerConfig(img_num=5, seed=7)
    first, again = sample_pope(images, config), sample_pope(images, config)
    assert first.questions == again.questions
    other = sample_pope(images, SamplerConfig(img_num=5, seed=8))
    assert other.questions["random"] != first.questions["random"]


# ---- invariants -----------------------------------------------------------------------------------------

object_names = st.sampled_from([f"o{i}" for i in range(30)])
image_lists = st.lists(st.lists(object_names, min_size=0, max_size=9, unique=True), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(image_lists, st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_sampler_invariants(lists, seed, n):
    images = [ImageObjects(f"img{i}.jpg", tuple(objs)) for i, objs in enumerate(lists)]
    eligible = [im for im in images if len(im.objects) >= n]
    if not eligible:
        with pytest.raises(DeemEvalError, match=f"only 0 of {len(images)} images have at least {n} objects"):
            sample_pope(images, SamplerConfig(seed=seed, img_num=1, n=n))
        return
    config = SamplerConfig(seed=seed, img_num=len(eligible), n=n)
    try:
        sampling = sample_pope(images, config)
    except DeemEvalError as exc:          # a chosen image holds (almost) every object seen
        assert "no object left" in str(exc)
        return
    assert sampling.selection.skipped_too_few == len(images) - len(eligible)
    assert sorted(im.image for im in sampling.selection.chosen) == sorted(im.image for im in eligible)
    vocabulary = set(sampling.stats.vocabulary)
    for subset, questions in sampling.questions.items():
        assert [q.question_id for q in questions] == list(range(1, len(questions) + 1))
        assert [q.label for q in questions] == ["yes", "no"] * (len(questions) // 2)
        per_image: dict[str, list] = OrderedDict()
        for q in questions:
            per_image.setdefault(q.image, []).append(q)
        assert list(per_image) == [im.image for im in sampling.selection.chosen]
        for image in sampling.selection.chosen:
            asked = per_image[image.image]
            assert [q.object for q in asked if q.label == "yes"] == list(image.objects[:n])
            negatives = [q.object for q in asked if q.label == "no"]
            assert len(set(negatives)) == n and not set(negatives) & set(image.objects)
            assert set(negatives) <= vocabulary
            if subset == "popular":   # each negative is the best-ranked object still allowed
                for k, negative in enumerate(negatives):
                    allowed = [o for o in sampling.stats.popular
                               if o not in image.objects and o not in negatives[:k]]
                    assert negative == allowed[0]


def test_random_negatives_are_uniform_over_allowed_objects():
    others = [ImageObjects(f"v{i}.jpg", (f"x{i}", "a", "b")) for i in range(6)]   # vocabulary a, b, c, x0..x5
    probes = [ImageObjects(f"p{i}.jpg", ("a", "b", "c")) for i in range(1500)]
    sampling = sample_pope(others + probes, SamplerConfig(seed=3, img_num=1506, subsets=("random",)))
    counts = Counter(q.object for q in sampling.questions["random"] if q.label == "no" and q.image.startswith("p"))
    assert set(counts) == {f"x{i}" for i in range(6)}
    expected = 1500 * 3 / 6
    assert all(abs(c - expected) < 0.12 * expected for c in counts.values()), counts


# ---- selection and bad input ----------------------------------------------------------------------------

def test_selection_counts_skipped_images_and_refuses_too_many():
    images = [ImageObjects(f"{i}.jpg", tuple(f"o{j}" for j in range(i % 5))) for i in range(20)]  # 0..4 objects
    selection = select_images(images, n=3, img_num=8, seed=0)
    assert (selection.total, selection.eligible, selection.skipped_too_few) == (20, 8, 12)
    assert len({im.image for im in selection.chosen}) == 8
    with pytest.raises(DeemEvalError, match=r"only 8 of 20 images have at least 3 objects \(12 have fewer\), but 9"):
        select_images(images, n=3, img_num=9, seed=0)


def test_image_list_is_taken_in_order_and_checked():
    images = forced_images()
    chosen = select_images(images, n=3, img_num=1, seed=0, image_list=["e.jpg", "a.jpg"]).chosen
    assert [im.image for im in chosen] == ["e.jpg", "a.jpg"]
    with pytest.raises(DeemEvalError, match="1 of the 2 listed images are not in the source"):
        select_images(images, n=3, img_num=2, seed=0, image_list=["a.jpg", "zzz.jpg"])
    with pytest.raises(DeemEvalError, match="fewer than 4 objects"):
        select_images(images, n=4, img_num=2, seed=0, image_list=["a.jpg", "b.jpg"])
    with pytest.raises(DeemEvalError, match="more than once"):
        select_images(images, n=3, img_num=2, seed=0, image_list=["a.jpg", "a.jpg"])


def test_seeded_selection_differs_by_seed_and_is_stable():
    images = [ImageObjects(f"{i}.jpg", ("a", "b", "c")) for i in range(100)]
    pick = lambda seed: [im.image for im in select_images(images, n=3, img_num=10, seed=seed).chosen]
    assert pick(0) == pick(0) and pick(0) != pick(1)


def test_bad_config():
    with pytest.raises(DeemEvalError, match="unknown POPE subset"):
        SamplerConfig(subsets=("random", "rare"))
    with pytest.raises(DeemEvalError, match="exactly one"):
        SamplerConfig(template="Is there a cat?")


# ---- against the published COCO files and upstream's statistics -------------------------------------------

def per_image(path: Path) -> OrderedDict[str, list[tuple[str, str]]]:
    out: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
    for row in rows(path):
        out.setdefault(row["image"], []).append((OBJECT.match(row["text"]).group(1), row["label"]))
    return out


def upstream_stats() -> tuple[list[str], dict[str, list[str]]]:
    data = json.loads(UPSTREAM_STATS.read_text())
    ranking = [name for name, _ in sorted(data["object_counts"], key=lambda kv: -kv[1])]
    return ranking, data["co_occurring"]


@needs_fixtures
@needs_upstream_stats
def test_published_popular_and_adversarial_follow_the_rules_given_upstream_counts():
    """Upstream shipped its object counts and co-occurrence rankings for the 500 images (commit 28f884a).

    Objects a negative strategy skipped over must be in the image; from that we infer a set of present
    objects per image and check it never contradicts any published file (no inferred-present object is
    ever asked as a negative, in any subset), then re-run our sampler on those images with upstream's
    rankings: it must reproduce every popular and adversarial question, except the random fallbacks.
    """
    ranking, co = upstream_stats()
    popular = per_image(FIXTURES / "coco/current/coco_pope_popular.json")
    adversarial = per_image(FIXTURES / "coco/current/coco_pope_adversarial.json")
    random_ = per_image(FIXTURES / "coco/current/coco_pope_random.json")
    present: dict[str, set[str]] = {image: set() for image in popular}
    fallback_rows = []
    for name, files, order in (("popular", popular, lambda p: ranking), ("adversarial", adversarial, lambda p: co[p])):
        for image, questions in files.items():
            asked: list[str] = []
            for k in range(3):
                (positive, yes), (negative, no) = questions[2 * k], questions[2 * k + 1]
                assert (yes, no) == ("yes", "no")
                asked.append(positive)
                candidates = order(positive)
                if negative not in candidates:    # a random fallback: every candidate was present or asked
                    fallback_rows.append((image, positive, negative))
                    present[image] |= {o for o in candidates if o not in asked}
                else:
                    present[image] |= {o for o in candidates[: candidates.index(negative)] if o not in asked}
                asked.append(negative)
    for files in (popular, adversarial, random_):
        for image, questions in files.items():
            assert not {o for o, label in questions if label == "no"} & present[image], image
    # every inferred object co-occurs (per upstream's table) with every positive of its image
    for image, questions in popular.items():
        positives = [o for o, label in questions if label == "yes"]
        for positive in positives:
            assert (present[image] | set(positives)) - {positive} <= set(co[positive]), image
    # three adversarial negatives are random fallbacks (rare objects whose partners were all present or asked)
    assert [positive for _, positive, _ in fallback_rows] == ["toaster", "scissors", "zebra"]
    # re-run the sampler on the reconstructed object lists with upstream's rankings
    images = []
    for image, questions in popular.items():
        positives = [o for o, label in questions if label == "yes"]
        images.append(ImageObjects(image, tuple(positives) + tuple(sorted(present[image] - set(positives)))))
    stats = ObjectStats(tuple(ranking), tuple(ranking), {k: tuple(v) for k, v in co.items()})
    for subset, expected_file in (("popular", "coco_pope_popular.json"), ("adversarial", "coco_pope_adversarial.json")):
        ours = sample_subset(images, subset, n=3, seed=0, stats=stats)
        expected = rows(FIXTURES / "coco/current" / expected_file)
        differing = [(q, row) for q, row in zip(ours, expected)
                     if (q.question_id, q.image, q.text, q.label) !=
                     (row["question_id"], row["image"], row["text"], row["label"])]
        if subset == "popular":
            assert differing == []
        else:
            # only fallback negatives may differ (they are random draws; ours need not hit upstream's)
            assert {(q.image, q.label) for q, _ in differing} <= {(image, "no") for image, _, _ in fallback_rows}
            assert len(differing) <= 3


@needs_fixtures
@needs_upstream_stats
def test_published_popular_negatives_are_the_most_frequent_absent_objects():
    ranking, _ = upstream_stats()
    popular = per_image(FIXTURES / "coco/current/coco_pope_popular.json")
    negatives = Counter(o for questions in popular.values() for o, label in questions if label == "no")
    assert len(negatives) == 10                           # README: only 10 distinct popular negatives
    assert set(negatives) <= set(ranking[:13])            # all among the most frequent objects
    # the first negative of an image is the top-ranked object not in it: never one ranked below another
    # object that the same image is asked about as a negative later
    for questions in popular.values():
        first, *rest = [o for o, label in questions if label == "no"]
        assert all(ranking.index(first) < ranking.index(o) for o in rest)


@needs_fixtures
def test_published_files_share_images_order_and_positives():
    files = [per_image(FIXTURES / "coco/current" / f"coco_pope_{s}.json") for s in ("random", "popular", "adversarial")]
    assert list(files[0]) == list(files[1]) == list(files[2]) and len(files[0]) == 500
    for image in files[0]:
        positives = [[q for q in f[image] if q[1] == "yes"] for f in files]
        assert positives[0] == positives[1] == positives[2] and len(positives[0]) == 3


@needs_fixtures
def test_published_texts_are_our_template():
    """Every current question is question_text(object) (one upstream row reads 'an traffic light');
    every question of the 2023-05 random file is upstream's template, 'imange' included."""
    odd = []
    for subset in ("random", "popular", "adversarial"):
        for row in rows(FIXTURES / "coco/current" / f"coco_pope_{subset}.json"):
            if question_text(OBJECT.match(row["text"]).group(1)) != row["text"]:
                odd.append(row["text"])
    assert odd == ["Is there an traffic light in the image?"]
    old = rows(FIXTURES / "coco/2023-05/coco_pope_random.json")
    assert all(question_text(OBJECT.match(r["text"]).group(1), article="upstream") == r["text"] for r in old)
    assert sum("imange" in r["text"] for r in old) == 144


@needs_fixtures
def test_the_2910_random_file_lost_negatives_to_the_old_single_draw():
    """The first upstream random sampler drew once and dropped the negative if it was invalid: 500 images
    keep their 3 positives, some lose negatives, and every 'no' still directly follows a 'yes'."""
    labels = [r["label"] for r in rows(FIXTURES / "coco/2023-05/coco_pope_random.json")]
    assert len(labels) == 2910 and labels.count("yes") == 1500
    assert all(labels[i - 1] == "yes" for i, label in enumerate(labels) if label == "no")
