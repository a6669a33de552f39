"""Bold means significantly ahead: a column's best row is bold only when Holm-adjusted McNemar tests put it ahead
of every other row, never for a point maximum that is noise; the report shows Holm-adjusted p-values."""

from __future__ import annotations

from pathlib import Path

import pytest
from leaderboard_fakes import make_run, robustvqa_samples, save_split, synth_samples

from deem_eval.analysis.paired import McNemar, PairedComparison
from deem_eval.cli import main
from deem_eval.core.splits import BuilderInfo, Sample, Split
from deem_eval.scoring.metrics import Estimate
from deem_eval.views.leaderboard import make_board
from deem_eval.views.leaderboard.render import to_markdown, to_plain
from deem_eval.views.leaderboard.significance import BOLD_NOTE, UNAVAILABLE
from deem_eval.views.report.build import holm_by_split


def _wrong_on(ids: set[str]):
    """An answerer that is right everywhere except on `ids`."""
    def answer(sample: Sample) -> str:
        if sample.id in ids:
            return "no" if sample.answer == "yes" else "yes"
        return sample.answer
    return answer


@pytest.fixture
def noisy_board(tmp_path):
    """baseline is the point maximum (18/20 vs 17/20), but only 3 discordant pairs: McNemar p = 1."""
    split = save_split(tmp_path / "s", "synth-t", "synthscenes-yesno", synth_samples(10))
    ids = [s.id for s in split.samples]
    make_run(tmp_path / "runs", split, "baseline", _wrong_on({ids[0], ids[1]}))
    make_run(tmp_path / "runs", split, "method", _wrong_on({ids[0], ids[2], ids[3]}))
    return tmp_path / "runs"


def test_point_maximum_by_noise_is_not_bold(noisy_board):
    board = make_board([noisy_board])
    values = {r.model: r.cells["synth-t||accuracy"].estimate.value for r in board.measured}
    assert values == {"baseline": 0.9, "method": 0.85}
    assert board.marked == {}
    text = to_markdown(board)
    assert "**90.0**" not in text and "90.0" in text
    assert BOLD_NOTE in board.notes and not any(UNAVAILABLE in n for n in board.notes)


def test_unreadable_answers_mark_nothing_and_say_so(noisy_board):
    for samples in noisy_board.glob("*/samples.jsonl"):
        samples.unlink()
    board = make_board([noisy_board])
    assert board.marked == {}
    assert f"no cell is marked: {UNAVAILABLE}" in board.notes


def _all_yes_split(directory: Path, n: int = 20) -> Split:
    from PIL import Image

    (directory / "images").mkdir(parents=True)
    samples = []
    for i in range(n):
        Image.new("RGB", (8, 8), (i * 10, 0, 0)).save(directory / "images" / f"{i:03d}.png")
        samples.append(Sample(f"yes/{i:03d}", f"{i:03d}.png", "Is there a circle in the image?", "yes",
                              {"image_id": str(i)}))
    split = Split.create(name="all-yes", benchmark="tiny", samples=samples, image_root="images",
                         builder=BuilderInfo("test", {"n": n}, 0))
    return split.save(directory)


def test_clear_winner_is_bold_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEM_EVAL_HOME", str(tmp_path / "home"))
    split = _all_yes_split(tmp_path / "split")
    out = tmp_path / "runs"
    for model in ("always-yes", "always-no"):
        assert main(["run", "--model", model, "--split-dir", str(split.directory), "--out", str(out),
                     "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "md"]) == 0
    text = capsys.readouterr().out
    assert "**100.0**" in text and "**0.0**" not in text
    assert "Holm-adjusted within the column" in text
    board = make_board([out])
    (key,) = board.marked
    assert board.marked[key].startswith("always-yes")
    winner = next(line for line in to_plain(board).splitlines() if "always-yes" in line)
    assert "100.0*" in winner                                   # plain text has no bold: the * marks it


def _comparison(split: str, p: float) -> PairedComparison:
    test = McNemar(10, 5, 4, 1, 0, p, p)
    return PairedComparison(split, "a", "b", 10, 0, 0, 0.9, 0.6, Estimate(0.3, 10, 0.1, 0.5), test, "image", 5, 100)


def test_report_holm_adjusts_within_each_split():
    comparisons = [_comparison("s1", 0.01), _comparison("s1", 0.04), _comparison("s2", 0.04)]
    assert holm_by_split(comparisons) == pytest.approx([0.02, 0.04, 0.04])


def test_paper_columns_test_each_subset_and_never_bold_the_average(tmp_path):
    split = save_split(tmp_path / "r", "rvqa-t", "robustvqa", robustvqa_samples(20))
    make_run(tmp_path / "runs", split, "right", _wrong_on(set()))
    make_run(tmp_path / "runs", split, "yes-man", lambda s: "yes")
    board = make_board([tmp_path / "runs"])
    assert [c.label for c in board.columns] == ["RVQA-A", "RVQA-R", "RVQA-V"]
    assert board.marked == {c.key: "right" for c in board.columns}
    text = to_markdown(board)
    assert text.count("**100.0**") == 3 and "**50.0**" not in text
