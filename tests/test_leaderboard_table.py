"""Building the leaderboard: paper layout, cells and intervals, ranking, sorting, filtering, superseded and
incomplete runs, fingerprint refusal, reported rows."""

from __future__ import annotations

import re

import pytest
from leaderboard_fakes import (
    accuracy_answerer,
    make_run,
    paper_world,
    pope_samples,
    robustvqa_samples,
    save_split,
    synth_samples,
)

from deem_eval.core.errors import DeemEvalError
from deem_eval.run.catalog import discover
from deem_eval.views.leaderboard import make_board
from deem_eval.views.leaderboard.render import to_plain
from deem_eval.views.leaderboard.runs import RunFilter, select

MODELS = {"deem": 0.85, "llava": 0.75, "weak": 0.55}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    runs, pope, rvqa = paper_world(root, MODELS)
    return root, runs, pope, rvqa


def test_paper_layout_columns_cells_and_average(world):
    _, runs, _, _ = world
    board = make_board([runs])
    assert [c.label for c in board.columns if c.metric == "accuracy"] == \
        ["RVQA-A", "RVQA-R", "RVQA-V", "POPE-R", "POPE-P", "POPE-A"]
    assert board.average is not None and board.average.label == "avg"
    accuracy = [c for c in board.columns if c.metric == "accuracy"]
    for row in board.measured:
        run_by_split = {c.split: row.cells[c.key].run for c in board.columns}
        for col in board.columns:
            est = row.cells[col.key].estimate
            expected = run_by_split[col.split].metrics["groups"]["subset"][col.value][col.metric]
            assert est.value == expected["value"] and est.ci_low == expected["ci_low"]
            assert est.n == 40                                   # 20 images x (yes, no) per subset
        values = [row.cells[c.key].estimate.value for c in accuracy]
        assert row.average.value == pytest.approx(sum(values) / 6)
        assert row.average.ci_low < row.average.value < row.average.ci_high
    # ranked by average, best first, ranks 1..3
    averages = [r.average.value for r in board.measured]
    assert averages == sorted(averages, reverse=True)
    assert [r.rank for r in board.measured] == [1, 2, 3]


def test_cells_print_value_with_interval(world):
    _, runs, _, _ = world
    board = make_board([runs])
    text = to_plain(board)
    est = board.measured[0].cells[board.columns[0].key].estimate
    value_line = next(line for line in text.splitlines() if " deem " in line)
    ci_line = text.splitlines()[text.splitlines().index(value_line) + 1]
    assert f"{est.value * 100:.1f}" in value_line
    assert f"[{est.ci_low * 100:.1f}, {est.ci_high * 100:.1f}]" in ci_line
    assert re.search(r"\[\d+\.\d, \d+\.\d\]", ci_line)
    assert "RVQA-A" in text and "POPE-A" in text and "avg" in text


def test_sort_filter_and_metric(world):
    _, runs, _, _ = world
    by_model = make_board([runs], sort="model")
    assert [r.model for r in by_model.measured] == ["deem", "llava", "weak"]
    by_col = make_board([runs], sort="pope-a", ascending=True)
    vals = [r.estimate(by_col.columns[5].key).value for r in by_col.measured]
    assert by_col.sort_label == "POPE-A" and vals == sorted(vals)
    with pytest.raises(DeemEvalError, match="Did you mean"):
        make_board([runs], sort="POPE-X")
    only = make_board([runs], filters=["model=deem,weak"])
    assert sorted(r.model for r in only.measured) == ["deem", "weak"]
    pope_only = make_board([runs], filters=["benchmark=pope"])
    assert [c.label for c in pope_only.columns if c.metric == "accuracy"] == ["POPE-R", "POPE-P", "POPE-A"]
    f1 = make_board([runs], metrics=["f1"])
    assert f1.columns[0].label == "RVQA-A F1" and f1.average.metric == "f1"
    both = make_board([runs], metrics=["accuracy", "f1"])
    assert len(both.columns) == 12 and both.average.metric == "accuracy"
    with pytest.raises(DeemEvalError, match="no run matches"):
        make_board([runs], filters=["model=nobody"])
    with pytest.raises(DeemEvalError, match="filter key"):
        RunFilter.parse("modle=x")


