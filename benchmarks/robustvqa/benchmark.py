"""The `robustvqa` benchmark: a built RobustVQA split, or the bundled mini one when none is built.

Which split `load()` returns, in order: `--split-dir DIR`; with `-B source=auto` (default) or `built`, a
split built at the default place (`deem-eval build robustvqa` without --out writes
$DEEM_EVAL_HOME/splits/robustvqa); otherwise (or with `-B source=mini`) the mini RobustVQA, rendered on
first use into the cache. One line on stderr says which.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from deem_eval.core.benchmark import LeaderboardLayout, Slot, cached_build, deem_eval_home, load_prebuilt
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split


@dataclass(frozen=True)
class RobustVQAConfig:
    source: Literal["auto", "built", "mini"] = "auto"   # auto: the built split if there is one, else the mini
    images_per_subset: int = 300                        # mini only
    seed: int = 0                                       # mini only
    size: int = 128                                     # mini only: image side in pixels
    template: str = "paper"                             # mini only: paper, deem-code or a text with {class}


Config = RobustVQAConfig   # the name importers use (deem_eval.benchmarks.robustvqa.benchmark.Config)


# the DEEM paper's Table 1 columns, read from the runs' per-`subset` metrics
LEADERBOARD = LeaderboardLayout(
    prefix="RVQA", field="subset", order=10,
    slots=(Slot("rvqa_a", "RVQA-A", {"a", "imagenet-a", "imagenet_a"}),
           Slot("rvqa_r", "RVQA-R", {"r", "imagenet-r", "imagenet_r"}),
           Slot("rvqa_v", "RVQA-V", {"v", "v2", "imagenet-v2", "imagenet_v2"})))


class RobustVQA:
    name = "robustvqa"
    leaderboard = LEADERBOARD
    description = ("RobustVQA (DEEM): 'Is {class} the main object in this image?' on ImageNet-A / -R / -V2 with "
                   "CLIP-mined negatives; a bundled synthetic mini version when no split is built")
    Config = RobustVQAConfig

    def __init__(self, config: RobustVQAConfig | None = None) -> None:
        self.config = config or RobustVQAConfig()

    def load(self, *, split_dir: Path | None = None) -> Split:
        if split_dir is not None:
            return load_prebuilt(Path(split_dir), benchmark=self.name)
        from .options import default_out

        built = default_out()
        if self.config.source in ("auto", "built") and (built / "split.json").is_file():
            split = load_prebuilt(built, benchmark=self.name)
            print(f"robustvqa: using the split built at {built} ({split.name}, {split.meta.count} questions)",
                  file=sys.stderr)
            return split
        if self.config.source == "built":
            raise DeemEvalError(f"no RobustVQA split built at {built}: run `deem-eval build robustvqa "
                                "--imagenet-a DIR --imagenet-r DIR --imagenet-v2 DIR` or pass --split-dir")
        return self._mini()

    def _mini(self) -> Split:
        from .build import TEMPLATES
        from .mini import MiniConfig, build_mini

        mini = MiniConfig(images_per_subset=self.config.images_per_subset, seed=self.config.seed,
                          size=self.config.size, template=TEMPLATES.get(self.config.template, self.config.template))
        mini.check()
        tag = hashlib.sha256(json.dumps(asdict(mini), sort_keys=True).encode()).hexdigest()[:10]
        cache = deem_eval_home() / "splits" / f"robustvqa-mini-{tag}"
        print(f"robustvqa: no real split built, using the bundled mini RobustVQA (synthetic, 3 x "
              f"{mini.images_per_subset} images; build the real one with `deem-eval build robustvqa`)",
              file=sys.stderr)
        return cached_build(cache, lambda tmp: build_mini(tmp, mini))
