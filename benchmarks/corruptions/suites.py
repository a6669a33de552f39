"""`robustvqa-c` and `pope-c`: RobustVQA and POPE under ImageNet-C corruptions, built on first use.

The source is the clean benchmark's default split (`robustvqa`: the built split if there is one, else the
bundled mini; `pope`: the bundled SynthScenes one), or any split given with `-B source_split=DIR`.
The default is a quick subset, one corruption per family at severities 1, 3, 5 on a fixed subset of
images, so the offline demo takes seconds; the whole 19 x 5 grid on every image is

    deem-eval --model M --bench pope-c -B corruptions=all -B severities=1-5 -B images=0

The corrupted split is cached under $DEEM_EVAL_HOME/splits/, keyed by the source fingerprint and the
options; builds are deterministic, so every machine gets the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deem_eval.benchmarks.pope.benchmark import LEADERBOARD as POPE_LEADERBOARD
from deem_eval.benchmarks.robustvqa.benchmark import LEADERBOARD as ROBUSTVQA_LEADERBOARD
from deem_eval.core.benchmark import cached_build, deem_eval_home, load_prebuilt
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

QUICK = "gaussian_noise,glass_blur,snow,jpeg_compression"   # one per family: noise, blur, weather, digital
SUITE_VERSION = 1


@dataclass(frozen=True)
class CorruptedConfig:
    corruptions: str = QUICK     # all | common | extra | noise | blur | weather | digital | names, comma separated
    severities: str = "1,3,5"    # ranges and lists: 1-5, 1,3,5
    images: int = 20             # source images to corrupt, a fixed subset (0: all)
    seed: int = 0
    backend: Literal["ours", "imagecorruptions"] = "ours"
    source_split: Path | None = None   # a clean split to corrupt instead of the source benchmark's default

    def __post_init__(self) -> None:
        if self.images < 0:
            raise ValueError(f"images must be >= 0 (0 means all), got {self.images}")


class _Corrupted:
    name: str
    source: str
    description: str
    Config = CorruptedConfig

    def __init__(self, config: CorruptedConfig | None = None) -> None:
        self.config = config or CorruptedConfig()

    def load(self, *, split_dir: Path | None = None) -> Split:
        if split_dir is not None:
            return load_prebuilt(Path(split_dir), benchmark=self.name)
        from . import catalog
        from .derive import DERIVE_VERSION, DeriveConfig, derive_corrupted_split
        from .spec import parse_severities

        c = self.config
        derive = DeriveConfig(corruptions=catalog.resolve(c.corruptions), severities=parse_severities(c.severities),
                              seed=c.seed, backend=c.backend, max_images=c.images or None, benchmark=self.name)
        derive.check()
        source = self._source()
        key = {"source": source.fingerprint, "corruptions": derive.corruptions, "severities": derive.severities,
               "images": c.images, "seed": c.seed, "backend": c.backend, "suite": SUITE_VERSION,
               "derive": DERIVE_VERSION}
        tag = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        cache = deem_eval_home() / "splits" / f"{self.name}-{tag}"
        if not (cache / "split.json").is_file():
            print(f"{self.name}: corrupting {c.images or 'all'} image(s) of {source.name} with "
                  f"{len(derive.corruptions)} corruption(s) x {len(derive.severities)} severities (first use)",
                  file=sys.stderr)
        return cached_build(cache, lambda tmp: derive_corrupted_split(source, tmp, derive))

    def _source(self) -> Split:
        if self.config.source_split is not None:
            return Split.load(self.config.source_split)
        from deem_eval.core.registry import BENCHMARKS

        try:
            benchmark_cls = BENCHMARKS.get(self.source)
        except DeemEvalError as exc:
            raise DeemEvalError(f"{self.name} corrupts the {self.source!r} benchmark, which is not available "
                                f"({exc}); pass -B source_split=DIR with a clean split instead") from None
        config_cls = getattr(benchmark_cls, "Config", None)
        benchmark = benchmark_cls(config_cls()) if config_cls is not None else benchmark_cls()
        return benchmark.load()


class RobustVQAC(_Corrupted):
    name = "robustvqa-c"
    leaderboard = ROBUSTVQA_LEADERBOARD.derived()
    source = "robustvqa"
    description = ("RobustVQA under ImageNet-C corruptions (default: 4 corruptions x severities 1,3,5 on 20 "
                   "images; -B corruptions=all -B severities=1-5 -B images=0 for the full grid)")


class PopeC(_Corrupted):
    name = "pope-c"
    leaderboard = POPE_LEADERBOARD.derived()    # F1 and yes-ratio as on pope; no paper columns
    source = "pope"
    description = ("POPE under ImageNet-C corruptions (default: 4 corruptions x severities 1,3,5 on 20 "
                   "images; -B corruptions=all -B severities=1-5 -B images=0 for the full grid)")