def test_generic_layout_for_other_splits(tmp_path):
    synth = save_split(tmp_path / "s", "synth-t", "synthscenes-yesno", synth_samples(10))
    popec = save_split(tmp_path / "pc", "pope-c-t", "pope-c", pope_samples(5))
    for label in ("a", "b"):
        make_run(tmp_path / "runs", synth, label, accuracy_answerer(label, 0.7))
        make_run(tmp_path / "runs", popec, label, accuracy_answerer(label, 0.7))
    board = make_board([tmp_path / "runs"])
    # pope-c is not a paper column: accuracy + F1; synthscenes: accuracy only
    assert [c.label for c in board.columns] == ["pope-c-t acc", "pope-c-t F1", "pope-c-t yes%", "synth-t acc"]
    assert board.average.label == "avg acc" and len(board.average.keys) == 2
    with_reported = make_board([tmp_path / "runs"], reported="table1")       # reported-only paper columns
    assert with_reported.average.keys == board.average.keys and with_reported.measured[0].rank == 1
    row = board.measured[0]
    run = row.cells["synth-t||accuracy"].run
    assert row.cells["synth-t||accuracy"].estimate.value == run.metrics["overall"]["accuracy"]["value"]


def test_newest_complete_run_wins_and_superseded_are_listed(tmp_path):
    split = save_split(tmp_path / "s", "synth-t", "synthscenes-yesno", synth_samples(10))
    runs = tmp_path / "runs"
    old = make_run(runs, split, "m", accuracy_answerer("old", 0.5), started="2026-01-01T00:00:00.000000Z")
    new = make_run(runs, split, "m", accuracy_answerer("new", 0.9), started="2026-02-01T00:00:00.000000Z")
    partial = make_run(runs, split, "m", accuracy_answerer("p", 0.9), started="2026-03-01T00:00:00.000000Z",
                       answer_only=5)
    selection = select(discover([runs])[0])
    assert [r.path for r in selection.chosen] == [new]
    reasons = {s.run.path: s.reason for s in selection.superseded}
    assert reasons == {old: "an older complete run", partial: "incomplete; a complete run exists"}
    board = make_board([runs])
    assert any("superseded" in n and str(old) in n for n in board.notes)
    # with only incomplete runs, the newest one is shown, marked
    board = make_board([partial])
    cell = board.measured[0].cells["synth-t||accuracy"]
    assert cell.marks == "†" and "†" in board.marks_used
    assert any("incomplete: 15 of 20" in n for n in board.notes)


def test_failures_and_limits_are_marked(tmp_path):
    split = save_split(tmp_path / "s", "synth-t", "synthscenes-yesno", synth_samples(10))
    failed = make_run(tmp_path / "runs", split, "f", accuracy_answerer("f", 0.8), fail_ids=[split.samples[3].id])
    limited = make_run(tmp_path / "runs", split, "l", accuracy_answerer("l", 0.8), limit=8)
    board = make_board([failed, limited])
    marks = {r.model: r.cells["synth-t||accuracy"].marks for r in board.measured}
    assert marks == {"f": "‡", "l": "§"}
    assert any("1 of 20 samples failed" in n for n in board.notes)
    assert any("--limit 8" in n for n in board.notes)


def test_refuses_to_rank_runs_with_different_fingerprints(tmp_path):
    s1 = save_split(tmp_path / "s1", "pope-t", "pope", pope_samples(4))
    s2 = save_split(tmp_path / "s2", "pope-t", "pope", pope_samples(5))     # same name, other questions
    a = make_run(tmp_path / "runs", s1, "alpha", accuracy_answerer("a", 0.8))
    b = make_run(tmp_path / "runs", s2, "beta", accuracy_answerer("b", 0.8))
    with pytest.raises(DeemEvalError) as info:
        make_board([tmp_path / "runs"])
    message = str(info.value)
    assert "pope-t" in message and str(a) in message and str(b) in message
    assert s1.fingerprint[:12] in message and s2.fingerprint[:12] in message
    # keeping one version by fingerprint prefix resolves it
    board = make_board([tmp_path / "runs"], filters=[f"fingerprint={s1.fingerprint[:8]}"])
    assert [r.model for r in board.measured] == ["alpha"]


