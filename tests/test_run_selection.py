"""No run hides another: runs that differ in options are different rows with distinct labels, a partial run
(--limit or incomplete) never supersedes a complete one of the same configuration, and a --limit covering the
whole split is no limit."""

from __future__ import annotations

import json
from pathlib import Path

from leaderboard_fakes import accuracy_answerer, make_run, save_split, synth_samples

from deem_eval.cli import main
from deem_eval.run.catalog import discover
from deem_eval.views.leaderboard import make_board
from deem_eval.views.leaderboard.runs import select


def _run(split, out: Path, model: str, *extra: str) -> Path:
    before = set(out.iterdir()) if out.exists() else set()
    assert main(["run", "--model", model, *extra, "--split-dir", str(split.directory), "--out", str(out),
                 "--no-progress"]) == 0
    (new,) = set(out.iterdir()) - before
    return new


def test_runs_differing_in_options_are_distinct_rows(tiny_split, tmp_path):
    out = tmp_path / "runs"
    high = _run(tiny_split, out, "random", "-M", "p_yes=0.9")
    low = _run(tiny_split, out, "random", "-M", "p_yes=0.1")
    board = make_board([out])
    rows = {r.model: r.cells["tiny||accuracy"].run.path for r in board.measured}
    assert rows == {"random(seed=0)[p_yes=0.9]": high, "random(seed=0)[p_yes=0.1]": low}
    assert board.selection.superseded == [] and not any("superseded" in n for n in board.notes)


def test_same_label_other_model_gets_the_model_name(tmp_path):
    split = save_split(tmp_path / "s", "synth-t", "synthscenes-yesno", synth_samples(5))
    make_run(tmp_path / "runs", split, "m", accuracy_answerer("x", 0.8), model="x", name="a")
    make_run(tmp_path / "runs", split, "m", accuracy_answerer("y", 0.6), model="y", name="b")
    assert sorted(r.label for r in select(discover([tmp_path / "runs"])[0]).chosen) == ["m[model=x]", "m[model=y]"]


def test_a_limit_run_never_supersedes_a_complete_one(tiny_split, tmp_path):
    out = tmp_path / "runs"
    full = _run(tiny_split, out, "always-yes")
    limited = _run(tiny_split, out, "always-yes", "--limit", "4")          # newer, complete on its subset
    selection = select(discover([out])[0])
    assert [r.path for r in selection.chosen] == [full]
    (sup,) = selection.superseded
    assert sup.run.path == limited and sup.reason == "--limit 4; a complete run of the whole split exists"
    alone = make_board([limited])                                          # shown, marked, when it is all there is
    assert alone.measured[0].cells["tiny||accuracy"].marks == "§"


def test_incomplete_run_never_supersedes_a_complete_limit_run(tmp_path):
    split = save_split(tmp_path / "s", "synth-t", "synthscenes-yesno", synth_samples(10))
    limited = make_run(tmp_path / "runs", split, "m", accuracy_answerer("m", 0.8), limit=6,
                       started="2026-01-01T00:00:00.000000Z")
    make_run(tmp_path / "runs", split, "m", accuracy_answerer("m", 0.8), answer_only=3,
             started="2026-02-01T00:00:00.000000Z")
    assert [r.path for r in select(discover([tmp_path / "runs"])[0]).chosen] == [limited]


def test_limit_covering_the_split_is_no_limit(tiny_split, tmp_path):
    out = tmp_path / "runs"
    covering = _run(tiny_split, out, "always-yes", "--limit", "1000")
    plain = _run(tiny_split, out, "always-yes", "--force")      # a second run of the same key
    first, second = (json.loads((d / "manifest.json").read_text()) for d in (covering, plain))
    assert first["limit"] is None and first["run_key"] == second["run_key"]
    board = make_board([out])
    assert board.measured[0].cells["tiny||accuracy"].marks == ""
    assert [s.reason for s in board.selection.superseded] == ["an older complete run"]


def test_old_manifest_with_a_covering_limit_is_not_marked(tmp_path):
    split = save_split(tmp_path / "s", "synth-t", "synthscenes-yesno", synth_samples(5))
    run = make_run(tmp_path / "runs", split, "m", accuracy_answerer("m", 0.8), limit=1000)
    board = make_board([run])
    assert board.measured[0].cells["synth-t||accuracy"].marks == ""
    assert not any("--limit" in n for n in board.notes)
