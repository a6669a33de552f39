"""Rescoring never overwrites: other parsers write metrics.<parser>.json, the leaderboard names the parser and
refuses to mix parsers in one split unless --parser rescores them all, and a resumed run keeps its parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError
from deem_eval.views.leaderboard import make_board
from deem_eval.views.leaderboard.render import RENDERERS


@pytest.fixture
def answers(tiny_split, tmp_path) -> Path:
    """Right on yes questions; "I am not sure." on no questions: unknown for strict, "no" for pope-official
    (it reads "not"), so strict gives accuracy 0.5 and pope-official 1.0."""
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps({"id": s.id, "answer": "Yes." if s.answer == "yes" else "I am not sure."})
                            + "\n" for s in tiny_split.samples))
    return path


def _replay(split, answers: Path, out: Path, *extra: str) -> Path:
    assert main(["run", "--model", "replay", "-M", f"path={answers}", *extra, "--split-dir", str(split.directory),
                 "--out", str(out), "--no-progress"]) == 0
    (run_dir,) = out.iterdir()
    return run_dir


def _accuracy(path: Path) -> float:
    return json.loads(path.read_text())["overall"]["accuracy"]["value"]


def test_score_with_another_parser_writes_beside_metrics_json(tiny_split, answers, tmp_path):
    run_dir = _replay(tiny_split, answers, tmp_path / "runs")
    metrics, manifest = (run_dir / "metrics.json").read_bytes(), (run_dir / "manifest.json").read_bytes()
    assert json.loads(metrics)["parser"] == "strict" and _accuracy(run_dir / "metrics.json") == 0.5

    assert main(["score", str(run_dir), "--parser", "pope-official"]) == 0
    assert (run_dir / "metrics.json").read_bytes() == metrics          # the run's own numbers stay
    assert (run_dir / "manifest.json").read_bytes() == manifest
    other = json.loads((run_dir / "metrics.pope-official.json").read_text())
    assert other["parser"] == "pope-official" and other["overall"]["accuracy"]["value"] == 1.0
    assert not list(run_dir.glob(".metrics*"))                          # no temporary file left behind

    assert main(["score", str(run_dir)]) == 0                           # re-derives with the manifest's parser
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["parser"] == "strict" and again["overall"] == json.loads(metrics)["overall"]


def test_leaderboard_refuses_mixed_parsers_unless_told_one(tiny_split, answers, tmp_path, capsys):
    out = tmp_path / "runs"
    strict = _replay(tiny_split, answers, out / "a", "-M", "label=alpha")
    official = _replay(tiny_split, answers, out / "b", "-M", "label=beta", "--parser", "pope-official")
    before = sorted(p.name for d in (strict, official) for p in d.iterdir())

    with pytest.raises(DeemEvalError) as info:
        make_board([strict, official])
    message = str(info.value)
    assert "different answer parsers" in message and "--parser NAME" in message
    assert f"strict: {strict} (alpha)" in message and f"pope-official: {official} (beta)" in message
    assert main(["leaderboard", str(strict), str(official)]) == 2
    assert "different answer parsers" in capsys.readouterr().err

    board = make_board([strict, official], parser="pope-official")
    cells = [c for r in board.measured for c in r.cells.values()]
    assert {c.run.parser for c in cells} == {"pope-official"}
    assert {r.model: r.cells["tiny||accuracy"].estimate.value for r in board.measured} == {"alpha": 1.0, "beta": 1.0}
    assert board.parser == "pope-official" and "answers parsed with 'pope-official'" in RENDERERS["md"](board)
    assert any("'pope-official' answer parser" in n for n in board.notes)
    assert sorted(p.name for d in (strict, official) for p in d.iterdir()) == before   # rescored read-only
    assert main(["leaderboard", str(strict), str(official), "--parser", "strict", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["model"]: r["cells"]["tiny||accuracy"]["value"] for r in doc["rows"]} == {"alpha": 0.5, "beta": 0.5}
    assert "answers parsed with 'strict'" in doc["title"]


def test_one_parser_is_named_once(tiny_split, answers, tmp_path):
    run_dir = _replay(tiny_split, answers, tmp_path / "runs")
    board = make_board([run_dir])
    assert [n for n in board.notes if "parser" in n] == ["parser: every cell is scored with the 'strict' answer parser"]
    assert board.parser == "strict"


def test_resuming_with_another_parser_is_refused(tiny_split, tmp_path, capsys):
    partial = tmp_path / "partial.jsonl"                             # one id unanswered: the run stays unfinished
    partial.write_text("".join(json.dumps({"id": s.id, "answer": "Yes."}) + "\n" for s in tiny_split.samples[1:]))
    out = tmp_path / "runs"
    argv = ["run", "--model", "replay", "-M", f"path={partial}", "--split-dir", str(tiny_split.directory),
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    (run_dir,) = out.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["finished_utc"] is None
    metrics, samples = (run_dir / "metrics.json").read_bytes(), (run_dir / "samples.jsonl").read_bytes()
    capsys.readouterr()

    assert main(argv + ["--parser", "pope-official"]) == 2
    err = capsys.readouterr().err
    assert "scored with parser 'strict'" in err and f"deem-eval score {run_dir} --parser pope-official" in err
    assert json.loads((run_dir / "manifest.json").read_text()) == manifest
    assert (run_dir / "metrics.json").read_bytes() == metrics
    assert (run_dir / "samples.jsonl").read_bytes() == samples
    assert main(argv) == 0                                            # resuming with its own parser still works


def test_explicit_run_dir_with_another_parser_is_refused(tiny_split, answers, tmp_path, capsys):
    run_dir = _replay(tiny_split, answers, tmp_path / "runs")
    metrics = (run_dir / "metrics.json").read_bytes()
    assert main(["run", "--model", "replay", "-M", f"path={answers}", "--split-dir", str(tiny_split.directory),
                 "--run-dir", str(run_dir), "--parser", "pope-official", "--no-progress"]) == 2
    assert "rescore with `deem-eval score" in capsys.readouterr().err
    assert (run_dir / "metrics.json").read_bytes() == metrics