def test_reported_rows_beside_measured(world):
    _, runs, _, _ = world
    board = make_board([runs], reported="table1")
    reported = board.reported_rows
    assert len(reported) == 10 and all(r.rank is None and r.kind == "reported" for r in reported)
    assert board.rows[:3] == board.measured                  # measured rows first, then the reported block
    deem = next(r for r in reported if r.model == "DEEM")
    labels = {c.key: c.label for c in board.columns}
    values = {labels[k]: c.text for k, c in deem.cells.items()}
    assert values == {"RVQA-A": "56.86", "RVQA-R": "68.63", "RVQA-V": "63.08",
                      "POPE-R": "69.93", "POPE-P": "70.27", "POPE-A": "68.87"}
    assert deem.average.value == pytest.approx((56.86 + 68.63 + 63.08 + 69.93 + 70.27 + 68.87) / 600)
    assert deem.paper_average == 60.91                       # the paper's AVG includes MMVP
    assert any("reported rows" in n for n in board.notes)
    # reported numbers are accuracy: an F1 table shows none of them
    f1 = make_board([runs], reported="table1", metrics=["f1"])
    assert all(not r.cells for r in f1.reported_rows)
    # reported alone (no runs at all) still shows the paper's columns
    alone = make_board([], reported="table5")
    assert [c.label for c in alone.columns][:3] == ["RVQA-A", "RVQA-R", "RVQA-V"] and len(alone.reported_rows) == 4


def test_synthetic_stand_ins_are_flagged_beside_reported_numbers(tmp_path):
    mini = save_split(tmp_path / "m", "robustvqa-mini", "robustvqa", robustvqa_samples(4))
    real = save_split(tmp_path / "r", "robustvqa-imagenet", "robustvqa", robustvqa_samples(5))
    make_run(tmp_path / "mini", mini, "m", accuracy_answerer("m", 0.8))
    make_run(tmp_path / "real", real, "m", accuracy_answerer("m", 0.8))
    flagged = make_board([tmp_path / "mini"], reported="table1")
    assert any("synthetic stand-in splits (robustvqa-mini)" in n for n in flagged.notes)
    assert not any("stand-in" in n for n in make_board([tmp_path / "mini"]).notes)     # no reported rows
    assert not any("stand-in" in n for n in make_board([tmp_path / "real"], reported="table1").notes)


def test_terminal_table_never_clips_a_number(world):
    import io

    from rich.console import Console

    from deem_eval.views.leaderboard.render import print_terminal

    _, runs, _, _ = world
    board = make_board([runs])

    def render(width, terminal):
        out = io.StringIO()
        print_terminal(board, Console(file=out, width=width, force_terminal=terminal, color_system=None))
        return out.getvalue()

    narrow = render(125, terminal=True)
    assert "…" not in narrow and "left out for the terminal's width" in narrow
    assert "POPE-A" in narrow and "avg" in narrow                  # accuracy columns and the average stay
    left_out = narrow.split("left out for the terminal's width:")[1].split("(")[0]
    assert "F1" in left_out and "yes%" in left_out
    table_lines = [line for line in narrow.splitlines() if "│" in line or "┃" in line]
    assert table_lines and max(len(line) for line in table_lines) <= 125
    tiny = render(60, terminal=True)              # narrower than the essential columns: wider lines, nothing cut
    assert "…" not in tiny and "POPE-A" in tiny
    wide = render(400, terminal=True)
    assert "left out" not in wide and "POPE-A F1" in wide
    piped = render(60, terminal=False)
    assert "…" not in piped and "left out" not in piped and "POPE-A yes%" in piped
