"""The POPE sampler: upstream's algorithm (RUCAIBox/POPE utils.py), with seeded, hash-derived randomness.

Per chosen image the positives are its first `n` objects (annotation order) and each positive is
immediately followed by one negative, so questions alternate yes/no and question ids count up from 1 per
subset, as upstream writes them. Negatives:

- random: uniform over every object seen in the chosen images, redrawn until it is neither in the image
  nor already asked for that image;
- popular: the most frequent object over the chosen images that is neither in the image nor already asked
  (ties keep the order of first appearance: upstream sorts a dict stably by count); fallback random;
- adversarial: the object co-occurring most often with the current positive over the chosen images,
  neither in the image nor already asked; ties keep the order in which the pair was first seen (upstream's
  dict insertion order); fallback random.

With `image_list` no image is drawn: the given images are used in the given order, so popular and
adversarial questions are exactly what upstream's algorithm makes for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.rng import derive_rng

from .questions import SUBSETS, PopeQuestion

DEFAULT_TEMPLATE = "Is there a {} in the image?"
ArticleStyle = Literal["by-letter", "upstream"]
VOWELS = "aeiou"


@dataclass(frozen=True)
class ImageObjects:
    """One image and its object names in annotation order.

    The names are distinct, except from an object list loaded with `duplicates="upstream"`: then an
    object named twice is counted twice (frequencies, co-occurrences, the `n` an image needs) and may be
    asked twice as a positive, exactly as upstream's `pope()` does with such a list.
    """

    image: str                    # file name, relative to the image directory
    objects: tuple[str, ...]
    image_id: str | None = None


@dataclass(frozen=True)
class ObjectStats:
    """Counts over the chosen images, in the orders the negative strategies walk them."""

    vocabulary: tuple[str, ...]                     # every object, in order of first appearance
    popular: tuple[str, ...]                        # by image count, descending; ties by first appearance
    co_occurring: Mapping[str, tuple[str, ...]]     # object -> partners by count; ties by first co-occurrence

    @classmethod
    def from_images(cls, images: Iterable[ImageObjects]) -> ObjectStats:
        counts: dict[str, int] = {}
        pairs: dict[str, dict[str, int]] = {}
        for image in images:
            objects = image.objects
            for name in objects:
                counts[name] = counts.get(name, 0) + 1
                partners = pairs.setdefault(name, {})
                for other in objects:
                    if other != name:
                        partners[other] = partners.get(other, 0) + 1
        # sorted() is stable: equal counts keep dict insertion order, exactly as upstream's sort does.
        popular = tuple(name for name, _ in sorted(counts.items(), key=lambda kv: -kv[1]))
        co = {name: tuple(o for o, _ in sorted(p.items(), key=lambda kv: -kv[1])) for name, p in pairs.items()}
        return cls(tuple(counts), popular, co)


@dataclass(frozen=True)
class Selection:
    """Which images a sampling used, and what was skipped on the way."""

    chosen: tuple[ImageObjects, ...]
    total: int                    # images in the source
    eligible: int                 # images with at least n objects
    skipped_too_few: int          # images with fewer than n objects


@dataclass(frozen=True)
class SamplerConfig:
    seed: int = 0
    img_num: int = 500
    n: int = 3                                  # positives (and negatives) per image; upstream's sample_num
    subsets: tuple[str, ...] = SUBSETS
    template: str = DEFAULT_TEMPLATE
    article: ArticleStyle = "by-letter"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise DeemEvalError(f"n must be >= 1, got {self.n}")
        if self.img_num < 1:
            raise DeemEvalError(f"img_num must be >= 1, got {self.img_num}")
        for subset in self.subsets:
            if subset not in SUBSETS:
                raise DeemEvalError(f"unknown POPE subset {subset!r}; expected one of {', '.join(SUBSETS)}")
        if self.article not in ("by-letter", "upstream"):
            raise DeemEvalError(f"article must be 'by-letter' or 'upstream', got {self.article!r}")
        if self.template.count("{}") != 1:
            raise DeemEvalError(f"template must contain exactly one '{{}}' for the object: {self.template!r}")


@dataclass(frozen=True)
class Sampling:
    selection: Selection
    stats: ObjectStats
    questions: Mapping[str, tuple[PopeQuestion, ...]] = field(default_factory=dict)   # subset -> questions


@lru_cache(maxsize=4096)
def question_text(obj: str, template: str = DEFAULT_TEMPLATE, article: ArticleStyle = "by-letter") -> str:
    """The question for `obj`.

    by-letter: the article before "{}" becomes "an" when the object starts with a vowel letter, else "a".
    upstream:  RUCAIBox/POPE's create_question: for vowel-initial objects *every* "a" of the template is
               replaced by "an", which is how "Is there an umbrella in the imange?" was made.
    """
    vowel = obj[:1].lower() in VOWELS
    if article == "upstream":
        return (template.replace("a", "an") if obj[:1] in VOWELS else template).format(obj)
    head, _, tail = template.partition("{}")
    words = head.rstrip().rsplit(" ", 1)
    if words[-1].lower() in ("a", "an"):
        article_word = "an" if vowel else "a"
        if words[-1][:1].isupper():
            article_word = article_word.capitalize()
        head = (words[0] + " " if len(words) == 2 else "") + article_word + head[len(head.rstrip()):]
    return head + obj + tail


def select_images(images: Sequence[ImageObjects], *, n: int, img_num: int, seed: int,
                  image_list: Sequence[str] | None = None) -> Selection:
    """Keep images with >= n objects and choose img_num of them with the seed (or take `image_list`)."""
    eligible = [image for image in images if len(image.objects) >= n]
    skipped = len(images) - len(eligible)
    if image_list is not None:
        return Selection(_take_listed(images, image_list, n), len(images), len(eligible), skipped)
    if len(eligible) < img_num:
        raise DeemEvalError(
            f"only {len(eligible)} of {len(images)} images have at least {n} objects ({skipped} have fewer), "
            f"but {img_num} were asked for; lower --img-num (or --n)")
    order = derive_rng(seed, "pope", "images").permutation(len(eligible))[:img_num]
    return Selection(tuple(eligible[int(i)] for i in order), len(images), len(eligible), skipped)


def _take_listed(images: Sequence[ImageObjects], names: Sequence[str], n: int) -> tuple[ImageObjects, ...]:
    by_name = {image.image: image for image in images}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise DeemEvalError(f"{len(missing)} of the {len(names)} listed images are not in the source "
                            f"(first: {', '.join(missing[:3])})")
    duplicates = len(names) - len(set(names))
    if duplicates:
        raise DeemEvalError(f"the image list names {duplicates} image(s) more than once")
    too_few = [name for name in names if len(by_name[name].objects) < n]
    if too_few:
        raise DeemEvalError(f"{len(too_few)} listed image(s) have fewer than {n} objects "
                            f"(first: {', '.join(too_few[:3])})")
    return tuple(by_name[name] for name in names)


def sample_subset(chosen: Sequence[ImageObjects], subset: str, *, n: int, seed: int, stats: ObjectStats,
                  template: str = DEFAULT_TEMPLATE, article: ArticleStyle = "by-letter") -> tuple[PopeQuestion, ...]:
    """The questions of one subset for the chosen images, in upstream's order (question ids from 1)."""
    if subset not in SUBSETS:
        raise DeemEvalError(f"unknown POPE subset {subset!r}; expected one of {', '.join(SUBSETS)}")
    vocabulary = stats.vocabulary
    size = len(vocabulary)
    known = frozenset(vocabulary)
    out: list[PopeQuestion] = []
    qid = 0
    for image in chosen:
        present = set(image.objects)
        asked: set[str] = set()
        rng = None   # created on first use: popular/adversarial rarely need one
        for i in range(n):
            positive = image.objects[i]
            asked.add(positive)
            qid += 1
            out.append(PopeQuestion(subset, qid, image.image, question_text(positive, template, article), "yes",
                                    positive, image.image_id))
            negative = None
            if subset != "random":
                ranking = stats.popular if subset == "popular" else stats.co_occurring.get(positive, ())
                for candidate in ranking:
                    if candidate not in present and candidate not in asked:
                        negative = candidate
                        break
            if negative is None:   # random, or the fallback: upstream's random.choice, redrawn until valid
                if len((present | asked) & known) >= len(known):
                    raise DeemEvalError(
                        f"{image.image}: no object left to ask a negative about (the image has {len(present)} of "
                        f"the {len(known)} objects seen in the chosen images); choose more images or lower n")
                if rng is None:
                    rng = derive_rng(seed, "pope", subset, image.image)
                while negative is None:
                    candidate = vocabulary[int(rng.integers(size))]
                    if candidate not in present and candidate not in asked:
                        negative = candidate
            asked.add(negative)
            qid += 1
            out.append(PopeQuestion(subset, qid, image.image, question_text(negative, template, article), "no",
                                    negative, image.image_id))
    return tuple(out)


def sample_pope(images: Sequence[ImageObjects], config: SamplerConfig = SamplerConfig(),
                image_list: Sequence[str] | None = None) -> Sampling:
    """Choose images once, count over them, and sample every requested subset."""
    selection = select_images(images, n=config.n, img_num=config.img_num, seed=config.seed, image_list=image_list)
    stats = ObjectStats.from_images(selection.chosen)
    questions = {subset: sample_subset(selection.chosen, subset, n=config.n, seed=config.seed, stats=stats,
                                       template=config.template, article=config.article)
                 for subset in config.subsets}
    return Sampling(selection, stats, questions)
