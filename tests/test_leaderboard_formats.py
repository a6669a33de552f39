"""Every output format parses and carries the same numbers; the CLI writes them."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from leaderboard_fakes import accuracy_answerer, make_run, pope_samples, save_split, synth_samples

from deem_eval.cli import main
from deem_eval.views.leaderboard import make_board
from deem_eval.views.leaderboard.render import latex_escape, to_csv, to_html_page, to_json, to_latex, to_markdown


@pytest.fixture(scope="module")
def board_and_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmt")
    pope = save_split(root / "pope", "pope-t", "pope", pope_samples(10))
    synth = save_split(root / "synth", "synth_t", "synthscenes-yesno", synth_samples(10))
    for label, acc in (("model_a & co", 0.9), ("model-b", 0.7)):
        make_run(root / "runs", pope, label, accuracy_answerer(label, acc))
        make_run(root / "runs", synth, label, accuracy_answerer(label, acc))
    make_run(root / "runs", synth, "partial", accuracy_answerer("p", 0.7), answer_only=7)
    return make_board([root / "runs"], reported="table1"), root / "runs"


def test_csv_parses_with_raw_numbers(board_and_runs):
    board, _ = board_and_runs
    rows = list(csv.DictReader(io.StringIO(to_csv(board))))
    assert len(rows) == len(board.measured) + len(board.reported_rows)
    first = rows[0]
    assert first["kind"] == "measured" and first["rank"] == "1"
    col = next(c for c in board.columns if c.split)          # the first measured column (POPE-R)
    assert col.label == "POPE-R"
    est = board.measured[0].cells[col.key].estimate
    assert float(first[col.label]) == pytest.approx(est.value, rel=1e-5)
    assert float(first[f"{col.label} ci_low"]) == pytest.approx(est.ci_low, rel=1e-5)
    assert int(first[f"{col.label} n"]) == est.n
    partial = next(r for r in rows if r["model"] == "partial")
    assert partial["synth_t acc flags"] == "†"
    rep = next(r for r in rows if r["model"] == "DEEM")
    assert rep["kind"] == "reported" and rep["rank"] == "" and "2405.15232" in rep["source"]
    assert float(rep["POPE-R"]) == pytest.approx(0.6993)


def test_json_parses_and_is_complete(board_and_runs):
    board, _ = board_and_runs
    doc = json.loads(to_json(board))
    assert [c["label"] for c in doc["columns"]] == [c.label for c in board.columns]
    by_label = {c["label"]: c for c in doc["columns"]}
    assert by_label["POPE-R"]["paper_column"] == "pope_r" and by_label["POPE-R"]["group"] == {"subset": "random"}
    assert by_label["RVQA-A"]["split"] == ""                 # a column only the reported rows fill
    measured = [r for r in doc["rows"] if r["kind"] == "measured"]
    assert measured[0]["rank"] == 1
    assert doc["average"]["columns"] == [by_label[k]["key"] for k in ("POPE-R", "POPE-P", "POPE-A")]
    cell = measured[0]["cells"][by_label["POPE-R"]["key"]]
    assert set(cell) >= {"value", "n", "ci_low", "ci_high", "run"}
    partial = next(r for r in doc["rows"] if r["model"] == "partial")
    assert partial["cells"]["synth_t||accuracy"]["flags"] == ["incomplete run (samples not answered yet)"]
    reported = [r for r in doc["rows"] if r["kind"] == "reported"]
    assert reported and all("source" in r for r in reported)
    assert doc["notes"]


def test_latex_has_booktabs_and_escapes(board_and_runs):
    board, _ = board_and_runs
    tex = to_latex(board)
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert rule in tex
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    assert "model\\_a \\& co" in tex and "synth\\_t acc" in tex
    assert "$^\\dagger$" in tex                       # the incomplete run's mark
    header = next(line for line in tex.splitlines() if line.startswith("\\#"))
    n_cols = len(board.columns) + 2 + (1 if board.average else 0)
    assert header.count("&") == n_cols - 1
    for line in tex.splitlines():                     # every body row has the same number of cells
        if line.endswith("\\\\") and not line.startswith("\\multicolumn"):
            assert line.count(" & ") == n_cols - 1, line
    assert latex_escape("50% of #1_x {y}") == "50\\% of \\#1\\_x \\{y\\}"


def test_html_is_well_formed(board_and_runs):
    board, _ = board_and_runs
    page = to_html_page(board)
    root = ET.fromstring(page.split("\n", 1)[1])        # strict XML parse after the doctype line
    tables = root.findall(".//table")
    assert len(tables) == 1
    body_rows = tables[0].findall("./tbody/tr")
    assert len(body_rows) == len(board.measured) + 1 + len(board.reported_rows)   # + the "Reported" section row
    header = [th.text for th in tables[0].findall("./thead/tr/th")]
    assert header[:2] == ["#", "model"] and "POPE-R" in header
    assert "model_a &amp; co" in page and "<script" not in page and "http" not in page.split("<body>")[1]


def test_markdown_table_shape(board_and_runs):
    board, _ = board_and_runs
    md = to_markdown(board)
    lines = [line for line in md.splitlines() if line.startswith("|")]
    widths = {line.count(" | ") for line in lines if not line.startswith("|--")}
    assert len(widths) == 1                            # every row has the same number of cells
    assert lines[1].startswith("|---:|:---|")
    assert any("*rep.*" in line for line in lines)


def test_cli_writes_each_format(board_and_runs, tmp_path, capsys):
    _, runs = board_and_runs
    assert main(["leaderboard", str(runs), "--format", "json", "-o", str(tmp_path / "lb.json")]) == 0
    assert json.loads((tmp_path / "lb.json").read_text())["rows"]
    assert main(["leaderboard", str(runs), "--format", "csv", "--sort", "model"]) == 0
    out = capsys.readouterr().out
    assert next(csv.reader(io.StringIO(out)))[0] == "rank"
    assert main(["leaderboard", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "model-b" in out and "POPE-R" in out
    assert main(["leaderboard", str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["leaderboard", "--reported", str(runs)]) == 0          # a flag: the path stays a run dir
    assert "reported" in capsys.readouterr().out
    assert main(["leaderboard", str(runs), "--reported-table", "tabel1"]) == 2
    assert "Did you mean 'table1'" in capsys.readouterr().err
