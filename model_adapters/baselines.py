"""Trivial baselines that need no model: they anchor every leaderboard (chance, yes-bias, replayed answers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deem_eval.core.adapters import ModelAdapter, Request
from deem_eval.core.benchmark import NoOptions
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.fingerprint import file_sha256
from deem_eval.core.rng import derive_rng


class _Constant(ModelAdapter):
    needs_images = False
    Config = NoOptions
    constant = ""

    def __init__(self, config: NoOptions | None = None):
        self.config = config or NoOptions()
        self.label = self.name

    def generate(self, batch: Sequence[Request]) -> list[str]:
        return [self.constant] * len(batch)


class AlwaysYes(_Constant):
    """Answers "yes" to everything: the yes-bias ceiling (accuracy = share of yes labels)."""

    name = "always-yes"
    constant = "yes"


class AlwaysNo(_Constant):
    """Answers "no" to everything."""

    name = "always-no"
    constant = "no"


@dataclass(frozen=True)
class RandomConfig:
    seed: int = 0
    p_yes: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_yes <= 1.0:
            raise ValueError(f"p_yes must be in [0, 1], got {self.p_yes}")


class RandomAnswer(ModelAdapter):
    """Chance: "yes" with probability p_yes, drawn per sample id (same answers in any order or batching)."""

    name = "random"
    needs_images = False
    Config = RandomConfig

    def __init__(self, config: RandomConfig | None = None):
        self.config = config or RandomConfig()
        self.label = "random" if self.config == RandomConfig() else f"random(seed={self.config.seed})"

    def generate(self, batch: Sequence[Request]) -> list[str]:
        return ["yes" if derive_rng(self.config.seed, "random-answer", r.id).random() < self.config.p_yes
                else "no" for r in batch]


@dataclass(frozen=True)
class ReplayConfig:
    path: Path = Path()
    field: str = "answer"        # which key of each line holds the text ("answer", "text", "output")
    label: str = ""              # leaderboard row name; default "replay:<file stem>"


class Replay(ModelAdapter):
    """Answers read from a JSON-lines file keyed by sample id: scores answers produced elsewhere."""

    name = "replay"
    needs_images = False
    Config = ReplayConfig

    def __init__(self, config: ReplayConfig):
        self.config = config
        path = config.path
        if not str(path) or not path.is_file():
            raise DeemEvalError(f"replay: answers file {str(path)!r} not found; pass -M path=FILE.jsonl "
                                '(one {"id": ..., "answer": ...} per line)')
        self.answers: dict[str, str] = {}
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    key, text = obj["id"], obj[config.field]
                except json.JSONDecodeError as exc:
                    raise DeemEvalError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
                except (KeyError, TypeError):
                    raise DeemEvalError(f"{path}:{lineno}: expected an object with 'id' and {config.field!r}") from None
                if key in self.answers:
                    raise DeemEvalError(f"{path}:{lineno}: duplicate id {key!r}")
                self.answers[str(key)] = str(text)
        self.label = config.label or f"replay:{path.stem}"
        self._sha256 = file_sha256(path)     # of the file as read now (it may change while the run goes on)

    def content_fingerprint(self) -> str:
        """The answers file's sha256: an edited file is a new run, not a resume into the old one."""
        return f"sha256:{self._sha256}"

    def generate(self, batch: Sequence[Request]) -> list[str]:
        missing = [r.id for r in batch if r.id not in self.answers]
        if missing:
            raise KeyError(f"no answer for id {missing[0]!r} in {self.config.path}")
        return [self.answers[r.id] for r in batch]
