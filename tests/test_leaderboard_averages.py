"""Leaderboard averages (issue 13): paired image-bootstrap intervals, per-benchmark averages, POPE's yes-ratio
and F1 by default, and no bold for baselines that differ by noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
from leaderboard_fakes import accuracy_answerer, make_run, paper_world, pope_samples, robustvqa_samples, save_split

from deem_eval.views.leaderboard import make_board
from deem_eval.views.leaderboard.render import to_json, to_plain

MODELS = {"deem": 0.85, "llava": 0.75, "weak": 0.55}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("avg")
    runs, pope, rvqa = paper_world(root, MODELS)
    make_run(runs, pope, "pope-only", accuracy_answerer("pope-only", 0.95))     # no RobustVQA run
    make_run(runs, pope, "perfect", lambda s: s.answer)
    make_run(runs, rvqa, "perfect", lambda s: s.answer)
    return root, runs


def test_average_interval_is_a_seeded_paired_image_bootstrap(world):
    _, runs = world
    np.random.seed(1)
    first = make_board([runs])
    np.random.seed(2)                                   # global state must not matter
    second = make_board([runs])
    assert to_json(first) == to_json(second)            # same seed, same bytes
    assert any("paired bootstrap over images" in n for n in first.notes)
    assert not any("normal approximation" in n for n in first.notes)
    for row in first.measured:
        for avg in first.averages:
            est = row.estimate(avg.key)
            if est is None:
                continue
            assert 0.0 <= est.ci_low <= est.value <= est.ci_high <= 1.0
    perfect = next(r for r in first.measured if r.model == "perfect")
    assert perfect.average.value == 1.0 and perfect.average.ci_high == 1.0 and perfect.average.ci_low == 1.0
    # the interval is the bootstrap's, not the old independent normal approximation of the cells
    deem = next(r for r in first.measured if r.model == "deem")
    from deem_eval.scoring.metrics import Z95
    cells = [deem.estimate(k) for k in first.average.keys]
    se = (sum(((e.ci_high - e.ci_low) / (2 * Z95)) ** 2 for e in cells)) ** 0.5 / len(cells)
    assert deem.average.ci_low != pytest.approx(deem.average.value - Z95 * se, abs=1e-6)


def test_another_seed_changes_only_the_interval(world, tmp_path):
    _, runs = world
    from deem_eval.run.catalog import discover
    from deem_eval.views.leaderboard.runs import select
    from deem_eval.views.leaderboard.table import build

    found, _ = discover([runs])
    a, b = build(select(found), seed=0, draws=500), build(select(found), seed=7, draws=500)
    ra, rb = (next(r for r in board.measured if r.model == "deem") for board in (a, b))
    assert ra.average.value == rb.average.value and ra.average.ci_low != rb.average.ci_low


def test_per_benchmark_averages_rank_rows_without_every_column(world):
    _, runs = world
    board = make_board([runs])
    assert [a.label for a in board.averages] == ["RVQA avg", "POPE avg", "avg"]
    pope_only = next(r for r in board.measured if r.model == "pope-only")
    assert pope_only.average is None and pope_only.rank is None
    pope_avg = next(a for a in board.averages if a.benchmark == "pope")
    assert pope_only.estimate(pope_avg.key).ci_low is not None
    by_pope = make_board([runs], sort="POPE avg")
    assert by_pope.sort_label == "POPE avg"
    ranked = [r.model for r in by_pope.measured if r.rank is not None]
    assert ranked[0] in ("perfect", "pope-only") and "pope-only" in ranked
    doc = json.loads(to_json(board))
    assert [a["label"] for a in doc["benchmark_averages"]] == ["RVQA avg", "POPE avg"]
    assert "POPE avg" in to_plain(board)


def test_pope_shows_yes_ratio_and_f1_by_default(world):
    _, runs = world
    board = make_board([runs])
    labels = [c.label for c in board.columns]
    for subset in ("POPE-R", "POPE-P", "POPE-A"):
        assert {subset, f"{subset} F1", f"{subset} yes%"} <= set(labels)
    assert not any(label.startswith("RVQA") and label.endswith(("F1", "yes%")) for label in labels)
    col = next(c for c in board.columns if c.label == "POPE-A yes%")
    row = board.measured[0]
    cell = row.cells[col.key]
    assert cell.estimate.value == cell.run.metrics["groups"]["subset"][col.value]["yes_ratio"]["value"]
    assert any(n.startswith("yes%:") for n in board.notes)
    assert set(board.average.keys) == {c.key for c in board.columns if c.metric == "accuracy"}


def test_noise_between_baselines_is_never_bold(tmp_path):
    """Demo-like baselines of one true accuracy: whichever is ahead by noise is not bold, in any column."""
    pope = save_split(tmp_path / "pope", "pope-t", "pope", pope_samples(20))
    rvqa = save_split(tmp_path / "rvqa", "rvqa-t", "robustvqa", robustvqa_samples(20))
    for k in range(4):
        for split in (pope, rvqa):
            make_run(tmp_path / "runs", split, f"baseline{k}", accuracy_answerer(f"baseline{k}", 0.6, yes_bias=0.8))
    board = make_board([tmp_path / "runs"])
    assert board.marked == {}
    assert "*" not in "".join(line for line in to_plain(board).splitlines() if "baseline" in line)
