"""The bundled `pope` benchmark: POPE's three subsets sampled from SynthScenes, offline, in one split.

`deem-eval --model random --bench pope` builds it on first use into $DEEM_EVAL_HOME/splits/ (seconds) and
reuses it afterwards; the build is deterministic, so every machine gets the same fingerprint. The real
COCO benchmark is built with `deem-eval build pope --coco-annotations ... --out DIR` and run with
`--split-dir DIR`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deem_eval.core.benchmark import LeaderboardLayout, Slot, cached_build, deem_eval_home, load_prebuilt
from deem_eval.core.splits import Split

from .build import sampled_split
from .questions import BENCHMARK, SUBSETS
from .sampler import SamplerConfig

BUILD_VERSION = 1   # bump when the construction changes, so caches of the old one are not reused


@dataclass(frozen=True)
class PopeConfig:
    seed: int = 0
    num_images: int = 200          # SynthScenes images rendered
    img_num: int = 100             # images POPE chooses among those with >= n objects
    n: int = 3                     # positives (and negatives) per image
    subsets: tuple[str, ...] = SUBSETS
    size: int = 224

    def __post_init__(self) -> None:
        if self.num_images < 1 or self.size < 32:
            raise ValueError("num_images must be >= 1 and size >= 32")
        if not 1 <= self.img_num <= self.num_images:
            raise ValueError(f"img_num must be between 1 and num_images ({self.num_images}), got {self.img_num}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        unknown = [s for s in self.subsets if s not in SUBSETS]
        if unknown or not self.subsets:
            raise ValueError(f"subsets must be some of {', '.join(SUBSETS)}, got {', '.join(self.subsets) or '(none)'}")


# the DEEM paper's Table 1 columns, read from the runs' per-`subset` metrics; F1 and the yes-ratio by default
# (a model that says "yes" too often hallucinates objects, and accuracy alone hides it)
LEADERBOARD = LeaderboardLayout(
    prefix="POPE", field="subset", order=20,
    slots=(Slot("pope_r", "POPE-R", {"random", "r"}), Slot("pope_p", "POPE-P", {"popular", "p"}),
           Slot("pope_a", "POPE-A", {"adversarial", "a"})),
    metrics=("accuracy", "f1", "yes_ratio"),
    metric_notes=(("yes_ratio", ("yes%: the share of \"yes\" answers; POPE's questions are half yes, so far above "
                                "50 means the model says objects are there when they are not (hallucination)")),))


class PopeBenchmark:
    name = BENCHMARK
    leaderboard = LEADERBOARD
    description = "POPE object-hallucination probes (random / popular / adversarial) on SynthScenes (offline default)"
    Config = PopeConfig

    def __init__(self, config: PopeConfig | None = None):
        self.config = config or PopeConfig()

    def load(self, *, split_dir: Path | None = None) -> Split:
        if split_dir is not None:
            return load_prebuilt(split_dir, benchmark=BENCHMARK)
        c = self.config
        subsets = "-".join(s[0] for s in c.subsets)   # r-p-a
        key = f"pope-synthscenes-v{BUILD_VERSION}-s{c.seed}-g{c.num_images}-i{c.img_num}-n{c.n}-{subsets}-px{c.size}"
        return cached_build(deem_eval_home() / "splits" / key, self.build)

    def build(self, out_dir: Path) -> Split:
        from deem_eval.benchmarks.synthscenes import generate

        from .sources import load_coco_instances

        c = self.config
        generate(out_dir, seed=c.seed, num_images=c.num_images, size=c.size, progress=False)
        source = load_coco_instances(out_dir / "instances.json")
        config = SamplerConfig(seed=c.seed, img_num=c.img_num, n=c.n, subsets=tuple(c.subsets))
        split, _ = sampled_split(source, config, dataset="synthscenes", image_root="images",
                                 builder="pope-synthscenes",
                                 extra_params={"num_images": c.num_images, "size": c.size, "version": BUILD_VERSION})
        return split
