"""Several benchmarks per model load, option checks of -M / -B, and help that lists an entry's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import make_split

from deem_eval.api import bench_names
from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.options import option_help, reject_packed, split_pairs
from deem_eval.core.registry import BENCHMARKS, MODELS
from deem_eval.model_adapters.baselines import RandomAnswer


@dataclass(frozen=True)
class _AlphaConfig:
    n_images: int = 2     # images in the split
    shared: int = 0       # an option both test benchmarks have


@dataclass(frozen=True)
class _BetaConfig:
    shared: int = 0
    colour: str = field(default="red", metadata={"help": "from metadata, not the comment"})  # comment


@dataclass(frozen=True)
class _TupleConfig:
    labels: tuple[str, ...] = ()
    prompt: str = ""
    path: Path = Path()
    scoring: str = "generate"


def _benchmark(bench_name: str, config_cls: type, root: Path) -> type:
    class Bench:
        name = bench_name
        description = f"test benchmark {bench_name}"
        Config = config_cls
        seen: ClassVar[list] = []

        def __init__(self, config=None):
            self.config = config or config_cls()
            Bench.seen.append(self.config)

        def load(self, *, split_dir=None):
            return make_split(root / bench_name, getattr(self.config, "n_images", 3), name=bench_name)
    return Bench


class _Counting(RandomAnswer):
    built = 0

    def __init__(self, config=None):
        super().__init__(config)
        type(self).built += 1


@pytest.fixture
def benches(tmp_path):
    alpha, beta = _benchmark("t-alpha", _AlphaConfig, tmp_path), _benchmark("t-beta", _BetaConfig, tmp_path)
    BENCHMARKS.register("t-alpha", alpha)
    BENCHMARKS.register("t-beta", beta)
    MODELS.register("t-counting", _Counting)
    _Counting.built = 0
    yield alpha, beta
    BENCHMARKS.unregister("t-alpha")
    BENCHMARKS.unregister("t-beta")
    MODELS.unregister("t-counting")


def test_bench_names_both_spellings_deduplicated_in_order():
    assert bench_names(["b,a", "c", "a", " b , d "]) == ["b", "a", "c", "d"]


def test_several_benchmarks_one_model_load_and_one_board(benches, tmp_path, capsys):
    alpha, beta = benches
    out = tmp_path / "runs"
    argv = ["--model", "t-counting", "--bench", "t-alpha,t-beta", "--bench", "t-alpha", "-B", "shared=3",
            "-B", "n_images=1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert _Counting.built == 1
    assert [c.shared for c in alpha.seen + beta.seen] == [3, 3]
    assert alpha.seen[0].n_images == 1
    runs = sorted(out.iterdir())
    assert len(runs) == 2
    printed = capsys.readouterr().out
    assert all(str(r) in printed for r in runs)
    board = printed.split(str(runs[-1]))[-1]
    assert "t-alpha acc" in board and "t-beta acc" in board and "avg acc" in board


def test_bench_option_no_benchmark_has_names_the_valid_ones(benches, capsys):
    assert main(["--model", "random", "--bench", "t-alpha", "--bench", "t-beta", "-B", "size=3"]) == 2
    assert "Valid options: colour, n_images, shared" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--split-dir", "--run-dir"])
def test_split_dir_and_run_dir_refused_with_several(benches, tmp_path, flag, capsys):
    assert main(["--model", "random", "--bench", "t-alpha,t-beta", flag, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert flag in err and "several benchmarks" in err


def test_packed_model_options_are_refused(tiny_split, capsys):
    argv = ["--model", "replay", "-M", "path=DIR,field=text", "--split-dir", str(tiny_split.directory)]
    assert main(argv) == 2
    assert "repeat -M for each option: -M path=DIR -M field=text" in capsys.readouterr().err


def test_packed_check_keeps_tuples_and_prompts():
    reject_packed(_TupleConfig, {"labels": "a,b=c", "prompt": "x, y=1"})   # legitimate values
    with pytest.raises(DeemEvalError, match="repeat -M for each option: -M path=DIR -M scoring=logits"):
        reject_packed(_TupleConfig, {"path": "DIR,scoring=logits"})
    with pytest.raises(DeemEvalError, match="-M prompt=a -M scoring=b"):
        reject_packed(_TupleConfig, {"prompt": "a,scoring=b"})


def test_repeated_option_with_different_values_is_an_error(tiny_split, capsys):
    assert split_pairs(["seed=1", "seed=1"]) == {"seed": "1"}
    argv = ["--model", "random", "-M", "seed=1", "-M", "seed=2", "--split-dir", str(tiny_split.directory)]
    assert main(argv) == 2
    assert "-M seed is given twice" in capsys.readouterr().err


def test_option_help_from_comments_and_metadata():
    assert option_help(_AlphaConfig) == {"n_images": "images in the split", "shared": "an option both test "
                                         "benchmarks have"}
    assert option_help(_BetaConfig) == {"colour": "from metadata, not the comment"}


def test_model_and_bench_help_list_options(benches, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--model", "replay", "--bench", "t-alpha", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "field: str = 'answer'" in out and "which key of each line holds the text" in out
    assert "n_images: int = 2" in out and "images in the split" in out


def test_list_one_model_shows_its_options(capsys):
    assert main(["list", "models", "replay"]) == 0
    out = capsys.readouterr().out
    assert "model replay" in out and "label: str = ''" in out and "leaderboard row name" in out


def test_build_without_a_name_lists_builders(capsys):
    assert main(["build"]) == 2
    err = capsys.readouterr().err
    assert "builders:" in err and "synthscenes" in err


def test_one_benchmark_unknown_option_and_options_without_bench(benches, tiny_split, capsys):
    assert main(["--model", "random", "--bench", "t-alpha", "-B", "colour=blue"]) == 2
    assert "benchmark 't-alpha' has no option 'colour'. Valid options: n_images, shared" in capsys.readouterr().err
    assert main(["--model", "random", "-B", "shared=1", "--split-dir", str(tiny_split.directory)]) == 2
    assert "give --bench NAME" in capsys.readouterr().err
